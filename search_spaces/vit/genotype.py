"""Vision-transformer / MLP-Mixer / hybrid genotype: a stem and a list of typed stages, as compact strings.

A network is a stem followed by stages. Each stage has a type -- ``conv`` (MBConv with
squeeze-and-excitation, the scaling space's block), ``attn`` (pre-norm multi-head self-attention +
MLP, as in ViT) or ``mixer`` (token-mixing MLP + channel-mixing MLP, as in MLP-Mixer) -- and its own
choices, AutoFormer-style: embedding dimension (channels), depth, heads, MLP ratio, token-MLP
dimension. Stages may halve the resolution on entry (hybrids downsample between stages). The
network ends with a class token (ViT) or global average pooling. Grammars: :func:`parse_stage` and
:func:`parse_stem`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from nas.genotype import Genotype

STAGE_TYPES: tuple[str, ...] = ("conv", "attn", "mixer")
POOLS: tuple[str, ...] = ("cls", "gap")
_TOKEN = re.compile(r"^(se|d|c|s|e|k|h|m|t)(\d+(?:\.\d+)?)$")
# tokens each stage type requires and allows (se is optional for conv: absent = no SE)
_REQUIRED: dict[str, tuple[str, ...]] = {"conv": ("d", "c", "s", "e", "k"), "attn": ("d", "c", "s", "h", "m"),
                                         "mixer": ("d", "c", "s", "t", "m")}
_OPTIONAL: dict[str, tuple[str, ...]] = {"conv": ("se",), "attn": (), "mixer": ()}
_FLOAT_KEYS = ("se", "m")
_STEM = re.compile(r"^(?:patch(\d+)|conv(\d+)_s(\d+))$")


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage (a parsed view; genotypes store the string form).

    Attributes:
        kind: ``conv``, ``attn`` or ``mixer``.
        depth: layers (blocks) in the stage.
        channels: embedding dimension / output channels of the stage.
        stride: 2 halves the resolution on entry (conv: the first block's depthwise stride; attn and
            mixer: a 3x3 stride-2 max-pool before the tokens are formed), else 1.
        expansion, kernel, se: conv only: MBConv expansion ratio, depthwise kernel, SE ratio of the
            block's input channels (0: none).
        heads: attn only: attention heads (divides ``channels``).
        mlp_ratio: attn and mixer: hidden width of the channel MLP over ``channels``.
        token_dim: mixer only: hidden width of the token-mixing MLP.
    """

    kind: str
    depth: int
    channels: int
    stride: int
    expansion: int = 0
    kernel: int = 0
    se: float = 0.0
    heads: int = 0
    mlp_ratio: float = 0.0
    token_dim: int = 0

    @property
    def mlp_hidden(self) -> int:
        """Hidden width of the channel MLP (timm's ``int(dim * mlp_ratio)``); 0 for conv stages."""
        return int(self.channels * self.mlp_ratio)


@functools.lru_cache(maxsize=4096)
def parse_stage(text: str) -> Stage:
    """Parse one stage string such as ``attn_d12_c768_s1_h12_m4``.

    Grammar (``TYPE`` then tokens joined by ``_``, in any order, each key at most once)::

        stage := TYPE ("_" token)+          TYPE := "conv" | "attn" | "mixer"
        token := "d" INT    depth (layers), >= 1                        all types
               | "c" INT    channels / embedding dimension, >= 1        all types
               | "s" INT    stride on entry, 1 or 2                     all types
               | "e" INT    MBConv expansion ratio, >= 1                conv
               | "k" INT    depthwise kernel, odd                       conv
               | "se" NUM   SE ratio of the block input, 0..1 (optional, absent = 0)   conv
               | "h" INT    attention heads, dividing c                 attn
               | "m" NUM    channel-MLP ratio, > 0 (hidden = int(c * m))    attn, mixer
               | "t" INT    token-MLP hidden dimension, >= 1            mixer

    Every key of its type is required (but ``se``); keys of other types are rejected.
    :func:`format_stage` writes the canonical order ``TYPE_d_c_s_...``.

    Raises:
        ValueError: an unknown type or token, a repeated, missing or foreign key, a value out of range.
    """
    kind, _, rest = text.strip().partition("_")
    if kind not in STAGE_TYPES:
        raise ValueError(f"stage {text!r}: type must be one of {', '.join(STAGE_TYPES)} "
                         f"(e.g. 'attn_d12_c768_s1_h12_m4')")
    values: dict[str, str] = {}
    for token in rest.split("_") if rest else []:
        match = _TOKEN.match(token)
        if not match:
            raise ValueError(f"stage {text!r}: bad token {token!r}; see the grammar of parse_stage")
        key, value = match.groups()
        if key in values:
            raise ValueError(f"stage {text!r}: key {key!r} given twice")
        if key not in _REQUIRED[kind] + _OPTIONAL[kind]:
            raise ValueError(f"stage {text!r}: key {key!r} does not apply to a {kind} stage "
                             f"(allowed: {', '.join(_REQUIRED[kind] + _OPTIONAL[kind])})")
        if key not in _FLOAT_KEYS and "." in value:
            raise ValueError(f"stage {text!r}: {key} must be an integer, got {value!r}")
        values[key] = value
    missing = [key for key in _REQUIRED[kind] if key not in values]
    if missing:
        raise ValueError(f"stage {text!r}: missing {', '.join(missing)}")
    ints = {key: int(values[key]) for key in ("d", "c", "s", "e", "k", "h", "t") if key in values}
    stage = Stage(kind, ints["d"], ints["c"], ints["s"], ints.get("e", 0), ints.get("k", 0),
                  float(values.get("se", 0.0)), ints.get("h", 0), float(values.get("m", 0.0)), ints.get("t", 0))
    _check_stage(text, stage)
    return stage


