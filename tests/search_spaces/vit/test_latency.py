"""vit latency-table blocks: they chain into the network they describe; other presets are refused."""

from __future__ import annotations

import random

import pytest
import torch

from nas import registry
from nas.config import SpecError
from nas.block_keys import parse_key


def test_blocks_chain_shape_by_shape_into_the_network():
    space = registry.make_space("vit", {"preset": "proxy"})
    rng = random.Random(3)
    kinds = set()
    for _ in range(20):
        genotype = space.sample(rng)
        keys = space.latency_blocks(genotype)
        kinds |= {parse_key(k)[0] for k in keys}
        x = torch.randn(1, *parse_key(keys[0])[2][0])
        with torch.no_grad():
            for key in keys:  # each block's output is the next block's input shape
                assert tuple(x.shape[1:]) == parse_key(key)[2][0], (space.label(genotype), key)
                x = space.latency_module(key).eval()(x)
        assert x.shape == (1, 10)
    assert {"vit_stem", "vit_head", "vit_entry", "vit_attn", "vit_mixer", "mbconv"} <= kinds


def test_layers_follow_depth_and_class_token():
    space = registry.make_space("vit", {"preset": "proxy"})
    genotype = space.from_params({**space.to_params(space.sample(random.Random(0))), "stem": "patch2",
                                  "pool": "cls", "s0_type": "attn", "s0_depth": 3, "s0_channels": 32,
                                  "s0_stride": 1, "s0_heads": 4, "s0_mlp_ratio": 2.0, "s1_depth": 0,
                                  "s2_depth": 0})
    keys = space.latency_blocks(genotype)
    assert keys == (["vit_stem:patch:1:32:2@1x8x8", "vit_entry:attn:32:32:0:1@32x4x4"]
                    + ["vit_attn:32:4:64@17x32"] * 3 + ["vit_head:32:10:cls@17x32"]), keys


def test_imagenet_tables_are_refused_in_one_line():
    space = registry.make_space("vit", {"preset": "imagenet"})
    with pytest.raises(SpecError, match="proxy preset only"):
        space.latency_universe()
