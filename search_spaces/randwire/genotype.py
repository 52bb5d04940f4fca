"""Randomly wired network genotype (Xie et al. 2019): per stage, an explicit DAG and its generator.

Stage ``i`` is a DAG on nodes ``0..nodes[i]-1`` given by ``edges[i]``, a sorted list of ``(src, dst)``
pairs (any acyclic labelling is accepted; the list is stored sorted). The stage's extra input node
feeds every node without predecessors and its extra output node averages every node without
successors, so those two are implied by the edges. ``generators[i]`` records the random graph model
that drew the stage, as provenance: the edge list is what gets built, so an exported architecture
rebuilds identically whatever the networkx version.

Generator string grammar (keys in this order, no spaces; ``P`` a float, the rest integers)::

    er(p=P,n=N,seed=S)      Erdős–Rényi ER(P): each node pair joined with probability P, 0 <= P <= 1
    ba(m=M,n=N,seed=S)      Barabási–Albert BA(M): each new node attaches to M earlier ones, 1 <= M < N
    ws(k=K,p=P,n=N,seed=S)  Watts–Strogatz WS(K, P): ring lattice of N nodes each joined to its K nearest
                            neighbours (K even, 2 <= K < N), each edge rewired with probability P
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from nas.genotype import Genotype
from search_spaces.randwire.canon import canonical_dag
from search_spaces.randwire.dag import check_dag, is_index

KINDS: tuple[str, ...] = ("er", "ba", "ws")
KIND_PARAMS: dict[str, tuple[str, ...]] = {"er": ("p",), "ba": ("m",), "ws": ("k", "p")}
_SPEC = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$")


def _check_er(spec: GeneratorSpec) -> str | None:
    """What is wrong with ER(P)'s params (P a probability), or None."""
    return None if 0.0 <= spec.p <= 1.0 else f"er needs 0 <= p <= 1, got p={spec.p}"


def _check_ba(spec: GeneratorSpec) -> str | None:
    """What is wrong with BA(M)'s params (1 <= M < N), or None."""
    return None if 1 <= spec.m < spec.n else f"ba needs 1 <= m < n, got m={spec.m}, n={spec.n}"


def _check_ws(spec: GeneratorSpec) -> str | None:
    """What is wrong with WS(K, P)'s params (K even, 2 <= K < N; P a probability), or None."""
    if not (2 <= spec.k < spec.n and spec.k % 2 == 0):
        return f"ws needs an even k with 2 <= k < n, got k={spec.k}, n={spec.n}"
    return None if 0.0 <= spec.p <= 1.0 else f"ws needs 0 <= p <= 1, got p={spec.p}"


_CHECKS: dict[str, Callable[[GeneratorSpec], str | None]] = {"er": _check_er, "ba": _check_ba, "ws": _check_ws}


