"""Isomorphism-aware arch ids: relabelled stages share an id, and equal ids mean isomorphic stages."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from collections import defaultdict

import networkx as nx
import pytest

from search_spaces.randwire.canon import canonical_dag
from search_spaces.randwire.genotype import RandWireGenotype
from search_spaces.randwire.space import RandWireSpace


def relabel(genotype: RandWireGenotype, rng: random.Random) -> RandWireGenotype:
    """The same network with every stage's nodes renumbered by a random permutation."""
    edges = []
    for n, stage in zip(genotype.nodes, genotype.edges):
        perm = list(range(n))
        rng.shuffle(perm)
        edges.append(tuple(sorted((perm[a], perm[b]) for a, b in stage)))
    return RandWireGenotype(genotype.nodes, tuple(edges), genotype.generators)


def digraph(n: int, edges) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    return graph


def one_stage(n: int, edges) -> RandWireGenotype:
    return RandWireGenotype((n,), (tuple(edges),), (f"er(p=0.5,n={n},seed=0)",))


def test_relabelled_graphs_get_the_same_id_on_500_samples():
    space, rng = RandWireSpace(preset="small"), random.Random(0)
    genotypes = [space.sample(rng) for _ in range(500)]
    moved = [relabel(g, rng) for g in genotypes]
    assert sum(m.edges != g.edges for m, g in zip(moved, genotypes)) > 490  # really renumbered
    assert [m.arch_id for m in moved] == [g.arch_id for g in genotypes]
    assert len({g.arch_id for g in genotypes}) == 500  # 500 random N=32 networks: all different


def test_equal_ids_are_isomorphic_and_different_ids_are_not_on_500_small_graphs():
    # 6-node stages: small enough that many of the 500 are isomorphic, so both directions get tested
    space, rng = RandWireSpace(preset="proxy", nodes=6, search_nodes=False), random.Random(1)
    stages = set()
    while len(stages) < 500:
        genotype = space.sample(rng)
        stages.add(genotype.edges[rng.randrange(3)])
    by_id = defaultdict(list)
    for edges in stages:
        by_id[one_stage(6, edges).arch_id].append(edges)
    assert len(by_id) < len(stages)  # isomorphic pairs occur
    for group in by_id.values():
        assert all(nx.is_isomorphic(digraph(6, group[0]), digraph(6, other)) for other in group[1:])
    representatives = [digraph(6, group[0]) for group in by_id.values()]
    for a, b in itertools.combinations(representatives, 2):
        if sorted(d for _, d in a.in_degree()) == sorted(d for _, d in b.in_degree()) and \
                sorted(d for _, d in a.out_degree()) == sorted(d for _, d in b.out_degree()):
            assert not nx.is_isomorphic(a, b)


@pytest.mark.filterwarnings("ignore:The hashes produced:UserWarning")
def test_graphs_that_plain_weisfeiler_lehman_confuses_get_different_ids():
    # sources 0-3, sinks 4-7, every node of degree 2: one 8-cycle vs two 4-cycles (as bipartite DAGs)
    cycle8 = [(0, 4), (0, 5), (1, 5), (1, 6), (2, 6), (2, 7), (3, 7), (3, 4)]
    two_cycle4 = [(0, 4), (0, 5), (1, 4), (1, 5), (2, 6), (2, 7), (3, 6), (3, 7)]
    a, b = digraph(8, cycle8), digraph(8, two_cycle4)
    assert nx.weisfeiler_lehman_graph_hash(a) == nx.weisfeiler_lehman_graph_hash(b)
    assert one_stage(8, cycle8).arch_id != one_stage(8, two_cycle4).arch_id
    perm = [2, 0, 3, 1, 7, 5, 4, 6]
    assert one_stage(8, [(perm[s], perm[d]) for s, d in cycle8]).arch_id == one_stage(8, cycle8).arch_id


@pytest.mark.parametrize("copies", [2, 5, 12])
def test_symmetric_graphs_stay_exact_and_fast(copies):
    # `copies` identical 3-node chains plus as many isolated nodes: highly symmetric, no WL fallback
    edges = [(3 * i, 3 * i + 1) for i in range(copies)] + [(3 * i + 1, 3 * i + 2) for i in range(copies)]
    n = 4 * copies
    form = canonical_dag(n, tuple(sorted(edges)))
    assert "edges" in form
    perm = list(range(n))
    random.Random(copies).shuffle(perm)
    moved = tuple(sorted((perm[a], perm[b]) for a, b in edges))
    assert canonical_dag(n, moved) == form


def test_stage_order_matters_and_generators_do_not():
    space = RandWireSpace(preset="proxy")
    genotype = space.sample(random.Random(2))
    swapped = RandWireGenotype(genotype.nodes[::-1], genotype.edges[::-1], genotype.generators[::-1])
    assert swapped.arch_id != genotype.arch_id
    other_provenance = RandWireGenotype(genotype.nodes, genotype.edges,
                                        tuple(f"er(p=0.5,n={n},seed=9)" for n in genotype.nodes))
    assert other_provenance.arch_id == genotype.arch_id


def test_arch_id_is_the_same_in_a_fresh_process():
    genotype = RandWireSpace(preset="small").get_known("ba-5")
    code = ("from search_spaces.randwire.space import RandWireSpace\n"
            "print(RandWireSpace(preset='small').get_known('ba-5').arch_id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == genotype.arch_id
