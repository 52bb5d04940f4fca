"""Latency lookup tables: every space's block universe, build + validate end to end, refusals."""

from __future__ import annotations

import json
import random
import statistics

import pytest
import torch

from nas import registry
from nas.block_keys import parse_key, strip_dead
from nas.latency.fit import fit_correction
from nas.latency.table import LatencyTable, kendall_tau
from tests.conftest import run_nas

SPACES = [("nasnet", {"preset": "proxy"}), ("nasnet", {"preset": "proxy", "vocabulary": "darts"}),
          ("nasnet", {"preset": "imagenet-mobile"}), ("nb201", {"preset": "cifar10"}),
          ("scaling", {"preset": "proxy"}), ("scaling", {"preset": "proxy", "search": "baseline"}),
          ("randwire", {"preset": "small"}), ("randwire", {"preset": "proxy", "search_nodes": True}),
          ("vit", {"preset": "proxy"})]


@pytest.mark.parametrize("name,options", SPACES, ids=[f"{n}-{'-'.join(map(str, o.values()))}" for n, o in SPACES])
def test_universe_covers_every_sampled_architecture(name, options):
    space = registry.make_space(name, options)
    universe = set(space.latency_universe())
    rng = random.Random(1)
    for _ in range(100):
        genotype = space.sample(rng)
        missing = {strip_dead(k) for k in space.latency_blocks(genotype)} - universe
        assert not missing, f"{space.label(genotype)}: {sorted(missing)[:3]}"


@pytest.mark.parametrize("name,options", [("nasnet", {"preset": "proxy"}), ("nb201", {"preset": "proxy"}),
                                          ("scaling", {"preset": "proxy"}), ("randwire", {"preset": "proxy"}),
                                          ("vit", {"preset": "proxy"})])
def test_every_block_builds_and_runs_on_its_input_shapes(name, options):
    space = registry.make_space(name, options)
    keys = space.latency_universe()
    assert keys
    with torch.no_grad():
        for key in keys:
            _, _, shapes = parse_key(key)
            out = space.latency_module(key).eval()(*(torch.randn(1, *s) for s in shapes))
            assert torch.isfinite(out).all(), key


@pytest.mark.parametrize("preset", ["proxy", "imagenet-mobile", "darts-imagenet"])
def test_nasnet_fast_cell_walk_equals_the_planned_cell(preset):
    from search_spaces.nasnet import latency as nasnet_latency

    space = registry.make_space("nasnet", {"preset": preset})
    rng = random.Random(3)
    for _ in range(20):
        g = space.sample(rng)
        for blocks, concat, reduction in ((g.normal, g.normal_concat, False), (g.reduce, g.reduce_concat, True)):
            for style in ("nasnet", "darts"):
                for pp in (None, (24, 32, 32), (48, 16, 16)):
                    args = (blocks, concat, style, reduction, 16, pp, (32, 16, 16))
                    assert nasnet_latency._cell(*args) == nasnet_latency.planned_cell(*args)


def test_blocks_follow_the_network_they_describe():
    # NB201: one op key per live edge per cell, one zeros key per node without live inputs
    space = registry.make_space("nb201", {"preset": "proxy"})
    genotype = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    keys = space.latency_blocks(genotype)
    kinds = [parse_key(k)[0] for k in keys]
    assert kinds.count("op") == 3 * 3 and kinds.count("zeros") == 3 and kinds.count("sum") == 3
    assert kinds[0] == "nb201_stem" and kinds[-1] == "nb201_head" and kinds.count("nb201_reduction") == 2
    # node 2 is fed by nothing (its zeros, and the 1x1 conv reading them, are constants) and node 1
    # feeds nothing (its 3x3 conv is unused): dead for graph compilers; the skip and the sum live
    dead = sorted(parse_key(k)[0] + ":" + ",".join(parse_key(k)[1][:1]) for k in keys if k.startswith("~"))
    assert dead == ["op:nor_conv_1x1"] * 3 + ["op:nor_conv_3x3"] * 3 + ["zeros:"] * 3
    # a cell whose output ignores its input makes the whole network a constant for graph compilers
    constant = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    assert all(k.startswith("~") for k in space.latency_blocks(constant))
    # an op whose result reaches the output only through a dead node is dead too
    dangling = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|none~2|")
    dead = [parse_key(k)[1][0] for k in space.latency_blocks(dangling) if k.startswith("~") and "op:" in k]
    assert dead == ["nor_conv_3x3", "nor_conv_1x1"] * 3


