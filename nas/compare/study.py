"""``nas compare``: a controlled study of architectures under one training protocol and matched compute.

Every arm x seed is one trial of an Optuna study in the comparison's folder (``study.journal``),
run through the project's executors (inline or Ray) by :class:`evaluators.compare.CompareEvaluator`
with ``nas train``'s recipe. A trial is identified by a key over its arm, seed, architecture, width
and protocol, so running the same spec again (after an interruption, or with more ``--seeds``)
trains only the pairs that have no completed trial yet; a changed protocol (``--epochs``) makes new
keys and old results are left out of the tables. One driver works on a folder at a time (a lock).

Outputs (``nas.compare.outputs``): ``comparison.md``, ``comparison.csv``, ``trials.csv``,
``comparison.json`` and ``comparison.png``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna
from optuna.trial import TrialState

from nas import registry

from nas.export import archfile
from nas.compare import stats
from nas.compare.plan import Planned, plan, task_of
from nas.compare.spec import CompareSpec, load_compare_spec
from nas.config import SpecError
from nas.evaluator import COMPLETE, EvaluatorSpec, Job, Result
from nas.executors import StudyLink
from nas.ledger._optuna import set_trial_system_attr, trial_id
from nas.ledger.store import JOURNAL_NAME, pid_alive, open_storage

log = logging.getLogger(__name__)

EVALUATOR = "evaluators.compare:CompareEvaluator"
METRIC = "test_accuracy"
DRIVER_ATTR = "nas:compare_driver"
LOCK = "compare.lock"


def run(spec_path: str | Path, out: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or finish) the study of ``spec_path``; write the outputs; return ``comparison.json``'s data."""
    spec = load_compare_spec(spec_path, overrides)
    trials, target = plan(spec)
    folder = Path(out) if out else spec.path.parent / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    _lock(folder)
    try:
        study = open_study(folder, spec.name, create=True)
        _fail_stale(study)
        done = {t.user_attrs.get("key") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        missing = [p for p in trials if p.key not in done]
        (folder / "plan.json").write_text(json.dumps({"spec": str(spec.path), "target": target,
                                                      "trials": [p.to_dict() for p in trials]}, indent=1))
        say = progress or (lambda line: log.info("%s", line))
        if missing:
            _check_data(spec)
        say(f"compare {spec.name}: {len(spec.arms)} arms x {spec.seeds} seeds = {len(trials)} trials; "
            f"{len(trials) - len(missing)} done, {len(missing)} to train ({folder})")
        execute(spec, study, missing, folder, say)
        return finish(spec, trials, target, study, folder)
    finally:
        (folder / LOCK).unlink(missing_ok=True)


def _check_data(spec: CompareSpec) -> None:
    """Load the data set once before any training, so a missing file is one clear error, not N failed trials."""
    from evaluators.data import load

    recipe = spec.train
    try:
        load(recipe["data"], recipe["data_dir"], 0, recipe["valid_fraction"], recipe["train_limit"],
             recipe["valid_limit"], max(0, recipe["size"]), dataset=recipe["dataset"])
    except (OSError, ValueError) as err:
        message = str(err).removeprefix("evaluator.data_dir: ").removeprefix("evaluator.")
        raise SpecError(f"train.data: {message}") from None


def open_study(folder: Path, name: str, create: bool = False) -> optuna.Study:
    """The comparison's study (``study.journal`` in ``folder``)."""
    url = str(folder / JOURNAL_NAME)
    if not create:
        from nas.ledger.store import open_storage_readonly

        return optuna.load_study(study_name=name, storage=open_storage_readonly(url))
    return optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize",
                               load_if_exists=True)


def _lock(folder: Path) -> None:
    lock = folder / LOCK
    if lock.is_file():
        try:
            holder = json.loads(lock.read_text())
        except (ValueError, OSError):
            holder = {}
        if holder.get("host") == socket.gethostname() and pid_alive(int(holder.get("pid", 0))):
            raise SpecError(f"--out: {folder} is in use by another nas compare (pid {holder['pid']})")
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}))


