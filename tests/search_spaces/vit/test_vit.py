"""vit space: grammar, published sizes against the reference implementations, golden costs, params and operators."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nas.config import SpecError
from nas.space import Task
from search_spaces.vit.genotype import KNOWN, VitGenotype, parse_stage, parse_stem
from search_spaces.vit.space import VitSpace

GOLDEN = json.loads((Path(__file__).parent / "golden.json").read_text())

# Trainable parameters at 224x224 with 1,000 classes of the reference implementations: timm's
# (huggingface/pytorch-image-models) vit_tiny_patch16_224 / vit_small_patch16_224 /
# vit_base_patch16_224 (timm/models/vision_transformer.py) and mixer_s16_224 / mixer_b16_224
# (timm/models/mlp_mixer.py), whose results/results-imagenet.csv lists param_count 5.72, 22.05,
# 86.57 and 59.88 (M); Mixer-S/16 has no timm weights (its definition gives 18,528,264; the Mixer
# paper's Table 1: 18M). Rounded: ViT-Ti/16 5.7M, ViT-S/16 22.1M, ViT-B/16 86.6M, Mixer-S/16 18.5M,
# Mixer-B/16 59.9M.
REFERENCE_PARAMS = {"vit-ti16": 5_717_416, "vit-s16": 22_050_664, "vit-b16": 86_567_656,
                    "mixer-s16": 18_528_264, "mixer-b16": 59_880_472}
# MACs: torchvision's vit_b_16 lists 17.564 GFLOPs (its "_ops", multiply-accumulates with attention's
# products), timm's mixer_b16_224 12.62 GMACs. CoAtNet-0 (Dai et al. 2021, Table 3): 25M params and
# 4.2G FLOPs at 224; ours differs in the attention (absolute positions, not relative) and the MBConv
# shortcut, so it is checked within a few percent.
REFERENCE_GMACS = {"vit-b16": 17.564, "mixer-b16": 12.60}
COATNET_0 = (25e6, 4.2e9)


def proxy(**options) -> VitSpace:
    return VitSpace(preset="proxy", **options)


# ----- published architectures -----------------------------------------------------------------------
def test_published_params_equal_the_reference_implementations():
    space = VitSpace(preset="imagenet")
    for name, params in REFERENCE_PARAMS.items():
        assert space.cost(space.get_known(name)).params == params == GOLDEN["imagenet"][name]["params"], name
    for name, gmacs in REFERENCE_GMACS.items():
        assert round(space.cost(space.get_known(name)).flops / 1e9, 2) == pytest.approx(gmacs, abs=0.011), name
    coatnet = space.cost(space.get_known("coatnet-0"))
    assert abs(coatnet.params / COATNET_0[0] - 1) < 0.03 and abs(coatnet.flops / COATNET_0[1] - 1) < 0.03


@pytest.mark.parametrize("preset", ["imagenet", "proxy"])
def test_cost_matches_the_golden_file(preset):
    space = VitSpace(preset=preset)
    assert set(space.known()) == set(GOLDEN[preset])
    for name, genotype in space.known().items():
        cost, golden = space.cost(genotype), GOLDEN[preset][name]
        assert (cost.params, cost.flops, genotype.arch_id) == (golden["params"], golden["flops"], golden["arch_id"])


def test_published_structure():
    assert KNOWN["vit-b16"].table()[0].heads == 12 and KNOWN["vit-b16"].pool == "cls"
    mixer = KNOWN["mixer-b16"].table()[0]
    assert (mixer.token_dim, mixer.mlp_hidden, KNOWN["mixer-b16"].pool) == (384, 3072, "gap")
    kinds = [s.kind for s in KNOWN["coatnet-0"].table()]
    assert kinds == ["conv", "conv", "attn", "attn"]
    plan = VitSpace(preset="imagenet").plan(KNOWN["coatnet-0"])
    assert [s.size for s in plan.stages] == [(56, 56), (28, 28), (14, 14), (7, 7)]  # S1..S4 of the paper
    assert VitSpace(preset="imagenet").plan(KNOWN["vit-b16"]).stages[0].tokens == 197


# ----- cost equals the built module -----------------------------------------------------------------------
def _check_module(space: VitSpace, genotype, task: Task) -> None:
    import torch
    from evaluators.cost import count_macs, count_params

    model = space.build(genotype, task)
    cost = space.cost(genotype, task)
    assert cost.params == count_params(model), space.label(genotype)
    assert cost.flops == count_macs(model, task.input_shape), space.label(genotype)
    assert model(torch.randn(2, *task.input_shape)).shape == (2, task.num_classes)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 16, 12)])
def test_cost_equals_module_for_sampled_genotypes(shape):
    space, rng = proxy(), random.Random(11)
    for _ in range(6):
        _check_module(space, space.sample(rng), Task(shape, 10))


def test_cost_equals_module_for_every_stage_type_and_stem():
    space = proxy()
    task = Task((1, 8, 8), 10)
    for stages in (("conv_d2_c16_s2_e2_k3",), ("mixer_d1_c24_s1_t8_m2", "attn_d1_c32_s2_h4_m3"),
                   ("attn_d2_c16_s1_h2_m4", "mixer_d1_c48_s2_t16_m2", "conv_d1_c24_s1_e4_k5_se0.25")):
        for stem in ("patch2", "patch3", "conv8_s1", "conv16_s2"):
            _check_module(space, VitGenotype(stages, stem, "gap"), task)
    _check_module(space, VitGenotype(("conv_d1_c16_s2_e2_k3", "attn_d1_c16_s2_h2_m2"), "conv8_s2", "cls"), task)


def test_attention_products_are_counted():
    space = VitSpace(preset="imagenet")
    plan = space.plan(KNOWN["vit-ti16"])
    t, c = 197, 192
    linear = t * 12 * c * c * 12 + 196 * 768 * 192 + 192 * 1000  # qkv, proj, MLP; patch embedding; head
    assert space.cost(KNOWN["vit-ti16"]).flops == linear + 12 * 2 * t * t * c
    assert plan.stages[0].cls


# ----- genotype -------------------------------------------------------------------------------------
def test_stage_grammar_round_trips_and_rejects_bad_strings():
    for text in ("attn_m4_h12_c768_s1_d12", "mixer_d8_c512_s1_t256_m4.0", "conv_d2_c96_s2_e4_k3_se0.25"):
        stage = parse_stage(text)
        assert parse_stage(VitGenotype((text,), "patch16", "gap").stages[0]) == stage
    assert VitGenotype(("attn_m4_h12_c768_s1_d12",)).stages == ("attn_d12_c768_s1_h12_m4",)
    bad = {"lstm_d1_c8_s1": "type", "attn_d1_c8_s1_h3_m4": "divide", "attn_d1_c8_s1_h2": "missing m",
           "mixer_d1_c8_s1_t4_m4_h2": "does not apply", "conv_d1_c8_s3_e1_k3": "stride", "conv_d1_c8_s1_e1_k4": "odd",
           "attn_d1_c8_d2_s1_h2_m4": "twice", "attn_d1.5_c8_s1_h2_m4": "integer", "attn_d0_c8_s1_h2_m4": "depth"}
    for text, reason in bad.items():
        with pytest.raises(ValueError, match=reason):
            parse_stage(text)
    for stem in ("patch0", "conv8_s3", "pixel4"):
        with pytest.raises(ValueError, match="stem"):
            parse_stem(stem)
    with pytest.raises(ValueError, match="cls"):
        VitGenotype(("mixer_d1_c8_s1_t4_m4",), "patch2", "cls")


def test_arch_id_ignores_what_does_not_change_the_network():
    a = VitGenotype(("attn_d1_c16_s1_h2_m3",), "patch2", "gap")
    b = VitGenotype(("attn_d1_c16_s1_h2_m3.01",), "patch2", "gap")  # int(16 * 3.01) == 48 hidden too
    assert a != b and a.arch_id == b.arch_id
    assert a.arch_id != VitGenotype(("attn_d1_c16_s1_h4_m3",), "patch2", "gap").arch_id
    assert a.arch_id != VitGenotype(("attn_d1_c16_s1_h2_m3",), "patch2", "cls").arch_id
    space = proxy()
    params = space.to_params(a)
    for key, value in (("s0_token_dim", 32), ("s0_kernel", 5), ("s1_channels", 48), ("s2_type", "mixer")):
        assert space.from_params({**params, key: value}) == a  # unused by an attention stage / absent stages


# ----- params and operators ---------------------------------------------------------------------------
def test_params_have_fixed_keys_and_depth_zero_removes_a_stage():
    space = proxy()
    keys = set(space.distributions())
    assert {"stem", "pool", "s0_type", "s2_token_dim"} <= keys and len(keys) == 2 + 3 * 9
    assert 0 not in space.distributions()["s0_depth"].choices and 0 in space.distributions()["s1_depth"].choices
    params = space.to_params(VitGenotype(("conv_d1_c16_s1_e2_k3_se0.25", "attn_d2_c32_s2_h4_m2"), "patch2", "cls"))
    assert params["s2_depth"] == 0 and params["pool"] == "cls"
    dropped = space.from_params({**params, "s0_depth": 1, "s1_depth": 0, "s2_depth": 2, "s2_type": "attn",
                                 "s2_channels": 32, "s2_heads": 4, "s2_mlp_ratio": 2.0})
    assert dropped.stages == ("conv_d1_c16_s1_e2_k3_se0.25", "attn_d2_c32_s1_h4_m2")
    assert space.from_params({**params, "s1_type": "mixer"}).pool == "gap"  # pool is read with an attention end
    with pytest.raises(ValueError, match="s0_channels"):
        space.from_params({**params, "s0_channels": 17})


def test_every_sampler_value_makes_a_valid_network():
    space, rng = proxy(), random.Random(2)
    for _ in range(200):
        genotype = space.sample(rng)
        assert space.contains(genotype) and space.from_params(space.to_params(genotype)) == genotype
        assert len(genotype.stages) <= 3 and space.cost(genotype).params > 0
    kinds = {s.split("_")[0] for _ in range(50) for s in space.sample(rng).stages}
    assert kinds == {"conv", "attn", "mixer"}


def _one_change(a: VitGenotype, b: VitGenotype) -> bool:
    """b is a with one stage changed, added or removed, or another stem or pooling (pool follows the last stage)."""
    if len(a.stages) == len(b.stages):
        return sum(x != y for x, y in zip(a.stages, b.stages)) + (a.stem != b.stem) + (a.pool != b.pool) in (1, 2)
    long, short = (a, b) if len(a.stages) > len(b.stages) else (b, a)
    return a.stem == b.stem and any(long.stages[:i] + long.stages[i + 1:] == short.stages
                                    for i in range(len(long.stages)))


def test_mutate_makes_one_change_and_neighbours_are_distinct():
    space, rng = proxy(), random.Random(5)
    for genotype in [space.sample(rng) for _ in range(5)]:
        neighbours = space.neighbours(genotype)
        assert len({g.arch_id for g in neighbours}) == len(neighbours) > 10 and genotype not in neighbours
        assert all(_one_change(genotype, g) for g in neighbours)
        for _ in range(5):
            assert space.mutate(genotype, rng) in neighbours
    # published networks outside the proxy grid mutate too
    assert _one_change(KNOWN["vit-b16"], space.mutate(KNOWN["vit-b16"], random.Random(0)))


def test_crossover_takes_each_stage_from_a_parent():
    space, rng = proxy(), random.Random(8)
    for _ in range(20):
        a, b = space.sample(rng), space.sample(rng)
        child = space.crossover(a, b, rng)
        assert child.stem in (a.stem, b.stem)
        assert set(child.stages) <= set(a.stages) | set(b.stages)  # stages come whole from a parent


def test_space_options_are_checked():
    assert proxy(types=["attn"], max_stages=2).sample(random.Random(0)).table()[0].kind == "attn"
    for options, field in (({"heads": [3]}, "space.heads"), ({"types": ["rnn"]}, "space.types"),
                           ({"stems": ["patch"]}, "space.stems"), ({"depths": [0]}, "space.depths"),
                           ({"strides": [3]}, "space.strides"), ({"pools": ["max"]}, "space.pools")):
        with pytest.raises(SpecError, match=field):
            proxy(**options)
    assert proxy(types=["mixer", "conv"], heads=[3]).sample(random.Random(1))  # heads unused without attention
    assert proxy(stems=["patch02"]).sample(random.Random(0)).stem == "patch2"  # stems in canonical form


def test_outside_the_grid_is_not_contained():
    space = proxy()
    assert not any(space.contains(g) for g in KNOWN.values())
    with pytest.raises(ValueError, match="stages"):
        space.to_params(VitGenotype(("attn_d1_c16_s1_h2_m2",) * 4, "patch2", "gap"))
    with pytest.raises(ValueError, match="SE"):
        space.to_params(VitGenotype(("conv_d1_c16_s1_e2_k3",), "patch2", "gap"))
