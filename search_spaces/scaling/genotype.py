"""EfficientNet genotype: a baseline stage table plus the compound-scaling multipliers (Tan & Le, 2019).

The stage table is written in a compact, timm-like string form, one string per stage (grammar in
:func:`parse_stage`). The network a genotype stands for is the table scaled by ``width`` (channels,
:func:`round_filters`) and ``depth`` (repeats, :func:`round_repeats`), run at ``resolution``; the
rounding rules are those of the TensorFlow reference (``efficientnet_model.round_filters`` /
``round_repeats``), so the published B0-B7 come out layer for layer.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from nas.genotype import Genotype

_TOKEN = re.compile(r"^(se|r|k|s|e|c)(\d+(?:\.\d+)?)$")
_REQUIRED = ("r", "k", "s", "e", "c")


@dataclass(frozen=True, slots=True)
class Stage:
    """One row of the stage table (a parsed view; genotypes store the string form)."""

    repeats: int
    kernel: int
    stride: int
    expansion: int
    channels: int
    se: float  # squeeze-and-excitation ratio of the block's input channels; 0 = no SE


@functools.lru_cache(maxsize=4096)
def parse_stage(text: str) -> Stage:
    """Parse one stage string such as ``r2_k3_s2_e6_c24_se0.25``.

    Grammar (tokens joined by ``_``, in any order, each key at most once)::

        stage := token ("_" token)*
        token := "r" INT     repeats: blocks in the stage, >= 1
               | "k" INT     depthwise kernel size, odd, >= 1
               | "s" INT     stride of the stage's first block, 1 or 2 (later blocks use 1)
               | "e" INT     expansion ratio of the inverted bottleneck, >= 1 (1: no expansion conv)
               | "c" INT     output channels (before width scaling), >= 1
               | "se" NUM    squeeze-and-excitation ratio, 0 <= se <= 1, of the block's INPUT
                             channels (reduced = max(1, int(c_in * se))); absent or 0: no SE

    ``r``, ``k``, ``s``, ``e`` and ``c`` are required. :func:`format_stage` writes the canonical
    form: ``r_k_s_e_c`` then ``_se`` only when SE is on.

    Raises:
        ValueError: a token outside the grammar, a repeated or missing key, or a value out of range.
    """
    values: dict[str, str] = {}
    for token in text.strip().split("_"):
        match = _TOKEN.match(token)
        if not match:
            raise ValueError(f"stage {text!r}: bad token {token!r}; expected r<int>, k<int>, s<int>, e<int>, "
                             f"c<int> or se<number>, e.g. 'r2_k3_s2_e6_c24_se0.25'")
        key, value = match.groups()
        if key in values:
            raise ValueError(f"stage {text!r}: key {key!r} given twice")
        if key != "se" and "." in value:
            raise ValueError(f"stage {text!r}: {key} must be an integer, got {value!r}")
        values[key] = value
    missing = [key for key in _REQUIRED if key not in values]
    if missing:
        raise ValueError(f"stage {text!r}: missing {', '.join(missing)} (e.g. 'r2_k3_s2_e6_c24_se0.25')")
    stage = Stage(int(values["r"]), int(values["k"]), int(values["s"]), int(values["e"]), int(values["c"]),
                  float(values.get("se", 0.0)))
    _check_stage(text, stage)
    return stage


def _check_stage(text: str, stage: Stage) -> None:
    """Range checks of a parsed stage."""
    problems = {
        "repeats r must be >= 1": stage.repeats < 1,
        "kernel k must be odd and >= 1": stage.kernel < 1 or stage.kernel % 2 == 0,
        "stride s must be 1 or 2": stage.stride not in (1, 2),
        "expansion e must be >= 1": stage.expansion < 1,
        "channels c must be >= 1": stage.channels < 1,
        "se must be in [0, 1]": not 0.0 <= stage.se <= 1.0,
    }
    for reason, failed in problems.items():
        if failed:
            raise ValueError(f"stage {text!r}: {reason}")


def format_stage(stage: Stage) -> str:
    """The canonical string of a stage (inverse of :func:`parse_stage`)."""
    text = f"r{stage.repeats}_k{stage.kernel}_s{stage.stride}_e{stage.expansion}_c{stage.channels}"
    return text + (f"_se{stage.se!r}" if stage.se > 0 else "")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (ties up), at least ``min_value``
    (default ``divisor``), and never below 90% of ``value`` (then one more ``divisor`` is added)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width`` and rounded as the reference does (:func:`make_divisible`)."""
    return make_divisible(channels * width, divisor)


def round_repeats(repeats: int, depth: float) -> int:
    """Repeats scaled by ``depth``, rounded up (the reference's ``ceil``)."""
    return int(math.ceil(depth * repeats))


