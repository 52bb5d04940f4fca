"""The search loop: ask -> genotype -> dedup by arch_id -> cheap checks -> submit -> collect -> tell.

The Optuna study is the ledger. The budget counts *unique* evaluations: an architecture proposed
again reuses its result (told as a duplicate, no budget spent), and one proposed while it is still
being evaluated waits for that result. Several drivers may share one study (see :mod:`nas.ledger.shared`):
each claims an architecture in the study before submitting it, the budget is the study's, and a
trial is failed as stale only when its own driver is gone; the interrupted architecture is queued
again, so it is evaluated once more and nothing completed is ever re-evaluated.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas import registry

from nas.ledger import batching
from nas.evaluator import COMPLETE, PRUNED, Job, Result
from nas.executors import Executor, StudyLink
from nas.ledger._optuna import storage_of, trial_id
from nas.ledger.shared import ELAPSED_ATTR, EVALUATED, Driver, Ledger
from nas.search.objectives import cheap_metrics, constraint_values, derived_metrics, load_latency_table
from nas.search.progress import Progress
from nas.search.study import create_study, record
from nas.search.summary import TIE_METRIC
from nas.search.spec import RunSpec

__all__ = ["Outcome", "Search", "create_study"]  # create_study lives in nas.search.study; callers import it here too

log = logging.getLogger(__name__)

DUPLICATE_STREAK = 10  # consecutive repeats before the loop injects a random unseen architecture (Optuna
# samplers do not see repeats, told FAIL, so TPE may propose one architecture many times: break that soon)
EXHAUSTED_TRIES = 1000  # random draws without an unseen architecture: the space is used up
POLL_S = 1.0  # how often a driver with nothing in flight looks at other drivers' claims


@dataclass
class Outcome:
    """How a call of :meth:`Search.run` ended."""

    reason: str  # budget | time | target | exhausted | failures | infeasible
    evaluated: int
    budget: int
    message: str = ""


class Search:
    """Runs a spec's search on a study through an executor.

    Args:
        spec: the validated run spec.
        study: the ledger (made by :func:`create_study`).
        executor: where evaluations run (not yet started).
        storage_url: the study's storage URL, for remote workers' pruning ("" if in-memory).
        progress: progress display; None for silence.
        clock: wall-clock seconds (``time.time``; tests inject their own): ``max_time`` and the
            cumulative elapsed time read it.
    """

    def __init__(self, spec: RunSpec, study: optuna.Study, executor: Executor, storage_url: str = "",
                 progress: Progress | None = None, clock: Callable[[], float] = time.time) -> None:
        self.spec, self.study, self.executor, self.clock = spec, study, executor, clock
        self.storage = storage_of(study)
        self.storage_url, self.progress = storage_url, progress
        self.space = registry.make_space(spec.space["name"], spec.space_options())
        self.task = registry.lookup("evaluators", spec.evaluator["name"], declaration=True).task_for(
            spec.evaluator_spec().options, self.space)
        self.distributions = self.space.distributions()
        self.latency_table = load_latency_table(spec, self.space, self.task)
        self.rng = random.Random(spec.seed)
        self.trials: dict[int, tuple[optuna.Trial, dict[str, float]]] = {}  # in flight, by number
        self.parked: dict[str, list[optuna.Trial]] = {}  # arch_id in flight -> duplicates waiting for it
        self.in_flight_arch: dict[str, int] = {}
        self.dup_streak = self.fail_streak = self.infeasible_streak = 0
        self.counts = {"complete": 0, "pruned": 0, "failed": 0, "duplicates": 0, "infeasible": 0,
                       "skipped": 0}
        self.best: tuple[float, int] | None = None
        self.stop: Outcome | None = None
        self.driver = Driver(study)
        self.keeper: Any = None  # nas.export.weights.WeightsKeeper when the spec keeps weights (set by the runner)

    # ----- driving -------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Search until the budget, the time limit, exhaustion or repeated failure stops it."""
        self.driver.start()
        try:
            self.ledger = Ledger.load(self.study, self.driver)
            self.ledger.requeue(self.study)
            batching.install(self.storage)
            self._seed_best()
            self.started = self.clock()
            self._last_elapsed_write = self.started
            pruner = self.study.pruner if self.spec.pruner["name"] != "none" else None
            link = StudyLink(self.study, self.storage_url, self.spec.name, pruner)
            self.executor.start(self.spec.evaluator_spec(), link)
            log.info("search %s: %s, budget %d (%d done)", self.spec.name, self.executor.describe(),
                     self.spec.budget, self.ledger.evaluated)
            return self._drive()
        finally:  # on every exit, a failed start included: this driver's trials are then stale at once
            self.driver.stop()
            if self.progress:
                self.progress.close()

    def _drive(self) -> Outcome:
        """The loop on a started executor; in-flight trials are given back if it is stopped."""
        try:
            return self._loop()
        except BaseException:
            self._abandon("interrupted: the search was stopped before this trial finished")
            raise
        finally:
            self.executor.shutdown()
            try:
                self._write_elapsed(force=True)
            except Exception:  # a lost storage is reported by the error already on its way
                log.debug("could not record the elapsed time", exc_info=True)

    def _loop(self) -> Outcome:
        budget, workers = self.spec.budget, self.executor.workers
        while True:
            while (self.stop is None and not self._target_reached() and self.executor.in_flight() < workers
                   and not self._time_up() and self._room()):
                with batching.deferred(self.storage):  # one journal sync for the trial's attributes
                    self._ask_one()
            if self.executor.in_flight() == 0:
                if not self._others_at_work():
                    break
                time.sleep(POLL_S)
                continue
            for job, result in self.executor.collect(timeout=1.0):
                with batching.deferred(self.storage):
                    self._tell(job, result)
            self._show()
        self._show(final=True)
        if self.stop is not None:
            return self.stop
        if self._target_reached():
            return Outcome("target", self.ledger.evaluated, budget, f"reached the target {self.spec.run['target']:g}")
        reason = "budget" if self.ledger.evaluated >= budget else "time"
        return Outcome(reason, self.ledger.evaluated, budget)

    def _room(self) -> bool:
        """Whether the study's budget has room for one more claim (see :meth:`Ledger.room`)."""
        return self.ledger.room(self.study, self.spec.budget)

    def _others_at_work(self) -> bool:
        """Other drivers hold live claims that may still leave budget to this one: wait for them."""
        if self.stop is not None or self._target_reached() or self._time_up():
            return False
        return self.ledger.others_at_work(self.study, self.spec.budget)

    def _target_reached(self) -> bool:
        target = self.spec.run["target"]
        if target != target or self.best is None:
            return False
        maximize = self.spec.objectives[0]["direction"] == "maximize"
        return self.best[0] >= target if maximize else self.best[0] <= target

    def _time_up(self) -> bool:
        limit = self.spec.run["max_time"]
        return bool(limit) and self.ledger.elapsed + self.clock() - self.started >= limit

    # ----- ask -----------------------------------------------------------------------------------
    def _ask_one(self) -> None:
        """Ask the controller for one architecture and submit, reuse or reject it."""
        exhausted = getattr(self.study.sampler, "is_exhausted", None)
        if exhausted is not None and exhausted(self.study):
            self.stop = Outcome("exhausted", self.ledger.evaluated, self.spec.budget,
                                "the controller has proposed every architecture it can (e.g. a whole grid)")
            return
        if self.dup_streak >= DUPLICATE_STREAK:
            self._enqueue_unseen()
            if self.stop:
                return
        trial = self.study.ask(self.distributions)
        self.driver.asked(trial)
        try:
            genotype = self.space.from_params(trial.params)
        except ValueError as err:
            self._tell_failed(trial, {}, f"invalid params: {err}", counted=False)
            self.infeasible_streak += 1
            if self.infeasible_streak >= EXHAUSTED_TRIES:
                self.stop = Outcome("infeasible", self.ledger.evaluated, self.spec.budget,
                                    f"{EXHAUSTED_TRIES} proposals in a row were invalid; last: {err}")
            return
        arch_id = genotype.arch_id
        trial.set_user_attr("arch_id", arch_id)
        trial.set_user_attr("genotype", genotype.to_dict())
        if arch_id in self.ledger.done:
            self.dup_streak += 1
            self._tell_duplicate(trial, self.ledger.done[arch_id])
        elif arch_id in self.in_flight_arch:
            self.dup_streak += 1
            self.driver.own(trial)  # it may wait long: other drivers must know it is alive
            self.parked.setdefault(arch_id, []).append(trial)
        elif arch_id in self.ledger.claims:
            self.dup_streak += 1
            self._skip(trial, f"trial #{self.ledger.claims[arch_id]} of another driver is evaluating it")
        else:
            self.dup_streak = 0
            self._submit(trial, genotype, arch_id)

    def _claim(self, trial: optuna.Trial, arch_id: str) -> bool:
        """Claim ``arch_id`` for ``trial`` (see :meth:`Ledger.claim`); a withdrawn claim's trial is told
        as a duplicate (evaluated meanwhile by another driver) or skipped."""
        why = self.ledger.claim(self.study, self.driver, trial, arch_id, self.spec.budget)
        if not why:
            return True
        if why == EVALUATED:
            self._tell_duplicate(trial, self.ledger.done[arch_id])
        else:
            self._skip(trial, why)
        time.sleep(self.rng.random() * 0.05)  # two drivers that withdrew together retry apart
        return False

    def _skip(self, trial: optuna.Trial, reason: str) -> None:
        """Give a trial up without evaluating it (uncounted; the architecture stays free)."""
        self.counts["skipped"] += 1
        self._finish(trial, {}, {"counted": False, "error": f"skipped: {reason}"}, TrialState.FAIL)

    def _submit(self, trial: optuna.Trial, genotype: Any, arch_id: str) -> None:
        cheap = cheap_metrics(self.space, genotype, self.task, self.latency_table)
        violated = [f"{m} {cheap[m]:.4g} outside [{b['min']:.4g}, {b['max']:.4g}]"
                    for m, b in self.spec.constraints.items() if not b["min"] <= cheap[m] <= b["max"]]
        for key, value in constraint_values(self.spec.constraints, cheap).items():
            trial.set_constraint(key, value)  # TPE, NSGA-II and GP read these to learn feasibility
        if violated:
            self.counts["infeasible"] += 1
            self.infeasible_streak += 1
            # PRUNED (no values): TPE counts it as an infeasible observation; FAIL would hide it.
            frozen = self._finish(trial, cheap, {"counted": False, "error": "infeasible: " + "; ".join(violated)},
                                  TrialState.PRUNED)
            self.ledger.done[arch_id] = frozen
            if self.infeasible_streak >= EXHAUSTED_TRIES:
                self.stop = Outcome("infeasible", self.ledger.evaluated, self.spec.budget,
                                    f"{EXHAUSTED_TRIES} proposals in a row broke the constraints; relax them")
            return
        self.infeasible_streak = 0
        if not self._claim(trial, arch_id):  # cheap checks first: an infeasible candidate needs no claim
            return
        job = Job(trial.number, trial_id(trial), genotype.to_json(), arch_id, self.spec.trial_budget,
                  self.spec.seed)
        self.trials[trial.number] = (trial, cheap)
        self.in_flight_arch[arch_id] = trial.number
        batching.flush(self.storage)  # the trial's params and attributes, before a worker sees it
        self.executor.submit(job)

    def _enqueue_unseen(self) -> None:
        """Break a run of repeated proposals: queue a random architecture not yet proposed."""
        seen = set(self.ledger.done) | set(self.in_flight_arch)
        for _ in range(EXHAUSTED_TRIES):
            genotype = self.space.sample(self.rng)
            if genotype.arch_id not in seen:
                self.study.enqueue_trial(self.space.to_params(genotype), user_attrs={"injected": True})
                self.dup_streak = 0
                return
        self.stop = Outcome("exhausted", self.ledger.evaluated, self.spec.budget,
                            f"no unseen architecture in {EXHAUSTED_TRIES} random draws: the space is used up")

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
        waiting = [t for ts in self.parked.values() for t in ts]
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
