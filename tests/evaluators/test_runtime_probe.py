"""Runtime rules detected from the installed ONNX Runtime's optimized probe graphs, stored in tables;
int8 blocks the quantizer refuses are recorded, not hidden."""

from __future__ import annotations

import json

import pytest
from torch import nn

from evaluators import runtime_probe
from evaluators.block_timing import block_entries
from evaluators.timing import Settings
from nas.latency.rules import RuntimeRules, cpu_info
from search_spaces.latency_blocks import generic_module

FAST = {"warmup": 1, "min_repeats": 1, "rounds": 1, "round_seconds": 0.0, "max_seconds": 0.05}


def test_fp32_cpu_rules_of_the_installed_runtime():
    rules = runtime_probe.detect(Settings(backend="onnxruntime"))
    _, isa = cpu_info()
    # ONNX Runtime's blocked layout: 16 channels with AVX-512, 8 with AVX2, none without (ARM)
    assert rules.block == (16 if "avx512f" in isa else 8 if "avx2" in isa else 0)
    assert (rules.fuse_bn, rules.fuse_relu, rules.fuse_add, rules.cse) == (True, True, True, True)
    assert rules.conv_multiple == 4 or not rules.block


def test_the_probe_graphs_show_what_the_rules_say(runtime_rules):
    settings = Settings(backend="onnxruntime")
    c = runtime_rules.block
    nodes = runtime_probe.optimized_nodes(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.AvgPool2d(3, 1, 1),
                                                        nn.Conv2d(c, c, 3, padding=1)), [(c, 8, 8)], settings)
    assert ("AveragePool", "com.microsoft.nchwc") in nodes  # a pool at a block's width runs blocked
    wider = c + runtime_rules.conv_multiple - 1  # not a multiple: plain convolutions, no blocked kernel
    nodes = runtime_probe.optimized_nodes(nn.Sequential(nn.Conv2d(wider, wider, 3, padding=1),
                                                        nn.Conv2d(wider, wider, 3, padding=1)), [(wider, 8, 8)], settings)
    assert nodes == [("Conv", ""), ("Conv", "")]
    counts = runtime_probe.optimized_node_counts(runtime_probe.ReadTwice(16, "pool"), (16, 8, 8))
    assert counts["AveragePool"] == 1 and counts["Conv"] == 3  # computed once for both readers


def test_int8_qdq_rules_are_probed_separately():
    rules = runtime_probe.detect(Settings(backend="onnxruntime-int8"))
    assert rules == RuntimeRules(block=0, conv_multiple=4, fuse_bn=True, fuse_relu=True, fuse_add=False, cse=True)
    assert runtime_probe.detect(Settings(backend="torch")) is None


def test_the_target_names_runtime_provider_and_cpu():
    where = runtime_probe.target(Settings(backend="onnxruntime", threads=1, batch=2))
    cpu, isa = cpu_info()
    assert where.runtime.startswith("onnxruntime 1.") and where.provider == "CPUExecutionProvider"
    assert (where.cpu, where.isa, where.batch) == (cpu, isa, 2)
    assert runtime_probe.target(Settings()).runtime.startswith("torch ") and runtime_probe.target(Settings()).provider == ""


class Blocks:
    def latency_module(self, key):
        return generic_module(key)


def test_an_int8_block_the_quantizer_refuses_is_recorded(monkeypatch):
    from evaluators import latency

    def refuse(model, inputs, batches=0):
        raise RuntimeError("quantizer refused")  # as ONNX Runtime's quantizer does for some graphs

    fallbacks: list[str] = []
    keys = ["relu@8x4x4", "sum:2@8x4x4;8x4x4"]
    monkeypatch.setattr(latency, "quantize_int8", refuse)
    entries = block_entries(Blocks(), keys[:1], Settings(backend="onnxruntime-int8", **FAST), fallbacks=fallbacks)
    monkeypatch.undo()
    entries.update(block_entries(Blocks(), keys[1:], Settings(backend="onnxruntime-int8", **FAST), fallbacks=fallbacks))
    assert set(entries) == set(keys) and fallbacks == ["relu@8x4x4"]  # timed in fp32, and said so


def test_validate_lists_fp32_blocks_and_prints_its_fresh_seed(tmp_path):
    from tests.conftest import run_nas

    path = tmp_path / "lut.json"
    run_nas("latency", "build-lut", "--space", "nb201", "--preset", "proxy", "--fit", "3", "--out", str(path),
            check=True, timeout=300)
    data = json.loads(path.read_text())
    assert data["target"]["runtime"].startswith("torch ") and data["rules"] == {}
    data["fp32_blocks"] = ["sum:2@8x8x8;8x8x8"]
    path.write_text(json.dumps(data))
    first = run_nas("latency", "validate", "--lut", str(path), "--samples", "2", check=True, timeout=300)
    assert "timed in fp32" in first.stdout and "sum:2@8x8x8;8x8x8" in first.stdout
    seeds = [line.rpartition("--seed ")[2] for line in first.stdout.splitlines() if "--seed " in line]
    assert len(seeds) == 1 and seeds[0].isdigit()


@pytest.mark.parametrize("field,value,message", [
    ("format", "nasforge-lut/1", "without its target's runtime rules"),
    ("rules", {"version": 99, "block": 8}, "probe set 99"),
])
def test_tables_without_readable_rules_are_refused(tmp_path, field, value, message):
    from nas.latency.table import LatencyTable

    table = LatencyTable("nb201", "proxy", {}, (3, 8, 8), 10, "onnxruntime", "cpu", 1, 1, {}, {},
                         rules=RuntimeRules(block=8).to_dict())
    table.save(tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    data[field] = value
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        LatencyTable.load(tmp_path / "t.json")


def test_an_int8_network_folded_to_a_constant_is_measured():
    from evaluators.latency import measure
    from evaluators.lut import ConstantOutput

    # the exporter drops the unused input; the quantizer has nothing to calibrate (build-lut's floor_ms)
    result = measure(ConstantOutput(10), [(3, 8, 8)], Settings(backend="onnxruntime-int8", **FAST))
    assert result.stat("median") > 0