def _fail_stale(study: optuna.Study) -> None:
    """Trials left running by a driver that is gone are failed (their pairs are trained again)."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = trial.system_attrs.get(DRIVER_ATTR, {})
        if driver.get("host") == socket.gethostname() and pid_alive(int(driver.get("pid", 0))):
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        log.info("trial %d: failed as stale (its driver is gone)", trial.number)


def execute(spec: CompareSpec, study: optuna.Study, missing: list[Planned], folder: Path,
            say: Callable[[str], None]) -> None:
    """Train the missing pairs on the spec's executor, recording each in the study as it finishes."""
    if not missing:
        return
    options = {k: v for k, v in spec.executor.items() if k != "name"}
    executor = registry.lookup("executors", spec.executor["name"], "executor.name")(**options)
    recipe = dict(spec.train)
    if not recipe["threads"] and spec.executor["name"] == "ray":
        recipe["threads"] = max(1, (os.cpu_count() or 1) // executor.workers)
    task = task_of(spec)
    url = str(folder / JOURNAL_NAME)
    executor.start(EvaluatorSpec(EVALUATOR, {}, "nasnet", {}, str(folder)),
                   StudyLink(study, url, spec.name))
    queue, running, finished = deque(missing), {}, 0
    started = time.time()
    try:
        while queue or executor.in_flight():
            while queue and executor.in_flight() < executor.workers:
                planned = queue.popleft()
                job, trial = _submit(study, planned, recipe, task, folder, spec)
                running[job.trial_number] = (planned, trial)
                executor.submit(job)
            for job, result in executor.collect(timeout=None):
                planned, trial = running.pop(job.trial_number)
                _record(study, trial, result)
                finished += 1
                say(_progress_line(planned, result, finished, len(missing), started))
    finally:
        for planned, trial in running.values():  # interrupted: their pairs run again next time
            study.tell(trial, state=TrialState.FAIL)
        executor.shutdown()


def _submit(study: optuna.Study, planned: Planned, recipe: dict[str, Any], task: Any, folder: Path,
            spec: CompareSpec) -> tuple[Job, optuna.Trial]:
    trial = study.ask()
    set_trial_system_attr(study, trial, DRIVER_ATTR, {"host": socket.gethostname(), "pid": os.getpid()})
    for key in ("arm", "family", "index", "seed", "key", "arch_id", "width", "flops", "params", "space"):
        trial.set_user_attr(key, getattr(planned, key))
    trial.set_user_attr("genotype", planned.genotype)
    space = registry.make_space(planned.space, planned.options)
    genotype = space.from_dict(planned.genotype)
    data = archfile.make(space, genotype, task, normalization=None, data_name=spec.train["data"],
                         size=max(0, spec.train["size"]), metrics={},
                         source={"compare": spec.name, "arm": planned.arm, "seed_index": planned.index},
                         training={})
    out = folder / "trials" / planned.arm / f"seed-{planned.index}"
    payload = {"arch": data, "out": str(out), "recipe": {**recipe, "seed": planned.seed}}
    job = Job(trial.number, trial_id(trial), json.dumps(payload), planned.arch_id, {}, planned.seed)
    return job, trial


def _record(study: optuna.Study, trial: optuna.Trial, result: Result) -> None:
    trial.set_user_attr("metrics", result.metrics)
    trial.set_user_attr("info", {k: v for k, v in result.info.items() if _jsonable(v)})
    if result.state == COMPLETE and METRIC in result.metrics:
        study.tell(trial, result.metrics[METRIC])
    else:
        study.tell(trial, state=TrialState.FAIL)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _progress_line(planned: Planned, result: Result, done: int, total: int, started: float) -> str:
    elapsed = time.time() - started
    eta = elapsed / done * (total - done)
    outcome = (f"test accuracy {result.metrics[METRIC]:.2f}" if result.state == COMPLETE
               else f"FAILED: {result.error}")
    return (f"[{done}/{total}] {planned.arm} seed {planned.index} (width {planned.width}, "
            f"{planned.flops / 1e6:.2f}M FLOPs): {outcome} | elapsed {elapsed:.0f}s | ETA {eta:.0f}s")


# ----- results ------------------------------------------------------------------------------------------
def finish(spec: CompareSpec, trials: list[Planned], target: dict[str, Any], study: optuna.Study,
           folder: Path) -> dict[str, Any]:
    """Statistics over the completed trials of this plan; every output file written."""
    from nas.compare.outputs import write_outputs

    results = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        results[t.user_attrs.get("key")] = t
    rows = []
    for p in trials:
        trial = results.get(p.key)
        metrics = trial.user_attrs.get("metrics", {}) if trial else {}
        rows.append({**p.to_dict(), "state": "complete" if trial else "missing", **metrics})
    summary = summarize(spec, rows, target)
    write_outputs(folder, summary, rows)
    return summary


def summarize(spec: CompareSpec, rows: list[dict[str, Any]], target: dict[str, Any]) -> dict[str, Any]:
    """``comparison.json``'s data: per arm summaries, tests against the reference, Holm, plain verdicts."""
    values = {a.name: [r[METRIC] for r in rows if r["arm"] == a.name and r["state"] == "complete"]
              for a in spec.arms}
    reference = values[spec.reference]
    others = [a.name for a in spec.arms if a.name != spec.reference]
    welch = {n: stats.welch(values[n], reference) for n in others}
    perm = {n: stats.permutation(values[n], reference, seed=spec.seed) for n in others}
    p_holm = dict(zip(others, stats.holm([welch[n][2] if welch[n] else None for n in others])))
    perm_holm = dict(zip(others, stats.holm([perm[n] for n in others])))
    arms = {}
    for arm in spec.arms:
        name, own = arm.name, [r for r in rows if r["arm"] == arm.name]
        done = [r for r in own if r["state"] == "complete"]
        v = values[name]
        ci = stats.bootstrap_ci(v, seed=spec.seed)
        tested = name != spec.reference
        diff = (stats.mean(v) - stats.mean(reference)) if tested and v and reference else None
        arms[name] = {
            "family": arm.family, "kind": arm.kind, "source": arm.value, "space": own[0]["space"],
            "n": len(v), "planned": len(own),
            "mean": stats.mean(v), "std": stats.std(v), "ci95": list(ci) if ci else None,
            "flops": round(stats.mean([r["flops"] for r in own])), "params": round(stats.mean([r["params"] for r in own])),
            "width": [min(r["width"] for r in own), max(r["width"] for r in own)],
            "depth": [min(r.get("depth", 0) for r in own), max(r.get("depth", 0) for r in own)],
            "latency_ms": _mean_or_none([r.get("latency_ms") for r in own]),
            "latency_per_seed": [r.get("latency_ms") for r in done],
            "values": v, "seeds": [r["seed"] for r in done], "widths": [r["width"] for r in done],
            "flops_per_seed": [r["flops"] for r in done], "arch_ids": [r["arch_id"] for r in done],
            "diff": diff, "p_value": welch[name][2] if tested and welch[name] else None,
            "p_holm": p_holm.get(name), "p_permutation": perm.get(name), "p_permutation_holm": perm_holm.get(name),
            "hedges_g": stats.hedges_g(v, reference) if tested else None,
        }
        arms[name]["significant"] = (arms[name]["p_holm"] is not None and arms[name]["p_holm"] < spec.alpha)
    return {"name": spec.name, "reference": spec.reference, "metric": METRIC, "alpha": spec.alpha,
            "seeds": spec.seeds, "target": target, "protocol": _protocol(spec), "arms": arms,
            "complete": all(r["state"] == "complete" for r in rows),
            "statements": statements(spec, arms)}


def _mean_or_none(values: list[float | None]) -> float | None:
    """The mean, or None when any value is missing (not matched on latency)."""
    return None if not values or any(v is None for v in values) else stats.mean(values)  # type: ignore[arg-type]


def _protocol(spec: CompareSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.train.items() if k not in ("device", "threads")}


def statements(spec: CompareSpec, arms: dict[str, dict[str, Any]]) -> list[str]:
    """One plain sentence per arm against the reference, and a caveat on small samples."""
    out = []
    for name, a in arms.items():
        if name == spec.reference:
            continue
        if a["p_holm"] is None:
            out.append(f"{name} vs {spec.reference}: not tested (needs >= 2 completed seeds with some spread "
                       f"in both arms; {a['n']} completed).")
            continue
        verdict = "significant" if a["significant"] else "not significant"
        direction = "higher" if a["diff"] > 0 else "lower"
        out.append(f"{name} vs {spec.reference}: {abs(a['diff']):.2f} points {direction} (Hedges' g "
                   f"{a['hedges_g']:+.2f}); Welch p = {a['p_value']:.3g}, Holm-adjusted {a['p_holm']:.3g}: "
                   f"{verdict} at alpha = {spec.alpha:g}.")
    n_ref = arms[spec.reference]["n"]
    smallest = min((a["n"] for n, a in arms.items() if n != spec.reference), default=0)
    if n_ref and smallest and stats.min_permutation_p(smallest, n_ref) > spec.alpha:
        out.append(f"With {smallest} and {n_ref} seeds the exact permutation test cannot go below p = "
                   f"{stats.min_permutation_p(smallest, n_ref):.2g}; its p-values are listed but cannot show "
                   f"significance at {spec.alpha:g}: more seeds would.")
    return out
