"""ViT / MLP-Mixer / hybrid space: a stem and up to ``max_stages`` typed stages, AutoFormer-style choices per stage.

Flat params (fixed keys for one set of options, so every Optuna sampler works):

* ``stem`` (one of ``stems``), ``pool`` (``cls``/``gap``; read only when the last stage is attention,
  the network averages otherwise);
* per stage ``i``: ``s{i}_type`` (conv/attn/mixer), ``s{i}_depth`` (0 = no such stage; stage 0 has at
  least 1 layer), ``s{i}_channels``, ``s{i}_stride`` (1, or 2 to halve the resolution on entry),
  ``s{i}_heads`` and ``s{i}_mlp_ratio`` (attn), ``s{i}_token_dim`` and ``s{i}_mlp_ratio`` (mixer),
  ``s{i}_expansion`` and ``s{i}_kernel`` (conv; SE ratio fixed by the ``se`` option).

Params a stage's type does not use, and those of absent stages, are ignored by :meth:`from_params`
and set to each grid's first value by :meth:`to_params`; stages of depth 0 are skipped, so the
remaining ones close up. The genotype holds only what the network uses, and its ``arch_id`` hashes
the network as built (MLP ratios that give the same hidden width are one architecture).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from optuna.distributions import CategoricalDistribution

from nas.config import Field, SpecError
from nas.space import Cost, SearchSpace, Task, check_params
from search_spaces.vit.genotype import (KNOWN, POOLS, STAGE_TYPES, Stage, VitGenotype, format_stage, format_stem,
                                       parse_stem)
from search_spaces.vit.layout import NetworkPlan, plan_cost, plan_network

# per-stage param -> the Stage field it sets and the grid option it draws from
STAGE_PARAMS: dict[str, tuple[str, str]] = {
    "type": ("kind", "types"), "depth": ("depth", "depths"), "channels": ("channels", "dims"),
    "stride": ("stride", "strides"), "heads": ("heads", "heads"), "mlp_ratio": ("mlp_ratio", "mlp_ratios"),
    "token_dim": ("token_dim", "token_dims"), "expansion": ("expansion", "expansions"),
    "kernel": ("kernel", "kernels"),
}
USED: dict[str, tuple[str, ...]] = {  # per-stage params each type reads
    "conv": ("type", "depth", "channels", "stride", "expansion", "kernel"),
    "attn": ("type", "depth", "channels", "stride", "heads", "mlp_ratio"),
    "mixer": ("type", "depth", "channels", "stride", "token_dim", "mlp_ratio"),
}
_GRID = {  # the searched values of each preset (options override them)
    "imagenet": {"types": ["conv", "attn", "mixer"], "stems": ["patch16", "conv64_s2"], "max_stages": 4,
                 "depths": [0, 2, 4, 6, 8], "dims": [192, 384, 576, 768], "strides": [1, 2], "heads": [3, 6, 12],
                 "mlp_ratios": [3.0, 3.5, 4.0], "token_dims": [128, 256, 384], "expansions": [4, 6],
                 "kernels": [3, 5]},
    "proxy": {"types": ["conv", "attn", "mixer"], "stems": ["patch2", "patch4", "conv16_s2"], "max_stages": 3,
              "depths": [0, 1, 2, 3], "dims": [16, 24, 32, 48], "strides": [1, 2], "heads": [1, 2, 4],
              "mlp_ratios": [2.0, 3.0, 4.0], "token_dims": [8, 16, 32], "expansions": [2, 4], "kernels": [3, 5]},
}
_LISTS = {"types": str, "stems": str, "depths": int, "dims": int, "strides": int, "heads": int, "mlp_ratios": float,
          "token_dims": int, "expansions": int, "kernels": int}


class VitSpace(SearchSpace[VitGenotype]):
    """Hybrid conv / attention / mixer networks; ViT-Ti/S/B, Mixer-S/B and a CoAtNet-0-like hybrid published.

    Options: ``preset`` (``imagenet``: 224x224, 1,000 classes; ``proxy``: small images, trains on CPU
    in seconds), the searched values ``types``, ``stems``, ``depths``, ``dims``, ``strides``,
    ``heads``, ``mlp_ratios``, ``token_dims``, ``expansions``, ``kernels`` (each an empty list for the
    preset's), ``max_stages`` (0: the preset's), ``pools`` and ``se`` (SE ratio of conv stages).
    """

    name = "vit"
    genotype = VitGenotype
    PRESETS = {
        "imagenet": {"input_shape": (3, 224, 224), "num_classes": 1000},
        "proxy": {"input_shape": (1, 8, 8), "num_classes": 10},
    }
    DEFAULT_PRESET = "imagenet"
    OPTIONS = {
        **{key: Field(list, default=[], items=item, help=f"searched {key} (empty: the preset's)")
           for key, item in _LISTS.items()},
        "max_stages": Field(int, default=0, min=0, help="stages at most (0: the preset's)"),
        "pools": Field(list, default=list(POOLS), items=str, help="cls and/or gap"),
        "se": Field(float, default=0.25, min=0.0, max=1.0, help="SE ratio of conv stages (0: none)"),
        "width": Field(int, default=0, min=0, help="first stage's channels, every stage scaled alike (0: as given)"),
    }
    WIDTH_OPTION = "width"  # what `nas compare` scales to match compute
    # transformers want AdamW and a warm-up (brief training's defaults for this space; a spec overrides them);
    # the proxy's few-step budgets train best at a high rate (lr 1e-2 measured on digits, 4 epochs)
    EVALUATOR_DEFAULTS = {"train": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "warmup": 0.1}}
    PROXY_LR = 1e-2

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.grid: dict[str, tuple[Any, ...]] = _grid_of(self.options)
        self.max_stages: int = self.options["max_stages"] or _GRID[self.preset]["max_stages"]
        self.se: float = self.options["se"]
        self.grid["stems"] = tuple(format_stem(parse_stem(stem)) for stem in self.grid["stems"])  # canonical
        self._distributions = self._make_distributions()

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The fields, then the searched values (the preset's where an option is empty): each must
        make a valid stage (``SpecError`` names the option)."""
        checked = super().check_options(options)
        _check_grid(_grid_of(checked))
        return checked

    def evaluator_defaults(self, evaluator: str) -> dict[str, Any]:
        """AdamW with weight decay 0.05 and a 10% warm-up; lr 1e-3 (1e-2 at the proxy preset)."""
        defaults = super().evaluator_defaults(evaluator)
        if evaluator == "train" and self.preset == "proxy":
            defaults["lr"] = self.PROXY_LR
        return defaults

    def known(self) -> dict[str, VitGenotype]:
        """ViT-Ti/16, S/16, B/16, Mixer-S/16, B/16 and a CoAtNet-0-like hybrid (see ``genotype.KNOWN``)."""
        return dict(KNOWN)

    # ----- params ----------------------------------------------------------------------------------
    def _choices(self, key: str) -> tuple[Any, ...]:
        """The values of one flat param."""
        if key in ("stem", "pool"):
            return self.grid[key + "s"]
        index, _, name = key[1:].partition("_")
        values = self.grid[STAGE_PARAMS[name][1]]
        return tuple(v for v in values if v > 0) if name == "depth" and index == "0" else values

    def _keys(self, count: int) -> list[str]:
        return ["stem", "pool"] + [f"s{i}_{name}" for i in range(count) for name in STAGE_PARAMS]

    def _make_distributions(self) -> dict[str, Any]:
        return {key: CategoricalDistribution(self._choices(key)) for key in self._keys(self.max_stages)}

    def distributions(self) -> dict[str, Any]:
        return dict(self._distributions)

    def _encode(self, genotype: VitGenotype, count: int) -> dict[str, Any]:
        """Flat params of ``genotype`` over ``count`` stage slots, unchecked (unused params: first values)."""
        params: dict[str, Any] = {key: self._choices(key)[0] for key in self._keys(count)}
        params.update(stem=genotype.stem, pool=genotype.pool)
        for i in range(count):
            params[f"s{i}_depth"] = 0
        for i, stage in enumerate(genotype.table()):
            for name in USED[stage.kind]:
                params[f"s{i}_{name}"] = getattr(stage, STAGE_PARAMS[name][0])
            if stage.kind == "conv":
                params[f"s{i}_se"] = stage.se  # not searched; kept so mutating a genotype keeps its SE
        return params

    def _decode(self, params: Mapping[str, Any], count: int) -> VitGenotype:
        """The genotype of (checked or loose) params over ``count`` stage slots; depth-0 stages skipped."""
        stages = []
        for i in range(count):
            if params[f"s{i}_depth"] == 0:
                continue
            kind = params[f"s{i}_type"]
            fields = {STAGE_PARAMS[name][0]: params[f"s{i}_{name}"] for name in USED[kind]}
            if kind == "conv":
                fields["se"] = params.get(f"s{i}_se", self.se)
            stages.append(format_stage(Stage(**fields)))
        if not stages:
            raise ValueError("params: every stage has depth 0")
        last = stages[-1].split("_", 1)[0]
        return VitGenotype(tuple(stages), params["stem"], params["pool"] if last == "attn" else "gap")

    def to_params(self, genotype: VitGenotype) -> dict[str, Any]:
        """Flat params of ``genotype``; ``ValueError`` when it lies outside the searched grid."""
        if len(genotype.stages) > self.max_stages:
            raise ValueError(f"genotype has {len(genotype.stages)} stages; the space has at most {self.max_stages}")
        for stage in genotype.table():
            if stage.kind == "conv" and stage.se != self.se:
                raise ValueError(f"genotype stage {format_stage(stage)!r}: SE ratio is not the space's {self.se:g}")
        params = self._encode(genotype, self.max_stages)
        for key in [k for k in params if k.endswith("_se")]:
            del params[key]
        check_params(params, self._distributions)
        return params

    def from_params(self, params: Mapping[str, Any]) -> VitGenotype:
        check_params(params, self._distributions)
        return self._decode(params, self.max_stages)

    def contains(self, genotype: VitGenotype) -> bool:
        try:
            self.to_params(genotype)
        except ValueError:
            return False
        return True

    # ----- search operators ------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> VitGenotype:
        return self.from_params({key: rng.choice(dist.choices) for key, dist in self._distributions.items()})

    def _relevant(self, genotype: VitGenotype, count: int) -> list[str]:
        """Params that change ``genotype``: stem, pool (attention last), the stages' used params, absent depths."""
        keys = ["stem"] + (["pool"] if genotype.table()[-1].kind == "attn" else [])
        for i in range(count):
            kind = genotype.table()[i].kind if i < len(genotype.stages) else None
            keys += [f"s{i}_{name}" for name in USED[kind]] if kind else [f"s{i}_depth"]
        return keys

    def _variants(self, genotype: VitGenotype, key: str, count: int) -> list[VitGenotype]:
        """Genotypes with param ``key`` set to each of its other values."""
        params = self._encode(genotype, count)
        out = []
        for value in self._choices(key):
            if value == params[key]:
                continue
            try:
                child = self._decode({**params, key: value}, count)
            except ValueError:  # e.g. heads that do not divide a published stage's width
                continue
            if child != genotype:
                out.append(child)
        return out

    def mutate(self, genotype: VitGenotype, rng: random.Random) -> VitGenotype:
        """One param changed: a stage's type, depth (adding or removing a stage), width, stride, heads, MLP
        ratio, token-MLP width, expansion or kernel; or the stem or the pooling."""
        count = max(self.max_stages, len(genotype.stages))
        keys = self._relevant(genotype, count)
        rng.shuffle(keys)
        for key in keys:
            variants = self._variants(genotype, key, count)
            if variants:
                return rng.choice(variants)
        raise ValueError(f"vit: {self.label(genotype)} has no neighbour in this space")

    def neighbours(self, genotype: VitGenotype) -> list[VitGenotype]:
        count = max(self.max_stages, len(genotype.stages))
        seen: dict[str, VitGenotype] = {}
        for key in self._relevant(genotype, count):
            for child in self._variants(genotype, key, count):
                seen.setdefault(child.arch_id, child)
        return list(seen.values())

    def crossover(self, a: VitGenotype, b: VitGenotype, rng: random.Random) -> VitGenotype:
        """Stem, pooling and each stage slot (all its params) from either parent."""
        count = max(self.max_stages, len(a.stages), len(b.stages))
        pa, pb = self._encode(a, count), self._encode(b, count)
        child = {key: (pa if rng.random() < 0.5 else pb)[key] for key in ("stem", "pool")}
        for i in range(count):
            source = pa if rng.random() < 0.5 else pb
            child.update({key: value for key, value in source.items() if key.startswith(f"s{i}_")})
        if all(child[f"s{i}_depth"] == 0 for i in range(count)):
            child.update({key: value for key, value in pa.items() if key.startswith("s0_")})
        return self._decode(child, count)

    # ----- model -----------------------------------------------------------------------------------
    def plan(self, genotype: VitGenotype, task: Task | None = None) -> NetworkPlan:
        """The laid-out network (stem, stages, token grids) for ``task``."""
        task = task or self.default_task()
        return plan_network(scale_width(genotype, self.options["width"]), task.input_shape, task.num_classes)

    def build(self, genotype: VitGenotype, task: Task | None = None) -> Any:
        from search_spaces.vit.build import build

        return build(self.plan(genotype, task))

    def cost(self, genotype: VitGenotype, task: Task | None = None) -> Cost:
        """Params and MACs (conv, linear and attention's matrix products) from the layout; nothing is built."""
        return Cost(*plan_cost(self.plan(genotype, task)))

    def latency_blocks(self, genotype: VitGenotype, task: Task | None = None) -> list[str]:
        """Stem, each stage's entry, layers and exit, and the head (``latency.py``)."""
        from search_spaces.vit.latency import network_blocks

        return network_blocks(self.plan(genotype, task))

    def latency_universe(self, task: Task | None = None) -> list[str]:
        """Every block of every stage choice from every reachable (channels, size); proxy preset only."""
        from search_spaces.vit.latency import universe

        return universe(self, task or self.default_task())

    def latency_module(self, key: str) -> Any:
        from search_spaces.vit.latency import module

        return module(key)

    def details(self, genotype: VitGenotype) -> dict[str, Any]:
        plan = self.plan(genotype)
        return {"stem": genotype.stem, "stages": list(genotype.stages), "pool": genotype.pool,
                "grids": [list(stage.size) for stage in plan.stages],
                "tokens": [stage.tokens for stage in plan.stages]}

    def label(self, genotype: VitGenotype) -> str:
        """``stem | stage ... | pool``, prefixed by the published name if there is one."""
        text = f"{genotype.stem} | {' '.join(genotype.stages)} | {genotype.pool}"
        names = [name for name, known in KNOWN.items() if known == genotype]
        return f"{names[0]} ({text})" if names else text

    def report(self, records: list[dict[str, Any]], folder: Path) -> list[str]:
        """``stage_types.csv``: the candidates grouped by stage-type family and pattern (see ``report.py``)."""
        from search_spaces.vit.report import write_report

        return write_report(records, Path(folder))

    def draw(self, genotype: VitGenotype, path: str) -> None:
        from search_spaces.vit.draw import draw_layout

        draw_layout(self.plan(genotype), f"{self.label(genotype)}   [{self.preset}]", path)


