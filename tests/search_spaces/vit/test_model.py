"""vit networks as built: resolution changes, ONNX parity, brief training with the space's defaults, the CLI."""

from __future__ import annotations

import json
import random

import pytest
import torch

from nas.space import Task
from search_spaces.vit.genotype import KNOWN, VitGenotype
from search_spaces.vit.space import VitSpace
from tests.conftest import run_nas

HYBRID = VitGenotype(("conv_d1_c16_s1_e2_k3_se0.25", "mixer_d1_c24_s2_t8_m2", "attn_d2_c32_s1_h4_m2"),
                     "conv8_s2", "cls")


def proxy() -> VitSpace:
    return VitSpace(preset="proxy")


def test_position_embeddings_are_resized_for_another_resolution():
    from search_spaces.vit.build import resize_positions

    space = proxy()
    genotype = VitGenotype(("attn_d1_c16_s1_h2_m2",), "patch2", "cls")
    model = space.build(genotype, Task((1, 8, 8), 10)).eval()  # 4x4 grid + class token
    stage = model.stages[0]
    big = torch.randn(2, 1, 16, 16)
    assert model(big).shape == (2, 10)  # runs on an 8x8 grid
    resized = stage.positions((8, 8))
    assert resized.shape == (1, 65, 16) and torch.equal(resized[:, :1], stage.pos_embed[:, :1])
    assert torch.allclose(resize_positions(stage.pos_embed, (4, 4), (4, 4), 1), stage.pos_embed, atol=1e-6)
    # weights trained at 8x8 load into the network built for 16x16: the same function at the new size
    from search_spaces.vit.build import load_state_dict_resized

    large = space.build(genotype, Task((1, 16, 16), 10)).eval()
    load_state_dict_resized(large, model.state_dict(), {"stages.0.pos_embed": (4, 4)})
    with torch.no_grad():
        assert torch.allclose(large(big), model(big), atol=1e-5)


def test_mixer_networks_resize_their_input_instead():
    space = proxy()
    genotype = VitGenotype(("mixer_d1_c16_s1_t8_m2",), "patch2", "gap")
    model = space.build(genotype, Task((1, 8, 8), 10)).eval()
    x = torch.randn(2, 1, 16, 16)
    small = torch.nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert torch.allclose(model(x), model(small))


def test_conv_stages_reuse_the_scaling_block():
    from search_spaces.scaling.build import MBConv

    model = proxy().build(HYBRID, Task((1, 8, 8), 10))
    blocks = [m for m in model.modules() if isinstance(m, MBConv)]
    assert len(blocks) == 1 and blocks[0].se.reduce.out_channels == 2  # int(8 * 0.25) of the block input
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_onnx_export_of_a_sampled_hybrid_matches_pytorch(tmp_path):
    # the TorchScript exporter: torch's dynamo exporter needs onnxscript, which the project does not install
    import onnxruntime as ort
    space, rng = proxy(), random.Random(0)
    genotype = next(g for g in (space.sample(rng) for _ in range(200))
                    if len({s.split("_")[0] for s in g.stages}) >= 2 and "attn" in g.stages[-1] + g.stages[0])
    for candidate in (genotype, HYBRID):
        model = space.build(candidate, Task((1, 8, 8), 10)).eval()
        x = torch.randn(4, 1, 8, 8)
        path = tmp_path / f"{candidate.arch_id}.onnx"
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"], dynamo=False,
                          opset_version=17)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            expected = model(x).numpy()
        assert abs(out - expected).max() <= 1e-4, space.label(candidate)


def test_brief_training_uses_adamw_with_warmup_and_learns_digits():
    from evaluators.train import TrainEvaluator
    from nas.evaluator import COMPLETE, NullReporter

    space = proxy()
    evaluator = TrainEvaluator(space, {"data": "digits", "threads": 1, "batch_size": 64})
    options = evaluator.options
    assert (options["optimizer"], options["warmup"], options["lr"]) == ("adamw", 0.1, 1e-2)
    assert options["weight_decay"] == 0.05
    assert VitSpace(preset="imagenet").evaluator_defaults("train")["lr"] == 1e-3
    assert TrainEvaluator(space, {"optimizer": "sgd", "lr": 0.05}).options["optimizer"] == "sgd"  # a spec wins
    genotype = VitGenotype(("conv_d1_c16_s1_e2_k3_se0.25", "attn_d2_c32_s2_h4_m2"), "patch2", "cls")
    result = evaluator.evaluate(genotype.to_json(), {"epochs": 3}, NullReporter())
    assert result.state == COMPLETE and result.metrics["accuracy"] > 50.0, result.metrics  # chance: 10%


def test_describe_draws_the_stage_layout(tmp_path):
    picture = tmp_path / "coatnet.png"
    proc = run_nas("describe", "--space", "vit", "--arch", "coatnet-0", "--preset", "imagenet", "--json",
                   "--draw", str(picture), check=True)
    info = json.loads(proc.stdout)
    assert info["params"] == VitSpace(preset="imagenet").cost(KNOWN["coatnet-0"]).params
    assert info["input_shape"] == [3, 224, 224] and info["grids"][-1] == [7, 7]
    assert picture.read_bytes()[:4] == b"\x89PNG"
    bad = run_nas("describe", "--space", "vit", "--arch", "vit-h14")
    assert bad.returncode == 2 and "vit-b16" in bad.stderr


def test_layer_keys_cover_every_layer_and_build_alone():
    """The hook a per-layer latency table uses: each key builds a layer with the layout's cost."""
    from evaluators.cost import count_params
    from search_spaces.scaling.layout import block_cost
    from search_spaces.vit.build import make_layer
    from search_spaces.vit.layout import StagePlan, layer_cost, layer_keys

    plan = proxy().plan(HYBRID)
    keys = layer_keys(plan)
    assert [k.kind for k in keys] == ["mbconv", "mixer", "attn", "attn"]
    assert keys[1].tokens == 4 and keys[2].tokens == 5  # 2x2 grid after the stride; + class token
    for key, stage in zip(keys, (plan.stages[0], plan.stages[1], plan.stages[2], plan.stages[2])):
        layer = make_layer(key)
        expected = block_cost(key.block)[0] if key.kind == "mbconv" else layer_cost(stage)[0]
        assert count_params(layer) == expected and isinstance(stage, StagePlan)
        block = key.block
        x = torch.randn(2, block.c_in, *block.size_in) if block else torch.randn(2, key.tokens, key.channels)
        assert layer(x).shape[0] == 2
