"""NAS-Bench-201 genotype: the op on each of the cell's six edges, and the benchmark's string form.

Nodes 0..3; node j sums ``op(i->j)(x_i)`` over i < j; node 3 is the cell output. The standard string
lists the edges into node 1, 2 and 3: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nas.genotype import Genotype

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from)


@dataclass(frozen=True, slots=True)
class NB201Genotype(Genotype):
    """Ops of the six edges in ``EDGES`` order."""

    SPACE: ClassVar[str] = "nb201"
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or len(self.ops) != len(EDGES):
            raise ValueError(f"nb201 genotype: expected {len(EDGES)} edge ops, got {self.ops!r}")
        for (dst, src), op in zip(EDGES, self.ops):
            if op not in OPS:
                raise ValueError(f"nb201 genotype: edge {src}->{dst} has op {op!r}; allowed: {', '.join(OPS)}")

    @classmethod
    def parse(cls, text: str) -> NB201Genotype:
        """Parse the standard string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise ValueError(f"nb201 string: expected 3 '+'-separated nodes, got {text!r}")
        ops: list[str] = []
        for dst, node in enumerate(nodes, start=1):
            parts = [p for p in node.strip().strip("|").split("|")]
            if len(parts) != dst:
                raise ValueError(f"nb201 string: node {dst} needs {dst} inputs, got {node!r}")
            for src, part in enumerate(parts):
                op, sep, index = part.partition("~")
                if sep != "~" or index != str(src):
                    raise ValueError(f"nb201 string: expected 'op~{src}' for node {dst}, got {part!r}")
                ops.append(op)
        return cls(tuple(ops))

    def to_string(self) -> str:
        """The standard string form."""
        nodes = []
        for dst in (1, 2, 3):
            edges = [f"{op}~{src}" for (d, src), op in zip(EDGES, self.ops) if d == dst]
            nodes.append("|" + "|".join(edges) + "|")
        return "+".join(nodes)

    def canonical(self) -> Any:
        """The string form, with nodes 1 and 2 put in a fixed order when they are interchangeable.

        With no edge 1->2, nodes 1 and 2 both read only node 0 and both feed node 3, so swapping
        them gives the same network; the lexicographically smaller labelling represents both.
        """
        ops = self.ops
        if ops[2] != "none":
            return self.to_string()
        swapped = NB201Genotype((ops[1], ops[0], "none", ops[3], ops[5], ops[4]))
        return min(self.to_string(), swapped.to_string())
