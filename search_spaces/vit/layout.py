"""The concrete network of a vit genotype for an input size, as data; and its cost, counted from that data.

:func:`plan_network` lays the stem and stages out (channels, strides, the token grid each stage runs
on, the MBConv blocks of conv stages as the scaling space's ``BlockPlan``); ``build.py`` turns the
plan into modules and :func:`plan_cost` counts params and multiply-accumulates without allocating
anything. MACs count conv and linear layers and attention's two matrix products (Q K^T and
attention x V: ``2 * tokens^2 * channels`` per layer); norms, activations, pooling, softmax and
additions are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.scaling.layout import BlockPlan, block_cost
from search_spaces.vit.genotype import Stage, Stem, VitGenotype

Size = tuple[int, int]


@dataclass(frozen=True)
class StagePlan:
    """One stage at its place in the network.

    ``size_in`` is the map entering the stage, ``size`` the grid its layers run on (after the entry
    stride). Attention and mixer stages enter through a 3x3 stride-2 max-pool (``stride`` 2) and a
    1x1 conv projection (channels change); conv stages through their first MBConv block.
    """

    index: int
    stage: Stage
    c_in: int
    size_in: Size
    size: Size
    cls: bool  # a class token is prepended to this stage's tokens (the last stage, pool "cls")
    blocks: tuple[BlockPlan, ...] = ()  # conv stages: the MBConv blocks

    @property
    def kind(self) -> str:
        """``conv``, ``attn`` or ``mixer``."""
        return self.stage.kind

    @property
    def c_out(self) -> int:
        """Channels (embedding dimension) of the stage."""
        return self.stage.channels

    @property
    def grid_tokens(self) -> int:
        """Tokens of the spatial grid (the class token excluded)."""
        return self.size[0] * self.size[1]

    @property
    def tokens(self) -> int:
        """Tokens the stage's layers see (the class token included)."""
        return self.grid_tokens + int(self.cls)

    @property
    def pooled(self) -> bool:
        """Whether an attention/mixer stage max-pools on entry."""
        return self.kind != "conv" and self.stage.stride == 2

    @property
    def projected(self) -> bool:
        """Whether an attention/mixer stage projects its input channels with a 1x1 conv."""
        return self.kind != "conv" and self.c_in != self.c_out


@dataclass(frozen=True)
class NetworkPlan:
    """The whole network: stem, stages, final norm, pooling and classifier."""

    image_channels: int
    size: Size  # (H, W) the network is built for
    stem: Stem
    stem_channels: int
    stem_stride: int  # the patch side for a patch stem (clipped to the image), else the first conv's stride
    stem_size: Size
    stages: tuple[StagePlan, ...]
    pool: str
    num_classes: int

    @property
    def has_mixer(self) -> bool:
        """A mixer stage's token MLP is tied to its token count: inputs of other sizes are resized."""
        return any(stage.kind == "mixer" for stage in self.stages)

    @property
    def c_last(self) -> int:
        """Channels reaching the head."""
        return self.stages[-1].c_out


