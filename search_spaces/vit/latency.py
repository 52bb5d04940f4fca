"""vit blocks for latency tables (torch-free): the stem, each stage's entry (pooling, projection, class
token, position embedding), each attention / mixer / MBConv layer at its shape, the token-to-map step
between stages, and the head, read off the layout plan.

Keys (arguments after the kind, input shape after ``@``; token tensors are ``TOKENSxC``):

=====================================================  ===============================================
``vit_stem:KIND:C_IMG:C:STRIDE@CxHxW``                  patch embedding or the two-conv stem
``vit_entry:KIND:C_IN:C:POOLED:CLS@CxHxW``              map -> tokens of an attn/mixer stage
``vit_attn:C:HEADS:HIDDEN@TxC``                         one transformer layer
``vit_mixer:C:TOKEN_DIM:HIDDEN@NxC``                    one mixer layer
``vit_untoken:C:H:W@NxC``                               tokens -> map (a token stage that is not last)
``mbconv:C_IN:C_OUT:K:S:E:SE@CxHxW``                    one MBConv-SE block (the scaling space's)
``vit_head:C:CLASSES:POOL@TxC`` (or ``@CxHxW``)         LayerNorm -> class token / mean -> linear
=====================================================  ===============================================

Tables are supported at the ``proxy`` preset only: at ``imagenet`` the universe holds attention
layers over 112x112 token grids (hundreds of GB of attention maps), which no table can measure.
"""

from __future__ import annotations

from typing import Any, Iterator

from nas.config import SpecError
from nas.block_keys import block_key
from search_spaces.vit.genotype import Stage
from search_spaces.vit.layout import NetworkPlan, StagePlan, _ceil_half, _conv_blocks, _stem_layout

SUPPORTED_PRESETS = ("proxy",)


def require_preset(space: Any) -> None:
    """``SpecError`` unless the space's preset has latency tables."""
    if space.preset not in SUPPORTED_PRESETS:
        raise SpecError(f"preset: vit latency tables exist for the proxy preset only, not {space.preset!r} "
                        "(attention over its largest token grids cannot be measured)")


def stem_blocks(plan: NetworkPlan) -> list[str]:
    """The stem's key."""
    stem = plan.stem
    args = (stem.kind, plan.image_channels, plan.stem_channels, plan.stem_stride)
    return [block_key("vit_stem", args, [(plan.image_channels, *plan.size)])]


def stage_blocks(stage: StagePlan, last: bool) -> list[str]:
    """The keys of one stage in forward order (entry, layers, exit)."""
    s, c = stage.stage, stage.c_out
    if stage.kind == "conv":
        return [block_key("mbconv", (b.c_in, b.c_out, b.kernel, b.stride, b.expansion, b.se_channels),
                          [(b.c_in, *b.size_in)]) for b in stage.blocks]
    keys = [block_key("vit_entry", (s.kind, stage.c_in, c, int(stage.pooled), int(stage.cls)),
                      [(stage.c_in, *stage.size_in)])]
    if stage.kind == "attn":
        keys += [block_key("vit_attn", (c, s.heads, s.mlp_hidden), [(stage.tokens, c)])] * s.depth
    else:
        keys += [block_key("vit_mixer", (c, s.token_dim, s.mlp_hidden), [(stage.grid_tokens, c)])] * s.depth
    if not last:
        keys.append(block_key("vit_untoken", (c, *stage.size), [(stage.grid_tokens, c)]))
    return keys


def head_blocks(plan: NetworkPlan) -> list[str]:
    """The head's key (its input: tokens, or the map of a last conv stage)."""
    last = plan.stages[-1]
    shape = (last.c_out, *last.size) if last.kind == "conv" else (last.tokens, last.c_out)
    return [block_key("vit_head", (plan.c_last, plan.num_classes, plan.pool), [shape])]


def network_blocks(plan: NetworkPlan) -> list[str]:
    """Every block of the planned network in forward order."""
    keys = stem_blocks(plan)
    for stage in plan.stages:
        keys += stage_blocks(stage, stage.index == len(plan.stages) - 1)
    return keys + head_blocks(plan)


def _stage_choices(space: Any, index: int) -> Iterator[Stage]:
    """Every stage slot ``index`` can hold, at the largest depth (deeper repeats add no new block)."""
    g = space.grid
    depth = max(d for d in g["depths"])
    for kind in g["types"]:
        for c in g["dims"]:
            for stride in g["strides"]:
                if kind == "conv":
                    for e in g["expansions"]:
                        for k in g["kernels"]:
                            yield Stage("conv", depth, c, stride, expansion=e, kernel=k, se=space.se)
                elif kind == "attn":
                    for heads in g["heads"]:
                        for ratio in g["mlp_ratios"]:
                            yield Stage("attn", depth, c, stride, heads=heads, mlp_ratio=ratio)
                else:
                    for d in g["token_dims"]:
                        for ratio in g["mlp_ratios"]:
                            yield Stage("mixer", depth, c, stride, token_dim=d, mlp_ratio=ratio)


