"""The space's two search parameterizations: compound coefficients, or the baseline stage table itself.

``coefficients`` (Tan & Le's step 1): params ``point``, one of the grid's (alpha, beta, gamma)
with ``alpha * beta^2 * gamma^2`` within ``grid_tolerance`` of ``grid_target`` (depth x alpha, width
x beta, resolution x gamma at the space's ``phi``), and ``dropout``. One categorical param keeps
every controller (random, TPE, evolution, grid) on the constraint; mutation moves to an adjacent
grid point. Published B1-B7 are not points of this grid (they are B0 scaled to other phi).

``baseline`` (how B0 was found, MnasNet-style): per stage ``s<i>_kernel`` {3, 5}, ``s<i>_expansion``
{1, 3, 6}, ``s<i>_repeats`` (the baseline's +-1, at least 1), ``s<i>_se`` (on/off) and
``s<i>_width`` {0.75, 1.0, 1.25} (channels ``make_divisible(c * width)``); strides, stem, head and
multipliers stay the baseline's. Where two widths round to the same channels, ``to_params`` reports
the one nearest 1.0.

Both keep every field they do not search, so ``mutate`` and ``crossover`` also work on genotypes
from outside the mode (e.g. mutating B3's stage table keeps B3's multipliers).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Mapping

from optuna.distributions import CategoricalDistribution

from nas.space import check_params
from search_spaces.scaling.compound import coefficient_grid, coefficients_of, scale
from search_spaces.scaling.genotype import ScalingGenotype, Stage, format_stage, make_divisible

DROPOUTS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)  # the B0-B7 values
KERNELS: tuple[int, ...] = (3, 5)
EXPANSIONS: tuple[int, ...] = (1, 3, 6)
WIDTHS: tuple[float, ...] = (0.75, 1.0, 1.25)
SE_RATIO = 0.25  # the ratio a stage gets when SE is switched on and the baseline stage has none


class CoefficientSearch:
    """Params ``point`` (a grid point ``"alpha,beta,gamma"``, applied at ``phi``) and ``dropout``."""

    KEYS = ("point", "dropout")

    def __init__(self, baseline: ScalingGenotype, options: Mapping[str, Any]) -> None:
        self.baseline = baseline
        self.phi: float = options["phi"]
        self.step: float = options["grid_step"]
        self.dropout: float = options["dropout"]
        self.high: float = options["coefficient_max"]
        grid = coefficient_grid(self.step, options["grid_tolerance"], options["grid_target"])
        self.grid = [t for t in grid if max(t) <= self.high]
        if not self.grid:
            raise ValueError("space: the coefficient grid is empty; raise grid_tolerance or coefficient_max")
        self._labels = {point_label(c): c for c in self.grid}
        self._by_multipliers = {}
        for c in self.grid:  # the first grid point of each (depth, width, resolution)
            g = scale(self.baseline, *c, self.phi)
            self._by_multipliers.setdefault((g.depth, g.width, g.resolution), c)
        self._distributions = {"point": CategoricalDistribution(tuple(self._labels)),
                               "dropout": CategoricalDistribution(DROPOUTS)}

    def distributions(self) -> dict[str, Any]:
        """``point`` among the grid's points (so every sampler keeps the FLOPs constraint); dropout
        among the B-series values."""
        return dict(self._distributions)

    def point_of(self, genotype: ScalingGenotype) -> tuple[float, float, float] | None:
        """The grid point that scales the baseline into ``genotype``'s multipliers, if any."""
        return self._by_multipliers.get((genotype.depth, genotype.width, genotype.resolution))

    def to_params(self, genotype: ScalingGenotype) -> dict[str, Any]:
        """The grid point and dropout that give ``genotype``; ``ValueError`` outside this search."""
        _require_same(genotype, self.baseline, ("stages", "stem", "head", "drop_connect"), "coefficients")
        point = self.point_of(genotype)
        if point is None:
            alpha, beta, gamma = coefficients_of(genotype, self.baseline, self.phi)
            raise ValueError(f"genotype outside the coefficients space: (alpha, beta, gamma) = ({alpha:.4g}, "
                             f"{beta:.4g}, {gamma:.4g}) at phi {self.phi:g} is not a point of the grid")
        params = {"point": point_label(point), "dropout": genotype.dropout}
        check_params(params, self._distributions)
        return params

    def from_params(self, params: Mapping[str, Any]) -> ScalingGenotype:
        """The baseline scaled by the point's coefficients at phi."""
        check_params(params, self._distributions)
        return scale(self.baseline, *self._labels[params["point"]], self.phi, params["dropout"])

    def sample(self, rng: random.Random) -> ScalingGenotype:
        """A grid point meeting the FLOPs constraint, at the space's phi and dropout."""
        alpha, beta, gamma = rng.choice(self.grid)
        return scale(self.baseline, alpha, beta, gamma, self.phi, self.dropout)

    def all_grid_points(self) -> list[tuple[ScalingGenotype, tuple[float, float, float]]]:
        """(genotype, (alpha, beta, gamma)) of every grid point at phi and the option's dropout,
        ordered by alpha, beta, gamma (several points may build the same network)."""
        return [(scale(self.baseline, *c, self.phi, self.dropout), c) for c in self.grid]

    def grid_points(self) -> list[tuple[ScalingGenotype, tuple[float, float, float]]]:
        """:meth:`all_grid_points` with each network (arch id) listed once, at its first point."""
        points: dict[str, tuple[ScalingGenotype, tuple[float, float, float]]] = {}
        for genotype, coefficients in self.all_grid_points():
            points.setdefault(genotype.arch_id, (genotype, coefficients))
        return list(points.values())

    def neighbours(self, genotype: ScalingGenotype) -> list[ScalingGenotype]:
        """Grid points one step away in each coefficient (moving along the constraint: a step in one
        coefficient is paid for in another); from a genotype off the grid (e.g. B3), the nearest
        grid points. Stage table and dropout are kept."""
        point = self.point_of(genotype)
        here = point or coefficients_of(genotype, self.baseline, self.phi)
        distance = {c: max(abs(a - b) for a, b in zip(c, here)) for c in self.grid}
        reach = self.step if point else min(distance.values())
        out = []
        for c in (c for c, d in distance.items() if d <= reach + 1e-9):
            scaled = scale(self.baseline, *c, self.phi)
            child = dataclasses.replace(genotype, depth=scaled.depth, width=scaled.width,
                                        resolution=scaled.resolution)
            if child != genotype and child not in out:
                out.append(child)
        return out

    def crossover(self, a: ScalingGenotype, b: ScalingGenotype, rng: random.Random) -> ScalingGenotype:
        """One parent's grid point (a network between two grid points would leave the constraint)."""
        return dataclasses.replace(a if rng.random() < 0.5 else b, stages=a.stages, dropout=a.dropout)


