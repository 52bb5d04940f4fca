"""The search's side of the ledger: the run's study made from its spec, and a trial's outcome told to it."""

from __future__ import annotations

import logging
import random
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from nas import registry
from nas.config import json_safe
from nas.controllers import make_sampler
from nas.controllers.history import GenotypeSampler
from nas.ledger import batching
from nas.ledger._optuna import storage_of, tell_without_copy, trial_id
from nas.search.pruners import make_pruner
from nas.search.spec import RunSpec

log = logging.getLogger(__name__)


def create_study(spec: RunSpec, storage: Any, load_if_exists: bool = True, stream: str = "") -> optuna.Study:
    """The run's study with the spec's controller (sampler), pruner and directions.

    ``stream`` names where the sampler's random stream continues: "" for a new run (the spec's seed
    as is); e.g. ``"trials:120"`` on resume, so a resumed run does not replay its first proposals,
    or a driver's id when it joins a shared study. Samplers that seed each proposal by trial number
    (ours) already continue and keep the spec's seed.
    """
    space = registry.make_space(spec.space["name"], spec.space_options())
    sampler = make_sampler(spec.controller["name"], _without_name(spec.controller), space, spec.seed,
                           len(spec.objectives))
    if stream and not isinstance(sampler, GenotypeSampler):
        seed = random.Random(f"{spec.seed}:{stream}").randrange(2**31)
        sampler = make_sampler(spec.controller["name"], _without_name(spec.controller), space, seed,
                               len(spec.objectives))
    level = optuna.logging.get_verbosity()  # Optuna's "A new study created ..." line: the run log has it
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        return optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler,
                                   pruner=make_pruner(spec.pruner), directions=spec.directions,
                                   load_if_exists=load_if_exists)
    finally:
        optuna.logging.set_verbosity(level)


def record(study: optuna.Study, trial: optuna.Trial, metrics: dict[str, float], info: dict[str, Any],
           state: TrialState, values: list[float] | None = None) -> FrozenTrial:
    """Write a trial's metrics and info, then tell it; the trial as stored.

    A trial that another driver failed meanwhile (it judged this one gone) keeps that verdict.
    """
    storage = storage_of(study)
    try:
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("info", json_safe(info))
        if state == TrialState.PRUNED:  # Optuna reads a pruned trial's last intermediate value back
            batching.flush(storage)
        # Otherwise the held attributes go to the journal with the state, in one append: no sampler's
        # after_trial reads a trial's user attributes (Optuna's read params, values and constraints).
        return tell_without_copy(study, trial, values, state)
    except (UpdateFinishedTrialError, ValueError):
        stored = batching.stored(storage, trial_id(trial))
        if not stored.state.is_finished():
            raise
        log.warning("trial %d was failed by another driver while this one ran it", trial.number)
        return stored


def _without_name(table: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if k != "name"}