def test_correction_fit_and_kendall_by_hand():
    assert fit_correction([1.0, 2.0, 3.0], [2.5, 3.5, 4.5]) == pytest.approx((1.0, 0.0, 1.5))
    assert fit_correction([1.0, 2.0, 3.0], [10.0, 40.0, 90.0])[0] == 1.0  # scale out of range: offset only
    assert fit_correction([1.0, 2.0], [3.0, 5.0]) == pytest.approx((1.0, 0.0, 2.5))  # < 3 points: offset only
    # measured = 1.5 x sum + 0.25 per block + 1: recovered exactly when the block counts vary
    raw, blocks = [1.0, 2.0, 3.0, 4.0, 2.5, 1.5, 3.5], [10, 12, 9, 14, 20, 8, 11]
    measured = [1.5 * r + 0.25 * b + 1.0 for r, b in zip(raw, blocks)]
    assert fit_correction(raw, measured, blocks) == pytest.approx((1.5, 0.25, 1.0))
    # constant block counts: the per-block term cannot be told from the offset and is left out
    assert fit_correction(raw, [2 * r + 1 for r in raw], [5] * len(raw)) == pytest.approx((2.0, 0.0, 1.0))
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == -1.0
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def nb201_lut(tmp_path_factory):
    path = tmp_path_factory.mktemp("lut") / "nb201.json"
    run_nas("latency", "build-lut", "--space", "nb201", "--preset", "proxy", "--fit", "3", "--out", str(path),
            check=True, timeout=300)
    return path


def test_build_lut_and_validate_end_to_end(nb201_lut, tmp_path):
    table = LatencyTable.load(nb201_lut)
    assert table.space == "nb201" and table.preset == "proxy" and table.backend == "torch" and table.threads == 1
    assert len(table.blocks) == len(registry.make_space("nb201", {"preset": "proxy"}).latency_universe())
    assert all(v >= 0 for v in table.blocks.values())  # how many come out above 0: bench_latency.py accuracy
    assert table.fit["networks"] == 3 and len(table.fit["measured_ms"]) == len(table.fit["genotypes"]) == 3
    proc = run_nas("latency", "validate", "--lut", str(nb201_lut), "--samples", "6", "--repeat", "2", "--out",
                   str(tmp_path / "v"), "--json", check=True, timeout=300)
    report = json.loads(proc.stdout)
    assert {"samples", "within_10pct", "mape", "kendall_tau", "flops_kendall_tau", "seed"} <= set(report)
    assert report["samples"] == 6 and 0 <= report["within_10pct"] <= 1 and report["mape"] >= 0
    # one interleaved group holding the 3 fit networks: one speed ratio, the drift (its size: bench_latency.py)
    assert report["calibration"] == {"references": 3, "group_ratios": [report["drift"]]} and report["drift"] > 0
    assert set(report["uncalibrated"]) == {"within_10pct", "mape", "kendall_tau"}
    assert len(report["repeated_ms"]) == 2 and report["repeatability"] == pytest.approx(
        statistics.median(abs(a - b) / ((a + b) / 2) for a, b in report["repeated_ms"]))
    for name in ("validation.json", "samples.csv", "scatter.png"):
        assert (tmp_path / "v" / name).is_file()


def _edited(src, dst, **changes):
    data = json.loads(src.read_text())
    for key, value in changes.items():
        if key in ("torch", "onnxruntime"):
            data["versions"][key] = value
        else:
            data[key] = value
    dst.write_text(json.dumps(data))
    return dst