def _check_stage(text: str, stage: Stage) -> None:
    """Range checks of a parsed stage."""
    kind = stage.kind
    problems = {
        "depth d must be >= 1": stage.depth < 1,
        "channels c must be >= 1": stage.channels < 1,
        "stride s must be 1 or 2": stage.stride not in (1, 2),
        "expansion e must be >= 1": kind == "conv" and stage.expansion < 1,
        "kernel k must be odd and >= 1": kind == "conv" and (stage.kernel < 1 or stage.kernel % 2 == 0),
        "se must be in [0, 1]": not 0.0 <= stage.se <= 1.0,
        "heads h must be >= 1 and divide c": kind == "attn" and (stage.heads < 1 or stage.channels % stage.heads),
        "mlp ratio m must give a hidden width >= 1": kind != "conv" and stage.mlp_hidden < 1,
        "token dimension t must be >= 1": kind == "mixer" and stage.token_dim < 1,
    }
    for reason, failed in problems.items():
        if failed:
            raise ValueError(f"stage {text!r}: {reason}")


def _num(value: float) -> str:
    """4.0 -> '4', 3.5 -> '3.5' (shortest round-tripping form)."""
    return str(int(value)) if value == int(value) else repr(value)


def format_stage(stage: Stage) -> str:
    """The canonical string of a stage (inverse of :func:`parse_stage`)."""
    text = f"{stage.kind}_d{stage.depth}_c{stage.channels}_s{stage.stride}"
    if stage.kind == "conv":
        return text + f"_e{stage.expansion}_k{stage.kernel}" + (f"_se{_num(stage.se)}" if stage.se > 0 else "")
    if stage.kind == "attn":
        return text + f"_h{stage.heads}_m{_num(stage.mlp_ratio)}"
    return text + f"_t{stage.token_dim}_m{_num(stage.mlp_ratio)}"


@dataclass(frozen=True, slots=True)
class Stem:
    """The stem: ``patch`` (one p x p conv of stride p, with bias: ViT/Mixer's patch embedding, to the
    first stage's channels) or ``conv`` (3x3 conv-BN-GELU of stride ``stride`` then 3x3 conv-BN-GELU,
    ``channels`` wide: CoAtNet's S0)."""

    kind: str
    stride: int
    channels: int = 0  # conv stem only


@functools.lru_cache(maxsize=1024)
def parse_stem(text: str) -> Stem:
    """Parse ``patch<P>`` (P >= 1) or ``conv<C>_s<S>`` (C >= 1, S in 1, 2); ``ValueError`` otherwise."""
    match = _STEM.match(text.strip())
    if not match:
        raise ValueError(f"stem {text!r}: expected 'patch<P>' (e.g. 'patch16') or 'conv<C>_s<S>' (e.g. 'conv64_s2')")
    patch, channels, stride = match.groups()
    if patch is not None:
        if int(patch) < 1:
            raise ValueError(f"stem {text!r}: patch size must be >= 1")
        return Stem("patch", int(patch))
    if int(channels) < 1 or int(stride) not in (1, 2):
        raise ValueError(f"stem {text!r}: channels must be >= 1 and stride 1 or 2")
    return Stem("conv", int(stride), int(channels))


def format_stem(stem: Stem) -> str:
    """The canonical string of a stem."""
    return f"patch{stem.stride}" if stem.kind == "patch" else f"conv{stem.channels}_s{stem.stride}"


