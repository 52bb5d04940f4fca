"""From a comparison spec to its trials: each arm x seed resolved to an architecture and a width.

Matched compute: the space's width option (``SearchSpace.WIDTH_OPTION``: NASNet's F, RandWire's C,
NB201's channels) is searched by bisection, on the cost the space computes from the genotype alone,
for the width whose FLOPs (or params) lie closest to the target; a trial whose best width still
misses the target by more than the tolerance makes the spec invalid (``SpecError`` naming the arm).
Arms that draw architectures (random wiring, random samples) are matched per seed, since every seed
is a new network. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from typing import Any, Callable

from nas import registry
from nas.compare.spec import ArmSpec, CompareSpec
from nas.config import SpecError
from nas.compare.latency import LatencyTables
from nas.space import Cost, SearchSpace, Task, depth_of, width_of

PROTOCOL_KEYS_IGNORED = ("threads", "device", "data_dir")  # how, not what, is trained


@dataclass(frozen=True)
class Planned:
    """One arm x seed: what is trained, at which width, at what cost."""

    arm: str
    family: str
    index: int  # seed index within the arm
    seed: int  # training seed
    space: str
    options: dict[str, Any]  # width applied
    genotype: dict[str, Any]
    arch_id: str
    label: str
    width: int
    params: int
    flops: int
    key: str  # identity of the trial: arm, seed, architecture, width and protocol
    depth: int = 0  # the space's depth option as built (0: the space has none)
    latency_ms: float | None = None  # predicted latency, when matched on it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def task_of(spec: CompareSpec) -> Task:
    """Input shape and classes of the spec's data set (cheaply, where the source allows)."""
    from evaluators.data import shape_of

    recipe = spec.train
    try:
        shape, classes = shape_of(recipe["data"], recipe["data_dir"], max(0, recipe["size"]), dataset=recipe["dataset"])
    except (OSError, ValueError) as err:
        raise SpecError(f"train.data: {err}") from None
    return Task(shape, classes)


def plan(spec: CompareSpec) -> tuple[list[Planned], dict[str, Any]]:
    """Every arm x seed of the study, widths matched; and the target (``{"metric", "value"}``)."""
    task = task_of(spec)
    resolvers = {arm.name: _resolver(arm, i) for i, arm in enumerate(spec.arms)}
    metric = spec.match["metric"]
    tables = None
    if spec.match["lut"]:
        tables = LatencyTables(spec.match["lut"], task)
        for i, arm in enumerate(spec.arms):  # every arm has a fitting table before any arm is matched
            where = f"arms[{i}] ({arm.name})"
            space = resolvers[arm.name](0)[0]
            width, path = next(iter(tables.widths(arm.name, space, where).items()))
            tables.check(arm.name, _resized(space, width, where) if width != width_of(space) else space, path, where)
    target = spec.match["target"]
    if spec.match["enabled"] and not target:
        arm = spec.arm(spec.match["arm"])
        where = f"arms[{spec.arms.index(arm)}] ({arm.name})"
        space, genotype = resolvers[arm.name](0)
        meter = Meter(metric, task, tables, arm.name, where)
        target = meter.value(space, genotype, width_of(space))
        if target is None:
            raise SpecError(f"compare.match.arm: {where} has no {metric} at its own width {width_of(space)} "
                            "(no latency table for that width)")
    protocol = {k: v for k, v in spec.train.items() if k not in PROTOCOL_KEYS_IGNORED}
    trials = []
    for i, arm in enumerate(spec.arms):
        meter = Meter(metric, task, tables, arm.name, f"arms[{i}] ({arm.name})")
        for index in range(spec.seeds):
            space, genotype = resolvers[arm.name](index)
            if spec.match["enabled"] and not arm.width:
                space, width, cost, value = match_compute(space, genotype, meter, target, spec.match, index)
            else:
                width, cost = _fixed(space, genotype, task, arm.width, meter.where)
                value = meter.value(_resized(space, width, meter.where) if arm.width else space, genotype, width)
            latency = value if metric == "latency" else None
            trials.append(_planned(arm, index, spec.seed + index, space, width, genotype, cost, protocol,
                                   spec.match, latency))
    return trials, {"metric": metric, "value": target if spec.match["enabled"] else None,
                    "tolerance": spec.match["tolerance"], "unit": "ms" if metric == "latency" else ""}


