"""Executors run evaluation jobs: ``submit`` / ``collect``; ``inline`` in-process, ``ray`` on Ray.

The search loop never waits on one job while a worker is free: it submits until every worker is
busy, then collects whatever finished.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from nas.config import Field, validate
from nas.evaluator import EvaluatorSpec, Job, Result

OPTIONS: dict[str, Field] = {
    "workers": Field(int, default=1, min=1, help="trials evaluated at once"),
    "cpus_per_trial": Field(float, default=0.0, min=0.0, help="CPUs per worker (0: share the machine's evenly)"),
    "gpus_per_trial": Field(float, default=0.0, min=0.0, help="GPUs per worker, fractions allowed"),
    "address": Field(str, default="", help="Ray cluster address ('' starts a local instance)"),
    "timeout": Field("duration", default=0.0, help="per-trial time limit (0: none)"),
    "retries": Field(int, default=2, min=0, help="re-runs of a trial whose worker died"),
    "log_to_driver": Field(bool, default=False, help="show Ray workers' output on the console"),
}


def validate_executor(table: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[executor]`` table with defaults filled (``name`` defaults to ``inline``)."""
    from nas import registry

    name = table.get("name", "inline")
    cls = registry.lookup("executors", name, "executor.name")
    options = validate(table, OPTIONS, "executor", ignore=("name",))
    cls.check_options(options)
    return {"name": name, **options}


@dataclass
class StudyLink:
    """How evaluators reach the study's pruner: the live study, or its storage for remote workers."""

    study: Any
    storage_url: str  # "" when the study lives only in this process (in-memory storage)
    study_name: str
    pruner: Any = None  # the study's Optuna pruner; None when trials are never pruned


class Executor(ABC):
    """Runs jobs on workers and hands back their results."""

    NAME: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = validate(options, OPTIONS, "executor", ignore=("name",))
        self.check_options(self.options)
        self.workers: int = self.options["workers"]

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Executor-specific checks of validated options (``SpecError`` names the field)."""

    @abstractmethod
    def start(self, evaluator: EvaluatorSpec, link: StudyLink) -> None:
        """Create the workers (each builds its evaluator once)."""

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Queue ``job``; the loop submits only while ``in_flight() < workers``."""

    @abstractmethod
    def collect(self, timeout: float | None = None) -> list[tuple[Job, Result]]:
        """Finished jobs (waits up to ``timeout`` seconds for the first one; None waits for one)."""

    @abstractmethod
    def in_flight(self) -> int:
        """Jobs submitted and not yet collected."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop the workers; jobs still running are abandoned."""

    def run_task(self, target: str, kwargs: Mapping[str, Any], poll: Callable[[], None] | None = None) -> Any:
        """Run ``module:function(**kwargs)`` once, as one long task (one-shot training), and return
        its result; ``poll`` is called about every second while it runs (here: once, after it)."""
        import importlib

        module, _, name = target.partition(":")
        result = getattr(importlib.import_module(module), name)(**kwargs)
        if poll is not None:
            poll()
        return result

    def describe(self) -> str:
        """One line for the log."""
        return f"{self.NAME} executor, {self.workers} worker(s)"
