"""Random graphs from networkx's ER / BA / WS models, turned into DAGs as in the paper (Sec. 3.2).

Each undirected edge is directed from the lower to the higher node index, so the graph is acyclic.
The index is the model's own order: a random labelling drawn from the seed for ER (its nodes are
exchangeable), insertion order for BA, ring order for WS. Every random choice of one stage comes
from ``random.Random(seed)``, so a generator string always draws the same graph under one networkx
version; genotypes store the resulting edges, which makes them independent of the version.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Callable, Iterable, Sequence

import networkx as nx

from search_spaces.randwire.dag import Edges
from search_spaces.randwire.genotype import GeneratorSpec, RandWireGenotype


FROZEN_FILE = Path(__file__).with_name("known_edges.json")


def _er(spec: GeneratorSpec, rng: random.Random) -> Edges:
    graph = nx.gnp_random_graph(spec.n, spec.p, seed=rng)
    label = list(range(spec.n))
    rng.shuffle(label)  # the random node indices that fix the edge directions
    return _forward((label[a], label[b]) for a, b in graph.edges())


def _ba(spec: GeneratorSpec, rng: random.Random) -> Edges:
    return _forward(nx.barabasi_albert_graph(spec.n, spec.m, seed=rng).edges())


def _ws(spec: GeneratorSpec, rng: random.Random) -> Edges:
    return _forward(nx.watts_strogatz_graph(spec.n, spec.k, spec.p, seed=rng).edges())


_MODELS: dict[str, Callable[[GeneratorSpec, random.Random], Edges]] = {"er": _er, "ba": _ba, "ws": _ws}


def _forward(pairs: Iterable[tuple[int, int]]) -> Edges:
    """Undirected pairs directed from the lower to the higher index, sorted."""
    return tuple(sorted((a, b) if a < b else (b, a) for a, b in pairs))


def generate(spec: GeneratorSpec) -> Edges:
    """The DAG edges that ``spec`` draws (deterministic per seed)."""
    return _MODELS[spec.kind](spec, random.Random(spec.seed))


@functools.lru_cache(maxsize=1)
def frozen_edges() -> dict[str, Edges]:
    """The stored graphs of the published generators (``known_edges.json``: generator string -> edges).

    KNOWN architectures are named constants: their graphs are read from this file, not redrawn, so a
    networkx release that changes its random draws cannot change them (``freeze_known`` wrote it).
    """
    data = json.loads(FROZEN_FILE.read_text())
    return {text: tuple(tuple(edge) for edge in edges) for text, edges in data.items()}


def freeze_known(specs: Iterable[GeneratorSpec]) -> dict[str, list[list[int]]]:
    """The content of ``known_edges.json`` for ``specs``, drawn with the installed networkx."""
    return {spec.to_string(): [list(edge) for edge in generate(spec)] for spec in specs}


def make_genotype(specs: Sequence[GeneratorSpec], reuse: Sequence[RandWireGenotype] = ()) -> RandWireGenotype:
    """A genotype with one stage per spec; a stage with the generator of a stage in ``reuse`` keeps its
    edges, a published generator's stage takes its stored graph, any other stage is drawn."""
    kept: dict[str, Edges] = {}
    for genotype in reuse:
        kept.update(zip(genotype.generators, genotype.edges))
    stored = frozen_edges()
    edges = []
    for spec in specs:
        text = spec.to_string()
        edges.append(kept[text] if text in kept else stored[text] if text in stored else generate(spec))
    return RandWireGenotype(tuple(s.n for s in specs), tuple(edges), tuple(s.to_string() for s in specs))
