"""The kernels a graph runtime runs for a NASNet-cell network, walked from the genotype, against ONNX
Runtime's own optimized graphs (the oracle: its saved optimized model)."""

from __future__ import annotations

import collections
import random

import pytest

from nas import registry
from nas.block_keys import GRAPH
from nas.latency.rules import RuntimeRules

ORT_NAMES = {"^kernel_relu": ("Relu",), "^kernel_pool": ("MaxPool", "AveragePool"), "^kernel_concat": ("Concat",),
             "^kernel_bn": ("BatchNormalization",), "^kernel_pad": ("Pad",), "^kernel_slice": ("Slice",),
             "^reorder_in": ("ReorderInput",), "^reorder_out": ("ReorderOutput",)}
# one cell state is neither read nor concatenated (dead code: the exporter drops it)
DEAD_STATE = ('{"normal":[[[0,"sep_conv_7x7"],[0,"conv_1x7_7x1"]],[[0,"max_pool_7x7"],[2,"sep_conv_5x5"]],'
              '[[0,"conv_1x1"],[0,"max_pool_3x3"]],[[4,"conv_1x1"],[4,"max_pool_7x7"]],[[0,"conv_1x1"],'
              '[0,"conv_3x3_dil2"]]],"normal_concat":[3,5,6],"reduce":[[[0,"avg_pool_3x3"],[0,"sep_conv_7x7"]],'
              '[[0,"conv_1x1"],[1,"conv_1x1"]],[[0,"sep_conv_7x7"],[0,"max_pool_7x7"]],[[2,"conv_3x3"],'
              '[4,"conv_3x3"]],[[4,"conv_3x3_dil2"],[5,"avg_pool_3x3"]]],"reduce_concat":[3,6],"space":"nasnet"}')


# The walk uses the rules detected on this machine (a block of 16 channels with AVX-512, 8 on AVX2), as a
# table built here stores them; other machines' rules: tests/search_spaces/test_graph_rules.py.
@pytest.mark.parametrize("seed", [100, 101, 102, 103, -1])
def test_the_walk_counts_the_kernels_onnx_runtime_runs(seed, runtime_rules):
    import torch

    from evaluators.runtime_probe import optimized_node_counts

    space = registry.make_space("nasnet", {"preset": "proxy"})
    genotype = space.from_json(DEAD_STATE) if seed < 0 else space.sample(random.Random(seed))
    task = space.default_task()
    torch.manual_seed(0)
    runtime = optimized_node_counts(space.build(genotype, task), task.input_shape)
    walked = collections.Counter(key.partition("@")[0] for key in space.latency_graph_terms(genotype, None, runtime_rules))
    for term, nodes in ORT_NAMES.items():
        assert walked[term] == sum(runtime.get(n, 0) for n in nodes), (term, dict(walked), runtime)
    assert abs(walked["^kernel_add"] - runtime.get("Add", 0)) <= 2  # a sum or two absorbed the walk does not see


@pytest.mark.parametrize("block", [8, 16])
def test_imagenet_presets_whose_layouts_are_not_modelled_get_no_terms(block):
    rules = RuntimeRules(block=block)
    space = registry.make_space("nasnet", {"preset": "imagenet-mobile"})  # 11- and 22-channel cells
    assert space.latency_graph_terms(space.sample(random.Random(0)), None, rules) == []
    proxy = registry.make_space("nasnet", {"preset": "proxy"})
    terms = proxy.latency_graph_terms(proxy.sample(random.Random(0)), None, rules)
    assert terms and all(k[0] == GRAPH for k in terms) and not set(proxy.latency_universe()) & set(terms)
