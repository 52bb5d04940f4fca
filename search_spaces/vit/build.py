"""The network of a planned vit genotype: stem, conv / attention / mixer stages, final norm, pooling, classifier.

* ``conv`` stages are the scaling space's MBConv-SE blocks (BN, SiLU).
* ``attn`` layers are ViT's pre-norm blocks: x + MHSA(LN(x)), then x + MLP(LN(x)), GELU, LayerNorm eps
  1e-6, fused qkv projection with bias; the stage adds a learned position embedding to its tokens
  (after prepending the class token, when it has one). The embedding is resized (bicubic over its
  grid) when the input's resolution differs from the one the network was built for, and
  :func:`load_state_dict_resized` does the same for weights trained at another resolution.
* ``mixer`` layers are MLP-Mixer's: x + TokenMLP(LN(x)^T)^T, then x + ChannelMLP(LN(x)). A token MLP
  is tied to its token count, so a network with mixer stages resizes other inputs (bilinear) to the
  size it was built for.

Modules are created on the ``meta`` device and materialized once, then initialized: linear weights
and embeddings with std 0.02 (ViT's), the patch embedding with LeCun's std, convs with He's over
fan-out (the scaling space's), each drawn uniformly with that std (half the time of a normal draw;
building all published models at once is a benchmarked target).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.scaling.build import MBConv
from search_spaces.vit.layout import LayerKey, NetworkPlan, StagePlan

LN_EPS = 1e-6
BN_MOMENTUM = 0.1  # PyTorch's default: the running averages settle within brief training


class MLP(nn.Sequential):
    """Linear -> GELU -> Linear."""

    def __init__(self, c_in: int, hidden: int) -> None:
        super().__init__(nn.Linear(c_in, hidden), nn.GELU(), nn.Linear(hidden, c_in))


class Attention(nn.Module):
    """Multi-head self-attention over tokens (B, T, C) with one fused qkv projection."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, C)
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # (3, B, h, T, C/h)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, h, T, C/h)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))

    @staticmethod
    def matmul_macs(inputs: Any, output: torch.Tensor) -> int:
        """MACs of Q K^T and attention x V per example (``evaluators.cost.count_macs`` asks for them)."""
        t, c = output.shape[-2], output.shape[-1]
        return 2 * t * t * c


class AttentionBlock(nn.Module):
    """Pre-norm transformer layer: x + MHSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, channels: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(channels, eps=LN_EPS)
        self.attn = Attention(channels, heads)
        self.norm2 = nn.LayerNorm(channels, eps=LN_EPS)
        self.mlp = MLP(channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, C)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MixerBlock(nn.Module):
    """Mixer layer: x + TokenMLP over the token axis, then x + ChannelMLP, each after a LayerNorm."""

    def __init__(self, channels: int, tokens: int, token_dim: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(channels, eps=LN_EPS)
        self.token_mlp = MLP(tokens, token_dim)
        self.norm2 = nn.LayerNorm(channels, eps=LN_EPS)
        self.channel_mlp = MLP(channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, C)
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)  # mixes along N per channel
        return x + self.channel_mlp(self.norm2(x))


class TokenStage(nn.Module):
    """An attention or mixer stage: [max-pool] -> [1x1 projection] -> tokens [+ class token] [+ positions] -> layers."""

    def __init__(self, plan: StagePlan, last: bool) -> None:
        super().__init__()
        stage, c = plan.stage, plan.c_out
        self.pool = nn.MaxPool2d(3, 2, 1) if plan.pooled else nn.Identity()
        self.project = nn.Conv2d(plan.c_in, c, 1) if plan.projected else nn.Identity()
        self.grid = plan.size
        self.last = last
        self.cls_token = nn.Parameter(torch.empty(1, 1, c)) if plan.cls else None
        self.pos_embed = nn.Parameter(torch.empty(1, plan.tokens, c)) if stage.kind == "attn" else None
        if stage.kind == "attn":
            layers = [AttentionBlock(c, stage.heads, stage.mlp_hidden) for _ in range(stage.depth)]
        else:
            layers = [MixerBlock(c, plan.grid_tokens, stage.token_dim, stage.mlp_hidden) for _ in range(stage.depth)]
        self.layers = nn.Sequential(*layers)

    def positions(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position embedding for a ``grid`` of tokens (resized when it is not the built grid)."""
        assert self.pos_embed is not None
        if grid == self.grid:
            return self.pos_embed
        return resize_positions(self.pos_embed, self.grid, grid, int(self.cls_token is not None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C_in, H, W)
        x = self.project(self.pool(x))
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)  # (B, 1 + N, C)
        if self.pos_embed is not None:
            tokens = tokens + self.positions((h, w))
        tokens = self.layers(tokens)
        if self.last:
            return tokens
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class ConvStage(nn.Module):
    """A conv stage: the scaling space's MBConv-SE blocks; the last stage hands tokens (B, N, C) to the head."""

    def __init__(self, plan: StagePlan, last: bool) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(MBConv(block) for block in plan.blocks))
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C_in, H, W)
        x = self.blocks(x)
        return x.flatten(2).transpose(1, 2) if self.last else x


