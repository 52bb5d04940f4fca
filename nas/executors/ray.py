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
from typing import Any, Callable, Mapping

from nas.executors._ray_cluster import _answers, _call, _connect, _first_line  # noqa: F401 (_connect: tests)
from nas.evaluator import EvaluatorSpec, Job, NullReporter, Result, run_job, worker_name
from nas.executors import Executor, StudyLink

log = logging.getLogger(__name__)

MAX_RESUBMITS = 5  # runs of one trial again after its worker was lost with a node


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
        # Each call is one attempt: a retry after this process died reports under a new attempt id,
        # so that the pruner judges the retry by its own values only.
        reporter = (_BrokerReporter(self.broker, job.trial_id, uuid.uuid4().hex) if self.broker is not None
                    else NullReporter())
        return run_job(self.evaluator, job, reporter)

    def name(self) -> str:
        return worker_name()

    def node(self) -> str:
        """The Ray node this worker runs on."""
        import ray

        return ray.get_runtime_context().get_node_id()


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

    def __init__(self, broker: Any, trial_id: int, attempt: str) -> None:
        self.broker, self.trial_id, self.attempt = broker, trial_id, attempt

    def report(self, step: int, value: float) -> bool:
        import ray

        return bool(ray.get(self.broker.report.remote(self.trial_id, step, value, self.attempt)))


class _PruneBroker:
    """Actor body on the driver's node: records intermediate values and asks the pruner.

    A trial retried after its worker died reports again from its first step. Optuna keeps the first
    value reported for a step, so the broker writes each value itself: when a retry starts, the dead
    attempt's values become NaN (which pruners skip) until the retry overwrites them; the pruner
    is asked about a copy of the trial holding only the current attempt's values; reports from an
    attempt that a newer one replaced are answered "stop".
    """

    def __init__(self, storage_url: str, study_name: str, pruner: Any) -> None:
        import optuna

        from nas.ledger._optuna import storage_of
        from nas.ledger.store import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url),
                                       sampler=optuna.samplers.RandomSampler(), pruner=pruner)
        self.storage = storage_of(self.study)
        self.attempts: dict[int, tuple[str, dict[int, float]]] = {}  # trial id -> (attempt, its values)
        self.retired: set[str] = set()

    def report(self, trial_id: int, step: int, value: float, attempt: str = "") -> bool:
        import math

        if attempt in self.retired:
            return True  # a replaced attempt: stop it
        current, values = self.attempts.get(trial_id, (attempt, {}))
        if current != attempt:  # a retry: blank the dead attempt's values until the retry reaches them
            self.retired.add(current)
            for old_step in values:
                self.storage.set_trial_intermediate_value(trial_id, old_step, math.nan)
            values = {}
        self.attempts[trial_id] = (attempt, values)
        if not math.isfinite(value):
            return False
        values[step] = float(value)
        self.storage.set_trial_intermediate_value(trial_id, step, float(value))
        return prune_on_values(self.study, trial_id, values)


def prune_on_values(study: Any, trial_id: int, values: dict[int, float]) -> bool:
    """The study pruner's verdict on trial ``trial_id`` as if it had reported only ``values``."""
    import copy

    from nas.ledger._optuna import storage_of

    frozen = copy.copy(storage_of(study).get_trial(trial_id))
    frozen.intermediate_values = dict(values)
    return bool(study.pruner.prune(study, frozen))