MATCH_DEFAULTS_OUT_OF_KEY = {"depth": True, "max_depth": 8, "lut": ""}  # added later: old studies keep their keys


def _planned(arm: ArmSpec, index: int, seed: int, space: SearchSpace, width: int, genotype: Any, cost: Cost,
             protocol: dict[str, Any], match: dict[str, Any], latency: float | None = None) -> Planned:
    options = _with_width(space, width)
    match = {k: v for k, v in match.items() if MATCH_DEFAULTS_OUT_OF_KEY.get(k, object()) != v}
    key_data = {"arm": arm.to_dict(), "index": index, "seed": seed, "space": space.name, "options": options,
                "arch_id": genotype.arch_id, "protocol": protocol, "match": match}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Planned(arm.name, arm.family, index, seed, space.name, options, genotype.to_dict(), genotype.arch_id,
                   space.label(genotype), width, cost.params, cost.flops, key, depth_of(space), latency)


def _with_width(space: SearchSpace, width: int) -> dict[str, Any]:
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in space.options.items()}
    if space.WIDTH_OPTION:
        options[space.WIDTH_OPTION] = width
    return options


def _cost(space: SearchSpace, genotype: Any, task: Task) -> Cost:
    return space.cost(genotype, task)


def _fixed(space: SearchSpace, genotype: Any, task: Task, width: int, where: str) -> tuple[int, Cost]:
    if width and space.WIDTH_OPTION:
        space = _resized(space, width, where)
    try:
        return width_of(space), space.cost(genotype, task)
    except ValueError as err:
        raise SpecError(f"{where}: does not fit the data's {task.input_shape} images: {err}") from None


def _resized(space: SearchSpace, value: int, where: str, knob: str = "") -> SearchSpace:
    """The space with its width (or ``knob``) option set to ``value``."""
    try:
        return registry.make_space(space.name, {**space.options, (knob or space.WIDTH_OPTION): value})
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


class Meter:
    """The matched metric of one arm: FLOPs or params from the space's cost, latency from its tables."""

    def __init__(self, metric: str, task: Task, tables: Any, arm: str, where: str) -> None:
        self.metric, self.task, self.tables, self.arm, self.where = metric, task, tables, arm, where

    def widths(self, space: SearchSpace, max_width: int) -> list[int] | None:
        """The widths that can be measured (None: any width, FLOPs and params are computed)."""
        if self.metric != "latency":
            return None
        return [w for w in self.tables.widths(self.arm, space, self.where) if w <= max_width]

    def value(self, space: SearchSpace, genotype: Any, width: int, cost: Cost | None = None) -> float | None:
        """The metric of ``genotype`` in ``space`` (already at ``width``); None if it cannot be had."""
        if self.metric != "latency":
            cost = cost or _cost(space, genotype, self.task)
            return float(getattr(cost, self.metric))
        if self.tables is None:
            return None
        path = self.tables.widths(self.arm, space, self.where).get(width)
        return None if path is None else self.tables.predict(self.arm, space, genotype, path, self.where)


class Unmatched(SpecError):
    """No width of this depth reaches the target within the tolerance (``reach``: the lowest and
    highest values the widths give)."""

    reach: tuple[float, float] = (float("nan"), float("nan"))


def match_compute(space: SearchSpace, genotype: Any, meter: Meter, target: float, match: dict[str, Any],
                  index: int = 0) -> tuple[SearchSpace, int, Cost, float]:
    """The width (and, when no width will do, the depth) whose cost lies closest to ``target``:
    (the space at that depth, width, cost, the matched value). ``SpecError`` names the arm and the
    reachable range when nothing lies within the tolerance."""
    try:
        return (space, *match_width(space, genotype, meter, target, match, index))
    except Unmatched as first:
        knob = space.DEPTH_OPTION
        if not (match["depth"] and knob) or meter.metric == "latency":
            why = ("latency tables are per depth" if knob and match["depth"] else
                   f"{space.name} has no depth option" if not knob else "compare.match.depth is off")
            raise SpecError(f"{first}; {why}; change compare.match.target or tolerance") from None
        start, reach = depth_of(space), [*first.reach]
        for depth in sorted(range(1, match["max_depth"] + 1), key=lambda d: (abs(d - start), d)):
            if depth == start:
                continue
            deeper = _resized(space, depth, meter.where, knob)
            try:
                return (deeper, *match_width(deeper, genotype, meter, target, match, index))
            except Unmatched as err:
                reach = [min(reach[0], err.reach[0]), max(reach[1], err.reach[1])] if reach[0] == reach[0] \
                    else [*err.reach]  # nan: no width of the first depth built
        raise SpecError(f"{first}; nor at another {knob} = 1..{match['max_depth']} (compare.match.max_depth), "
                        f"which together reach {_amount(reach[0], meter.metric)} to {_amount(reach[1], meter.metric)}"
                        "; change compare.match.target or tolerance") from None


