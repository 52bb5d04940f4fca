"""EfficientNet blocks for latency tables (torch-free): input resize, stem, each MBConv block
(kernel, expansion, SE, channels, stride) at its map size, and the head, read off the layout plan."""

from __future__ import annotations

from typing import Any

from nas.block_keys import block_key
from search_spaces.scaling.genotype import ScalingGenotype
from search_spaces.scaling.layout import NetworkPlan


def network_blocks(plan: NetworkPlan, input_shape: tuple[int, int, int]) -> list[str]:
    """Every block of the planned network in forward order."""
    keys = []
    c, h, w = input_shape
    if (h, w) != plan.size:
        keys.append(block_key("resize", plan.size, [input_shape]))
    keys.append(block_key("scaling_stem", (c, plan.stem, plan.stem_stride), [(c, *plan.size)]))
    for b in plan.blocks:
        keys.append(block_key("mbconv", (b.c_in, b.c_out, b.kernel, b.stride, b.expansion, b.se_channels),
                              [(b.c_in, *b.size_in)]))
    c_last = plan.blocks[-1].c_out if plan.blocks else plan.stem
    size = plan.blocks[-1].size_out if plan.blocks else plan.stem_size
    keys.append(block_key("scaling_head", (c_last, plan.head, plan.num_classes), [(c_last, *size)]))
    return keys


def cover(space: Any) -> list[ScalingGenotype]:
    """Coefficients search: every grid point. Baseline search: for every (kernel, expansion, SE)
    applied to all stages and every ordered pair of widths alternating over the stages (so each
    stage meets each width of its predecessor), at the largest repeats."""
    if space.search == "coefficients":
        return list(space.grid() or [])
    dists = space.distributions()
    stages = sorted({key.split("_")[0] for key in dists})
    base = {key: max(d.choices) if key.endswith("_repeats") else d.choices[0] for key, d in dists.items()}
    out = []
    for kernel in dists[f"{stages[0]}_kernel"].choices:
        for expansion in dists[f"{stages[0]}_expansion"].choices:
            for se in (False, True):
                for wa in dists[f"{stages[0]}_width"].choices:
                    for wb in dists[f"{stages[0]}_width"].choices:
                        params = dict(base)
                        for i, s in enumerate(stages):
                            params.update({f"{s}_kernel": kernel, f"{s}_expansion": expansion, f"{s}_se": se,
                                           f"{s}_width": wa if i % 2 == 0 else wb})
                        out.append(space.from_params(params))
    return out


def module(key: str) -> Any:
    """Torch module of a scaling block key (imports torch)."""
    import torch.nn.functional as F
    from torch import nn

    from search_spaces.latency_blocks import generic_module
    from search_spaces.scaling.build import ConvBN, MBConv, init_weights
    from search_spaces.scaling.layout import BlockPlan

    class Resize(nn.Module):
        def __init__(self, size: tuple[int, int]) -> None:
            super().__init__()
            self.size = size

        def forward(self, x: Any) -> Any:
            return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)

    def mbconv(a: list[str]) -> nn.Module:
        c_in, c_out, kernel, stride, expansion, se = (int(x) for x in a)
        plan = BlockPlan(0, c_in, c_out, kernel, stride, expansion, se, 0.0, (1, 1), (1, 1))
        return MBConv(plan)

    own = {
        "resize": lambda a: Resize((int(a[0]), int(a[1]))),
        "scaling_stem": lambda a: ConvBN(int(a[0]), int(a[1]), 3, int(a[2])),
        "mbconv": mbconv,
        "scaling_head": lambda a: nn.Sequential(ConvBN(int(a[0]), int(a[1]), 1), nn.AdaptiveAvgPool2d(1),
                                                nn.Flatten(), nn.Linear(int(a[1]), int(a[2]))),
    }
    block = generic_module(key, own)
    init_weights(block)
    return block