@dataclass(frozen=True, slots=True)
class VitGenotype(Genotype):
    """A stem, a list of typed stages and the pooling.

    Attributes:
        stages: one :func:`parse_stage` string per stage (stored in canonical form).
        stem: a :func:`parse_stem` string.
        pool: ``cls`` (a learned class token is prepended to the last stage's tokens, which must be
            an attention stage, and read out; ViT) or ``gap`` (mean of the last stage's tokens).
    """

    SPACE: ClassVar[str] = "vit"
    stages: tuple[str, ...]
    stem: str = "patch16"
    pool: str = "cls"

    def __post_init__(self) -> None:
        if not isinstance(self.stages, tuple) or not self.stages or not all(isinstance(s, str) for s in self.stages):
            raise ValueError(f"vit genotype: stages must be a non-empty list of stage strings like "
                             f"'attn_d12_c192_s1_h3_m4', got {self.stages!r}")
        if not isinstance(self.stem, str):
            raise ValueError(f"vit genotype: stem must be a string like 'patch16', got {self.stem!r}")
        if self.pool not in POOLS:
            raise ValueError(f"vit genotype: pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        fix = object.__setattr__  # normalize so that equal architectures compare (and hash) equal
        fix(self, "stages", tuple(format_stage(parse_stage(s)) for s in self.stages))
        fix(self, "stem", format_stem(parse_stem(self.stem)))
        if self.pool == "cls" and parse_stage(self.stages[-1]).kind != "attn":
            raise ValueError(f"vit genotype: pool 'cls' needs an attention last stage, got {self.stages[-1]!r}; "
                             f"use pool 'gap'")

    def table(self) -> tuple[Stage, ...]:
        """The stages, parsed."""
        return tuple(parse_stage(s) for s in self.stages)

    def parsed_stem(self) -> Stem:
        """The stem, parsed."""
        return parse_stem(self.stem)

    def canonical(self) -> Any:
        """The network as built: MLP ratios that give the same hidden width share one arch id."""
        stages = []
        for stage in self.table():
            data: dict[str, Any] = {"kind": stage.kind, "d": stage.depth, "c": stage.channels, "s": stage.stride}
            if stage.kind == "conv":
                data.update(e=stage.expansion, k=stage.kernel, se=stage.se)
            else:
                data.update(mlp=stage.mlp_hidden, h=stage.heads, t=stage.token_dim)
            stages.append(data)
        return {"stem": self.stem, "stages": stages, "pool": self.pool}


def vit(dim: int, depth: int, heads: int, patch: int = 16) -> VitGenotype:
    """A plain ViT (Dosovitskiy et al. 2021): patch stem, one attention stage, class token."""
    return VitGenotype((f"attn_d{depth}_c{dim}_s1_h{heads}_m4",), f"patch{patch}", "cls")


def mixer(dim: int, depth: int, token_dim: int, patch: int = 16) -> VitGenotype:
    """An MLP-Mixer (Tolstikhin et al. 2021): patch stem, one mixer stage (channel MLP 4x), average pooling."""
    return VitGenotype((f"mixer_d{depth}_c{dim}_s1_t{token_dim}_m4",), f"patch{patch}", "gap")


KNOWN: dict[str, VitGenotype] = {
    # ViT-Ti/S/B with 16x16 patches (DeiT's Ti and S, the ViT paper's B): width, depth, heads
    "vit-ti16": vit(192, 12, 3),
    "vit-s16": vit(384, 12, 6),
    "vit-b16": vit(768, 12, 12),
    # Mixer-S/16 and B/16 (Table 1 of the Mixer paper): hidden C, blocks, token-MLP D_S (channel MLP D_C = 4C)
    "mixer-s16": mixer(512, 8, 256),
    "mixer-b16": mixer(768, 12, 384),
    # CoAtNet-0-like (Dai et al. 2021, Table 1 / 3: C-C-T-T, S0 conv 64, S1 MBConv x2 96, S2 MBConv x3 192,
    # S3 Transformer x5 384, S4 Transformer x2 768, each stage halving the resolution; head dim 32,
    # MBConv expansion 4 with SE 0.25; 25M params, 4.2G FLOPs at 224). Here with absolute learned
    # position embeddings instead of relative attention, and the scaling space's MBConv.
    "coatnet-0": VitGenotype(("conv_d2_c96_s2_e4_k3_se0.25", "conv_d3_c192_s2_e4_k3_se0.25",
                              "attn_d5_c384_s2_h12_m4", "attn_d2_c768_s2_h24_m4"), "conv64_s2", "gap"),
}