def match_width(space: SearchSpace, genotype: Any, meter: Meter, target: float, match: dict[str, Any],
                index: int = 0) -> tuple[int, Cost, float]:
    """(width, cost, value) whose value lies closest to ``target``; ``Unmatched`` outside the tolerance."""
    where, metric = meter.where, meter.metric
    if not space.WIDTH_OPTION:
        raise SpecError(f"{where}: space {space.name!r} has no width option to match compute with; "
                        "give the arm a fixed width = 0 and set compare.match.enabled = false")
    cache: dict[int, tuple[Cost, float] | None] = {}

    def measured(width: int) -> tuple[Cost, float] | None:
        if width not in cache:
            try:
                resized = _resized(space, width, where)
                cost = resized.cost(genotype, meter.task)
            except (ValueError, SpecError):
                cache[width] = None  # too narrow for this network
            else:
                value = meter.value(resized, genotype, width, cost)
                cache[width] = None if value is None else (cost, value)
        return cache[width]

    def value(width: int) -> float:
        return float("-inf") if measured(width) is None else measured(width)[1]  # type: ignore[index]

    widths = meter.widths(space, match["max_width"])
    if widths is None:
        widths = _around_target(value, target, match["max_width"])
        reach = (_narrowest(measured, match["max_width"]), match["max_width"])
    else:
        reach = (min(widths), max(widths)) if widths else None
    candidates = [w for w in widths if measured(w) is not None]
    if not candidates:
        tried = f"1..{match['max_width']}" if metric != "latency" else ", ".join(map(str, widths)) or "(none)"
        raise Unmatched(f"{where}: no width in {tried} builds a network for this data")
    best = min(candidates, key=lambda w: abs(value(w) / target - 1.0))
    if abs(value(best) / target - 1.0) > match["tolerance"]:
        lo, hi = reach if reach and reach[0] is not None else (best, best)
        values = sorted(value(w) for w in candidates) if metric == "latency" else [value(lo), value(hi)]  # measured
        raise _unmatched(meter, space, target, match, index, (lo, hi), (values[0], values[-1]), (best, value(best)))
    cost, matched = measured(best)  # type: ignore[misc]
    return best, cost, matched


def _around_target(value: Callable[[int], float], target: float, max_width: int) -> list[int]:
    """The smallest width in 1..max_width whose value reaches ``target`` (bisection: values grow with
    the width) and its two neighbours."""
    low, high = 1, max_width
    if value(high) < target:
        low = high
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if value(middle) < target else (low, middle)
    return [w for w in (low - 1, low, low + 1) if 1 <= w <= max_width]


def _unmatched(meter: Meter, space: SearchSpace, target: float, match: dict[str, Any], index: int,
               widths: tuple[int, int], reach: tuple[float, float], best: tuple[int, float]) -> Unmatched:
    """The error of a width search that missed: the reachable range and the closest width."""
    metric = meter.metric
    error = Unmatched(f"{meter.where}: cannot match {metric} {_amount(target, metric)} within "
                      f"{match['tolerance']:.0%} (seed {index}: reachable {_amount(reach[0], metric)} to "
                      f"{_amount(reach[1], metric)} at widths {widths[0]}-{widths[1]}{_depth_note(space)}; closest "
                      f"is width {best[0]} at {_amount(best[1], metric)}, {best[1] / target - 1.0:+.1%})")
    error.reach = reach
    return error


def _narrowest(measured: Callable[[int], Any], high: int) -> int | None:
    """The narrowest width that builds (wider ones all do)."""
    if measured(high) is None:
        return None
    low = 1
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if measured(middle) is not None else (middle + 1, high)
    return low


