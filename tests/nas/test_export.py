"""Export round trip for every space: arch.json -> nas.load -> same module; weights; ONNX; torch.export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas import registry

from nas.export import archfile
from tests.bench.bench_export import scramble

ROOT = Path(__file__).resolve().parents[2]
# every space at its proxy preset, the nasnet space with each vocabulary; scaling's B0 has SE and swish
CASES = {
    "nasnet": ("nasnet", {"vocabulary": "nasnet"}, "nasnet-a"),
    "amoebanet": ("nasnet", {"vocabulary": "amoebanet"}, "amoebanet-a"),
    "darts": ("nasnet", {"vocabulary": "darts"}, "darts-v2"),
    "randwire": ("randwire", {}, "ws-4-0.75"),
    "scaling": ("scaling", {}, "efficientnet-b0"),
    "nb201": ("nb201", {}, "nb201-c10-best"),
}


def write_arch(folder: Path, case: str, sample: int | None = None) -> tuple[Path, object, object]:
    """An arch.json for a case's published genotype (or a random one) at the proxy preset."""
    name, options, known = CASES[case]
    space = registry.make_space(name, {"preset": "proxy", **options})
    genotype = space.get_known(known) if sample is None else space.sample(__import__("random").Random(sample))
    task = space.default_task()
    data = archfile.make(space, genotype, task, normalization={"mean": [0.5] * task.input_shape[0],
                                                               "std": [0.25] * task.input_shape[0]},
                         data_name="", size=0, metrics={"accuracy": 90.0}, source={}, training={})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "arch.json"
    path.write_text(json.dumps(data))
    return path, space, genotype


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_weights_and_onnx(tmp_path, case):
    import nas
    from evaluators.cost import count_params
    from evaluators.export import export_formats, parity_inputs, state_bytes

    path, space, genotype = write_arch(tmp_path, case)
    torch.manual_seed(0)  # the initial weights, scrambled below: one network per case, whatever ran before
    built = space.build(genotype, space.default_task())
    model = nas.load(str(path))
    assert count_params(model) == count_params(built) == json.loads(path.read_text())["cost"]["params"]
    assert not model.training
    scramble(built, space.default_task().input_shape)
    (tmp_path / "weights.safetensors").write_bytes(state_bytes(built))
    again = nas.load(str(path))
    x = parity_inputs(space.default_task().input_shape)
    with torch.no_grad():
        expected, got = built(x), again(x)
    assert expected.abs().max() > 1e-2  # the check is not trivially passed by near-zero outputs
    assert torch.equal(expected, got)
    assert not torch.equal(nas.load(str(path), weights=False)(x), got)
    checks = export_formats(path, tmp_path, ["onnx"])
    assert checks["onnx"]["passed"] and checks["onnx"]["max_abs"] <= 1e-4, checks["onnx"]
    assert checks["onnx"]["opset"] >= 13


# A small network of every space for the default suite's .pt2 round trip (torch.export's cost grows
# with the op count): two-block cells, 4 nodes per stage, two MBConv stages with SE and swish, a conv +
# attention hybrid; drop-path switched on where the space has it (export must trace the plain network).
SMALL = {
    "nasnet": ("nasnet", {"vocabulary": "nasnet", "blocks": 2, "filters": 4, "drop_path": 0.3}, 0),
    "randwire": ("randwire", {"nodes": 4, "drop_path": 0.3}, 0),
    "scaling": ("scaling", {}, ("r1_k3_s1_e1_c8_se0.25", "r1_k5_s2_e6_c16_se0.25")),
    "nb201": ("nb201", {"drop_path": 0.3}, "nb201-c10-best"),
    "vit": ("vit", {}, (("conv_d1_c8_s1_e4_k3_se0.25", "attn_d1_c16_s2_h2_m2"), "conv8_s1", "cls")),
}


def write_small_arch(folder: Path, case: str) -> tuple[Path, object, object]:
    """An arch.json of a small network of a SMALL case at the proxy preset."""
    import random

    name, options, which = SMALL[case]
    space = registry.make_space(name, {"preset": "proxy", **options})
    if isinstance(which, int):
        genotype = space.sample(random.Random(which))
    elif isinstance(which, str):
        genotype = space.get_known(which)
    else:
        genotype = space.genotype(*which) if name == "vit" else space.genotype(which)
    data = archfile.make(space, genotype, space.default_task(), normalization=None, data_name="", size=0,
                         metrics={}, source={}, training={})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "arch.json"
    path.write_text(json.dumps(data))
    return path, space, genotype


def pt2_round_trip(tmp_path: Path, path: Path, space, genotype) -> None:
    from evaluators.export import export_formats, parity_inputs, state_bytes

    built = space.build(genotype, space.default_task())
    scramble(built, space.default_task().input_shape)
    built.drop_path_prob = getattr(built, "drop_path_max", 0.0)  # as at the end of training: eval ignores it
    (tmp_path / "weights.safetensors").write_bytes(state_bytes(built))
    checks = export_formats(path, tmp_path, ["pt2"])
    assert checks["pt2"]["passed"], checks["pt2"]
    x = parity_inputs(space.default_task().input_shape, batch=3)  # another batch size than the export's
    program = torch.export.load(str(tmp_path / "model.pt2")).module()
    built.eval()
    with torch.no_grad():
        expected = built(x)
        assert expected.abs().max() > 1e-2
        assert torch.allclose(program(x), expected, atol=1e-4)


@pytest.mark.parametrize("case", list(SMALL))
def test_pt2_loads_and_runs_for_every_space(tmp_path, case):
    pt2_round_trip(tmp_path, *write_small_arch(tmp_path, case))


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_pt2_loads_and_runs_for_every_published_architecture(tmp_path, case):
    pt2_round_trip(tmp_path, *write_arch(tmp_path, case))


def test_load_in_a_fresh_process_needs_nothing_but_the_folder(tmp_path):
    from evaluators.export import parity_inputs, state_bytes

    path, space, genotype = write_arch(tmp_path / "export", "darts", sample=3)
    model = space.build(genotype, space.default_task())
    scramble(model, space.default_task().input_shape, seed=1)
    model.eval()
    (path.parent / "weights.safetensors").write_bytes(state_bytes(model))
    x = parity_inputs(space.default_task().input_shape, batch=2)
    with torch.no_grad():
        expected = model(x)
    torch.save(x, tmp_path / "x.pt")
    script = ("import sys, torch, nas; m = nas.load(sys.argv[1]); x = torch.load(sys.argv[2]); "
              "print(sum(p.numel() for p in m.parameters() if p.requires_grad)); torch.save(m(x), sys.argv[3])")
    proc = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert torch.equal(torch.load(tmp_path / "y.pt"), expected)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    import nas
    from evaluators.export import state_bytes

    path, _, _ = write_arch(tmp_path / "a", "nb201")
    other, space, genotype = write_arch(tmp_path / "b", "randwire")
    (path.parent / "weights.safetensors").write_bytes(state_bytes(space.build(genotype, space.default_task())))
    with pytest.raises(ValueError, match="weights.safetensors: (unexpected|missing) tensor"):
        nas.load(str(path))
    (path.parent / "weights.safetensors").write_bytes(b"\x80\x04 not safetensors, a pickle perhaps")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        nas.load(str(path))
