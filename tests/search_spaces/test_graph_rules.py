"""The kernel walk reads the runtime rules stored in a table, never the predicting machine's: rules of
other machines (AVX-512's 16-channel block, int8 QDQ graphs without a blocked layout) walked here."""

from __future__ import annotations

import collections
import dataclasses
import random

import pytest

from nas import registry
from nas.latency import rules as rules_module
from nas.latency.rules import RuntimeRules, Target
from nas.latency.table import LatencyTable

AVX512 = RuntimeRules(block=16)  # ONNX Runtime 1.32, CPU provider, AVX-512 (as build-lut detects there)
AVX2 = RuntimeRules(block=8)
INT8 = RuntimeRules(block=0, fuse_add=False)  # its QDQ graphs: QLinear kernels, no blocked layout, no fused sums


def _kinds(terms):
    return collections.Counter(t.partition("@")[0] for t in terms)


def _table(space, rules, cpu="Other CPU", isa=("avx512f",)):
    blocks = {k: 1.0 for k in space.latency_universe()}
    return LatencyTable(space.name, space.preset, {}, space.default_task().input_shape, 10, "onnxruntime", "cpu", 1, 1,
                        {}, blocks, target=Target("onnxruntime 1.32.0", "CPUExecutionProvider", cpu, list(isa)).to_dict(),
                        rules=rules.to_dict())


def test_a_table_predicts_with_its_own_rules_whatever_this_cpu_is(monkeypatch):
    space = registry.make_space("nasnet", {"preset": "proxy"})  # 8-channel first stage: below an AVX-512 block
    genotypes = [space.sample(random.Random(seed)) for seed in range(6)]
    wide, narrow = _table(space, AVX512), _table(space, AVX2, isa=("avx2",))
    walked = {g.arch_id: wide.network_keys(space, g) for g in genotypes}

    def no_host(*_):
        raise AssertionError("the walk read this machine's CPU")

    monkeypatch.setattr(rules_module, "cpu_info", no_host)
    for isa in (["avx512f"], ["avx2"], []):  # simulated flags of the predicting machine: never read
        monkeypatch.setattr(rules_module, "ISA_FLAGS", tuple(isa))
        assert all(wide.network_keys(space, g) == walked[g.arch_id] for g in genotypes)
    blocks = space.latency_blocks(genotypes[0])
    assert walked[genotypes[0].arch_id] == blocks + space.latency_graph_terms(genotypes[0], None, AVX512)
    # the 16-channel block runs the 8-channel stage's pools plain: more reorders than with an 8-channel block
    def at_8_channels(table, kind):
        return sum(1 for g in genotypes for t in table.network_keys(space, g) if t.startswith(f"{kind}@8x"))

    assert at_8_channels(wide, "^reorder_out") > at_8_channels(narrow, "^reorder_out")


def test_int8_rules_have_no_reorders_and_keep_their_sums():
    space = registry.make_space("nb201", {"preset": "cifar10"})
    genotype = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    fp32, int8 = _kinds(space.latency_graph_terms(genotype, None, AVX2)), _kinds(space.latency_graph_terms(genotype, None, INT8))
    assert not any(k.startswith("^reorder") for k in int8)
    assert int8["^kernel_add"] > fp32["^kernel_add"]  # sums a convolution absorbs in fp32 stay kernels in int8
    no_cse = dataclasses.replace(AVX2, cse=False)
    shared = space.parse("|skip_connect~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|avg_pool_3x3~1|skip_connect~2|")
    assert (_kinds(space.latency_graph_terms(shared, None, no_cse))["^kernel_pool"]
            > _kinds(space.latency_graph_terms(shared, None, AVX2))["^kernel_pool"])  # pools of one node computed once


def test_rules_the_walk_does_not_model_give_no_terms():
    space = registry.make_space("nb201", {"preset": "cifar10"})
    genotype = space.sample(random.Random(0))
    assert space.latency_graph_terms(genotype, None, dataclasses.replace(AVX2, fuse_bn=False)) == []
    assert space.latency_graph_terms(genotype, None, None) == []


def test_rules_round_trip_and_refuse_another_probe_set():
    data = AVX512.to_dict()
    assert RuntimeRules.from_dict(data) == AVX512
    with pytest.raises(ValueError, match="probe set"):
        RuntimeRules.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="unknown field 'tile'"):
        RuntimeRules.from_dict({**data, "tile": 4})


def test_cpu_info_reads_a_cpuinfo_text():
    text = "processor\t: 0\nmodel name\t: Xeon X\nflags\t\t: fpu sse4_2 avx avx2 avx512f avx512bw\n"
    assert rules_module.cpu_info(text) == ("Xeon X", ["sse4_2", "avx", "avx2", "avx512f", "avx512bw"])
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU part\t: 0xd0c\nHardware\t: Board\n"
    assert rules_module.cpu_info(arm) == ("Board", ["asimd", "asimddp"])