def _number(name: str, value: Any, low: float, high: float | None = None, low_open: bool = False) -> float:
    """``value`` as a float in range, else ``ValueError`` naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"scaling genotype: {name} must be a number, got {value!r}")
    if (value <= low if low_open else value < low) or (high is not None and value >= high):
        bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and < {high:g}" if high is not None else "")
        raise ValueError(f"scaling genotype: {name} must be {bounds}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``, else ``ValueError`` naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"scaling genotype: {name} must be an integer >= {low}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ScalingGenotype(Genotype):
    """A baseline stage table and the compound-scaling multipliers applied to it.

    Attributes:
        stages: the baseline stage table, one :func:`parse_stage` string per stage (stored in
            canonical form).
        width: channel multiplier (stem, every stage and head; :func:`round_filters`).
        depth: repeat multiplier (every stage; :func:`round_repeats`).
        resolution: input side length at the ImageNet scale (224 for B0); presets map it to the
            size the network runs at.
        dropout: dropout rate before the classifier.
        stem: stem conv output channels before width scaling.
        head: final 1x1 conv channels before width scaling.
        drop_connect: stochastic-depth rate of the last block; block i of n uses ``rate * i / n``.
    """

    SPACE: ClassVar[str] = "scaling"
    stages: tuple[str, ...]
    width: float = 1.0
    depth: float = 1.0
    resolution: int = 224
    dropout: float = 0.2
    stem: int = 32
    head: int = 1280
    drop_connect: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.stages, tuple) or not self.stages:
            raise ValueError(f"scaling genotype: stages must be a non-empty list of stage strings, got {self.stages!r}")
        for stage in self.stages:
            if not isinstance(stage, str):
                raise ValueError(f"scaling genotype: each stage must be a string like 'r1_k3_s1_e1_c16_se0.25', "
                                 f"got {stage!r}")
        # normalize so that equal architectures compare (and hash to an arch_id) equal
        fix = object.__setattr__
        fix(self, "stages", tuple(format_stage(parse_stage(s)) for s in self.stages))
        fix(self, "width", _number("width", self.width, 0.0, low_open=True))
        fix(self, "depth", _number("depth", self.depth, 0.0, low_open=True))
        fix(self, "dropout", _number("dropout", self.dropout, 0.0, 1.0))
        fix(self, "drop_connect", _number("drop_connect", self.drop_connect, 0.0, 1.0))
        _integer("resolution", self.resolution, 1)
        _integer("stem", self.stem, 1)
        _integer("head", self.head, 1)

    def table(self) -> tuple[Stage, ...]:
        """The baseline stage table, parsed."""
        return tuple(parse_stage(s) for s in self.stages)

    def scaled_table(self) -> tuple[Stage, ...]:
        """The stage table of the network itself: channels and repeats after width/depth scaling."""
        return tuple(Stage(round_repeats(s.repeats, self.depth), s.kernel, s.stride, s.expansion,
                           round_filters(s.channels, self.width), s.se) for s in self.table())

    def canonical(self) -> Any:
        """The network as built: multipliers that round to the same layers share one arch id."""
        return {"stages": [format_stage(s) for s in self.scaled_table()],
                "stem": round_filters(self.stem, self.width), "head": round_filters(self.head, self.width),
                "resolution": self.resolution, "dropout": self.dropout, "drop_connect": self.drop_connect}


# Table 1 of the paper (MBConv1 k3x3 16 ch x1, MBConv6 k3x3 24 ch x2, ...): the B0 baseline.
B0_STAGES: tuple[str, ...] = (
    "r1_k3_s1_e1_c16_se0.25",
    "r2_k3_s2_e6_c24_se0.25",
    "r2_k5_s2_e6_c40_se0.25",
    "r3_k3_s2_e6_c80_se0.25",
    "r3_k5_s1_e6_c112_se0.25",
    "r4_k5_s2_e6_c192_se0.25",
    "r1_k3_s1_e6_c320_se0.25",
)

# (width, depth, resolution, dropout) of the reference's ``efficientnet_params``.
_B_SERIES: dict[str, tuple[float, float, int, float]] = {
    "efficientnet-b0": (1.0, 1.0, 224, 0.2),
    "efficientnet-b1": (1.0, 1.1, 240, 0.2),
    "efficientnet-b2": (1.1, 1.2, 260, 0.3),
    "efficientnet-b3": (1.2, 1.4, 300, 0.3),
    "efficientnet-b4": (1.4, 1.8, 380, 0.4),
    "efficientnet-b5": (1.6, 2.2, 456, 0.4),
    "efficientnet-b6": (1.8, 2.6, 528, 0.5),
    "efficientnet-b7": (2.0, 3.1, 600, 0.5),
}

KNOWN: dict[str, ScalingGenotype] = {
    name: ScalingGenotype(B0_STAGES, width=w, depth=d, resolution=r, dropout=p)
    for name, (w, d, r, p) in _B_SERIES.items()
}