def _ceil_half(size: Size, stride: int) -> Size:
    """Output size of a 'same'-padded odd window with ``stride``: ceil(size / stride)."""
    return (-(-size[0] // stride), -(-size[1] // stride))


def _stem_layout(stem: Stem, size: Size, first_channels: int) -> tuple[int, int, Size]:
    """Channels, stride (the patch side) and map size after the stem.

    A patch larger than the image is clipped to the image's shorter side, so a published /16 network
    still runs (on very few tokens, its cost counted exactly) on 8x8 proxy inputs.
    """
    if stem.kind == "patch":
        patch = min(stem.stride, *size)
        return first_channels, patch, (size[0] // patch, size[1] // patch)
    return stem.channels, stem.stride, _ceil_half(size, stem.stride)


def plan_network(genotype: VitGenotype, input_shape: tuple[int, int, int], num_classes: int) -> NetworkPlan:
    """Lay ``genotype`` out for inputs of ``input_shape`` (C, H, W) and ``num_classes`` classes."""
    table, stem = genotype.table(), genotype.parsed_stem()
    size: Size = (input_shape[1], input_shape[2])
    c_in, stem_stride, current = _stem_layout(stem, size, table[0].channels)
    stem_channels, stem_size = c_in, current
    stages: list[StagePlan] = []
    for index, stage in enumerate(table):
        out = _ceil_half(current, stage.stride)
        blocks: tuple[BlockPlan, ...] = ()
        if stage.kind == "conv":
            blocks = _conv_blocks(index, stage, c_in, current)
        cls = genotype.pool == "cls" and index == len(table) - 1
        stages.append(StagePlan(index, stage, c_in, current, out, cls, blocks))
        c_in, current = stage.channels, out
    return NetworkPlan(input_shape[0], size, stem, stem_channels, stem_stride, stem_size, tuple(stages),
                       genotype.pool, num_classes)


def _conv_blocks(index: int, stage: Stage, c_in: int, size: Size) -> tuple[BlockPlan, ...]:
    """The MBConv blocks of a conv stage (the first one strides and changes channels)."""
    blocks = []
    for repeat in range(stage.depth):
        stride = stage.stride if repeat == 0 else 1
        out = _ceil_half(size, stride)
        se_channels = max(1, int(c_in * stage.se)) if stage.se > 0 else 0  # of the block's input, as in scaling
        blocks.append(BlockPlan(index, c_in, stage.channels, stage.kernel, stride, stage.expansion, se_channels,
                                0.0, size, out))
        c_in, size = stage.channels, out
    return tuple(blocks)


def stem_cost(plan: NetworkPlan) -> tuple[int, int]:
    """Params and MACs of the stem."""
    c_img, stem, (h, w) = plan.image_channels, plan.stem, plan.stem_size
    if stem.kind == "patch":
        weights = c_img * plan.stem_stride ** 2 * plan.stem_channels
        return weights + plan.stem_channels, weights * h * w
    c = stem.channels
    weights = 9 * c_img * c + 9 * c * c  # two 3x3 convs without bias, each followed by BN
    return weights + 4 * c, weights * h * w


def layer_cost(stage: StagePlan) -> tuple[int, int]:
    """Params and MACs of one attention or mixer layer of ``stage``."""
    c, hidden = stage.c_out, stage.stage.mlp_hidden
    mlp_params = 2 * c * hidden + hidden + c
    if stage.kind == "attn":
        t = stage.tokens
        params = 4 * c + (3 * c * c + 3 * c) + (c * c + c) + mlp_params
        macs = t * (4 * c * c + 2 * c * hidden) + 2 * t * t * c  # qkv, proj, MLP; Q K^T and attn x V
        return params, macs
    n, d = stage.grid_tokens, stage.stage.token_dim
    params = 4 * c + (2 * n * d + d + n) + mlp_params
    return params, c * 2 * n * d + n * 2 * c * hidden  # token MLP on each channel, channel MLP on each token


def stage_cost(stage: StagePlan) -> tuple[int, int]:
    """Params and MACs of one stage, its entry (pooling, projection, class token, position embedding) included."""
    if stage.kind == "conv":
        costs = [block_cost(block) for block in stage.blocks]
        return sum(p for p, _ in costs), sum(m for _, m in costs)
    params = macs = 0
    if stage.projected:
        params += stage.c_in * stage.c_out + stage.c_out
        macs += stage.c_in * stage.c_out * stage.grid_tokens
    if stage.kind == "attn":
        params += stage.tokens * stage.c_out + (stage.c_out if stage.cls else 0)  # position embedding, class token
    p, m = layer_cost(stage)
    return params + stage.stage.depth * p, macs + stage.stage.depth * m


def head_cost(plan: NetworkPlan) -> tuple[int, int]:
    """Params and MACs of the final LayerNorm and the classifier."""
    c, k = plan.c_last, plan.num_classes
    return 2 * c + c * k + k, c * k


def plan_cost(plan: NetworkPlan) -> tuple[int, int]:
    """Trainable params and multiply-accumulates (conv, linear, attention products) of the planned network."""
    parts = [stem_cost(plan), *(stage_cost(stage) for stage in plan.stages), head_cost(plan)]
    return sum(p for p, _ in parts), sum(m for _, m in parts)


@dataclass(frozen=True)
class LayerKey:
    """One layer at its shape: what a per-layer latency table keys on (``build.make_layer`` builds it).

    Attributes:
        kind: ``attn`` (a transformer layer), ``mixer`` (a mixer layer) or ``mbconv`` (one MBConv-SE block).
        channels: embedding dimension (attn, mixer) or output channels (mbconv).
        tokens: tokens the layer sees (attn: the class token included; mixer: the grid's); mbconv: 0.
        hidden: channel-MLP width (attn, mixer); mbconv: 0.
        heads: attention heads (attn only).
        token_dim: token-MLP width (mixer only).
        block: the MBConv block (mbconv only).
    """

    kind: str
    channels: int
    tokens: int = 0
    hidden: int = 0
    heads: int = 0
    token_dim: int = 0
    block: BlockPlan | None = None


def layer_keys(plan: NetworkPlan) -> list[LayerKey]:
    """Every attention, mixer and MBConv layer of ``plan`` in order (stem, stage entries and head excluded)."""
    keys: list[LayerKey] = []
    for stage in plan.stages:
        s = stage.stage
        if stage.kind == "conv":
            keys += [LayerKey("mbconv", block.c_out, block=block) for block in stage.blocks]
        elif stage.kind == "attn":
            keys += [LayerKey("attn", s.channels, stage.tokens, s.mlp_hidden, s.heads)] * s.depth
        else:
            keys += [LayerKey("mixer", s.channels, stage.grid_tokens, s.mlp_hidden, token_dim=s.token_dim)] * s.depth
    return keys
