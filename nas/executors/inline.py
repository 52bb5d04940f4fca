"""In-process executor: one job at a time in the driver (debugging, tests, tabular benchmarks)."""

from __future__ import annotations

import signal
import threading
from collections import deque
from typing import Any, Mapping

from nas.config import SpecError

from nas.evaluator import EvaluatorSpec, Job, NullReporter, Reporter, Result, StudyReporter, run_job
from nas.executors import Executor, StudyLink


class TrialTimeout(BaseException):
    """Raised inside an inline evaluation that ran past the per-trial time limit (not an Exception,
    so the evaluator's own error handling cannot swallow it)."""


class InlineExecutor(Executor):
    """Evaluates each job synchronously on ``collect``; ``workers`` must be 1."""

    NAME = "inline"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._queue: deque[Job] = deque()

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        if options["workers"] != 1:
            raise SpecError(f"executor.workers: the inline executor runs 1 trial at a time, got {options['workers']}; "
                            "use --executor ray for parallel trials")

    def start(self, evaluator: EvaluatorSpec, link: StudyLink) -> None:
        self._evaluator = evaluator.make(evaluator.load_shared())
        self._link = link

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def collect(self, timeout: float | None = None) -> list[tuple[Job, Result]]:
        if not self._queue:
            return []
        job = self._queue.popleft()
        reporter: Reporter = NullReporter()
        if self._link.pruner is not None:
            reporter = StudyReporter(self._link.study, job.trial_id)
        limit = self.options["timeout"]
        if not limit or threading.current_thread() is not threading.main_thread():
            return [(job, run_job(self._evaluator, job, reporter))]
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            result = run_job(self._evaluator, job, reporter)
        except TrialTimeout:
            result = Result.failed(f"timeout: still running after {limit:g} s")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return [(job, result)]

    def in_flight(self) -> int:
        return len(self._queue)

    def shutdown(self) -> None:
        self._queue.clear()


def _raise_timeout(signum: int, frame: Any) -> None:
    """SIGALRM handler for the per-trial time limit."""
    raise TrialTimeout()
