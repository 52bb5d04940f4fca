"""Scaling space: both search parameterizations, golden costs, resolution handling, the CLI contract."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nas.config import SpecError
from search_spaces.scaling.genotype import B0_STAGES, KNOWN
from search_spaces.scaling.space import ScalingSpace

GOLDEN = json.loads((Path(__file__).parent / "golden.json").read_text())
# torchvision's efficientnet_b0..b7 num_params and _ops (GFLOPs; B2's is at its 288 eval crop)
TORCHVISION = {
    "efficientnet-b0": (5_288_548, 0.386), "efficientnet-b1": (7_794_184, 0.687),
    "efficientnet-b2": (9_109_994, 1.088), "efficientnet-b3": (12_233_232, 1.827),
    "efficientnet-b4": (19_341_616, 4.394), "efficientnet-b5": (30_389_784, 10.266),
    "efficientnet-b6": (43_040_704, 19.068), "efficientnet-b7": (66_347_960, 37.746),
}


def space_of(search: str, **options) -> ScalingSpace:
    return ScalingSpace(preset="proxy", search=search, **options)


# ----- golden costs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["imagenet", "proxy"])
def test_cost_matches_the_golden_file(preset):
    space = ScalingSpace(preset=preset)
    for name, genotype in space.known().items():
        cost = space.cost(genotype)
        golden = GOLDEN[preset][name]
        assert (cost.params, cost.flops) == (golden["params"], golden["flops"]), name
        assert list(space.task_for(genotype).input_shape) == golden["input_shape"]


def test_imagenet_params_equal_the_reference_implementation_and_flops_agree():
    space = ScalingSpace(preset="imagenet")
    for name, (params, gflops) in TORCHVISION.items():
        genotype = space.get_known(name)
        assert GOLDEN["imagenet"][name]["params"] == params == space.cost(genotype).params
        if name == "efficientnet-b2":
            genotype = dataclasses.replace(genotype, resolution=288)
        assert round(space.cost(genotype).flops / 1e9, 3) == gflops, name


# ----- cost equals the built module ------------------------------------------------------------------
def _check_module(space: ScalingSpace, genotype, task=None) -> None:
    import torch
    from evaluators.cost import count_macs, count_params

    task = task or space.task_for(genotype)
    model = space.build(genotype, task)
    cost = space.cost(genotype, task)
    assert cost.params == count_params(model)
    assert cost.flops == count_macs(model, task.input_shape)
    assert model(torch.randn(2, *task.input_shape)).shape == (2, task.num_classes)


@pytest.mark.parametrize("search", ["coefficients", "baseline"])
def test_cost_equals_module_for_sampled_genotypes_at_proxy(search):
    space, rng = space_of(search), random.Random(5)
    for _ in range(3):
        _check_module(space, space.sample(rng))


def test_cost_equals_module_for_b0_at_imagenet():
    _check_module(ScalingSpace(preset="imagenet"), KNOWN["efficientnet-b0"])


@pytest.mark.parametrize("name", [f"efficientnet-b{i}" for i in range(1, 8)])
def test_params_from_the_genotype_equal_the_built_module_b1_to_b7(name):
    # no forward pass (B7 at 600x600 is heavy); MACs of B1-B7 are pinned by the golden file
    from evaluators.cost import count_params

    space = ScalingSpace(preset="imagenet")
    genotype = KNOWN[name]
    task = space.task_for(genotype)
    assert space.cost(genotype, task).params == count_params(space.build(genotype, task))


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (3, 32, 32), (3, 20, 12)])
def test_proxy_accepts_small_inputs_and_scales_resolution_from_them(shape):
    from nas.space import Task

    space = ScalingSpace(preset="proxy")
    task = Task(shape, 10)
    b3 = KNOWN["efficientnet-b3"]
    plan = space.plan(b3, task)
    assert plan.size == (round(shape[1] * 300 / 224), round(shape[2] * 300 / 224))
    assert plan.blocks[-1].size_out == tuple(-(-side // 4) for side in plan.size)  # two reductions only
    _check_module(space, KNOWN["efficientnet-b0"], task)
    assert space.plan(KNOWN["efficientnet-b0"], task).size == shape[1:]  # B0 runs at the input's own size


def test_model_structure_follows_the_reference():
    import torch
    from torch import nn

    space = ScalingSpace(preset="proxy")
    model = space.build(KNOWN["efficientnet-b0"])
    first, second = model.blocks[0], model.blocks[1]
    assert isinstance(first.expand, nn.Identity) and not isinstance(second.expand, nn.Identity)
    assert first.se.reduce.out_channels == 8 and second.se.reduce.out_channels == 4  # 32 // 4, 16 // 4
    assert [b.residual for b in model.blocks[:3]] == [False, False, True]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.01 and m.eps == 1e-3 for m in norms)
    assert any(isinstance(m, nn.SiLU) for m in model.modules())
    rates = [b.drop_rate for b in model.blocks]
    assert rates[0] == 0.0 and rates == sorted(rates) and rates[-1] == pytest.approx(0.2 * 15 / 16)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.equal(m.running_var, torch.ones_like(m.running_var)) for m in norms)


def test_drop_connect_drops_whole_examples_in_training_only():
    import torch
    from search_spaces.scaling.build import drop_connect

    torch.manual_seed(0)
    x = torch.ones(1000, 2, 3, 3)
    dropped = drop_connect(x, 0.25, training=True)
    per_example = dropped.flatten(1)
    assert per_example.unique().tolist() == [0.0, pytest.approx(1 / 0.75)]
    assert (per_example == per_example[:, :1]).all()
    assert 150 < (per_example[:, 0] == 0).sum() < 350
    assert torch.equal(drop_connect(x, 0.25, training=False), x)


# ----- search parameterizations ----------------------------------------------------------------------------
def test_coefficients_mode_params():
    space = space_of("coefficients")
    assert set(space.distributions()) == {"point", "dropout"}
    paper = space.from_params({"point": "1.2,1.1,1.15", "dropout": 0.2})  # the paper's coefficients
    assert (paper.depth, paper.width, paper.resolution, paper.stages) == (1.2, 1.1, 258, B0_STAGES)
    assert space.to_params(paper) == {"point": "1.2,1.1,1.15", "dropout": 0.2}
    for genotype in [space.sample(random.Random(i)) for i in range(20)]:
        assert space.from_params(space.to_params(genotype)) == genotype
    with pytest.raises(ValueError, match="stages"):
        space.to_params(space_of("baseline").sample(random.Random(1)))
    with pytest.raises(ValueError, match="not a point of the grid"):
        space.to_params(dataclasses.replace(KNOWN["efficientnet-b0"], resolution=200))
    assert not any(space.contains(g) for g in KNOWN.values())  # B0-B7 are B0 at other phi, not grid points
    with pytest.raises(ValueError, match="point"):
        space.from_params({"point": "3,3,3", "dropout": 0.2})  # off the constraint: not a value of the space


def test_every_param_value_meets_the_constraint_whatever_the_controller():
    space = space_of("coefficients", grid_tolerance=0.05)
    for label in space.distributions()["point"].choices:
        alpha, beta, gamma = map(float, label.split(","))
        assert abs(alpha * beta ** 2 * gamma ** 2 - 2.0) <= 0.05 + 1e-9
        genotype = space.from_params({"point": label, "dropout": 0.2})
        assert genotype.depth == alpha and genotype.width == beta


def test_coefficients_samples_lie_on_the_grid_and_phi_applies():
    space = space_of("coefficients", phi=2.0, grid_tolerance=0.05)
    for seed in range(10):
        genotype = space.sample(random.Random(seed))
        alpha, beta, gamma = map(float, space.to_params(genotype)["point"].split(","))
        assert abs(alpha * beta ** 2 * gamma ** 2 - 2.0) <= 0.06
        assert genotype.depth == round(alpha ** 2, 4)
        assert space.from_params(space.to_params(genotype)) == genotype
    scaled = space.from_params({"point": "1.15,1.15,1.15", "dropout": 0.3})
    assert (scaled.depth, scaled.width, scaled.resolution, scaled.dropout) == (1.3225, 1.3225, 296, 0.3)


def test_coefficients_mutate_moves_to_an_adjacent_grid_point():
    space, rng = space_of("coefficients"), random.Random(0)
    start = space.from_params({"point": "1.2,1.1,1.15", "dropout": 0.2})
    before = start.to_json()
    seen = set()
    for _ in range(40):
        child = space.mutate(start, rng)
        point = tuple(map(float, space.to_params(child)["point"].split(",")))  # still on the grid
        assert max(abs(a - b) for a, b in zip(point, (1.2, 1.1, 1.15))) == pytest.approx(0.05)
        assert child.stages == start.stages and child.dropout == start.dropout
        seen.add(point)
    assert start.to_json() == before and len(seen) > 2
    b3 = KNOWN["efficientnet-b3"]  # off the grid: mutation steps onto the nearest grid points
    assert all(space.contains(n) and n.stages == b3.stages for n in space.neighbours(b3))


def test_baseline_mode_params():
    space = space_of("baseline")
    keys = space.distributions()
    assert len(keys) == 35 and {"s1_kernel", "s1_expansion", "s1_repeats", "s1_se", "s1_width"} <= set(keys)
    assert keys["s1_repeats"].choices == (1, 2) and keys["s6_repeats"].choices == (3, 4, 5)
    b0 = KNOWN["efficientnet-b0"]
    assert space.to_params(b0)["s1_width"] == 1.0  # 0.75 also rounds 16 channels to 16: the one nearest 1.0
    for genotype in [space.sample(random.Random(i)) for i in range(20)] + [b0]:
        assert space.from_params(space.to_params(genotype)) == genotype
        assert (genotype.width, genotype.depth, genotype.resolution) == (1.0, 1.0, 224)
    with pytest.raises(ValueError, match="width"):
        space.to_params(KNOWN["efficientnet-b3"])
    assert space.contains(b0) and not space.contains(KNOWN["efficientnet-b3"])
    assert not any(space_of("coefficients").contains(g) for g in KNOWN.values())


def test_baseline_mutate_changes_one_choice_of_one_stage():
    space, rng = space_of("baseline"), random.Random(0)
    genotype = space.sample(rng)
    for _ in range(40):
        child = space.mutate(genotype, rng)
        diffs = [(a, b) for a, b in zip(child.table(), genotype.table()) if a != b]
        assert len(diffs) == 1
        a, b = diffs[0]
        assert sum(getattr(a, f.name) != getattr(b, f.name) for f in dataclasses.fields(a)) == 1
        assert a.stride == b.stride


def test_baseline_crossover_takes_each_stage_from_a_parent():
    space, rng = space_of("baseline"), random.Random(2)
    a, b = space.sample(rng), space.sample(rng)
    child = space.crossover(a, b, rng)
    assert all(s in (x, y) for s, x, y in zip(child.stages, a.stages, b.stages))


def test_custom_baseline_option_and_bad_options():
    table = "r1_k3_s1_e1_c16 r2_k5_s2_e6_c24_se0.25 r1_k3_s2_e6_c40"
    space = ScalingSpace(preset="proxy", search="baseline", baseline=table)
    assert len(space.distributions()) == 15
    assert [s.stride for s in space.sample(random.Random(0)).table()] == [1, 2, 2]
    _check_module(space, space.sample(random.Random(0)))
    with pytest.raises(SpecError, match="space.baseline"):
        ScalingSpace(baseline="efficientnet-b9")
    with pytest.raises(SpecError, match="space.search"):
        ScalingSpace(search="grid")


# ----- describe, label, draw -------------------------------------------------------------------------------
def test_describe_reports_what_the_model_consumes():
    proxy = ScalingSpace(preset="proxy").describe(KNOWN["efficientnet-b3"])
    assert proxy["input_shape"] == [1, 8, 8] and proxy["run_size"] == [11, 11]
    assert proxy["scaled_stages"][0] == "r2_k3_s1_e1_c24_se0.25"
    assert ScalingSpace().label(KNOWN["efficientnet-b3"]).startswith("efficientnet-b3 (w1.2 d1.4 r300")


def test_cli_describe_b3_at_imagenet():
    proc = subprocess.run([sys.executable, "-m", "nas", "describe", "--space", "scaling", "--arch",
                           "efficientnet-b3", "--preset", "imagenet", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["space"] == "scaling" and info["input_shape"] == [3, 300, 300] and info["num_classes"] == 1000
    assert info["params"] == 12_233_232 and info["flops"] == GOLDEN["imagenet"]["efficientnet-b3"]["flops"]
    assert info["arch_id"] == KNOWN["efficientnet-b3"].arch_id


def test_draw_writes_a_png(tmp_path):
    path = tmp_path / "b0.png"
    ScalingSpace(preset="proxy", search="baseline").draw(KNOWN["efficientnet-b0"], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