def universe(space: Any, task: Any) -> list[str]:
    """Every block any genotype of ``space`` can produce for ``task``: stems, then every stage choice
    from every (channels, size) state a stage can start from, last or not, and the heads."""
    from search_spaces.vit.genotype import parse_stem

    require_preset(space)
    image, size = task.input_shape[0], (task.input_shape[1], task.input_shape[2])
    keys: dict[str, None] = {}
    states: set[tuple[int, tuple[int, int]]] = set()
    for text in space.grid["stems"]:
        stem = parse_stem(text)
        for c0 in (space.grid["dims"] if stem.kind == "patch" else (None,)):
            c, stride, out = _stem_layout(stem, size, c0 or 0)
            plan = NetworkPlan(image, size, stem, c, stride, out, (), "gap", task.num_classes)
            keys.update(dict.fromkeys(stem_blocks(plan)))
            states.add((c, out))
    seen: set[tuple[int, tuple[int, int]]] = set()
    for index in range(space.max_stages):
        new: set[tuple[int, tuple[int, int]]] = set()
        for c_in, current in sorted(states - seen):
            for stage in _stage_choices(space, index):
                out = _ceil_half(current, stage.stride)
                blocks = _conv_blocks(index, stage, c_in, current) if stage.kind == "conv" else ()
                pools = ("gap",) if stage.kind != "attn" else space.grid["pools"]
                for last, pool in [(False, "gap")] + [(True, p) for p in pools]:
                    plan = StagePlan(index, stage, c_in, current, out, last and pool == "cls", blocks)
                    keys.update(dict.fromkeys(stage_blocks(plan, last)))
                    if last:
                        net = NetworkPlan(image, size, parse_stem("patch1"), 0, 1, size, (plan,), pool,
                                          task.num_classes)
                        keys.update(dict.fromkeys(head_blocks(net)))
                new.add((stage.channels, out))
        seen |= states
        states = new | states
    return list(keys)



def module(key: str) -> Any:
    """Torch module of a vit block key (imports torch)."""
    from torch import nn

    from nas.block_keys import parse_key
    from search_spaces.scaling.layout import BlockPlan
    from search_spaces.vit import build as vb
    from search_spaces.vit.genotype import parse_stem

    kind, a, shapes = parse_key(key)

    def stem(a: list[str], size: tuple[int, ...]) -> nn.Module:
        c_img, c, stride = int(a[1]), int(a[2]), int(a[3])
        parsed = parse_stem(f"patch{stride}" if a[0] == "patch" else f"conv{c}_s{stride}")
        out = _stem_layout(parsed, size, c)[2]
        return vb.make_stem(NetworkPlan(c_img, size, parsed, c, stride, out, (), "gap", 1))

    def entry(a: list[str], size: tuple[int, ...]) -> nn.Module:
        stage = Stage(a[0], 0, int(a[2]), 2 if int(a[3]) else 1, heads=1, mlp_ratio=1.0, token_dim=1)
        plan = StagePlan(0, stage, int(a[1]), size, _ceil_half(size, stage.stride), bool(int(a[4])))
        return vb.TokenStage(plan, last=True)

    def mbconv(a: list[str], _: tuple[int, ...]) -> nn.Module:
        c_in, c_out, kernel, stride, expansion, se = (int(x) for x in a)
        return vb.MBConv(BlockPlan(0, c_in, c_out, kernel, stride, expansion, se, 0.0, (1, 1), (1, 1)))

    makers = {
        "vit_stem": lambda a, shape: stem(a, shape[1:]),
        "vit_entry": lambda a, shape: entry(a, shape[1:]),
        "vit_attn": lambda a, _: vb.AttentionBlock(int(a[0]), int(a[1]), int(a[2])),
        "vit_mixer": lambda a, shape: vb.MixerBlock(int(a[0]), shape[0], int(a[1]), int(a[2])),
        "vit_untoken": lambda a, _: vb.Untoken(int(a[0]), int(a[1]), int(a[2])),
        "mbconv": mbconv,
        "vit_head": lambda a, _: vb.TokenHead(int(a[0]), int(a[1]), a[2]),
    }
    if kind not in makers:
        raise ValueError(f"block key {key!r}: not a vit block")
    block = makers[kind](a, shapes[0])
    return _initialized(block)


def _initialized(block: Any) -> Any:
    """Materialize meta-device parameters and give every parameter small finite values."""
    import torch

    if any(p.is_meta for p in block.parameters()):
        block = block.to_empty(device="cpu")
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.02)
    return block
