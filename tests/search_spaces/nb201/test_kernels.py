"""The kernels a graph runtime runs for an NB201 network, walked from the genotype, against ONNX
Runtime's own optimized graphs (the oracle: its saved optimized model)."""

from __future__ import annotations

import collections
import dataclasses

import pytest

from nas import registry
from nas.block_keys import GRAPH
from nas.latency.rules import RuntimeRules
from nas.latency.table import LatencyTable
from search_spaces.nb201.kernels import graph_terms

AVX2 = RuntimeRules(block=8)  # ONNX Runtime 1.32's CPU rules on an AVX2 machine, as a table stores them

CASES = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",  # all fused
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|avg_pool_3x3~1|skip_connect~2|",  # shared pools
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|skip_connect~1|avg_pool_3x3~2|",  # a sum twice
    "|none~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",  # constants: plain adds
    "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|",  # unlike constants
    "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|none~0|avg_pool_3x3~1|none~2|",  # dead edges
]
ORT_NAMES = {"^kernel_relu": "Relu", "^kernel_add": "Add", "^kernel_pool": "AveragePool",
             "^kernel_bn": "BatchNormalization", "^reorder_in": "ReorderInput", "^reorder_out": "ReorderOutput"}


@pytest.mark.parametrize("string", CASES)
def test_the_walk_counts_the_kernels_onnx_runtime_runs(string, runtime_rules):
    import torch

    from evaluators.runtime_probe import optimized_node_counts

    space = registry.make_space("nb201", {"preset": "cifar10"})
    genotype = space.parse(string)
    task = space.default_task()
    torch.manual_seed(0)
    runtime = optimized_node_counts(space.build(genotype, task), task.input_shape)
    walked = collections.Counter(key.partition("@")[0] for key in space.latency_graph_terms(genotype, None, runtime_rules))
    for term, node in ORT_NAMES.items():
        assert walked[term] == runtime.get(node, 0), (term, dict(walked), runtime)


def test_graph_terms_are_priced_by_graph_runtime_tables_only():
    space = registry.make_space("nb201", {"preset": "proxy"})
    genotype = space.parse(CASES[2])
    terms = space.latency_graph_terms(genotype, None, AVX2)
    assert terms and all(k[0] == GRAPH for k in terms)
    assert space.latency_graph_terms(genotype) == []  # no rules, no walk
    universe = set(space.latency_universe())
    assert not universe & ({k[1:] for k in terms} | set(terms))  # never measured
    assert terms == list(graph_terms(genotype, space.default_task(), space.channels, space.cells, AVX2))
    blocks = {k: 1.0 for k in space.latency_universe()}
    torch_table = LatencyTable("nb201", "proxy", {}, (3, 8, 8), 10, "torch", "cpu", 1, 1, {}, blocks,
                               kind_ms={"^kernel_add": 0.5})
    ort_table = dataclasses.replace(torch_table, backend="onnxruntime", rules=AVX2.to_dict())
    assert dataclasses.replace(torch_table, rules=AVX2.to_dict()).runtime_rules() is None  # eager: never
    keys = space.latency_blocks(genotype) + terms
    assert torch_table.network_keys(space, genotype) == space.latency_blocks(genotype)  # eager: no graph
    assert ort_table.network_keys(space, genotype) == keys
    adds = sum(k.startswith("^kernel_add") for k in terms)
    assert adds and ort_table.predict_keys(keys) == pytest.approx(torch_table.predict_keys(keys) + 0.5 * adds)
    assert ort_table.parts(keys) == torch_table.parts(keys)  # no entry, not a block
    assert "^kernel_add" in ort_table.term_counts(keys) and "^kernel_add" not in torch_table.term_counts(keys)
    dead = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    assert space.latency_graph_terms(dead, None, AVX2) == []  # a constant network runs no kernels
