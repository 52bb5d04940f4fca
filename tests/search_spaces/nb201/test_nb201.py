"""NAS-Bench-201 specifics: the string form, isomorphism-aware ids, neighbours, published cost."""

from __future__ import annotations

import csv
import random

import pytest

from search_spaces.nb201.genotype import OPS, NB201Genotype
from search_spaces.nb201.space import NB201Space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_string_round_trip():
    genotype = NB201Genotype.parse(BEST)
    assert genotype.ops == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3",
                            "nor_conv_1x1")
    assert genotype.to_string() == BEST


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "3 '\\+'-separated"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "node 2 needs 2"),
    ("|conv~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "conv"),
    ("|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "op~0"),
])
def test_bad_strings_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        NB201Genotype.parse(text)


def test_every_table_row_parses_and_round_trips(nb201_table):
    with nb201_table.open() as handle:
        archs = [row["arch"] for row in csv.DictReader(handle)]
    assert len(archs) == 5 ** 6
    parsed = {NB201Genotype.parse(a).to_string() for a in archs}
    assert parsed == set(archs)


def test_interchangeable_middle_nodes_share_an_id_and_others_do_not():
    # no edge 1->2: nodes 1 and 2 are symmetric, so swapping their roles is the same network
    a = NB201Genotype(("nor_conv_3x3", "avg_pool_3x3", "none", "skip_connect", "nor_conv_1x1", "none"))
    b = NB201Genotype(("avg_pool_3x3", "nor_conv_3x3", "none", "skip_connect", "none", "nor_conv_1x1"))
    assert a.arch_id == b.arch_id
    # with an edge 1->2 the nodes are not interchangeable
    c = NB201Genotype(("nor_conv_3x3", "avg_pool_3x3", "skip_connect", "skip_connect", "nor_conv_1x1", "none"))
    d = NB201Genotype(("avg_pool_3x3", "nor_conv_3x3", "skip_connect", "skip_connect", "none", "nor_conv_1x1"))
    assert c.arch_id != d.arch_id
    rng = random.Random(0)
    sampled = {NB201Genotype(tuple(rng.choice(OPS) for _ in range(6))) for _ in range(300)}
    assert len({g.arch_id for g in sampled}) > 0.9 * len(sampled)


def test_neighbours_are_the_24_single_edge_changes():
    genotype = NB201Genotype.parse(BEST)
    neighbours = NB201Space().neighbours(genotype)
    assert len(neighbours) == 24 == len(set(neighbours))
    assert all(sum(x != y for x, y in zip(n.ops, genotype.ops)) == 1 for n in neighbours)


def test_mutate_changes_exactly_one_edge():
    space, rng = NB201Space(), random.Random(0)
    genotype = space.sample(rng)
    for _ in range(50):
        child = space.mutate(genotype, rng)
        assert sum(x != y for x, y in zip(child.ops, genotype.ops)) == 1


def test_cost_matches_published_benchmark_figures():
    # NAS-Bench-201 lists 1.5316 M params and 220.11 M FLOPs for the all-3x3-conv cell on CIFAR-10
    cost = NB201Space().cost(NB201Genotype(("nor_conv_3x3",) * 6))
    assert cost.params == 1_531_546
    assert round(cost.flops / 1e6, 2) == 220.12
    # the cell with only zero edges is the bare macro skeleton
    empty = NB201Space().cost(NB201Genotype(("none",) * 6))
    assert empty.params < 0.1 * cost.params


def test_draw_writes_a_png(tmp_path):
    path = tmp_path / "cell.png"
    NB201Space().draw(NB201Genotype.parse(BEST), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
