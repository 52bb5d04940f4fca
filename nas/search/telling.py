"""The tell side of the search loop: results into the ledger, the best so far, elapsed time, progress.

:class:`Teller` is the base of :class:`nas.search.loop.Search`, which sets the attributes it reads.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.evaluator import COMPLETE, PRUNED, Job, Result
from nas.ledger.shared import ELAPSED_ATTR, Ledger
from nas.search.objectives import derived_metrics
from nas.search.progress import Progress
from nas.search.spec import RunSpec
from nas.search.study import record
from nas.search.summary import TIE_METRIC

log = logging.getLogger("nas.search.loop")


@dataclass
class Outcome:
    """How a call of :meth:`Search.run` ended."""

    reason: str  # budget | time | target | exhausted | failures | infeasible
    evaluated: int
    budget: int
    message: str = ""


class Teller:
    """Records results in the study (the ledger) and keeps the search's counters."""

    spec: RunSpec
    study: optuna.Study
    ledger: Ledger
    progress: Progress | None
    executor: Any
    trials: dict[int, tuple[optuna.Trial, dict[str, float]]]
    parked: dict[str, list[optuna.Trial]]
    in_flight_arch: dict[str, int]
    counts: dict[str, int]
    best: tuple[float, int] | None
    stop: Any
    driver: Any
    keeper: Any
    fail_streak: int
    started: float
    _last_elapsed_write: float

    clock: Callable[[], float]
    screening: Any
    ready: list[Any]

    # ----- tell ----------------------------------------------------------------------------------
    def _tell(self, job: Job, result: Result) -> None:
        """Record an evaluation's result and release duplicates that waited for it."""
        trial, cheap = self.trials.pop(job.trial_number)
        del self.in_flight_arch[job.arch_id]
        self.ledger.claims.pop(job.arch_id, None)
        metrics = {**cheap, **result.metrics}
        metrics.update(derived_metrics(self.spec.objectives, metrics))
        info = {**result.info, "counted": True}
        if result.state == COMPLETE:
            missing = [o["metric"] for o in self.spec.objectives if o["metric"] not in metrics]
            if missing:
                result = Result.failed(f"result lacks objective metric(s) {missing}", **result.info)
                info = {**result.info, "counted": True}
        self._record_curve(trial, result)
        if result.state == COMPLETE:
            values = [metrics[o["metric"]] for o in self.spec.objectives]
            if self.keeper is not None and result.weights:
                self.keeper.offer(trial, values[0], result.weights, metrics.get(TIE_METRIC))
            frozen = self._finish(trial, metrics, info, TrialState.COMPLETE, values)
            self.counts["complete"] += 1
            self.fail_streak = 0
            self._update_best(frozen)
        elif result.state == PRUNED:
            frozen = self._finish(trial, metrics, info, TrialState.PRUNED)
            self.counts["pruned"] += 1
            self.fail_streak = 0
        else:
            frozen = self._tell_failed(trial, metrics, result.error or "failed", counted=True, info=info)
            self.ledger.index(frozen)
            self.fail_streak += 1
            if self.fail_streak >= self.spec.run["max_failures"]:
                self.stop = Outcome("failures", self.ledger.evaluated, self.spec.budget,
                                    f"{self.fail_streak} candidates failed in a row; last: {result.error}")
        self.ledger.index(frozen)
        log.info("trial %d %s %s %s", job.trial_number, frozen.state.name.lower(), job.arch_id,
                 _short(metrics) if frozen.state != TrialState.FAIL else result.error)
        for waiting in self.parked.pop(job.arch_id, []):
            self._tell_duplicate(waiting, frozen)
        self._write_elapsed()

    def _finish(self, trial: optuna.Trial, metrics: dict[str, float], info: dict[str, Any],
                state: TrialState, values: list[float] | None = None) -> FrozenTrial:
        """Write a trial's metrics and info, then tell it (see :func:`nas.search.study.record`)."""
        try:
            return record(self.study, trial, metrics, info, state, values)
        finally:
            self.driver.mine.discard(trial.number)

    def _tell_failed(self, trial: optuna.Trial, metrics: dict[str, float], error: str, counted: bool,
                     info: dict[str, Any] | None = None) -> FrozenTrial:
        self.counts["failed"] += counted
        return self._finish(trial, metrics, {**(info or {}), "counted": counted, "error": error},
                            TrialState.FAIL)

    def _tell_duplicate(self, trial: optuna.Trial, original: FrozenTrial) -> None:
        """Answer a repeated architecture from the ledger (no budget spent).

        The repeat is told as FAIL with ``info.duplicate_of`` and the original's metrics, so that
        samplers, ``study.best_trials``, Pareto sets and optuna-dashboard's plots see each
        architecture once; our history samplers read the original's values through it.
        """
        self.counts["duplicates"] += 1
        info = {"counted": False, "duplicate_of": original.number,
                "duplicate_state": original.state.name.lower()}
        if "error" in original.user_attrs.get("info", {}):
            info["error"] = original.user_attrs["info"]["error"]
        self._finish(trial, original.user_attrs.get("metrics", {}), info, TrialState.FAIL)

    def _record_curve(self, trial: optuna.Trial, result: Result) -> None:
        """Write the learning curve as intermediate values (with a pruner, the reporter already did;
        Optuna keeps none for multi-objective studies: the curve stays in ``info``)."""
        if self.spec.pruner["name"] != "none" or len(self.spec.objectives) > 1:
            return
        for step, value in result.info.get("curve") or []:
            if math.isfinite(value):
                trial.report(float(value), int(step))

    def _abandon(self, reason: str) -> None:
        """Fail every trial still in flight or waiting, without using budget (resume re-runs them)."""
        screening = [e.trial for e in self.ready + (self.screening.give_back() if self.screening else [])]
        self.ready = []
        waiting = [t for ts in self.parked.values() for t in ts] + screening
        for trial in [t for t, _ in self.trials.values()] + waiting:
            try:
                self._tell_failed(trial, {}, reason, counted=False)
            except Exception:  # the storage may be gone too; resume will fail these trials anyway
                log.debug("could not fail trial %d", trial.number, exc_info=True)
        self.trials.clear()
        self.parked.clear()

    # ----- bookkeeping -----------------------------------------------------------------------------
    def _seed_best(self) -> None:
        for trial in self.ledger.done.values():
            self._update_best(trial)

    def _update_best(self, trial: FrozenTrial) -> None:
        if len(self.spec.objectives) != 1 or trial.state != TrialState.COMPLETE:
            return
        sign = 1.0 if self.spec.objectives[0]["direction"] == "maximize" else -1.0
        value = trial.values[0]
        if self.best is None or sign * value > sign * self.best[0]:
            self.best = (value, trial.number)

    def _write_elapsed(self, force: bool = False) -> None:
        """Persist the search's cumulative wall time (for ``max_time`` across resumes), every 30 s."""
        now = self.clock()
        if force or now - self._last_elapsed_write > 30:
            self.study.set_user_attr(ELAPSED_ATTR, self.ledger.elapsed + now - self.started)
            self._last_elapsed_write = now

    def _show(self, final: bool = False) -> None:
        if self.progress is None:
            return
        metric = self.spec.objectives[0]["metric"] if len(self.spec.objectives) == 1 else ""
        self.progress.update(done=self.ledger.evaluated, budget=self.spec.budget, best=self.best,
                             metric=metric, running=self.executor.in_flight(),
                             failed=self.counts["failed"], duplicates=self.counts["duplicates"],
                             final=final)


def _short(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
