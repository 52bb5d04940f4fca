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
from nas.compare_spec import ArmSpec, CompareSpec
from nas.config import SpecError
from nas.space import Cost, SearchSpace, Task

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def task_of(spec: CompareSpec) -> Task:
    """Input shape and classes of the spec's data set (cheaply, where the source allows)."""
    from evaluators.data import shape_of

    recipe = spec.train
    try:
        shape, classes = shape_of(recipe["data"], recipe["data_dir"], max(0, recipe["size"]))
    except (OSError, ValueError) as err:
        raise SpecError(f"train.data: {err}") from None
    return Task(shape, classes)


def plan(spec: CompareSpec) -> tuple[list[Planned], dict[str, Any]]:
    """Every arm x seed of the study, widths matched; and the target (``{"metric", "value"}``)."""
    task = task_of(spec)
    resolvers = {arm.name: _resolver(arm, i) for i, arm in enumerate(spec.arms)}
    metric = spec.match["metric"]
    target = spec.match["target"]
    if spec.match["enabled"] and not target:
        arm = spec.arm(spec.match["arm"])
        space, genotype = resolvers[arm.name](0)
        target = float(getattr(_cost(space, genotype, task), metric))
    protocol = {k: v for k, v in spec.train.items() if k not in PROTOCOL_KEYS_IGNORED}
    trials = []
    for i, arm in enumerate(spec.arms):
        for index in range(spec.seeds):
            space, genotype = resolvers[arm.name](index)
            where = f"arms[{i}] ({arm.name})"
            if spec.match["enabled"] and not arm.width:
                width, cost = match_width(space, genotype, task, metric, target, spec.match, where, index)
            else:
                width, cost = _fixed(space, genotype, task, arm.width, where)
            trials.append(_planned(arm, index, spec.seed + index, space, width, genotype, cost, protocol,
                                   spec.match))
    return trials, {"metric": metric, "value": target if spec.match["enabled"] else None,
                    "tolerance": spec.match["tolerance"]}


def _planned(arm: ArmSpec, index: int, seed: int, space: SearchSpace, width: int, genotype: Any, cost: Cost,
             protocol: dict[str, Any], match: dict[str, Any]) -> Planned:
    options = _with_width(space, width)
    key_data = {"arm": arm.to_dict(), "index": index, "seed": seed, "space": space.name, "options": options,
                "arch_id": genotype.arch_id, "protocol": protocol, "match": match}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Planned(arm.name, arm.family, index, seed, space.name, options, genotype.to_dict(), genotype.arch_id,
                   space.label(genotype), width, cost.params, cost.flops, key)


def _with_width(space: SearchSpace, width: int) -> dict[str, Any]:
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in space.options.items()}
    if space.WIDTH_OPTION:
        options[space.WIDTH_OPTION] = width
    return options


def _cost(space: SearchSpace, genotype: Any, task: Task) -> Cost:
    return space.cost(genotype, task)


def width_of(space: SearchSpace) -> int:
    """The width a space instance builds at (its option, else its preset's value)."""
    knob = space.WIDTH_OPTION
    if not knob:
        return 0
    macro = getattr(space, "macro", None)
    from_macro = macro.get(knob, 0) if isinstance(macro, dict) else 0
    return int(space.options.get(knob) or from_macro or getattr(space, knob, 0) or getattr(space, "channels", 0))


def _fixed(space: SearchSpace, genotype: Any, task: Task, width: int, where: str) -> tuple[int, Cost]:
    if width and space.WIDTH_OPTION:
        space = _resized(space, width, where)
    try:
        return width_of(space), space.cost(genotype, task)
    except ValueError as err:
        raise SpecError(f"{where}: does not fit the data's {task.input_shape} images: {err}") from None


def _resized(space: SearchSpace, width: int, where: str) -> SearchSpace:
    try:
        return registry.make_space(space.name, {**space.options, space.WIDTH_OPTION: width})
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def match_width(space: SearchSpace, genotype: Any, task: Task, metric: str, target: float,
                match: dict[str, Any], where: str, index: int = 0) -> tuple[int, Cost]:
    """The width whose cost lies closest to ``target``; ``SpecError`` if outside the tolerance."""
    if not space.WIDTH_OPTION:
        raise SpecError(f"{where}: space {space.name!r} has no width option to match compute with; "
                        "give the arm a fixed width = 0 and set compare.match.enabled = false")
    cache: dict[int, Cost | None] = {}

    def cost(width: int) -> Cost | None:
        if width not in cache:
            try:
                cache[width] = _resized(space, width, where).cost(genotype, task)
            except (ValueError, SpecError):
                cache[width] = None  # too narrow for this network
        return cache[width]

    def value(width: int) -> float:
        c = cost(width)
        return float("-inf") if c is None else float(getattr(c, metric))

    low, high = 1, match["max_width"]
    if value(high) < target:
        low = high
    while low < high:  # smallest width reaching the target
        middle = (low + high) // 2
        low, high = (middle + 1, high) if value(middle) < target else (low, middle)
    candidates = [w for w in (low - 1, low, low + 1) if 1 <= w <= match["max_width"] and cost(w) is not None]
    if not candidates:
        raise SpecError(f"{where}: no width in 1..{match['max_width']} builds a network for this data")
    best = min(candidates, key=lambda w: abs(value(w) / target - 1.0))
    error = value(best) / target - 1.0
    if abs(error) > match["tolerance"]:
        raise SpecError(f"{where}: cannot match {metric} {target:,.0f} within {match['tolerance']:.0%} "
                        f"(seed {index}: closest is width {best} at {value(best):,.0f}, {error:+.1%}); "
                        "change compare.match.target or tolerance")
    return best, cost(best)  # type: ignore[return-value]


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
    from search_spaces.nasnet.baselines import BASELINES

    if arm.value not in BASELINES:
        raise SpecError(f"{where}.baseline: unknown baseline {arm.value!r}; known: {', '.join(BASELINES)}")
    if arm.space != "nasnet":
        raise SpecError(f"{where}.space: baselines are built in the nasnet skeleton, got {arm.space!r}")
    space = _space(arm, where)
    return lambda index: (space, BASELINES[arm.value])


def _run_arm(arm: ArmSpec, where: str) -> Callable[[int], tuple[SearchSpace, Any]]:
    """The best ``top`` trials of a run folder, read without writing to it."""
    from nas.export import open_ledger, ranked

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