def point_label(coefficients: tuple[float, float, float]) -> str:
    """A grid point as a param value: ``"1.2,1.1,1.15"`` (alpha, beta, gamma)."""
    return ",".join(f"{c:g}" for c in coefficients)


class BaselineSearch:
    """Per-stage kernel, expansion, repeats, SE and width around the baseline table (MnasNet-like)."""

    def __init__(self, baseline: ScalingGenotype, options: Mapping[str, Any]) -> None:
        self.baseline = baseline
        self.base = baseline.table()
        self._distributions: dict[str, Any] = {}
        for i, stage in enumerate(self.base, start=1):
            repeats = tuple(r for r in (stage.repeats - 1, stage.repeats, stage.repeats + 1) if r >= 1)
            self._distributions.update({
                f"s{i}_kernel": CategoricalDistribution(KERNELS),
                f"s{i}_expansion": CategoricalDistribution(EXPANSIONS),
                f"s{i}_repeats": CategoricalDistribution(repeats),
                f"s{i}_se": CategoricalDistribution((False, True)),
                f"s{i}_width": CategoricalDistribution(WIDTHS),
            })

    def distributions(self) -> dict[str, Any]:
        """Five categorical choices per stage, ``s<i>_<choice>``."""
        return dict(self._distributions)

    def _se_on(self, index: int) -> float:
        """The SE ratio of stage ``index`` when switched on."""
        return self.base[index].se or SE_RATIO

    def _channels(self, index: int, width: float) -> int:
        """Stage ``index``'s channels at a per-stage width multiplier."""
        return make_divisible(self.base[index].channels * width)

    def to_params(self, genotype: ScalingGenotype) -> dict[str, Any]:
        """Per-stage choices of ``genotype``; ``ValueError`` outside this search."""
        _require_same(genotype, self.baseline, ("width", "depth", "resolution", "dropout", "stem", "head",
                                                "drop_connect"), "baseline")
        table = self._table_of(genotype)
        params: dict[str, Any] = {}
        for i, (stage, base) in enumerate(zip(table, self.base)):
            if stage.stride != base.stride or stage.se not in (0.0, self._se_on(i)):
                raise ValueError(f"genotype outside the baseline space: stage {i + 1} {format_stage(stage)!r} "
                                 f"needs stride {base.stride} and se 0 or {self._se_on(i)}")
            widths = sorted((w for w in WIDTHS if self._channels(i, w) == stage.channels), key=lambda w: abs(w - 1))
            if not widths:
                raise ValueError(f"genotype outside the baseline space: stage {i + 1} has {stage.channels} channels; "
                                 f"allowed: {sorted({self._channels(i, w) for w in WIDTHS})}")
            params.update({f"s{i + 1}_kernel": stage.kernel, f"s{i + 1}_expansion": stage.expansion,
                           f"s{i + 1}_repeats": stage.repeats, f"s{i + 1}_se": stage.se > 0,
                           f"s{i + 1}_width": widths[0]})
        try:
            check_params(params, self._distributions)
        except ValueError as err:
            raise ValueError(f"genotype outside the baseline space: {err}") from None
        return params

    def from_params(self, params: Mapping[str, Any]) -> ScalingGenotype:
        """The baseline with each stage's choices applied (strides kept)."""
        check_params(params, self._distributions)
        stages = []
        for i, base in enumerate(self.base):
            p = {key: params[f"s{i + 1}_{key}"] for key in ("kernel", "expansion", "repeats", "se", "width")}
            stages.append(Stage(p["repeats"], p["kernel"], base.stride, p["expansion"],
                                self._channels(i, p["width"]), self._se_on(i) if p["se"] else 0.0))
        return dataclasses.replace(self.baseline, stages=tuple(format_stage(s) for s in stages))

    def sample(self, rng: random.Random) -> ScalingGenotype:
        """Every stage's choices uniformly at random."""
        return self.from_params({key: rng.choice(dist.choices) for key, dist in self._distributions.items()})

    def neighbours(self, genotype: ScalingGenotype) -> list[ScalingGenotype]:
        """Every genotype with one stage choice changed (other fields kept)."""
        table = self._table_of(genotype)
        out = []
        for i, stage in enumerate(table):
            for variant in self._stage_variants(i, stage):
                stages = list(genotype.stages)
                stages[i] = format_stage(variant)
                out.append(dataclasses.replace(genotype, stages=tuple(stages)))
        return out

    def _stage_variants(self, index: int, stage: Stage) -> list[Stage]:
        """Stage ``index`` with one of kernel, expansion, repeats, SE or width changed."""
        dists = self._distributions
        key = f"s{index + 1}_"
        change = dataclasses.replace
        variants = [change(stage, kernel=k) for k in dists[key + "kernel"].choices]
        variants += [change(stage, expansion=e) for e in dists[key + "expansion"].choices]
        variants += [change(stage, repeats=r) for r in dists[key + "repeats"].choices]
        variants.append(change(stage, se=0.0 if stage.se > 0 else self._se_on(index)))
        variants += [change(stage, channels=self._channels(index, w)) for w in WIDTHS]
        unique = []
        for variant in variants:
            if variant != stage and variant not in unique:
                unique.append(variant)
        return unique

    def crossover(self, a: ScalingGenotype, b: ScalingGenotype, rng: random.Random) -> ScalingGenotype:
        """Each stage from either parent (the other fields from ``a``)."""
        for parent in (a, b):
            self._table_of(parent)  # both must have the baseline's stage count
        stages = tuple(x if rng.random() < 0.5 else y for x, y in zip(a.stages, b.stages))
        return dataclasses.replace(a, stages=stages)

    def _table_of(self, genotype: ScalingGenotype) -> tuple[Stage, ...]:
        """The genotype's parsed table; ``ValueError`` unless it has the baseline's stage count."""
        table = genotype.table()
        if len(table) != len(self.base):
            raise ValueError(f"baseline search needs {len(self.base)} stages like the baseline, got {len(table)}")
        return table


def _require_same(genotype: ScalingGenotype, baseline: ScalingGenotype, fields: tuple[str, ...], mode: str) -> None:
    """``ValueError`` naming the first of ``fields`` where ``genotype`` differs from ``baseline``."""
    for name in fields:
        if getattr(genotype, name) != getattr(baseline, name):
            raise ValueError(f"genotype outside the {mode} space: {name} is {getattr(genotype, name)!r}, "
                             f"this search fixes it to the baseline's {getattr(baseline, name)!r}")


MODES: dict[str, type] = {"coefficients": CoefficientSearch, "baseline": BaselineSearch}
