"""NASNet supernet: a single path is the standalone network, paths round-trip, DARTS derivation,
mixtures backpropagate, fair sampling, and the latency split by edge."""

from __future__ import annotations

import random

import pytest
import torch

from nas.block_keys import kind_of
from nas.latency.table import LatencyTable
from nas.oneshot import collapsed
from nas.space import Task
from search_spaces.nasnet.genotype import KNOWN, NASNetGenotype
from search_spaces.nasnet.space import NASNetSpace, path_ops

TASK = Task((3, 16, 16), 10)  # small images keep these checks fast
SAMPLES = {"darts": 10, "nasnet": 3, "amoebanet": 2}


def space_of(vocabulary: str, **options) -> NASNetSpace:
    return NASNetSpace(preset="proxy", vocabulary=vocabulary, **options)


def in_state_order(g: NASNetGenotype) -> NASNetGenotype:
    """``g`` with each block's inputs sorted by state (a state read twice keeps its order), as paths list them."""
    def cell(blocks):
        return tuple(tuple(sorted(block, key=lambda pair: pair[0])) for block in blocks)
    return NASNetGenotype(cell(g.normal), g.normal_concat, cell(g.reduce), g.reduce_concat)


def genotypes(space: NASNetSpace, count: int) -> list[NASNetGenotype]:
    rng = random.Random(0)
    return [space.sample(rng) for _ in range(count)] + [g for g in KNOWN.values() if space.contains(g)]


def same(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    return torch.equal(a, b)


def check_paths(space: NASNetSpace, gs: list[NASNetGenotype], drop_prob: float = 0.0) -> None:
    """Each genotype's network with the supernet's weights computes exactly what the supernet computes
    on its path, in eval and in train mode (fresh batch statistics)."""
    torch.manual_seed(0)
    supernet = space.build_supernet(TASK)
    x = torch.randn(4, *TASK.input_shape)
    for g in gs:
        net = space.build(g, TASK)
        net.load_state_dict(supernet.standalone_state(g), strict=True)
        net.drop_path_prob = supernet.drop_path_prob = drop_prob
        path = space.oneshot_path(g)
        for train in (False, True):
            net.train(train), supernet.train(train)
            torch.manual_seed(1)
            expected = net(x)
            torch.manual_seed(1)
            assert same(expected, supernet(x, path)), (g.to_text(), train)


@pytest.mark.parametrize("vocabulary", sorted(SAMPLES))
def test_a_single_path_is_the_standalone_network(vocabulary):
    space = space_of(vocabulary)
    gs = genotypes(space, SAMPLES[vocabulary])
    n = len(space.vocabulary)
    assert any(k >= n for g in gs for k in space.oneshot_path(g))  # a block reading one state twice is covered
    if vocabulary == "darts":
        assert {"darts-v1", "darts-v2"} <= {name for name, g in KNOWN.items() if g in gs}
    check_paths(space, gs)


def test_auxiliary_head_and_drop_path_follow_the_standalone_network():
    space = space_of("darts", auxiliary=True, drop_path=0.3)
    gs = genotypes(space, 3)
    # drop-path draws per op in the order the cell runs them: the path's order, by state
    check_paths(space, [in_state_order(g) for g in gs], drop_prob=0.3)
    supernet = space.build_supernet(TASK).train()
    logits, aux = supernet(torch.randn(2, *TASK.input_shape), space.oneshot_path(gs[0]))
    assert logits.shape == aux.shape == (2, 10)


def test_unused_states_widths_are_cut_to_the_standalone_names():
    space = space_of("nasnet", auxiliary=True)
    supernet = space.build_supernet(TASK)
    assert set(supernet.classifier.keys()) == {str(k) for k in range(1, 6)}
    gs = genotypes(space, 2)
    assert {len(g.normal_concat) for g in gs} != {5}
    check_paths(space, gs)


def test_edges_are_named_by_cell_block_and_state():
    space = space_of("darts")
    edges = space.oneshot_edges()
    assert len(edges) == 2 * 14 and len(space.build_supernet(TASK).cells[0].edges) == 14
    assert [name for name, _ in edges[:5]] == ["normal/0:0", "normal/0:1", "normal/1:0", "normal/1:1", "normal/1:2"]
    assert edges[14][0] == "reduce/0:0" and all(ops == space.vocabulary for _, ops in edges)


@pytest.mark.parametrize("vocabulary", ["darts", "nasnet"])
def test_paths_round_trip(vocabulary):
    space = space_of(vocabulary)
    for g in genotypes(space, 20):
        path = space.oneshot_path(g)
        back = space.oneshot_from_path(path)
        assert back == in_state_order(g) and back.arch_id == g.arch_id and space.contains(back)
        assert space.oneshot_path(back) == path
        assert sum(len(path_ops(k, len(space.vocabulary))) for k in path) == 4 * space.blocks


def test_paths_refuse_what_the_supernet_cannot_run():
    space = space_of("darts")
    with pytest.raises(ValueError, match="outside the space"):
        space.oneshot_path(KNOWN["nasnet-a"])
    path = space.oneshot_path(KNOWN["darts-v2"])
    path[0] = path[1] = path[2] = -1  # normal block 0 left without inputs
    with pytest.raises(ValueError, match="normal block 0 has 0 inputs"):
        space.oneshot_from_path(path)
    with pytest.raises(ValueError, match="pair code"):
        path_ops(8 + 64, 8)


@pytest.mark.parametrize("vocabulary", ["darts", "nasnet"])
def test_derive_keeps_two_inputs_per_block_from_random_weights(vocabulary):
    space, rng = space_of(vocabulary), random.Random(3)
    for _ in range(10):
        weights = [[rng.random() for _ in ops] for _, ops in space.oneshot_edges()]
        g = space.oneshot_derive(weights)
        assert space.contains(g) and "none" not in g.ops()
        assert all(a != b for block in g.normal + g.reduce for (a, _), (b, _) in [block])
        assert space.oneshot_from_path(space.oneshot_path(g)) == g


def test_derive_picks_the_strongest_edges_and_ops():
    space = space_of("darts")
    weights = [[0.0] * 8 for _ in space.oneshot_edges()]
    for e, (name, _) in enumerate(space.oneshot_edges()):
        weights[e][0] = 1.0  # none is never chosen
        if name.endswith(":0") or name.endswith(":1"):
            weights[e][space.vocabulary.index("sep_conv_3x3")] = 0.5 if name.endswith(":0") else 0.4
        if name == "normal/3:4":
            weights[e][space.vocabulary.index("dil_conv_5x5")] = 0.9
    g = space.oneshot_derive(weights)
    assert g.normal[3] == ((0, "sep_conv_3x3"), (4, "dil_conv_5x5"))
    assert g.reduce[2] == ((0, "sep_conv_3x3"), (1, "sep_conv_3x3"))


def test_prevent_collapse_puts_a_convolution_in_each_cell_type():
    space, rng = space_of("darts"), random.Random(4)
    free = [k for k, op in enumerate(space.vocabulary) if "conv" not in op and op != "none"]
    weights = []
    for _, ops in space.oneshot_edges():
        row = [rng.random() * 0.1 for _ in ops]
        row[rng.choice(free)] = 1.0 + rng.random()  # skip and pools win everywhere
        weights.append(row)
    loose = space.oneshot_derive(weights, prevent_collapse=False)
    assert collapsed(space, loose) == ["normal", "reduce"]
    kept = space.oneshot_derive(weights)
    assert collapsed(space, kept) == []
    for before, after in ((loose.normal, kept.normal), (loose.reduce, kept.reduce)):
        changed = [(b, s) for b in range(len(before)) for s in range(2) if before[b][s] != after[b][s]]
        assert len(changed) == 1  # one op replaced, the inputs kept
        b, s = changed[0]
        assert after[b][s][0] == before[b][s][0] and "conv" in after[b][s][1]


@pytest.mark.parametrize("vocabulary", ["darts", "nasnet"])
def test_a_mixture_runs_and_backpropagates_to_every_edge(vocabulary):
    space = space_of(vocabulary)
    torch.manual_seed(0)
    supernet = space.build_supernet(TASK).train()
    weights = [torch.softmax(torch.randn(len(ops)), 0).requires_grad_() for _, ops in space.oneshot_edges()]
    logits = supernet(torch.randn(4, *TASK.input_shape), weights)
    assert logits.shape == (4, 10)
    logits.square().sum().backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)
    gdas = [(int(w.argmax()), w) for w in weights]  # hard one-hot choices scaled by their weight
    assert supernet(torch.randn(4, *TASK.input_shape), gdas).shape == (4, 10)


