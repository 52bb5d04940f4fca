"""Read a run's ledger: counts by state, the best trial or the Pareto set, top architectures.

``summarize`` is the data behind ``nas show --json`` and the run folder's ``summary.json``;
``format_summary`` is its text form.
"""

from __future__ import annotations

from typing import Any, Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas import registry
from nas.search.spec import RunSpec

TIE_METRIC = "loss"  # the training evaluators' validation loss: ranks equal scores, lower first


def trial_record(trial: FrozenTrial, spec: RunSpec, space: Any) -> dict[str, Any]:
    """One trial as plain data: number, arch id, objective values, metrics, text form, genotype."""
    genotype = trial.user_attrs.get("genotype")
    label = ""
    if genotype is not None:
        try:
            label = space.label(space.from_dict(genotype))
        except ValueError:
            label = "(unreadable genotype)"
    values = {}
    if trial.values is not None:
        values = {o["metric"]: v for o, v in zip(spec.objectives, trial.values)}
    return {"number": trial.number, "arch_id": trial.user_attrs.get("arch_id"), "values": values,
            "metrics": trial.user_attrs.get("metrics", {}), "label": label, "genotype": genotype,
            "info": {k: v for k, v in trial.user_attrs.get("info", {}).items() if k != "curve"}}


def ranked_trials(trials: Iterable[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """Scored trials best first by their first objective value; equal values by lower validation loss
    (``metrics.loss``, where the evaluator records one), then by trial number.

    Accuracy on a small validation split is a multiple of one image (0.14 points on 719 digits images,
    0.01 on the quick start's 10,000), so several candidates may share a value; the loss, which also
    weighs how confident each prediction was, orders them instead of the trial number. Used by ``nas show``, the report's
    top table, ``nas export --trial best|top:K`` and the run's ``best/``.
    """
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], _tie_value(t), t.number))


def _tie_value(trial: FrozenTrial) -> float:
    """The trial's validation loss, or +inf when it has none (so it ranks after those that have)."""
    value = trial.user_attrs.get("metrics", {}).get(TIE_METRIC)
    return float(value) if isinstance(value, (int, float)) and value == value else float("inf")


