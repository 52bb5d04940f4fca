"""The concrete network of a genotype under a preset, as data: every layer's shape, and its cost.

:func:`plan_network` lays the scaled stage table out block by block (channels, strides, the map
size each block runs at, stochastic-depth rates); ``build.py`` turns the plan into modules and
:func:`plan_cost` counts params and multiply-accumulates from it without allocating anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.scaling.genotype import ScalingGenotype, round_filters

BASE_RESOLUTION = 224  # the resolution a preset's base size stands for (the B0 baseline's)


@dataclass(frozen=True)
class Macro:
    """How a preset lays a genotype out.

    Attributes:
        base_size: side length that ``BASE_RESOLUTION`` maps to (224: the genotype's resolution is
            the run size); 0: the task's own input size (B0 runs at the input's size, B3 at 300/224
            of it, ...).
        stem_stride: stride of the stem conv.
        max_reductions: how many of the stages' stride-2 steps are kept, first ones first (the rest
            run at stride 1, so small inputs are not reduced to 1x1); None keeps all.
    """

    base_size: int = BASE_RESOLUTION
    stem_stride: int = 2
    max_reductions: int | None = None


@dataclass(frozen=True)
class BlockPlan:
    """One MBConv block: input/output channels, kernel, stride, and the map sizes it reads and writes."""

    stage: int
    c_in: int
    c_out: int
    kernel: int
    stride: int
    expansion: int
    se_channels: int  # 0: no squeeze-and-excitation
    drop_rate: float  # stochastic-depth rate
    size_in: tuple[int, int]
    size_out: tuple[int, int]

    @property
    def c_mid(self) -> int:
        """Channels of the expanded (depthwise) part."""
        return self.c_in * self.expansion

    @property
    def residual(self) -> bool:
        """Whether the block adds its input back (shapes match)."""
        return self.stride == 1 and self.c_in == self.c_out


@dataclass(frozen=True)
class NetworkPlan:
    """The whole network: input resize, stem, blocks, head and classifier."""

    image_channels: int
    size: tuple[int, int]  # (H, W) the network runs at; inputs of another size are resized to it
    stem: int
    stem_stride: int
    blocks: tuple[BlockPlan, ...]
    head: int
    num_classes: int
    dropout: float

    @property
    def stem_size(self) -> tuple[int, int]:
        """Map size after the stem."""
        return _shrink(self.size, self.stem_stride)


def _shrink(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Output size of a 'same'-padded odd-kernel conv: ceil(size / stride)."""
    return (-(-size[0] // stride), -(-size[1] // stride))


def run_size(genotype: ScalingGenotype, input_size: tuple[int, int], macro: Macro) -> tuple[int, int]:
    """The (H, W) the network runs at: the base size scaled by ``resolution / BASE_RESOLUTION``."""
    base = (macro.base_size, macro.base_size) if macro.base_size else input_size
    return tuple(max(1, round(side * genotype.resolution / BASE_RESOLUTION)) for side in base)  # type: ignore[return-value]


def plan_network(genotype: ScalingGenotype, input_shape: tuple[int, int, int], num_classes: int,
                 macro: Macro) -> NetworkPlan:
    """Lay ``genotype`` out for inputs of ``input_shape`` (C, H, W) under ``macro``."""
    size = run_size(genotype, (input_shape[1], input_shape[2]), macro)
    stem = round_filters(genotype.stem, genotype.width)
    table = genotype.scaled_table()
    total = sum(stage.repeats for stage in table)
    blocks: list[BlockPlan] = []
    c_in, current = stem, _shrink(size, macro.stem_stride)
    reductions = 0
    for index, stage in enumerate(table):
        stride = stage.stride
        if stride > 1:
            reductions += 1
            if macro.max_reductions is not None and reductions > macro.max_reductions:
                stride = 1
        for repeat in range(stage.repeats):
            s = stride if repeat == 0 else 1
            se_channels = max(1, int(c_in * stage.se)) if stage.se > 0 else 0  # of the block's input
            out = _shrink(current, s)
            rate = genotype.drop_connect * len(blocks) / total
            blocks.append(BlockPlan(index, c_in, stage.channels, stage.kernel, s, stage.expansion,
                                    se_channels, rate, current, out))
            c_in, current = stage.channels, out
    return NetworkPlan(input_shape[0], size, stem, macro.stem_stride, tuple(blocks),
                       round_filters(genotype.head, genotype.width), num_classes, genotype.dropout)


def block_cost(block: BlockPlan) -> tuple[int, int]:
    """Params and conv MACs of one block (BN: 2 params per channel; SE convs carry biases)."""
    c_mid, (h, w), (ho, wo) = block.c_mid, block.size_in, block.size_out
    params = macs = 0
    if block.expansion != 1:
        params += block.c_in * c_mid + 2 * c_mid
        macs += block.c_in * c_mid * h * w
    params += c_mid * block.kernel ** 2 + 2 * c_mid
    macs += c_mid * block.kernel ** 2 * ho * wo
    if block.se_channels:
        params += 2 * c_mid * block.se_channels + block.se_channels + c_mid
        macs += 2 * c_mid * block.se_channels  # two 1x1 convs on the pooled 1x1 map
    params += c_mid * block.c_out + 2 * block.c_out
    macs += c_mid * block.c_out * ho * wo
    return params, macs


def plan_cost(plan: NetworkPlan) -> tuple[int, int]:
    """Trainable params and conv+linear multiply-accumulates of the planned network."""
    h, w = plan.stem_size
    params = plan.image_channels * plan.stem * 9 + 2 * plan.stem
    macs = plan.image_channels * plan.stem * 9 * h * w
    for block in plan.blocks:
        p, m = block_cost(block)
        params, macs = params + p, macs + m
    c_last = plan.blocks[-1].c_out if plan.blocks else plan.stem
    h, w = plan.blocks[-1].size_out if plan.blocks else plan.stem_size
    params += c_last * plan.head + 2 * plan.head + plan.head * plan.num_classes + plan.num_classes
    macs += c_last * plan.head * h * w + plan.head * plan.num_classes
    return params, macs
