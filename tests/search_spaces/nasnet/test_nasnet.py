"""NASNet space: published cells, golden costs, vocabularies, mutations, canonical ids, model options."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from search_spaces.nasnet.genotype import KNOWN, NASNetGenotype, from_pairs
from search_spaces.nasnet.space import PRESETS, VOCABULARIES, NASNetSpace
from search_spaces.ops import OPS

GOLDEN = json.loads((Path(__file__).parent / "golden.json").read_text())


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_golden_params_and_flops(key):
    name, preset = key.split("@")
    cost = NASNetSpace(preset=preset).cost(KNOWN[name])
    assert {"params": cost.params, "flops": cost.flops} == GOLDEN[key]


def test_golden_covers_every_known_genotype_and_preset():
    assert set(GOLDEN) == {f"{n}@{p}" for n in KNOWN for p in PRESETS}


@pytest.mark.parametrize("name, preset, params", [
    ("darts-v2", "darts-cifar", 3_349_342),      # DARTS repository: "param size = 3.349342MB"
    ("darts-v2", "darts-imagenet", 4_718_752),   # DARTS repository: "param size = 4.718752MB"
])
def test_darts_presets_match_the_released_reference_networks(name, preset, params):
    assert NASNetSpace(preset=preset).cost(KNOWN[name]).params == params


@pytest.mark.parametrize("name, preset, params_m, macs_m", [
    ("nasnet-a", "imagenet-mobile", 5.3, 564),    # Zoph et al. 2018, NASNet-A (4 @ 1056)
    ("amoebanet-a", "amoebanet-mobile", 5.1, 555),  # Real et al. 2019, AmoebaNet-A (N=4, F=50)
    ("nasnet-a", "cifar", 3.3, None),              # NASNet-A (6 @ 768)
])
def test_mobile_presets_land_on_the_papers_figures(name, preset, params_m, macs_m):
    cost = NASNetSpace(preset=preset).cost(KNOWN[name])
    assert round(cost.params / 1e6, 1) == params_m
    if macs_m:
        assert round(cost.flops / 1e6) == macs_m


@pytest.mark.parametrize("preset", ["proxy", "cifar"])
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_built_module_matches_the_golden_cost(name, preset):
    import torch
    from evaluators.cost import count_macs, count_params

    space = NASNetSpace(preset=preset)
    model = space.build(KNOWN[name])
    shape = space.default_task().input_shape
    assert count_params(model) == GOLDEN[f"{name}@{preset}"]["params"]
    assert count_macs(model, shape) == GOLDEN[f"{name}@{preset}"]["flops"]
    assert model(torch.randn(2, *shape)).shape == (2, 10)


def test_published_cells_follow_their_references():
    nasnet = KNOWN["nasnet-a"]
    assert nasnet.normal_concat == (0, 2, 3, 4, 5, 6)  # slim concatenates h[i-2] in the normal cell
    assert nasnet.reduce_concat == (3, 4, 5, 6)
    darts_repo = from_pairs([(op, s) for (s, op) in sum(nasnet.normal, ())], [2, 3, 4, 5, 6],
                            [(op, s) for (s, op) in sum(nasnet.reduce, ())], [4, 5, 6])
    assert darts_repo.arch_id != nasnet.arch_id
    assert KNOWN["amoebanet-a"].reduce[3] == ((4, "sep_conv_3x3"), (1, "conv_1x7_7x1"))


def test_vocabularies_exist_in_the_op_registry():
    assert {k: len(v) for k, v in VOCABULARIES.items()} == {"nasnet": 13, "amoebanet": 8, "darts": 8}
    for ops in VOCABULARIES.values():
        assert set(ops) <= set(OPS)


@pytest.mark.parametrize("vocabulary", sorted(VOCABULARIES))
def test_each_vocabulary_samples_round_trips_and_builds(vocabulary):
    import torch
    space = NASNetSpace(vocabulary=vocabulary)
    rng = random.Random(0)
    for _ in range(5):
        genotype = space.sample(rng)
        assert genotype.ops() <= set(VOCABULARIES[vocabulary])
        assert genotype.blocks == (4 if vocabulary == "darts" else 5)
        assert space.from_params(space.to_params(genotype)) == genotype
        assert space.from_json(genotype.to_json()) == genotype and space.contains(genotype)
    model = space.build(genotype)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert space.build(genotype, space.default_task()) is not None


def _changes(a: NASNetGenotype, b: NASNetGenotype) -> list[tuple]:
    out = []
    for cell in ("normal", "reduce"):
        for i, (x, y) in enumerate(zip(getattr(a, cell), getattr(b, cell))):
            for side in range(2):
                for field in range(2):
                    if x[side][field] != y[side][field]:
                        out.append((cell, i, side, field))
    return out


def test_mutation_changes_exactly_one_input_or_op_and_sometimes_nothing():
    space, rng = NASNetSpace(), random.Random(1)
    parent = space.sample(rng)
    identical = 0
    for _ in range(400):
        child = space.mutate(parent, rng)  # validation in the constructor rejects any cycle
        changes = _changes(parent, child)
        if not changes:
            identical += 1
            continue
        assert len(changes) == 1
        cell, block, side, field = changes[0]
        if field == 0:  # hidden-state mutation: still an earlier state
            assert getattr(child, cell)[block][side][0] < block + 2
    assert 5 <= identical <= 45  # identity with probability 0.05


def test_equivalent_cells_share_an_id():
    g = KNOWN["nasnet-a"]
    swapped = NASNetGenotype(tuple((b[1], b[0]) for b in g.normal), g.normal_concat, g.reduce, g.reduce_concat)
    assert swapped.arch_id == g.arch_id
    # reorder two independent blocks (0 and 1 read only the inputs) and renumber
    normal = (g.normal[1], g.normal[0]) + g.normal[2:]
    assert NASNetGenotype(normal, g.normal_concat, g.reduce, g.reduce_concat).arch_id == g.arch_id
    changed = NASNetGenotype(((g.normal[0][0], (1, "max_pool_3x3")),) + g.normal[1:], g.normal_concat,
                             g.reduce, g.reduce_concat)
    assert changed.arch_id != g.arch_id


@pytest.mark.parametrize("data, message", [
    ({"normal": [[[2, "sep_conv_3x3"], [0, "skip_connect"]]]}, "reads state 2"),
    ({"normal": [[[0, "conv_9x9"], [0, "skip_connect"]]]}, "unknown op 'conv_9x9'"),
    ({"normal_concat": [3, 2]}, "normal_concat must list distinct states"),
])
def test_invalid_genotypes_say_why(data, message):
    base = KNOWN["darts-v2"].to_dict()
    base.update({"normal": [[[0, "sep_conv_3x3"], [1, "skip_connect"]]], "normal_concat": [2],
                 "reduce": [[[0, "max_pool_3x3"], [1, "skip_connect"]]], "reduce_concat": [2]})
    base.update(data)
    with pytest.raises(ValueError, match=message):
        NASNetGenotype.from_dict(base)


def test_auxiliary_head_and_drop_path_are_options_outside_params():
    import torch
    from evaluators.cost import count_params

    plain = NASNetSpace(preset="proxy")
    extra = NASNetSpace(preset="proxy", auxiliary=True, drop_path=0.2)
    g = KNOWN["darts-v2"]
    model = extra.build(g)
    assert count_params(model) == plain.cost(g).params == extra.cost(g).params
    assert sum(p.numel() for p in model.parameters()) > count_params(model)
    model.train()
    model.drop_path_prob = 0.2
    logits, aux = model(torch.randn(4, 3, 32, 32))
    assert logits.shape == aux.shape == (4, 10)
    model.eval()
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)


def test_proxy_preset_runs_down_to_8x8():
    import torch
    from nas.space import Task

    space = NASNetSpace(preset="proxy")
    model = space.build(KNOWN["amoebanet-a"], Task((1, 8, 8), 10))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_draw_writes_a_png(tmp_path):
    path = tmp_path / "cells.png"
    NASNetSpace().draw(KNOWN["nasnet-a"], str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
