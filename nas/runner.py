"""Starting and resuming searches in a run folder (what ``nas search`` and ``nas resume`` do)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas import registry
from nas.config import SpecError
from nas.progress import Progress
from nas.search import Outcome, Search, create_study
from nas.show import evaluated_trials, summarize, trial_record
from nas.spec import RunSpec, load_spec
from nas.store import RunDir, open_storage
from nas.weights import WeightsKeeper

log = logging.getLogger(__name__)


def default_out(spec_path: str | Path, spec: RunSpec) -> Path:
    """``<spec's folder>/<run name>``: runs/quickstart.toml -> runs/quickstart/."""
    return Path(spec_path).resolve().parent / spec.name


def start(spec_path: str | Path, overrides: dict[str, Any], out: str | Path | None = None,
          overwrite: bool = False, progress: bool = True) -> tuple[RunDir, Outcome]:
    """Validate a spec, create its run folder and search."""
    spec = load_spec(spec_path, overrides)
    run_dir = RunDir(out or default_out(spec_path, spec))
    fresh = not run_dir.path.exists()
    run_dir.prepare_new(overwrite)
    try:
        if not spec.run["storage"]:
            spec.run["storage"] = run_dir.default_storage_url()
        elif overwrite:
            _delete_study(spec.run["storage"], spec.name)
        run_dir.spec_file.write_text(spec.to_toml())
        return run_dir, _search(spec, run_dir, new=True, progress=progress)
    except BaseException:
        _discard_if_empty(run_dir, spec, fresh)
        raise


def _discard_if_empty(run_dir: RunDir, spec: RunSpec, fresh: bool) -> None:
    """Undo a start that failed before any trial (bad data, storage, executor): fixing the spec and
    running ``nas search`` again must not meet a half-made run. A run with trials is kept for resume."""
    url = spec.run["storage"]
    try:
        storage = open_storage(url) if url else None
        if storage is not None and _study_exists(storage, spec.name):
            if optuna.load_study(study_name=spec.name, storage=storage).trials:
                return
            optuna.delete_study(study_name=spec.name, storage=storage)
    except Exception:  # an unreachable storage holds nothing of this run
        log.debug("could not inspect %s while discarding a failed start", url, exc_info=True)
    if fresh:
        shutil.rmtree(run_dir.path, ignore_errors=True)
    else:
        run_dir.clear()


def resume(path: str | Path, overrides: dict[str, Any], progress: bool = True) -> tuple[RunDir, Outcome]:
    """Continue the run in ``path`` to its budget (``overrides`` may raise the budget or change executor)."""
    run_dir = RunDir(path)
    run_dir.check_run()
    spec = load_spec(run_dir.spec_file, overrides)
    spec.run["name"] = load_spec(run_dir.spec_file).name  # the study keeps its name
    run_dir.spec_file.write_text(spec.to_toml())
    return run_dir, _search(spec, run_dir, new=False, progress=progress)


def _search(spec: RunSpec, run_dir: RunDir, new: bool, progress: bool) -> Outcome:
    """Open the ledger, run the loop, write the summary; the driver lock is held throughout."""
    run_dir.acquire()
    handler = _log_to(run_dir.log_file)
    try:
        url = spec.run["storage"]
        storage = open_storage(url)
        if new and _study_exists(storage, spec.name):
            raise SpecError(f"run.storage: study {spec.name!r} already exists in {url}; "
                            "use 'nas resume', another run.name, or --overwrite")
        if not new and not _study_exists(storage, spec.name):
            raise SpecError(f"{run_dir.path}: its study {spec.name!r} is not in {url}")
        study = create_study(spec, storage)
        executor = registry.lookup("executors", spec.executor["name"], "executor.name")(
            **{k: v for k, v in spec.executor.items() if k != "name"})
        search = Search(spec, study, executor, url, Progress() if progress else None)
        keep = int(spec.evaluator.get("keep_weights", 0) or 0)
        if keep:
            search.keeper = WeightsKeeper(study, run_dir.path, keep, spec.objectives[0]["direction"] == "maximize")
        outcome = search.run()
        write_outputs(run_dir, spec, study)
        return outcome
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        run_dir.release()


def write_outputs(run_dir: RunDir, spec: RunSpec, study: optuna.Study) -> None:
    """``summary.json``, the space's own report (``SearchSpace.report``) and ``best/genotype.json``
    (plus a picture where the space can draw)."""
    summary = summarize(spec, study, str(run_dir.path))
    (run_dir.path / "summary.json").write_text(json.dumps(summary, indent=2))
    space = registry.make_space(spec.space["name"], spec.space_options())
    _write_space_report(space, spec, study, run_dir.path)
    best = summary.get("best")
    if not best:
        return
    best_dir = run_dir.path / "best"
    best_dir.mkdir(exist_ok=True)
    (best_dir / "genotype.json").write_text(json.dumps(best["genotype"], indent=2) + "\n")
    try:
        space.draw(space.from_dict(best["genotype"]), str(best_dir / "architecture.png"))
    except NotImplementedError:
        pass
    except Exception:  # a picture is a nicety; never fail a finished search over it
        log.warning("could not draw the best architecture", exc_info=True)


def _write_space_report(space: Any, spec: RunSpec, study: optuna.Study, folder: Path) -> None:
    """The space's outputs from the evaluated trials: scored ones best first, then the rest."""
    try:
        trials = evaluated_trials(study)
        scored = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
        sign = -1.0 if spec.objectives[0]["direction"] == "maximize" else 1.0
        scored.sort(key=lambda t: sign * t.values[0])
        numbers = {t.number for t in scored}
        ordered = scored + [t for t in trials if t.number not in numbers]
        written = space.report([trial_record(t, spec, space) for t in ordered], folder)
    except Exception:  # like the picture: never fail a finished search over it
        log.warning("could not write the %s space's report", space.name, exc_info=True)
        return
    if written:
        log.info("space report: %s", ", ".join(written))


def _study_exists(storage: Any, name: str) -> bool:
    return any(s.study_name == name for s in storage.get_all_studies())


def _delete_study(url: str, name: str) -> None:
    """Remove a study from a shared storage (for --overwrite)."""
    storage = open_storage(url)
    if _study_exists(storage, name):
        optuna.delete_study(study_name=name, storage=storage)


def _log_to(path: Path) -> logging.Handler:
    """Send INFO logs of this package to the run's log file."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler
