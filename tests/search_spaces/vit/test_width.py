"""The ``width`` option (what ``nas compare`` scales): every stage scaled alike, heads kept dividing."""

from __future__ import annotations

import random

from nas.space import Task
from search_spaces.vit.genotype import KNOWN, VitGenotype
from search_spaces.vit.space import VitSpace
from tests.search_spaces.vit.test_vit import _check_module


def test_width_scales_every_stage_and_keeps_heads_dividing():
    space = VitSpace(preset="proxy", width=50)
    plan = space.plan(KNOWN["vit-ti16"])  # 192 channels, 3 heads: 50 rounds to 51
    assert [s.c_out for s in plan.stages] == [51] and plan.stages[0].c_out % 3 == 0
    hybrid = VitGenotype(("conv_d1_c16_s2_e2_k3", "attn_d1_c32_s1_h4_m2"), "conv8_s1", "gap")
    plan = VitSpace(preset="proxy", width=32).plan(hybrid)
    assert plan.stem_channels == 16 and [s.c_out for s in plan.stages] == [32, 64]
    assert VitSpace(preset="proxy", width=16).plan(hybrid) == VitSpace(preset="proxy").plan(hybrid)
    small = VitSpace(preset="proxy").cost(KNOWN["vit-ti16"]).flops
    assert space.cost(KNOWN["vit-ti16"]).flops < small < VitSpace(preset="proxy", width=400).cost(KNOWN["vit-ti16"]).flops


def test_cost_equals_module_at_other_widths():
    rng = random.Random(5)
    for width in (8, 40):
        space = VitSpace(preset="proxy", width=width)
        for _ in range(3):
            _check_module(space, space.sample(rng), Task((1, 8, 8), 10))
        _check_module(space, KNOWN["mixer-s16"], Task((1, 8, 8), 10))
