"""NASNet-style cell genotypes: a normal and a reduction cell of B blocks each.

Hidden states of a cell: 0 = h[i-2] (the cell before the previous one), 1 = h[i-1] (the previous
cell), and 2 + b = the output of block b. A block applies an op to each of two earlier states and
adds the results; the cell output concatenates the states listed in its ``concat``.

Published cells are converted from their references' index conventions: TF-slim NASNet-A and the
TPU AmoebaNet-A number h[i-1] as 0 and h[i-2] as 1 (swapped here), and define the concatenation by
a "used" mask (NASNet-A's normal cell concatenates h[i-2] as well, which the DARTS repository's
transcription drops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from nas.genotype import Genotype
from search_spaces.op_costs import OP_NAMES

Block = tuple[tuple[int, str], tuple[int, str]]  # ((input, op), (input, op))


def check_cell(name: str, blocks: tuple[Block, ...], concat: tuple[int, ...]) -> None:
    """Raise ``ValueError`` saying what is wrong with a cell."""
    if not isinstance(blocks, tuple) or not blocks:
        raise ValueError(f"nasnet genotype: {name} needs at least one block, got {blocks!r}")
    for b, block in enumerate(blocks):
        if not (isinstance(block, tuple) and len(block) == 2 and all(isinstance(p, tuple) and len(p) == 2 for p in block)):
            raise ValueError(f"nasnet genotype: {name} block {b} must be two [input, op] pairs, got {block!r}")
        for source, op in block:
            if not isinstance(source, int) or isinstance(source, bool) or not 0 <= source < b + 2:
                raise ValueError(f"nasnet genotype: {name} block {b} reads state {source!r}; "
                                 f"allowed 0..{b + 1} (earlier states only)")
            if op not in OP_NAMES:
                raise ValueError(f"nasnet genotype: {name} block {b} has unknown op {op!r}")
    states = len(blocks) + 2
    if (not isinstance(concat, tuple) or not concat or list(concat) != sorted(set(concat))
            or any(not isinstance(i, int) or not 0 <= i < states for i in concat)):
        raise ValueError(f"nasnet genotype: {name}_concat must list distinct states in 0..{states - 1} "
                         f"in increasing order, got {concat!r}")


def unused_states(blocks: Sequence[Block]) -> tuple[int, ...]:
    """Block outputs no other block reads (NASNet's rule for what a cell concatenates)."""
    used = {source for block in blocks for source, _ in block}
    return tuple(i for i in range(2, len(blocks) + 2) if i not in used)


def all_states(blocks: Sequence[Block]) -> tuple[int, ...]:
    """Every block output (DARTS's rule)."""
    return tuple(range(2, len(blocks) + 2))


def canonical_cell(blocks: Sequence[Block], concat: Sequence[int]) -> dict[str, list[str]]:
    """A form equal for cells that differ only in block order or in the order of a block's inputs."""
    forms = ["h[i-2]", "h[i-1]"]
    for block in blocks:
        forms.append("add(" + ",".join(sorted(f"{op}<{forms[src]}>" for src, op in block)) + ")")
    return {"blocks": sorted(forms[2:]), "concat": sorted(forms[i] for i in concat)}


@dataclass(frozen=True, slots=True)
class NASNetGenotype(Genotype):
    """Normal and reduction cells; each block is ``((input, op), (input, op))``."""

    SPACE: ClassVar[str] = "nasnet"
    normal: tuple[Block, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Block, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        check_cell("normal", self.normal, self.normal_concat)
        check_cell("reduce", self.reduce, self.reduce_concat)
        if len(self.normal) != len(self.reduce):
            raise ValueError(f"nasnet genotype: normal has {len(self.normal)} blocks, reduce {len(self.reduce)}")

    @property
    def blocks(self) -> int:
        """B, blocks per cell."""
        return len(self.normal)

    def ops(self) -> set[str]:
        """Every op the genotype uses."""
        return {op for cell in (self.normal, self.reduce) for block in cell for _, op in block}

    def canonical(self) -> Any:
        return {"normal": canonical_cell(self.normal, self.normal_concat),
                "reduce": canonical_cell(self.reduce, self.reduce_concat)}

    def to_text(self) -> str:
        """``normal: sep_conv_5x5(1)+sep_conv_3x3(0) ... [0,2,3] | reduce: ...``."""
        def cell(blocks: tuple[Block, ...], concat: tuple[int, ...]) -> str:
            body = " ".join("+".join(f"{op}({src})" for src, op in block) for block in blocks)
            return f"{body} [{','.join(map(str, concat))}]"
        return f"normal: {cell(self.normal, self.normal_concat)} | reduce: {cell(self.reduce, self.reduce_concat)}"


def from_pairs(normal: Sequence[tuple[str, int]], normal_concat: Sequence[int],
               reduce: Sequence[tuple[str, int]], reduce_concat: Sequence[int]) -> NASNetGenotype:
    """A genotype from DARTS-style flat lists of ``(op, input)`` pairs, two per block."""
    def blocks(pairs: Sequence[tuple[str, int]]) -> tuple[Block, ...]:
        return tuple(((pairs[i][1], pairs[i][0]), (pairs[i + 1][1], pairs[i + 1][0]))
                     for i in range(0, len(pairs), 2))
    return NASNetGenotype(blocks(normal), tuple(normal_concat), blocks(reduce), tuple(reduce_concat))


SEP3, SEP5, SEP7 = "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7"
AVG, MAX, SKIP = "avg_pool_3x3", "max_pool_3x3", "skip_connect"

KNOWN: dict[str, NASNetGenotype] = {
    # TF-slim nasnet_utils.NasNetANormalCell / NasNetAReductionCell
    "nasnet-a": from_pairs(
        [(SEP5, 1), (SEP3, 0), (SEP5, 0), (SEP3, 0), (AVG, 1), (SKIP, 0), (AVG, 0), (AVG, 0), (SEP3, 1), (SKIP, 1)],
        [0, 2, 3, 4, 5, 6],
        [(SEP5, 1), (SEP7, 0), (MAX, 1), (SEP7, 0), (AVG, 1), (SEP5, 0), (SKIP, 3), (AVG, 2), (SEP3, 2), (MAX, 1)],
        [3, 4, 5, 6]),
    # TPU models/official/amoeba_net model_specs 'amoeba_net_a'
    "amoebanet-a": from_pairs(
        [(AVG, 1), (MAX, 1), (SEP3, 0), (SKIP, 0), (SKIP, 1), (AVG, 0), (SEP3, 1), (SEP5, 2), (AVG, 5), (SEP3, 1)],
        [0, 3, 4, 6],
        [(SEP3, 0), (AVG, 1), (MAX, 1), (SEP7, 2), (MAX, 0), (MAX, 1), (SEP3, 4), ("conv_1x7_7x1", 1),
         (AVG, 0), (SEP7, 1)],
        [2, 3, 4, 5, 6]),
    # DARTS repository genotypes.py (first- and second-order searches)
    "darts-v1": from_pairs(
        [(SEP3, 1), (SEP3, 0), (SKIP, 0), (SEP3, 1), (SKIP, 0), (SEP3, 1), (SEP3, 0), (SKIP, 2)], [2, 3, 4, 5],
        [(MAX, 0), (MAX, 1), (SKIP, 2), (MAX, 0), (MAX, 0), (SKIP, 2), (SKIP, 2), (AVG, 0)], [2, 3, 4, 5]),
    "darts-v2": from_pairs(
        [(SEP3, 0), (SEP3, 1), (SEP3, 0), (SEP3, 1), (SEP3, 1), (SKIP, 0), (SKIP, 0), ("dil_conv_3x3", 2)],
        [2, 3, 4, 5],
        [(MAX, 0), (MAX, 1), (SKIP, 2), (MAX, 1), (MAX, 0), (SKIP, 2), (SKIP, 2), (MAX, 1)], [2, 3, 4, 5]),
}