def evaluated_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that used budget (each a unique architecture), in trial order."""
    return [t for t in study.get_trials(deepcopy=False) if _counted(t)]


def _counted(trial: FrozenTrial) -> bool:
    """Whether ``trial`` used budget. A trial counts once it is told: a driver killed between writing
    its info and telling it leaves it RUNNING, to be failed."""
    return trial.state != TrialState.RUNNING and bool(trial.user_attrs.get("info", {}).get("counted"))


def summarize(spec: RunSpec, study: optuna.Study, run_dir: str = "", top: int = 5) -> dict[str, Any]:
    """Counts, best/Pareto trials and the top architectures of a run."""
    space = registry.make_space(spec.space["name"], spec.space_options())
    trials = study.get_trials(deepcopy=False)
    counted = [t for t in trials if _counted(t)]
    states = {"complete": 0, "pruned": 0, "screened_out": 0, "failed": 0, "running": 0, "duplicates": 0,
              "infeasible": 0, "interrupted": 0, "skipped": 0}
    for trial in trials:
        states[_kind(trial)] += 1
    complete = [t for t in counted if t.state == TrialState.COMPLETE]
    out: dict[str, Any] = {
        "run": spec.name, "dir": run_dir, "space": spec.space["name"], "preset": spec.space.get("preset"),
        "controller": spec.controller["name"], "evaluator": spec.evaluator["name"],
        "objectives": spec.objectives, "budget": spec.budget, "evaluated": len(counted),
        "trials": len(trials), "states": states,
    }
    if len(spec.objectives) == 1:
        ranked = ranked_trials(complete, spec.objectives[0]["direction"])
        out["best"] = trial_record(ranked[0], spec, space) if ranked else None
        out["top"] = [trial_record(t, spec, space) for t in ranked[:top]]
    else:
        front = [t for t in study.best_trials if t.user_attrs.get("info", {}).get("counted")] if complete else []
        out["pareto"] = [trial_record(t, spec, space) for t in sorted(front, key=lambda t: t.number)]
        out["best"] = None
    return out


def _kind(trial: FrozenTrial) -> str:
    """Which count a trial belongs to."""
    info = trial.user_attrs.get("info", {})
    if trial.state == TrialState.RUNNING:
        return "running"
    if "duplicate_of" in info:
        return "duplicates"
    error = str(info.get("error", ""))
    if error.startswith("infeasible"):  # told PRUNED (TPE learns from it) or FAIL (older runs)
        return "infeasible"
    if trial.state == TrialState.COMPLETE:
        return "complete"
    if trial.state == TrialState.PRUNED:  # by the pruner while training, or by the pre-screen before it
        return "screened_out" if "screened_out" in info else "pruned"
    if not info.get("counted", True) and error.startswith("interrupted"):
        return "interrupted"
    if not info.get("counted", True) and error.startswith("skipped"):
        return "skipped"  # another driver of a shared study held the architecture or the last budget
    return "failed"


def format_summary(summary: dict[str, Any]) -> str:
    """Text form of :func:`summarize`'s result."""
    s = summary["states"]
    lines = [f"run {summary['run']}  {summary['dir']}",
             f"  space {summary['space']} (preset {summary['preset']}), controller {summary['controller']}, "
             f"evaluator {summary['evaluator']}",
             f"  evaluated {summary['evaluated']}/{summary['budget']} unique architectures; trials: "
             + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items() if v)]
    rows = summary.get("top") or summary.get("pareto") or []
    if summary.get("report"):
        lines.append(f"  report: {summary['report']}")
    if summary.get("best"):
        best = summary["best"]
        lines.append(f"  best: trial #{best['number']}  " + _metrics_text(best) + f"  arch {best['arch_id']}")
        lines.append(f"        {best['label']}")
    if rows:
        title = "top" if summary.get("top") else "Pareto set"
        names = [o["metric"] for o in summary["objectives"]]
        extra = [m for m in ("params", "flops") if m not in names]
        if summary.get("top") and TIE_METRIC not in names and any(TIE_METRIC in r["metrics"] for r in rows):
            extra.insert(0, TIE_METRIC)  # what ranks equal values
            title += f" (equal {names[0]}: lower validation {TIE_METRIC} first)"
        lines.append(f"  {title}:")
        header = ["trial", *names, *extra, "arch_id", "architecture"]
        table = [[f"#{r['number']}", *[_fmt(r["metrics"].get(n, r["values"].get(n))) for n in names],
                  *[_fmt(r["metrics"].get(m)) for m in extra], r["arch_id"] or "", r["label"]] for r in rows]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
        for row in [header, *table]:
            lines.append("    " + "  ".join(str(x).ljust(w) for x, w in zip(row[:-1], widths)) + "  " + str(row[-1]))
    return "\n".join(lines)


def _metrics_text(record: dict[str, Any]) -> str:
    shown = dict(record["values"])
    for key in ("params", "flops"):
        if key in record["metrics"] and key not in shown:
            shown[key] = record["metrics"][key]
    return "  ".join(f"{k}={_fmt(v)}" for k, v in shown.items())


def _fmt(value: Any) -> str:
    """Numbers short: 94.37, 1.07M, 153M."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        if abs(value) >= 1e12:  # beyond G (a proxy's score): scientific notation, no suffix
            return f"{value:.3g}"
        if abs(value) >= 1e9:
            return f"{value / 1e9:.3g}G"
        if abs(value) >= 1e6:
            return f"{value / 1e6:.3g}M"
        if abs(value) >= 1e4:
            return f"{value / 1e3:.3g}k"
        return f"{value:.4g}"
    return str(value)
