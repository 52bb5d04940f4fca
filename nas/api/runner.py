"""Starting and resuming searches in a run folder (what ``nas search`` and ``nas resume`` do)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas import registry
from nas.api._ray import user_code_on_ray
from nas.api.inputs import storable
from nas.config import SpecError
from nas.oneshot.stage import Stage
from nas.search.progress import Progress
from nas.report.page import write_run_report
from nas.search.loop import Outcome, Search, create_study
from nas.search.summary import evaluated_trials, ranked_trials, summarize, trial_record
from nas.search.spec import RunSpec, load_spec
from nas.ledger.store import RunDir, describe_outage, is_storage_outage, open_storage, repair_journal
from nas.export.weights import WeightsKeeper

log = logging.getLogger(__name__)


def start(spec: RunSpec, out: str | Path, overwrite: bool = False, progress: bool = True,
          join: bool = False) -> tuple[RunDir, Outcome]:
    """Create the run folder ``out`` for a validated spec and search.

    ``join``: work on the storage's study of this name if it exists (another driver's shared study;
    its budget is shared), instead of refusing it.
    """
    run_dir = RunDir(out)
    fresh = not run_dir.path.exists()
    run_dir.prepare_new(overwrite)
    try:
        if join and not spec.run["storage"]:
            raise SpecError("--join: needs the shared study's storage (--storage URL or run.storage)")
        if join and spec.run["deterministic"]:
            raise SpecError("--join: several drivers on one study cannot give a deterministic run "
                            "(each sees the others' results as they come); set run.deterministic = false")
        if spec.run["storage"] and overwrite and not join:
            _delete_study(spec.run["storage"], spec.name)
        run_dir.spec_file.write_text(storable(spec).to_toml())  # no storage: the folder's own journal, wherever it is
        spec.run["storage"] = spec.run["storage"] or run_dir.default_storage_url()
        with user_code_on_ray(spec):
            return run_dir, _search(spec, run_dir, new=not join, progress=progress, join=join)
    except BaseException:
        _discard_if_empty(run_dir, spec, fresh, keep_study=join)
        raise


def _discard_if_empty(run_dir: RunDir, spec: RunSpec, fresh: bool, keep_study: bool = False) -> None:
    """Undo a start that failed before any trial (bad data, storage, executor): fixing the spec and
    running ``nas search`` again must not meet a half-made run. A run with trials is kept for resume."""
    url = spec.run["storage"]
    try:
        storage = open_storage(url) if url and not keep_study else None
        if storage is not None and _study_exists(storage, spec.name):
            if optuna.load_study(study_name=spec.name, storage=storage).trials:
                return
            optuna.delete_study(study_name=spec.name, storage=storage)
    except Exception:  # an unreachable storage: nothing of this run unless its search had begun
        log.debug("could not inspect %s while discarding a failed start", url, exc_info=True)
        if run_dir.searched:
            return
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
    run_dir.spec_file.write_text(storable(spec).to_toml())
    spec.run["storage"] = spec.run["storage"] or run_dir.default_storage_url()
    with user_code_on_ray(spec):
        return run_dir, _search(spec, run_dir, new=False, progress=progress)


def _search(spec: RunSpec, run_dir: RunDir, new: bool, progress: bool, join: bool = False) -> Outcome:
    """Open the ledger, run the loop, write the summary; the driver lock is held throughout."""
    run_dir.acquire()
    handler = _log_to(run_dir.log_file)
    url = spec.run["storage"]
    try:
        if url.startswith("journal:") or url.endswith(".journal"):
            repair_journal(url.removeprefix("journal:"))  # we hold the run: a torn tail is a dead writer's
        storage = open_storage(url)
        exists = _study_exists(storage, spec.name)
        if new and exists:
            raise SpecError(f"run.storage: study {spec.name!r} already exists in {url}; use 'nas resume', "
                            "--join to share it with its drivers, another run.name, or --overwrite")
        if not new and not join and not exists:
            raise SpecError(f"{run_dir.path}: its study {spec.name!r} is not in {url}")
        study = _open_study(spec, storage, exists, join)
        _record_versions(study)
        executor = registry.lookup("executors", spec.executor["name"], "executor.name")(
            **{k: v for k, v in spec.executor.items() if k != "name"})
        search = Search(spec, study, executor, url, Progress() if progress else None)
        run_dir.searched = True
        keep = int(spec.evaluator.get("keep_weights", 0) or 0)
        if keep:
            search.keeper = WeightsKeeper(study, run_dir.path, keep, spec.objectives[0]["direction"] == "maximize")
        search.stage = Stage.of(spec, run_dir.path, study)
        outcome = search.run()
        if search.stage is not None:
            search.stage.retrain(executor)
        write_outputs(run_dir, spec, study)
        return outcome
    except Exception as err:
        if is_storage_outage(err):
            raise SpecError(f"run.storage: lost {url} ({describe_outage(err)}); the search stopped; "
                            f"continue with 'nas resume {run_dir.path}' once it is back") from None
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        run_dir.release()


VERSIONS_ATTR = "nas:versions"


def _record_versions(study: optuna.Study) -> None:
    """Add this driver's library versions to the study's list when they are new to it (the report
    shows what the run ran with, not only what reads it)."""
    import platform

    from nas.export.archfile import versions

    mine = versions(("torch", "optuna", "ray", "onnxruntime")) | {"python": platform.python_version()}
    seen = study.user_attrs.get(VERSIONS_ATTR, [])
    if mine not in seen:
        study.set_user_attr(VERSIONS_ATTR, [*seen, mine])


def write_outputs(run_dir: RunDir, spec: RunSpec, study: optuna.Study) -> None:
    """``summary.json``, the space's own report (``SearchSpace.report``), ``report.html`` (unless
    ``run.report`` is false) and ``best/genotype.json`` (plus a picture where the space can draw)."""
    summary = summarize(spec, study, str(run_dir.path))
    space = registry.make_space(spec.space["name"], spec.space_options())
    _write_space_report(space, spec, study, run_dir.path)
    if len(spec.objectives) > 1:
        _write_pareto(spec, study, run_dir.path)
    _write_best(space, summary.get("best"), run_dir.path / "best")  # first: the report reuses its picture
    summary["report"] = write_run_report(run_dir.path) if spec.run["report"] else None  # reads the ledger
    (run_dir.path / "summary.json").write_text(json.dumps(summary, indent=2))


def _write_best(space: Any, best: dict[str, Any] | None, best_dir: Path) -> None:
    """``best/genotype.json`` and, where the space can draw, ``best/architecture.png`` (written after it)."""
    if not best:
        return
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
        scored = ranked_trials([t for t in trials if t.state == TrialState.COMPLETE and t.values],
                               spec.objectives[0]["direction"])
        numbers = {t.number for t in scored}
        ordered = scored + [t for t in trials if t.number not in numbers]
        written = space.report([trial_record(t, spec, space) for t in ordered], folder)
    except Exception:  # like the picture: never fail a finished search over it
        log.warning("could not write the %s space's report", space.name, exc_info=True)
        return
    if written:
        log.info("space report: %s", ", ".join(written))


def _open_study(spec: RunSpec, storage: Any, exists: bool, join: bool) -> optuna.Study:
    """The study, its sampler's random stream continued (resume) or made the driver's own (join)."""
    stream = ""
    if join:
        stream = f"driver:{os.getpid()}:{time.time()}"
    elif exists:
        study_id = storage.get_study_id_from_name(spec.name)
        stream = f"trials:{len(storage.get_all_trials(study_id, deepcopy=False))}"
    study = create_study(spec, storage, stream=stream)
    found = [d.name.lower() for d in study.directions]
    if found != [d.lower() for d in spec.directions]:
        raise SpecError(f"objectives: the study {spec.name!r} in the storage has directions {found}, "
                        f"this spec {spec.directions}")
    return study


def _write_pareto(spec: RunSpec, study: optuna.Study, folder: Path) -> None:
    """``pareto.png`` of a multi-objective run (never fails a finished search)."""
    from nas.search.pareto import write_pareto_png

    try:
        write_pareto_png(spec, study, folder / "pareto.png")
    except Exception:
        log.warning("could not draw the Pareto set", exc_info=True)


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