def make_stem(plan: NetworkPlan) -> nn.Module:
    """Patch embedding (p x p conv, stride p, bias) or two 3x3 conv-BN-GELU layers."""
    stem, c_img = plan.stem, plan.image_channels
    if stem.kind == "patch":
        return nn.Conv2d(c_img, plan.stem_channels, plan.stem_stride, plan.stem_stride)
    c = stem.channels
    return nn.Sequential(nn.Conv2d(c_img, c, 3, stem.stride, 1, bias=False), nn.BatchNorm2d(c), nn.GELU(),
                         nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.GELU())


class VitNetwork(nn.Module):
    """[Resize] -> stem -> stages -> LayerNorm -> class token or mean of the tokens -> linear classifier."""

    def __init__(self, plan: NetworkPlan) -> None:
        super().__init__()
        self.size = plan.size
        self.resize_input = plan.has_mixer
        self.stem = make_stem(plan)
        last = len(plan.stages) - 1
        self.stages = nn.Sequential(*((ConvStage if s.kind == "conv" else TokenStage)(s, s.index == last)
                                      for s in plan.stages))
        self.norm = nn.LayerNorm(plan.c_last, eps=LN_EPS)
        self.pool = plan.pool
        self.head = nn.Linear(plan.c_last, plan.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if self.resize_input and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        tokens = self.norm(self.stages(self.stem(x)))  # (B, T, C)
        pooled = tokens[:, 0] if self.pool == "cls" else tokens.mean(dim=1)
        return self.head(pooled)


class Untoken(nn.Module):
    """Tokens (B, H*W, C) back to a (B, C, H, W) map (a latency-table block)."""

    def __init__(self, c: int, h: int, w: int) -> None:
        super().__init__()
        self.shape = (c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], *self.shape)


class TokenHead(nn.Module):
    """LayerNorm -> class token or mean -> linear, on tokens or a map (a latency-table block)."""

    def __init__(self, c: int, classes: int, pool: str) -> None:
        super().__init__()
        self.norm, self.pool, self.head = nn.LayerNorm(c, eps=LN_EPS), pool, nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.flatten(2).transpose(1, 2)
        tokens = self.norm(x)
        return self.head(tokens[:, 0] if self.pool == "cls" else tokens.mean(dim=1))


def make_layer(key: LayerKey) -> nn.Module:
    """One layer of ``layout.layer_keys`` as a module taking (B, tokens, C) tokens (attn, mixer) or a
    (B, C_in, H, W) map (mbconv): what a latency table measures per entry."""
    if key.kind == "mbconv":
        assert key.block is not None
        return MBConv(key.block)
    if key.kind == "attn":
        return AttentionBlock(key.channels, key.heads, key.hidden)
    return MixerBlock(key.channels, key.tokens, key.token_dim, key.hidden)


def resize_positions(pos_embed: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int],
                     prefix: int) -> torch.Tensor:
    """Bicubic resize of a (1, prefix + H*W, C) position embedding from ``grid`` to ``new_grid``;
    the ``prefix`` (class-token) positions are kept as they are."""
    head, body = pos_embed[:, :prefix], pos_embed[:, prefix:]
    c = body.shape[-1]
    body = body.reshape(1, grid[0], grid[1], c).permute(0, 3, 1, 2)  # (1, C, H, W)
    body = F.interpolate(body, size=new_grid, mode="bicubic", align_corners=False)
    return torch.cat([head, body.flatten(2).transpose(1, 2)], dim=1)


def load_state_dict_resized(model: VitNetwork, state: Mapping[str, torch.Tensor], source_grids:
                            Mapping[str, tuple[int, int]]) -> None:
    """Load weights trained at another resolution: each stage's position embedding named in
    ``source_grids`` (key -> the token grid it was trained on) is resized to ``model``'s grid."""
    state = dict(state)
    for key, grid in source_grids.items():
        stage = model.get_submodule(key.rsplit(".", 1)[0])
        assert isinstance(stage, TokenStage)
        state[key] = resize_positions(state[key], tuple(grid), stage.grid, int(stage.cls_token is not None))
    model.load_state_dict(state)


def _fill(param: torch.Tensor, std: float) -> None:
    """Uniform values of standard deviation ``std``."""
    bound = std * math.sqrt(3.0)
    param.uniform_(-bound, bound)


@torch.no_grad()
def init_weights(model: VitNetwork) -> None:
    """Initialize the materialized model (every parameter and BN statistic is written here)."""
    patch = model.stem if isinstance(model.stem, nn.Conv2d) else None
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            _fill(layer.weight, 0.02)
            layer.bias.zero_()
        elif isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            fan_in = layer.in_channels // layer.groups * kh * kw
            fan_out = layer.out_channels * kh * kw // layer.groups
            std = math.sqrt(1.0 / fan_in) if layer is patch else math.sqrt(2.0 / fan_out)
            _fill(layer.weight, std)
            if layer.bias is not None:
                layer.bias.zero_()
        elif isinstance(layer, (nn.LayerNorm, nn.BatchNorm2d)):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
            if isinstance(layer, nn.BatchNorm2d):
                layer.reset_running_stats()
                layer.momentum = BN_MOMENTUM
        elif isinstance(layer, TokenStage):
            for param in (layer.cls_token, layer.pos_embed):
                if param is not None:
                    _fill(param, 0.02)


def build(plan: NetworkPlan) -> nn.Module:
    """The initialized network of ``plan`` on the CPU."""
    with torch.device("meta"):
        model = VitNetwork(plan)
    model.to_empty(device="cpu")
    init_weights(model)
    return model