@pytest.mark.parametrize("changes,message", [
    ({"preset": "cifar10"}, "preset 'cifar10'"),
    ({"torch": "1.0.0"}, "built with torch 1.0.0"),
    ({"format": "other/1"}, "not a latency table"),
    ({"backend": "onnxruntime", "onnxruntime": "1.18.0"}, "built with onnxruntime 1.18.0"),  # another runtime version
])
def test_mismatched_or_stale_tables_are_refused(nb201_lut, tmp_path, changes, message):
    bad = _edited(nb201_lut, tmp_path / "bad.json", **changes)
    proc = run_nas("latency", "validate", "--lut", str(bad), "--samples", "2", timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_table_checks_the_space_backend_and_task(nb201_lut):
    from nas.space import Task

    table = LatencyTable.load(nb201_lut)
    space = registry.make_space("nb201", {"preset": "proxy"})
    table.check(space, Task((1, 8, 8), 10), backend="torch")
    dead = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    assert table.predict(space, dead) == pytest.approx(table.predict_keys(
        [k.lstrip("~") for k in space.latency_blocks(dead)]))  # torch runs dead code
    table.backend, table.floor_ms = "onnxruntime", 0.004
    assert table.predict(space, dead) == 0.004  # graph compilers fold it to a constant
    table.backend = "torch"
    with pytest.raises(ValueError, match="backend 'torch', not 'onnxruntime'"):
        table.check(space, backend="onnxruntime")
    with pytest.raises(ValueError, match="built for the cpu provider, not cuda"):
        table.check(space, device="cuda")
    with pytest.raises(ValueError, match="the run feeds"):
        table.check(space, Task((3, 32, 32), 10))
    with pytest.raises(ValueError, match="preset 'proxy', not 'nb201' preset 'cifar10'"):
        table.check(registry.make_space("nb201", {"preset": "cifar10"}))
    with pytest.raises(ValueError, match="built for space 'nb201' preset 'proxy', not 'nasnet'"):
        table.check(registry.make_space("nasnet", {"preset": "proxy"}))
    with pytest.raises(ValueError, match="space option channels = 0, the run has 16"):
        table.check(registry.make_space("nb201", {"preset": "proxy", "channels": 16}))
    with pytest.raises(ValueError, match="lacks block"):
        table.predict(registry.make_space("nb201", {"preset": "cifar10"}), space.sample(random.Random(0)))


def test_a_space_without_latency_blocks_is_refused_with_one_line(tmp_path):
    # a plugin space (any importable class works as a space name) that does not implement the protocol
    plugin = tmp_path / "plainspace.py"
    plugin.write_text("from nas.space import SearchSpace\n"
                      "from search_spaces.nb201.space import NB201Space\n"
                      "class Plain(NB201Space):\n"
                      "    latency_blocks = SearchSpace.latency_blocks\n")
    env = {"PYTHONPATH": f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}"}
    proc = run_nas("latency", "build-lut", "--space", "plainspace:Plain", "--out", str(tmp_path / "t.json"),
                   env=env, timeout=120)
    assert proc.returncode == 2 and "does not list latency blocks" in proc.stderr, proc.stderr


def test_vit_table_builds_and_validates_end_to_end(tmp_path):
    # a narrowed proxy grid keeps the universe small; the full proxy run is in BENCHMARKS.md
    options = ["dims=[16,32]", "heads=[2]", "mlp_ratios=[2.0]", "token_dims=[8]", "expansions=[2]", "kernels=[3]"]
    path = tmp_path / "vit.json"
    run_nas("latency", "build-lut", "--space", "vit", "--preset", "proxy", *[a for o in options for a in ("--option", o)],
            "--fit", "3", "--out", str(path), check=True, timeout=300)
    table = LatencyTable.load(path)
    space = registry.make_space("vit", {"preset": "proxy", "dims": [16, 32], "heads": [2], "mlp_ratios": [2.0],
                                        "token_dims": [8], "expansions": [2], "kernels": [3]})
    assert len(table.blocks) == len(space.latency_universe()) and all(v >= 0 for v in table.blocks.values())
    assert {parse_key(k)[0] for k in table.blocks} >= {"vit_attn", "vit_mixer", "mbconv", "vit_entry"}
    report = json.loads(run_nas("latency", "validate", "--lut", str(path), "--samples", "4", "--json",
                                check=True, timeout=300).stdout)
    assert report["samples"] == 4 and 0 <= report["within_10pct"] <= 1 and report["mape"] >= 0
    proc = run_nas("latency", "build-lut", "--space", "vit", "--out", str(tmp_path / "in.json"), timeout=120)
    assert proc.returncode == 2 and "proxy preset only" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
