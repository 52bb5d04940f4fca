"""Deterministic runs: results told in proposal order, with a fixed number of proposals open.

With ``[run] deterministic = true`` the driver (:class:`nas.search.loop.Search`) keeps at most
``[run] window`` evaluations open, asks a new proposal only when the oldest open one has been told,
tells results in the order their proposals were made (a result that comes back early waits), and
queues jobs that wait for a worker itself instead of handing them to the executor. What the
controller has seen when it makes proposal n is then the results of proposals 0..n-window, in that
order, whatever the number of workers or the order in which they finish: a seeded run gives the
same trials with any executor and any number of workers. Workers beyond ``window`` idle, and a slow
trial holds back the proposals after it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from nas.evaluator import Job, Result


class Order:
    """The open evaluations of a deterministic run, in proposal order."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.open: deque[int] = deque()  # trial numbers of the open evaluations, oldest first
        self.waiting: deque[Job] = deque()  # asked, not yet handed to a worker
        self.arrived: dict[int, tuple[Job, Result]] = {}  # results that wait for an older one

    def room(self) -> bool:
        """Whether one more evaluation may be opened (another proposal asked)."""
        return len(self.open) < self.window

    def add(self, job: Job) -> None:
        """A new evaluation, in proposal order; it waits for a worker in :meth:`dispatch`."""
        self.open.append(job.trial_number)
        self.waiting.append(job)

    def dispatch(self, executor: Any) -> None:
        """Hand waiting jobs to the executor, oldest first, while it has a free worker."""
        while self.waiting and executor.in_flight() < executor.workers:
            executor.submit(self.waiting.popleft())

    def arrive(self, job: Job, result: Result) -> None:
        """A finished evaluation: kept until every older one is told."""
        self.arrived[job.trial_number] = (job, result)

    def next(self) -> tuple[Job, Result] | None:
        """The oldest open evaluation's result once it has come back, else None."""
        if self.open and self.open[0] in self.arrived:
            return self.arrived.pop(self.open.popleft())
        return None

    def busy(self) -> bool:
        """Evaluations asked but not yet told."""
        return bool(self.open)
