"""Objectives: named metrics with a direction, cheap ones known before training, and derived ones
such as the MnasNet reward.

Cheap metrics (:func:`cheap_metrics`) come from the genotype alone: ``params``, ``flops`` and, with
a latency lookup table (``[latency] lut``), ``latency_pred_ms``. ``[constraints]`` bounds them
before any training.

A reward objective combines an accuracy metric with a cost metric (FLOPs, params, a latency):
``reward = accuracy * (cost / target) ** w`` with ``w = alpha`` when ``cost <= target`` and
``w = beta`` otherwise (Tan et al. 2019, MnasNet). ``alpha = beta = -0.07`` is the soft constraint;
``alpha = 0, beta = -1`` the hard one. Set ``w`` to use one exponent for both sides. With
``cost = "latency_ms"`` (measured) or ``"latency_pred_ms"`` (predicted) it is MnasNet's
latency-aware reward.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping, Sequence

from nas.config import Field, SpecError, validate

log = logging.getLogger(__name__)

REWARD_FIELDS = {
    "accuracy": Field(str, default="accuracy", help="metric multiplied by the cost factor"),
    "cost": Field(str, default="flops", help="metric compared with the target"),
    "target": Field(float, min=0.0, help="T, the cost the search aims at"),
    "w": Field(float, default=-0.07, help="exponent on both sides of the target"),
    "alpha": Field(float, default=float("nan"), help="exponent when cost <= target (default: w)"),
    "beta": Field(float, default=float("nan"), help="exponent when cost > target (default: w)"),
}


def validate_reward(table: Any, path: str, available: Sequence[str]) -> dict[str, Any]:
    """A reward table with defaults; its metrics must be ones the run produces."""
    reward = validate(table, REWARD_FIELDS, path)
    if reward["target"] <= 0:
        raise SpecError(f"{path}.target: expected a positive number, got {reward['target']!r}")
    for key in ("accuracy", "cost"):
        if reward[key] not in available:
            raise SpecError(f"{path}.{key}: unknown metric {reward[key]!r}; available: {', '.join(available)}")
    for key in ("alpha", "beta"):
        if math.isnan(reward[key]):
            reward[key] = reward["w"]
    return reward


def mnas_reward(accuracy: float, cost: float, target: float, alpha: float, beta: float) -> float:
    """``accuracy * (cost / target) ** (alpha if cost <= target else beta)``."""
    exponent = alpha if cost <= target else beta
    return accuracy * (cost / target) ** exponent


def load_latency_table(spec: Any, space: Any, task: Any) -> Any:
    """The run's latency lookup table (``[latency] lut``), or None when the run has none.

    A missing file is built on this machine first when ``[latency] build`` is on (the driver then
    imports torch); the table is checked against the run's space, task, backend and device. With
    ``[latency] calibrate`` (by default, ``auto``: when this machine is the table's target, same CPU
    model, ISA flags and GPU), a few of its fit networks are measured again first and its
    predictions scaled by the machine's speed now against at build time; on another machine the
    predictions are the table's build-time figures, and the log says so in one line.
    """
    latency = getattr(spec, "latency", {})
    path = latency.get("lut")
    if not path:
        return None
    from pathlib import Path

    from nas.latency.table import LatencyTable

    if latency.get("build", True) and not Path(path).exists():
        from evaluators.lut import build_table
        from evaluators.timing import Settings

        log.info("building the latency table %s on this machine", path)
        settings = Settings(latency["backend"], latency["device"], latency["batch"], latency["threads"])
        custom = task if task != space.default_task() else None
        table = build_table(space, settings, custom, latency["fit"])
        table.save(path)
    table = LatencyTable.load(path)
    table.check(space, task, latency.get("backend"), latency.get("device"))
    calibrate = latency.get("calibrate", "auto")
    if calibrate == "auto":
        from nas.latency.rules import same_machine

        calibrate = same_machine(table.target) and bool(table.references(1))
        if not calibrate:
            log.warning("latency table %s: predictions are its build-time figures on %s (this machine is "
                        "not its target, or it has no fit networks to calibrate with)", path,
                        table.target_info().describe())
    if calibrate:
        from evaluators.lut import calibrate_table

        speed = calibrate_table(table, space)  # at the table's task, which check() matched to the run's
        log.info("latency table %s calibrated: this machine runs %.3fx the time it did at build time", path, speed)
    return table


def cheap_metrics(space: Any, genotype: Any, task: Any, latency_table: Any = None) -> dict[str, float]:
    """Metrics known before training: params, FLOPs and, with a lookup table, ``latency_pred_ms``."""
    cost = space.cost(genotype, task)
    out = {"params": float(cost.params), "flops": float(cost.flops)}
    if latency_table is not None:
        try:
            out["latency_pred_ms"] = latency_table.predict(space, genotype, task)
        except ValueError as err:  # a block outside the table (e.g. an enqueued published architecture)
            log.warning("no latency prediction for %s: %s", genotype.arch_id, err)
            out["latency_pred_ms"] = math.nan  # fails every bound, so the candidate is recorded infeasible
    return out


def derived_metrics(objectives: Sequence[Mapping[str, Any]], metrics: Mapping[str, float]) -> dict[str, float]:
    """Values of derived objectives (rewards) computed from a trial's metrics."""
    out = {}
    for objective in objectives:
        reward = objective.get("reward")
        if reward and reward["accuracy"] in metrics and reward["cost"] in metrics:
            out[objective["metric"]] = mnas_reward(metrics[reward["accuracy"]], metrics[reward["cost"]],
                                                   reward["target"], reward["alpha"], reward["beta"])
    return out


def constraint_values(bounds: dict[str, dict[str, float]], metrics: dict[str, float]) -> dict[str, float]:
    """Optuna constraint values of ``metrics`` under ``bounds`` (spec's ``[constraints]``).

    One value per finite bound, named ``"<metric><=max"`` or ``"<metric>>=min"``: the violation
    relative to the bound, <= 0 when satisfied (Optuna's convention), so that metrics of different
    scales weigh alike in the samplers' infeasibility scores.
    """
    out: dict[str, float] = {}
    for metric, b in bounds.items():
        value = metrics[metric]
        if not math.isfinite(value):  # e.g. a latency the table cannot predict: infeasible, not NaN
            value = math.inf
        if math.isfinite(b["max"]):
            out[f"{metric}<=max"] = min((value - b["max"]) / (abs(b["max"]) or 1.0), 1e6)
        if math.isfinite(b["min"]):
            out[f"{metric}>=min"] = min((b["min"] - value) / (abs(b["min"]) or 1.0), 1e6) if value < math.inf else 1e6
    return out