def test_fair_groups_fill_every_slot_with_every_op_once():
    space = space_of("darts")
    group = space.oneshot_fair(random.Random(5))
    assert len(group) == len(space.vocabulary) and all(space.contains(g) for g in group)
    for cell in ("normal", "reduce"):
        for b in range(space.blocks):
            for s in range(2):
                assert sorted(getattr(g, cell)[b][s][1] for g in group) == sorted(space.vocabulary)
    assert all(space.oneshot_from_path(space.oneshot_path(g)) == g for g in group)
    assert space.oneshot_fair(random.Random(5)) == group


def test_latency_splits_into_a_fixed_part_and_one_term_per_path_op():
    space = space_of("darts")
    rng = random.Random(6)
    universe = space.latency_universe(TASK)
    table = LatencyTable("nasnet", "proxy", dict(space.options), TASK.input_shape, TASK.num_classes, "torch", "cpu",
                         1, 1, {}, {key: rng.random() for key in universe}, scale=1.1, offset=0.3, per_block=0.01,
                         kind_ms={kind_of(key): 0.001 for key in universe}, speed=0.9, custom_task=True)
    fixed, per_edge = space.oneshot_latency(table, TASK)
    n = len(space.vocabulary)
    for g in genotypes(space, 5):
        path = space.oneshot_path(g)
        split = fixed + sum(per_edge[e][k] for e, entry in enumerate(path) for k in path_ops(entry, n))
        assert split == pytest.approx(table.predict_keys(space.latency_blocks(g, TASK)), rel=1e-9)
    with pytest.raises(NotImplementedError, match="vocabulary 'darts'"):
        space_of("nasnet").oneshot_latency(table, TASK)
