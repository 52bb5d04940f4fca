"""The search loop: ask -> genotype -> dedup by arch_id -> cheap checks -> submit -> collect -> tell.

The Optuna study is the ledger. The budget counts *unique* evaluations: an architecture proposed
again reuses its result (told as a duplicate, no budget spent), and one proposed while it is still
being evaluated waits for that result. Several drivers may share one study (see :mod:`nas.ledger.shared`):
each claims an architecture in the study before submitting it, the budget is the study's, and a
trial is failed as stale only when its own driver is gone; the interrupted architecture is queued
again, so it is evaluated once more and nothing completed is ever re-evaluated.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from nas import registry

from nas.ledger import batching
from nas.evaluator import SCREEN, Job, Result
from nas.executors import Executor, StudyLink
from nas.ledger._optuna import storage_of, trial_id
from nas.ledger.shared import EVALUATED, Driver, Ledger
from nas.search.order import Order
from nas.search.objectives import cheap_metrics, constraint_values, load_latency_table
from nas.search.prescreen import Entry, Screening, metrics_of, screen_spec
from nas.search.progress import Progress
from nas.search.study import create_study
from nas.search.spec import RunSpec
from nas.search.telling import Outcome, Teller

__all__ = ["Outcome", "Search", "create_study"]  # create_study lives in nas.search.study; callers import it here too

log = logging.getLogger(__name__)

DUPLICATE_STREAK = 10  # consecutive repeats before the loop injects a random unseen architecture (Optuna
# samplers do not see repeats, told FAIL, so TPE may propose one architecture many times: break that soon)
EXHAUSTED_TRIES = 1000  # random draws without an unseen architecture: the space is used up
POLL_S = 1.0  # how often a driver with nothing in flight looks at other drivers' claims


class Search(Teller):
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
                       "skipped": 0, "screened_out": 0}
        self.screening = Screening(dict(spec.prescreen)) if spec.prescreen else None
        self.ready: list[Entry] = []  # kept by the pre-screen, waiting for a worker
        self.best: tuple[float, int] | None = None
        self.stop: Outcome | None = None
        self.driver = Driver(study)
        self.keeper: Any = None  # nas.export.weights.WeightsKeeper when the spec keeps weights (set by the runner)
        self.stage: Any = None  # nas.oneshot.stage.Stage of a one-shot run (set by the runner)
        self.order = Order(spec.run["window"]) if spec.run["deterministic"] else None

    # ----- driving -------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Search until the budget, the time limit, exhaustion or repeated failure stops it."""
        self.driver.start()
        try:
            self.ledger = Ledger.load(self.study, self.driver)
            self.ledger.requeue(self.study)
            batching.install(self.storage)
            if self.screening is not None:
                self.screening.load(self.study)
            self._seed_best()
            self.started = self.clock()
            self._last_elapsed_write = self.started
            pruner = self.study.pruner if self.spec.pruner["name"] != "none" else None
            link = StudyLink(self.study, self.storage_url, self.spec.name, pruner)
            evaluator = self.spec.evaluator_spec()
            if self.stage is not None:  # one-shot: the supernet, or the differentiable search, first
                evaluator = self.stage.prepare(self.executor, evaluator, self.space, self.task, self.latency_table)
            if self.screening is not None:
                evaluator = dataclasses.replace(evaluator, screen=screen_spec(self.spec.prescreen, evaluator))
            self.executor.start(evaluator, link)
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
        budget = self.spec.budget
        while True:
            self._fill()
            if self.executor.in_flight() == 0 and not (self.order and self.order.busy()):
                if self._decide(closing=not self._halted() and self._room()):
                    continue
                if not self._others_at_work():
                    break
                time.sleep(POLL_S)
                continue
            for job, result in self.executor.collect(timeout=1.0):
                if self.order is not None:
                    self.order.arrive(job, result)
                    continue
                with batching.deferred(self.storage):
                    self._scored(job, result) if job.budget.get("stage") == SCREEN else self._tell(job, result)
            self._tell_in_order()
            self._decide(closing=False)
            self._show()
        self._give_back("not trained: the search ended before its pre-screen batch was decided")
        self._show(final=True)
        if self.stop is not None:
            return self.stop
        if self._target_reached():
            return Outcome("target", self.ledger.evaluated, budget, f"reached the target {self.spec.run['target']:g}")
        reason = "budget" if self.ledger.evaluated >= budget else "time"
        return Outcome(reason, self.ledger.evaluated, budget)

    def _fill(self) -> None:
        """Ask (or start what the pre-screen kept) while a worker, or a deterministic run's window, has room."""
        while (not self._halted() and self._open_slot() and self._room()
               and (self.ready or self.screening is None or not self.screening.full())):
            with batching.deferred(self.storage):  # one journal sync for the trial's attributes
                self._start(self.ready.pop(0)) if self.ready else self._ask_one()
        if self.order is not None:
            self.order.dispatch(self.executor)

    def _open_slot(self) -> bool:
        if self.order is not None:
            return self.order.room()
        return self.executor.in_flight() < self.executor.workers

    def _tell_in_order(self) -> None:
        """A deterministic run tells the oldest open result, then asks what that frees, then the next."""
        while self.order is not None and (done := self.order.next()) is not None:
            with batching.deferred(self.storage):
                self._tell(*done)
            self._fill()

    def _halted(self) -> bool:
        """Stopped, at the target or out of time: nothing more is asked or trained."""
        return self.stop is not None or self._target_reached() or self._time_up()

    def _room(self) -> bool:
        """Whether the study's budget has room for one more claim (see :meth:`Ledger.room`)."""
        return self.ledger.room(self.study, self.spec.budget)

    def _others_at_work(self) -> bool:
        """Other drivers hold live claims that may still leave budget to this one: wait for them."""
        if self._halted():
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
        """A new architecture: checked, then trained, or scored first by the pre-screen."""
        cheap = self._feasible(trial, genotype, arch_id)
        if cheap is None:
            return
        if self.screening is None:
            self._start(Entry(trial, genotype, arch_id, cheap, warmup=False))
            return
        admitted = self.screening.admit(trial, genotype, arch_id, cheap, self.spec.seed)
        if admitted == "train":  # kept before (its training was interrupted), or not screened
            self._start(Entry(trial, genotype, arch_id, {**cheap, **metrics_of(trial.user_attrs.get("prescreen", {}))},
                              warmup=False))
            return
        self.driver.own(trial)  # it may wait for its batch: other drivers must know it is alive
        self.in_flight_arch[arch_id] = trial.number
        if isinstance(admitted, Job):
            batching.flush(self.storage)
            self.executor.submit(admitted)

    def _feasible(self, trial: optuna.Trial, genotype: Any, arch_id: str) -> dict[str, float] | None:
        """The cheap metrics, or None when they break a constraint (the trial is then told infeasible)."""
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
            return None
        self.infeasible_streak = 0
        return cheap

    def _start(self, entry: Entry) -> None:
        """Claim an architecture and submit its training (cheap checks first: an infeasible one needs no claim)."""
        trial, arch_id = entry.trial, entry.arch_id
        if not self._claim(trial, arch_id):
            self._release(arch_id)
            return
        job = Job(trial.number, trial_id(trial), entry.genotype.to_json(), arch_id, self.spec.trial_budget,
                  self.spec.seed)
        self.trials[trial.number] = (trial, entry.cheap)
        self.in_flight_arch[arch_id] = trial.number
        batching.flush(self.storage)  # the trial's params and attributes, before a worker sees it
        self.order.add(job) if self.order is not None else self.executor.submit(job)

    # ----- pre-screen ----------------------------------------------------------------------------
    def _scored(self, job: Job, result: Result) -> None:
        assert self.screening is not None
        self.screening.scored(job, result)

    def _decide(self, closing: bool) -> bool:
        """Decide the pre-screen's batch when it is ready: its best wait for workers, the rest are
        told PRUNED (uncounted) with their scores and the reason. True when some wait now."""
        if self.screening is None or not self.screening.ready(closing):
            return False
        kept, dropped = self.screening.decide(self.study)
        with batching.deferred(self.storage):
            for entry, why in dropped:
                self.counts["screened_out"] += 1
                entry.trial.set_user_attr("prescreen", entry.record)
                frozen = self._finish(entry.trial, {**entry.cheap, **metrics_of(entry.record or {})},
                                      {"counted": False, "screened_out": why}, TrialState.PRUNED)
                del self.in_flight_arch[entry.arch_id]
                for waiting in self.parked.pop(entry.arch_id, []):
                    self._tell_duplicate(waiting, frozen)
            for entry in kept:
                entry.trial.set_user_attr("prescreen", entry.record)
                entry.cheap = {**entry.cheap, **metrics_of(entry.record or {})}
        self.ready.extend(kept)
        return bool(kept)

    def _give_back(self, reason: str) -> None:
        """Fail the pre-screen's undecided and waiting proposals, uncounted (their scores stay recorded)."""
        entries = self.ready + (self.screening.give_back() if self.screening is not None else [])
        self.ready = []
        for entry in entries:
            self._tell_failed(entry.trial, entry.cheap, reason, counted=False)
            self._release(entry.arch_id)

    def _release(self, arch_id: str) -> None:
        """An architecture is no longer in flight here: repeats that waited for it are skipped."""
        if self.in_flight_arch.get(arch_id) is not None and arch_id not in self.ledger.claims:
            self.in_flight_arch.pop(arch_id, None)
        for waiting in self.parked.pop(arch_id, []):
            self._skip(waiting, "the proposal it repeated was not trained")

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
