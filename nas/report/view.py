"""``nas report``: one self-contained HTML page about a run, read from its ledger only.

The page holds the run (spec, space, controller, budget used, wall time, outcome, versions, devices
and workers), progress, objectives (or the Pareto front), the top architectures with their
pictures, learning curves, the lineage of the best, failures grouped by reason, and the space's own
outputs already in the run folder. Images are PNGs embedded as base64, so the file opens anywhere
without network access. It can be made while a search runs: the study is opened read-only and
nothing but the report file itself is written (see :func:`nas.ledger.store.open_study_readonly`).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas import registry
from nas.controllers.history import PARENTS_ATTR
from nas.report.plots import Node, Point
from nas.search.summary import _kind, evaluated_trials
from nas.search.spec import RunSpec, load_spec
from nas.ledger.store import RunDir, open_study_readonly

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
TOP_K = 5
COST_METRICS = ("params", "flops", "latency_ms", "latency")  # x axes of the single-objective plot
MAX_LINEAGE = 200  # ancestors drawn at most (crossover can make the tree wide)


@dataclass
class RunView:
    """A run folder's spec and ledger, opened read-only."""

    path: Path
    spec: RunSpec
    study: optuna.Study
    space: Any
    trials: list[FrozenTrial]
    evaluated: list[FrozenTrial]


def open_run(path: str | Path) -> RunView:
    """The run in ``path``: its resolved spec and its study, read-only."""
    folder = RunDir(path)
    folder.check_run()
    spec = load_spec(folder.spec_file)
    study = open_study_readonly(folder.path, spec)
    space = registry.make_space(spec.space["name"], spec.space_options())
    trials = study.get_trials(deepcopy=False)
    return RunView(folder.path, spec, study, space, trials, evaluated_trials(study))


def run_subtitle(run: RunView) -> str:
    """One line under the title: where and when."""
    return f"{run.path} · made {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"


# ----- the ledger as plain data ---------------------------------------------------------------------
def trial_value(trial: FrozenTrial, metric: str) -> float | None:
    """The trial's value of ``metric``: its objective value, else the recorded metric (pruned ones)."""
    if trial.state == TrialState.COMPLETE and trial.values:
        return float(trial.values[0])
    value = trial.user_attrs.get("metrics", {}).get(metric)
    if isinstance(value, (int, float)) and value == value and trial.state == TrialState.PRUNED:
        return float(value)
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return None


def points(run: RunView) -> list[Point]:
    """Every evaluated trial (each used budget) as a plot point, in trial order."""
    metric = run.spec.objectives[0]["metric"]
    start = min((t.datetime_start for t in run.trials if t.datetime_start), default=None)
    out = []
    for index, trial in enumerate(run.evaluated, start=1):
        when = trial.datetime_complete or trial.datetime_start
        seconds = (when - start).total_seconds() if when and start else 0.0
        state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(trial.state, "failed")
        out.append(Point(trial.number, index, seconds, trial_value(trial, metric) if state != "failed" else None,
                         state, PARENTS_ATTR in trial.system_attrs))
    return out


def curve(trial: FrozenTrial) -> list[tuple[float, float]]:
    """The learning curve: the ``info.curve`` the evaluator recorded, else the intermediate values."""
    recorded = trial.user_attrs.get("info", {}).get("curve")
    pairs = recorded if recorded else sorted(trial.intermediate_values.items())
    out = []
    for step, value in pairs:
        try:
            step, value = float(step), float(value)
        except (TypeError, ValueError):
            continue
        if value == value and abs(value) != float("inf"):
            out.append((step, value))
    return out


def lineage(run: RunView, number: int) -> list[Node]:
    """The ancestors of trial ``number`` through the ``nas:parents`` records, breadth first.

    Generation 0 is the trial itself; a node without parents was sampled at random (or its
    architecture has no evaluation in the ledger: then ``number`` is None).
    """
    by_arch: dict[str, FrozenTrial] = {}
    for trial in run.evaluated:
        by_arch.setdefault(trial.user_attrs.get("arch_id", ""), trial)
    start = next(t for t in run.trials if t.number == number)
    metric = run.spec.objectives[0]["metric"]
    queue, seen, nodes = [(start.user_attrs.get("arch_id", ""), 0)], set(), []
    while queue and len(nodes) < MAX_LINEAGE:
        arch_id, generation = queue.pop(0)
        if arch_id in seen:
            continue
        seen.add(arch_id)
        trial = start if generation == 0 else by_arch.get(arch_id)
        parents = tuple(trial.system_attrs.get(PARENTS_ATTR, ())) if trial else ()
        nodes.append(Node(arch_id, trial.number if trial else None, trial_value(trial, metric) if trial else None,
                          generation, parents))
        queue.extend((p, generation + 1) for p in parents)
    return nodes


def chain(nodes: list[Node]) -> list[Node]:
    """The first-parent line from the best back to its earliest ancestor."""
    by_arch = {n.arch_id: n for n in nodes}
    line, node = [], nodes[0] if nodes else None
    while node is not None and node not in line:
        line.append(node)
        node = by_arch.get(node.parents[0]) if node.parents else None
    return line


def failure_groups(run: RunView) -> list[dict[str, Any]]:
    """Failed, infeasible and interrupted trials grouped by reason (numbers masked), largest first."""
    groups: dict[tuple[str, str], list[FrozenTrial]] = defaultdict(list)
    for trial in run.trials:
        kind = _kind(trial)
        if kind not in ("failed", "infeasible", "interrupted"):
            continue
        error = str(trial.user_attrs.get("info", {}).get("error", "") or "no reason recorded")
        first = error.strip().splitlines()[0] if error.strip() else "no reason recorded"
        groups[(kind, re.sub(r"\d+(\.\d+)?", "N", first)[:200])].append(trial)
    out = [{"kind": kind, "reason": reason, "count": len(ts), "trials": [t.number for t in ts],
            "example": str(ts[0].user_attrs.get("info", {}).get("error", ""))[:500]}
           for (kind, reason), ts in groups.items()]
    return sorted(out, key=lambda g: -g["count"])


def workers_and_devices(run: RunView) -> tuple[Counter, Counter]:
    """How many evaluations each worker and each device ran."""
    infos = [t.user_attrs.get("info", {}) for t in run.evaluated]
    return (Counter(str(i["worker"]) for i in infos if i.get("worker")),
            Counter(str(i["device"]) for i in infos if i.get("device")))
