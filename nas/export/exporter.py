"""``nas export``: read a run's ledger (never writing to it) and write portable architectures.

For each chosen trial one folder with ``arch.json`` (see :mod:`nas.export.archfile`), optionally
``model.onnx`` (checked against PyTorch with ONNX Runtime), ``model.pt2`` (``torch.export``),
``weights.safetensors`` (kept by the search with ``[evaluator] keep_weights``), the pictures and
``MODEL_CARD.md``. The torch work happens in :mod:`evaluators.export`, imported only when needed.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas import registry

from nas.export import archfile
from nas.config import SpecError
from nas.controllers.history import PARENTS_ATTR
from nas.search.summary import ranked_trials
from nas.search.spec import RunSpec, load_spec
from nas.ledger.store import RunDir, open_study_readonly
from nas.export.weights import WEIGHTS_ATTR, read_weights

log = logging.getLogger(__name__)

FORMATS = ("json", "onnx", "pt2")


@dataclass
class Ledger:
    """A run opened for reading: its spec, study and folder."""

    spec: RunSpec
    study: optuna.Study
    run_dir: RunDir


def open_ledger(path: str | Path) -> Ledger:
    """The run in ``path`` opened read-only."""
    run_dir = RunDir(path)
    run_dir.check_run()
    spec = load_spec(run_dir.spec_file)
    study = open_study_readonly(run_dir.path, spec)
    return Ledger(spec, study, run_dir)


# ----- choosing trials ---------------------------------------------------------------------------
def ranked(ledger: Ledger) -> list[FrozenTrial]:
    """Completed unique evaluations, best first by the first objective (ties: lower validation loss)."""
    done = [t for t in ledger.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("info", {}).get("counted") and t.values]
    return ranked_trials(done, ledger.spec.objectives[0]["direction"])


def choose(ledger: Ledger, which: str) -> list[FrozenTrial]:
    """The trials named by ``--trial``: ``best``, ``pareto``, ``top:K`` or a trial number."""
    order = ranked(ledger)
    if not order:
        raise SpecError(f"--trial: the run in {ledger.run_dir.path} has no completed trial yet")
    multi = len(ledger.spec.objectives) > 1
    if which == "best":
        if multi:
            raise SpecError("--trial: a multi-objective run has no single best; use --trial pareto or top:K")
        return order[:1]
    if which == "pareto":
        if not multi:
            raise SpecError("--trial: pareto needs a multi-objective run; this run has one objective, so "
                            "use --trial best, top:K or a trial number")
        numbers = {t.number for t in ledger.study.best_trials}
        return [t for t in order if t.number in numbers]
    if which.startswith("top:"):
        k = which.removeprefix("top:")
        if not k.isdigit() or int(k) < 1:
            raise SpecError(f"--trial: expected top:K with K >= 1, got {which!r}")
        return order[:int(k)]
    if which.isdigit():
        return [_numbered(ledger, int(which))]
    raise SpecError(f"--trial: expected best, pareto, top:K or a trial number, got {which!r}")


def _numbered(ledger: Ledger, number: int) -> FrozenTrial:
    trials = ledger.study.get_trials(deepcopy=False)
    if number >= len(trials):
        raise SpecError(f"--trial: no trial #{number} (the run has {len(trials)})")
    trial = trials[number]
    original = trial.user_attrs.get("info", {}).get("duplicate_of")
    if original is not None:
        trial = trials[int(original)]
    if trial.state != TrialState.COMPLETE:
        raise SpecError(f"--trial: trial #{number} is {trial.state.name.lower()}, not complete")
    return trial


def lineage(ledger: Ledger, trial: FrozenTrial, limit: int = 200) -> list[dict[str, Any]]:
    """The ancestors of ``trial`` through ``nas:parents``: each generation's parents, nearest first.

    Each entry: ``{"arch_id", "trial", "accuracy"/objective values, "parents": [arch ids]}``."""
    by_arch: dict[str, FrozenTrial] = {}
    for t in ledger.study.get_trials(deepcopy=False):
        if t.user_attrs.get("info", {}).get("counted") and "arch_id" in t.user_attrs:
            by_arch.setdefault(t.user_attrs["arch_id"], t)
    names = [o["metric"] for o in ledger.spec.objectives]
    chain, seen = [], {trial.user_attrs.get("arch_id")}
    queue = list(trial.system_attrs.get(PARENTS_ATTR, []))
    while queue and len(chain) < limit:
        arch_id = queue.pop(0)
        if arch_id in seen:
            continue
        seen.add(arch_id)
        parent = by_arch.get(arch_id)
        entry: dict[str, Any] = {"arch_id": arch_id, "trial": parent.number if parent else None,
                                 "parents": list(parent.system_attrs.get(PARENTS_ATTR, [])) if parent else []}
        if parent is not None and parent.values:
            entry["values"] = dict(zip(names, parent.values))
        chain.append(entry)
        queue.extend(entry["parents"])
    return chain


# ----- writing -----------------------------------------------------------------------------------
def export(run: str | Path, out: str | Path, which: str = "best", formats: tuple[str, ...] = ("json",),
           weights: bool = False) -> list[dict[str, Any]]:
    """Export the chosen trials of the run in ``run`` to ``out`` (one folder each when several).

    Returns one summary per trial: folder, trial number, arch id, files written, the ONNX/pt2
    checks and ``weights``: ``"trained"`` (the search's kept weights, with ``weights``) or
    ``"untrained"`` (no weights file: ``model.onnx``/``model.pt2`` hold the initial weights).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise SpecError(f"--format: unknown {unknown[0]!r}; known: {', '.join(FORMATS)}")
    ledger = open_ledger(run)
    out = Path(out).resolve()
    if out == ledger.run_dir.path or ledger.run_dir.path in out.parents:
        raise SpecError(f"--out: {out} is inside the run folder; nas export never writes into a run")
    trials = choose(ledger, which)
    stored = ledger.study.user_attrs.get(WEIGHTS_ATTR, {})
    if weights:
        missing = [t.number for t in trials if str(t.number) not in stored]
        if missing:
            raise SpecError(f"--weights: trial #{missing[0]} has no stored weights; set [evaluator] "
                             "keep_weights = K in the spec to keep the best K during a search, or export "
                             "without --weights and train it: nas train OUT/arch.json")
    order = [t.number for t in ranked(ledger)]
    results = []
    for trial in trials:
        folder = out if len(trials) == 1 else out / f"trial-{trial.number:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        rank = order.index(trial.number) + 1
        artifact = stored[str(trial.number)]["artifact_id"] if weights else None
        results.append(_export_one(ledger, trial, rank, folder, formats, artifact))
    return results


def _export_one(ledger: Ledger, trial: FrozenTrial, rank: int, folder: Path, formats: tuple[str, ...],
                artifact_id: str | None) -> dict[str, Any]:
    spec = ledger.spec
    data = arch_data(ledger, trial, rank)
    chain = lineage(ledger, trial)
    data["source"]["lineage"] = chain
    weights_file = folder / "weights.safetensors"
    if artifact_id is not None:
        weights_file.write_bytes(read_weights(ledger.run_dir.path, artifact_id))
        data["weights"] = {"from": "search", "trial": trial.number, "artifact_id": artifact_id}
    elif weights_file.is_file():  # an earlier export's: it would be loaded beside this arch.json
        weights_file.unlink()
        log.warning("removed %s of an earlier export: this export has no weights", weights_file)
    arch_path = folder / "arch.json"
    arch_path.write_text(json.dumps(data, indent=2) + "\n")
    written = ["arch.json"] + (["weights.safetensors"] if artifact_id else [])
    checks: dict[str, Any] = {}
    if "onnx" in formats or "pt2" in formats:
        from evaluators.export import export_formats

        checks = export_formats(arch_path, folder, [f for f in formats if f != "json"])
        written += [checks[f]["file"] for f in ("onnx", "pt2") if f in checks]
    from nas.export.card import write_card

    written += write_card(folder, data, checks, lineage_of=chain,
                          curve=trial.user_attrs.get("info", {}).get("curve") or [], spec_text=spec.to_toml())
    log.info("exported trial %d (%s) to %s", trial.number, data["arch_id"], folder)
    return {"dir": str(folder), "trial": trial.number, "rank": rank, "arch_id": data["arch_id"],
            "files": written, "checks": checks, "weights": "trained" if artifact_id else "untrained"}


def arch_data(ledger: Ledger, trial: FrozenTrial, rank: int) -> dict[str, Any]:
    """The arch file content for one trial of the run."""
    spec = ledger.spec
    space = registry.make_space(spec.space["name"], spec.space_options())
    evaluator = registry.lookup("evaluators", spec.evaluator["name"], "evaluator.name", declaration=True)
    options = {k: v for k, v in spec.evaluator.items() if k not in ("name", "budget")}
    task = evaluator.task_for(options, space)
    genotype = space.from_dict(trial.user_attrs["genotype"])
    metrics = {k: v for k, v in trial.user_attrs.get("metrics", {}).items()
               if isinstance(v, (int, float)) and math.isfinite(v)}
    source = {"run": spec.name, "run_dir": str(ledger.run_dir.path), "trial": trial.number, "rank": rank,
              "controller": spec.controller["name"], "evaluator": spec.evaluator["name"],
              "objectives": spec.objectives, "parents": list(trial.system_attrs.get(PARENTS_ATTR, []))}
    training = {**{k: v for k, v in options.items() if k not in ("threads", "device")},
                "budget": dict(spec.evaluator.get("budget", {})), "seed": spec.seed}
    return archfile.make(space, genotype, task, normalization=normalization(options),
                         data_name=str(options.get("data", "")), size=int(options.get("size", 0) or 0),
                         metrics=metrics, source=source, training=training)


def normalization(options: dict[str, Any]) -> dict[str, list[float]] | None:
    """Per-channel mean and std the evaluator subtracted and divided by (None without a data set)."""
    if not options.get("data"):
        return None
    from evaluators.data import load

    try:
        splits = load(options["data"], options.get("data_dir", ""), 0, options.get("valid_fraction", 0.2),
                      options.get("train_limit", 0), options.get("valid_limit", 0), options.get("size", 0),
                      dataset=options.get("dataset", ""))
    except (OSError, ValueError) as err:
        log.warning("normalisation not recorded: %s", err)
        return None
    return {"mean": list(splits.mean), "std": list(splits.std)}