@dataclass(frozen=True, slots=True)
class GeneratorSpec:
    """One stage's random graph model and its parameters; parameters the kind does not use are 0."""

    kind: str
    n: int
    seed: int
    k: int = 0
    p: float = 0.0
    m: int = 0

    def __post_init__(self) -> None:
        where = f"generator {self.kind}"
        if self.kind not in _CHECKS:
            raise ValueError(f"unknown generator kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        for name in ("n", "seed", "k", "m"):
            if not is_index(getattr(self, name)):
                raise ValueError(f"{where}: {name} must be an integer, got {getattr(self, name)!r}")
        if not isinstance(self.p, float) or not math.isfinite(self.p):
            raise ValueError(f"{where}: p must be a finite number, got {self.p!r}")
        if self.n < 1 or self.seed < 0:
            raise ValueError(f"{where}: needs n >= 1 and seed >= 0, got n={self.n}, seed={self.seed}")
        unused = [name for name in ("k", "p", "m") if name not in KIND_PARAMS[self.kind] and getattr(self, name)]
        if unused:
            raise ValueError(f"{where} takes no {', '.join(unused)}")
        problem = _CHECKS[self.kind](self)
        if problem:
            raise ValueError(problem)

    @staticmethod
    def parse(text: str) -> GeneratorSpec:
        """Parse the string form (see the module docstring); ``ValueError`` says what is wrong."""
        return _parse(text)

    def to_string(self) -> str:
        """The canonical string form, e.g. ``ws(k=4,p=0.75,n=32,seed=1)``."""
        values = {"k": self.k, "p": repr(self.p), "m": self.m, "n": self.n, "seed": self.seed}
        keys = KIND_PARAMS[self.kind] + ("n", "seed")
        return f"{self.kind}(" + ",".join(f"{key}={values[key]}" for key in keys) + ")"

    def short(self) -> str:
        """The paper's notation: ``er(0.2)``, ``ba(5)``, ``ws(4,0.75)``."""
        values = {"k": str(self.k), "p": f"{self.p:g}", "m": str(self.m)}
        return f"{self.kind}(" + ",".join(values[key] for key in KIND_PARAMS[self.kind]) + ")"


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> GeneratorSpec:
    """Cached parser behind :meth:`GeneratorSpec.parse`."""
    match = _SPEC.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"generator {text!r}: expected KIND(key=value,...), e.g. 'ws(k=4,p=0.75,n=32,seed=1)'")
    kind, body = match.group(1), match.group(2)
    if kind not in KIND_PARAMS:
        raise ValueError(f"generator {text!r}: unknown generator kind {kind!r}; expected one of {', '.join(KINDS)}")
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, sep, value = item.partition("=")
        values[key.strip()] = value.strip() if sep else ""
    expected = KIND_PARAMS[kind] + ("n", "seed")
    if set(values) != set(expected):
        raise ValueError(f"generator {text!r}: {kind} takes exactly the keys {', '.join(expected)}")
    try:
        fields: dict[str, Any] = {key: int(values[key]) for key in expected if key != "p"}
        if "p" in values:
            fields["p"] = float(values["p"])
    except ValueError:
        raise ValueError(f"generator {text!r}: values must be numbers (p) and integers (the rest)") from None
    try:
        return GeneratorSpec(kind, **fields)
    except ValueError as err:
        raise ValueError(f"generator {text!r}: {err}") from None


@dataclass(frozen=True, slots=True)
class RandWireGenotype(Genotype):
    """Per stage: node count, DAG edges and the generator string (see the module docstring)."""

    SPACE: ClassVar[str] = "randwire"
    nodes: tuple[int, ...]
    edges: tuple[tuple[tuple[int, int], ...], ...]
    generators: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("nodes", "edges", "generators"):
            if not isinstance(getattr(self, name), tuple) or not getattr(self, name):
                raise ValueError(f"randwire genotype: {name} must be a non-empty list (one entry per stage)")
        if not len(self.nodes) == len(self.edges) == len(self.generators):
            raise ValueError(f"randwire genotype: nodes, edges and generators need one entry per stage, got "
                             f"{len(self.nodes)}, {len(self.edges)} and {len(self.generators)}")
        normalized = []
        for stage, (n, edges, text) in enumerate(zip(self.nodes, self.edges, self.generators)):
            if not is_index(n) or n < 1:
                raise ValueError(f"randwire genotype: nodes[{stage}] must be a positive integer, got {n!r}")
            try:
                spec = GeneratorSpec.parse(text)
            except ValueError as err:
                raise ValueError(f"randwire genotype: generators[{stage}]: {err}") from None
            if spec.n != n:
                raise ValueError(f"randwire genotype: generators[{stage}] has n={spec.n} but nodes[{stage}] is {n}")
            normalized.append((check_dag(n, edges, f"randwire genotype: edges[{stage}]"), spec.to_string()))
        object.__setattr__(self, "edges", tuple(e for e, _ in normalized))  # stored sorted: one form per DAG
        object.__setattr__(self, "generators", tuple(g for _, g in normalized))

    @property
    def stages(self) -> int:
        """Number of randomly wired stages."""
        return len(self.nodes)

    def specs(self) -> tuple[GeneratorSpec, ...]:
        """The parsed generator of every stage."""
        return tuple(GeneratorSpec.parse(text) for text in self.generators)

    def canonical(self) -> Any:
        """Each stage's DAG in canonical labelling (generators are provenance, not architecture)."""
        return {"space": self.SPACE, "stages": [canonical_dag(n, e) for n, e in zip(self.nodes, self.edges)]}