def _amount(value: float, metric: str) -> str:
    return f"{value:.3f} ms" if metric == "latency" else f"{value:,.0f}"


def _depth_note(space: SearchSpace) -> str:
    return f", {space.DEPTH_OPTION} = {depth_of(space)}" if space.DEPTH_OPTION else ""


# ----- arms -> architectures ------------------------------------------------------------------------
def _space(arm: ArmSpec, where: str, name: str | None = None, options: dict[str, Any] | None = None) -> SearchSpace:
    try:
        return registry.make_space(name or arm.space, dict(arm.options if options is None else options),
                                   path=f"{where}.space")
    except SpecError as err:
        message = str(err)
        raise SpecError(message if message.startswith(where) else f"{where}.options: {message}") from None


def _resolver(arm: ArmSpec, i: int) -> Callable[[int], tuple[SearchSpace, Any]]:
    """A function from seed index to (space, genotype) for one arm."""
    where = f"arms[{i}] ({arm.name})"
    return {"arch": _arch_arm, "generator": _generator_arm, "sample": _sample_arm, "baseline": _baseline_arm,
            "run": _run_arm}[arm.kind](arm, where)


def _arch_arm(arm: ArmSpec, where: str) -> Callable[[int], tuple[SearchSpace, Any]]:
    name = arm.space
    space = _space(arm, where)
    if arm.value in space.known():
        genotype = space.get_known(arm.value)
    elif hasattr(space, "parse"):
        try:
            genotype = space.parse(arm.value)
        except (ValueError, KeyError) as err:
            raise SpecError(f"{where}.arch: {arm.value!r} is neither a published {name} architecture "
                            f"({', '.join(sorted(space.known()))}) nor its text form: {err}") from None
    else:
        raise SpecError(f"{where}.arch: unknown {name} architecture {arm.value!r}; known: "
                        f"{', '.join(sorted(space.known()))}")
    return lambda index: (space, genotype)


def _generator_arm(arm: ArmSpec, where: str) -> Callable[[int], tuple[SearchSpace, Any]]:
    space = _space(arm, where)
    if not hasattr(space, "draw_graphs"):
        raise SpecError(f"{where}.space: {arm.space!r} cannot draw random graphs; use randwire")
    try:
        space.draw_graphs(arm.value, random.Random(0))
    except ValueError as err:
        raise SpecError(f"{where}.generator: {err}") from None
    return lambda index: (space, space.draw_graphs(arm.value, random.Random(f"{arm.name}/{index}")))


def _sample_arm(arm: ArmSpec, where: str) -> Callable[[int], tuple[SearchSpace, Any]]:
    space = _space(arm, where)
    return lambda index: (space, space.sample(random.Random(f"{arm.name}/{index}")))


def _baseline_arm(arm: ArmSpec, where: str) -> Callable[[int], tuple[SearchSpace, Any]]:
    space = _space(arm, where)
    baselines = space.baselines()
    if not baselines:
        raise SpecError(f"{where}.space: space {arm.space!r} has no hand-designed baselines (nasnet has)")
    if arm.value not in baselines:
        raise SpecError(f"{where}.baseline: unknown baseline {arm.value!r}; known: {', '.join(baselines)}")
    return lambda index: (space, baselines[arm.value])


def _run_arm(arm: ArmSpec, where: str) -> Callable[[int], tuple[SearchSpace, Any]]:
    """The best ``top`` trials of a run folder, read without writing to it."""
    from nas.export.exporter import open_ledger, ranked

    try:
        ledger = open_ledger(arm.value)
    except (SpecError, ValueError, FileNotFoundError, NotADirectoryError) as err:
        raise SpecError(f"{where}.run: {err.args[0] if err.args else err}") from None
    best = ranked(ledger)[:arm.top]
    if not best:
        raise SpecError(f"{where}.run: {arm.value} has no completed trial yet")
    options = {**ledger.spec.space_options(), **arm.options}
    space = _space(arm, where, ledger.spec.space["name"], options)
    genotypes = [space.from_dict(t.user_attrs["genotype"]) for t in best]
    return lambda index: (space, genotypes[index % len(genotypes)])