def scale_width(genotype: VitGenotype, width: int) -> VitGenotype:
    """``genotype`` with its first stage ``width`` channels wide and every other stage (and a conv stem)
    scaled by the same factor; attention widths rounded to a multiple of their heads. 0: unchanged."""
    table = genotype.table()
    if not width or width == table[0].channels:
        return genotype
    factor = width / table[0].channels

    def scaled(c: int, multiple: int = 1) -> int:
        return multiple * max(1, round(c * factor / multiple))

    stages = tuple(format_stage(replace(s, channels=scaled(s.channels, s.heads if s.kind == "attn" else 1)))
                   for s in table)
    stem = genotype.parsed_stem()
    if stem.kind == "conv":
        stem = replace(stem, channels=scaled(stem.channels))
    return VitGenotype(stages, format_stem(stem), genotype.pool)


def _grid_of(options: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The searched values: each list option, or the preset's values where it is empty; and ``pools``."""
    preset = _GRID[options["preset"]]
    grid = {key: tuple(options[key] or preset[key]) for key in _LISTS}
    grid["pools"] = tuple(options["pools"])
    return grid


def _check_grid(grid: Mapping[str, tuple[Any, ...]]) -> None:
    """Reject searched values that make no valid stage (``SpecError`` names the option)."""
    rules = {
        "types": (lambda v: v in STAGE_TYPES, f"one of {', '.join(STAGE_TYPES)}"),
        "pools": (lambda v: v in POOLS, f"one of {', '.join(POOLS)}"),
        "depths": (lambda v: v >= 0, "integers >= 0 (0: no stage)"),
        "strides": (lambda v: v in (1, 2), "1 or 2"),
        "kernels": (lambda v: v >= 1 and v % 2 == 1, "odd integers"),
        "mlp_ratios": (lambda v: v > 0, "numbers > 0"),
        **{key: (lambda v: v >= 1, "integers >= 1") for key in ("dims", "heads", "token_dims", "expansions")},
    }
    for key, (ok, words) in rules.items():
        if not grid[key] or not all(ok(v) for v in grid[key]):
            raise SpecError(f"space.{key}: expected a non-empty list of {words}, got {list(grid[key])}")
    if not any(d > 0 for d in grid["depths"]):
        raise SpecError(f"space.depths: needs a depth >= 1, got {list(grid['depths'])}")
    for stem in grid["stems"]:
        try:
            parse_stem(stem)
        except ValueError as err:
            raise SpecError(f"space.stems: {err}") from None
    bad = [(d, h) for d in grid["dims"] for h in grid["heads"] if d % h] if "attn" in grid["types"] else []
    if bad:
        raise SpecError(f"space.heads: every head count must divide every dim; {bad[0][1]} does not divide {bad[0][0]}")
    if any(int(d * m) < 1 for d in grid["dims"] for m in grid["mlp_ratios"]):
        raise SpecError("space.mlp_ratios: a ratio gives an MLP of width 0 for some dim")