class RayExecutor(Executor):
    """Runs ``workers`` trials at once on Ray actors."""

    NAME = "ray"

    def start(self, evaluator: EvaluatorSpec, link: StudyLink) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            _connect(self.options["address"], self.options["log_to_driver"])
        cpus = self.options["cpus_per_trial"] or self._even_share()
        tag = uuid.uuid4().hex[:12]
        broker = None
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # Helpers live on the driver's node: a worker node that leaves the cluster takes only workers.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        if link.storage_url and link.pruner is not None:
            broker = ray.remote(_PruneBroker).options(
                num_cpus=0, scheduling_strategy=here, name=f"nasforge-broker-{tag}").remote(
                link.storage_url, link.study_name, link.pruner)
        self._worker_cls = ray.remote(_Worker).options(
            num_cpus=cpus, num_gpus=self.options["gpus_per_trial"],
            max_restarts=-1, max_task_retries=self.options["retries"])
        self._shared = ray.put(evaluator.load_shared())  # once for all workers
        self._holder = ray.remote(_DataHolder).options(num_cpus=0, name=f"nasforge-data-{tag}",
                                                       scheduling_strategy=here).remote()
        ray.get(self._holder.keep.remote([self._shared]))
        self._spec, self._broker = evaluator, broker
        self._names = (f"nasforge-data-{tag}", f"nasforge-broker-{tag}" if broker is not None else "")
        self._where: dict[str, Any] = {}  # worker's actor id -> reference to the node it runs on
        self._idle = [self._new_worker() for _ in range(self.workers)]
        self._running: dict[Any, tuple[Job, Any, float]] = {}
        self._resubmits: dict[int, int] = {}  # trial id -> runs again after infrastructure failures
        log.info("ray: %d worker(s), %.3g CPU and %.3g GPU each", self.workers, cpus,
                 self.options["gpus_per_trial"])

    def _even_share(self) -> float:
        """CPUs per worker when not given: the cluster's CPUs split evenly, at most 1 on a cluster."""
        import ray

        total = float(ray.cluster_resources().get("CPU", 1.0))
        share = round(total / self.workers, 3)
        return min(share, 1.0) if self.options["address"] else share

    def _new_worker(self) -> Any:
        worker = self._worker_cls.remote(self._spec, *self._names)
        self._where[worker._actor_id.hex()] = worker.node.remote()
        return worker

    def submit(self, job: Job) -> None:
        self._launch(job, self._idle.pop())

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
        finished = [done for done in map(self._finish, ready) if done is not None]
        if limit:
            finished += self._expire(limit)
        return finished

    def _finish(self, ref: Any) -> tuple[Job, Result] | None:
        """Result of a finished task, or None when it was submitted again after an infrastructure
        failure. A worker process that died on every one of Ray's retries (the candidate crashes it)
        becomes a failed trial; a worker lost with its node is replaced and the trial run again."""
        import ray

        job, worker, _ = self._running.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as err:
            if self._infrastructure(err, worker) and self._resubmits.get(job.trial_id, 0) < MAX_RESUBMITS:
                self._resubmits[job.trial_id] = self._resubmits.get(job.trial_id, 0) + 1
                log.warning("trial %d: its worker was lost with its node (%s); running it again on another worker",
                            job.trial_number, _first_line(err))
                ray.kill(worker, no_restart=True)
                self._where.pop(worker._actor_id.hex(), None)
                self._launch(job, self._new_worker())
                return None
            result = Result.failed(f"worker died {self.options['retries'] + 1} time(s) on this trial: "
                                   f"{_first_line(err)}")
        except ray.exceptions.RayError as err:
            result = Result.failed(f"ray: {_first_line(err)}")
        self._resubmits.pop(job.trial_id, None)
        self._idle.append(worker)
        return job, result

    def _launch(self, job: Job, worker: Any) -> None:
        self._running[worker.evaluate.remote(job)] = (job, worker, time.time())

    def _infrastructure(self, err: Exception, worker: Any) -> bool:
        """Whether an actor error is the cluster's doing (the worker's node is gone or its raylet does
        not answer), not the candidate's (its process died on a node that is alive)."""
        import ray

        if getattr(err, "preempted", False):
            return True
        nodes = {n["NodeID"]: n for n in ray.nodes()}
        try:
            where = ray.get(self._where[worker._actor_id.hex()], timeout=2)
        except Exception:  # never answered: started on a node that failed, or still starting
            return any(not n.get("Alive") for n in nodes.values())
        node = nodes.get(where)
        if node is None or not node.get("Alive"):
            return True
        return not _answers(node["NodeManagerAddress"], int(node["NodeManagerPort"]))

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

    def run_task(self, target: str, kwargs: Mapping[str, Any], poll: Callable[[], None] | None = None) -> Any:
        """One Ray task on the driver's node (its checkpoints go to the run folder there), with one GPU
        when that node has one, else all of the node's CPUs."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        owns = not ray.is_initialized()
        if owns:
            _connect(self.options["address"], self.options["log_to_driver"])
        try:
            node = ray.get_runtime_context().get_node_id()
            resources = next((n["Resources"] for n in ray.nodes() if n["NodeID"] == node), {})
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
            cpus = 1.0 if gpus else max(1.0, float(resources.get("CPU", 1.0)))
            ref = ray.remote(_call).options(
                num_cpus=cpus, num_gpus=gpus, max_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(target, dict(kwargs))
            while not ray.wait([ref], timeout=1.0)[0]:
                if poll is not None:
                    poll()
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                raise err.as_instanceof_cause() from None
            if poll is not None:
                poll()
            return result
        finally:
            if owns:
                ray.shutdown()

    def describe(self) -> str:
        where = self.options["address"] or "local Ray instance"
        return f"ray executor, {self.workers} worker(s) on {where}"
