"""Objectives: named metrics with a direction, and derived ones such as the MnasNet reward.

A reward objective combines an accuracy metric with a cost metric (FLOPs, params, a latency):
``reward = accuracy * (cost / target) ** w`` with ``w = alpha`` when ``cost <= target`` and
``w = beta`` otherwise (Tan et al. 2019, MnasNet). ``alpha = beta = -0.07`` is the soft constraint;
``alpha = 0, beta = -1`` the hard one. Set ``w`` to use one exponent for both sides.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from nas.config import Field, SpecError, validate

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


def derived_metrics(objectives: Sequence[Mapping[str, Any]], metrics: Mapping[str, float]) -> dict[str, float]:
    """Values of derived objectives (rewards) computed from a trial's metrics."""
    out = {}
    for objective in objectives:
        reward = objective.get("reward")
        if reward and reward["accuracy"] in metrics and reward["cost"] in metrics:
            out[objective["metric"]] = mnas_reward(metrics[reward["accuracy"]], metrics[reward["cost"]],
                                                   reward["target"], reward["alpha"], reward["beta"])
    return out
