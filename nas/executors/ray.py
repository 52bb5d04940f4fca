"""Ray executor: a pool of actor workers on a local Ray instance (default) or a cluster (``address``).

Each worker is a Ray actor that builds its evaluator once: data sets are loaded once by the driver,
put once into Ray's object store and shared by every worker. A worker process that dies mid-trial is
restarted by Ray and the trial re-run (``retries``); a trial past its time limit has its worker
replaced. Intermediate values reach the study's pruner through a small broker actor pinned to the
driver's node, which opens the run's storage there.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from nas.evaluator import EvaluatorSpec, Job, NullReporter, Result, StudyReporter, run_job, worker_name
from nas.executors import Executor, StudyLink

log = logging.getLogger(__name__)


class _Worker:
    """Actor body: one evaluator, many jobs."""

    def __init__(self, spec: EvaluatorSpec, holder: str, broker: str) -> None:
        import ray

        # Helper actors are found by name, and the shared data's reference comes from the holder:
        # handles or object references as constructor arguments would make a restarted worker
        # (after its process died) depend on them (Ray warns about it).
        refs = ray.get(ray.get_actor(holder).refs.remote())
        self.evaluator = spec.make(ray.get(refs[0]))
        self.broker = ray.get_actor(broker) if broker else None

    def evaluate(self, job: Job) -> Result:
        reporter = _BrokerReporter(self.broker, job.trial_id) if self.broker is not None else NullReporter()
        return run_job(self.evaluator, job, reporter)

    def name(self) -> str:
        return worker_name()


class _DataHolder:
    """Actor body that keeps the reference to the run's shared data for (re)starting workers."""

    def __init__(self) -> None:
        self._refs: list[Any] = []

    def keep(self, refs: list[Any]) -> None:
        self._refs = refs

    def refs(self) -> list[Any]:
        return self._refs


class _BrokerReporter:
    """Reporter that forwards to the pruning broker and waits for its answer."""

    def __init__(self, broker: Any, trial_id: int) -> None:
        self.broker, self.trial_id = broker, trial_id

    def report(self, step: int, value: float) -> bool:
        import ray

        return bool(ray.get(self.broker.report.remote(self.trial_id, step, value)))


class _PruneBroker:
    """Actor body on the driver's node: records intermediate values and asks the pruner."""

    def __init__(self, storage_url: str, study_name: str, pruner: dict[str, Any]) -> None:
        import optuna

        from nas.pruners import make_pruner
        from nas.store import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url),
                                       sampler=optuna.samplers.RandomSampler(), pruner=make_pruner(pruner))
        self.reporters: dict[int, StudyReporter] = {}

    def report(self, trial_id: int, step: int, value: float) -> bool:
        reporter = self.reporters.setdefault(trial_id, StudyReporter(self.study, trial_id))
        return reporter.report(step, value)


class RayExecutor(Executor):
    """Runs ``workers`` trials at once on Ray actors."""

    NAME = "ray"

    def start(self, evaluator: EvaluatorSpec, link: StudyLink) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR,
                                          log_to_driver=self.options["log_to_driver"])
            if self.options["address"]:
                ray.init(address=self.options["address"], **kwargs)
            else:
                ray.init(num_cpus=os.cpu_count(), **kwargs)
        cpus = self.options["cpus_per_trial"] or self._even_share()
        tag = uuid.uuid4().hex[:12]
        broker = None
        if link.storage_url and link.pruner.get("name", "none") != "none":
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            broker = ray.remote(_PruneBroker).options(
                num_cpus=0, scheduling_strategy=here, name=f"nasforge-broker-{tag}").remote(
                link.storage_url, link.study_name, dict(link.pruner))
        self._worker_cls = ray.remote(_Worker).options(
            num_cpus=cpus, num_gpus=self.options["gpus_per_trial"],
            max_restarts=-1, max_task_retries=self.options["retries"])
        self._shared = ray.put(evaluator.load_shared())  # once for all workers
        self._holder = ray.remote(_DataHolder).options(num_cpus=0, name=f"nasforge-data-{tag}").remote()
        ray.get(self._holder.keep.remote([self._shared]))
        self._spec, self._broker = evaluator, broker
        self._names = (f"nasforge-data-{tag}", f"nasforge-broker-{tag}" if broker is not None else "")
        self._idle = [self._new_worker() for _ in range(self.workers)]
        self._running: dict[Any, tuple[Job, Any, float]] = {}
        log.info("ray: %d worker(s), %.3g CPU and %.3g GPU each", self.workers, cpus,
                 self.options["gpus_per_trial"])

    def _even_share(self) -> float:
        """CPUs per worker when not given: the cluster's CPUs split evenly, at most 1 on a cluster."""
        import ray

        total = float(ray.cluster_resources().get("CPU", 1.0))
        share = round(total / self.workers, 3)
        return min(share, 1.0) if self.options["address"] else share

    def _new_worker(self) -> Any:
        return self._worker_cls.remote(self._spec, *self._names)

    def submit(self, job: Job) -> None:
        worker = self._idle.pop()
        self._running[worker.evaluate.remote(job)] = (job, worker, time.time())

    def collect(self, timeout: float | None = None) -> list[tuple[Job, Result]]:
        import ray

        if not self._running:
            return []
        limit = self.options["timeout"]
        wait = timeout
        if limit:
            first_deadline = min(t0 for _, _, t0 in self._running.values()) + limit
            wait = max(0.0, first_deadline - time.time()) if wait is None else min(wait, max(0.0, first_deadline - time.time()))
        ready, _ = ray.wait(list(self._running), num_returns=1, timeout=wait)
        if ready:  # take everything else that finished too
            ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        finished = [self._finish(ref) for ref in ready]
        if limit:
            finished += self._expire(limit)
        return finished

    def _finish(self, ref: Any) -> tuple[Job, Result]:
        """Result of a finished task; a worker that died on every retry becomes a failed trial."""
        import ray

        job, worker, _ = self._running.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as err:
            result = Result.failed(f"worker died {self.options['retries'] + 1} time(s) on this trial: "
                                   f"{_first_line(err)}")
        except ray.exceptions.RayError as err:
            result = Result.failed(f"ray: {_first_line(err)}")
        self._idle.append(worker)
        return job, result

    def _expire(self, limit: float) -> list[tuple[Job, Result]]:
        """Fail trials past the time limit and replace their workers."""
        import ray

        expired = []
        now = time.time()
        for ref, (job, worker, started) in list(self._running.items()):
            if now - started > limit:
                del self._running[ref]
                ray.kill(worker, no_restart=True)
                self._idle.append(self._new_worker())
                expired.append((job, Result.failed(f"timeout: still running after {limit:g} s")))
        return expired

    def in_flight(self) -> int:
        return len(self._running)

    def shutdown(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        for _, worker, _ in self._running.values():
            ray.kill(worker, no_restart=True)
        for worker in self._idle:
            ray.kill(worker, no_restart=True)
        for helper in (self._broker, self._holder):
            if helper is not None:
                ray.kill(helper, no_restart=True)
        self._running.clear()
        self._idle.clear()
        if self._owns_ray:
            ray.shutdown()

    def describe(self) -> str:
        where = self.options["address"] or "local Ray instance"
        return f"ray executor, {self.workers} worker(s) on {where}"


def _first_line(err: Exception) -> str:
    """The first non-empty line of an exception's text."""
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
