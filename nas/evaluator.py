"""The evaluator protocol: ``evaluate(genotype_json, budget, reporter) -> Result``.

Workers receive JSON and plain option dicts, never modules or closures: an :class:`EvaluatorSpec`
rebuilds the space and the evaluator wherever it runs. An evaluator catches its own failures and
returns them as a failed :class:`Result` with the reason; :func:`run_job` is the safety net that
turns anything it missed into one.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol

from nas.config import Field, validate
from nas.space import SearchSpace, Task

log = logging.getLogger(__name__)

COMPLETE, FAILED, PRUNED = "complete", "failed", "pruned"
SCREEN = "screen"  # a job's ``budget["stage"]`` when it asks for the pre-screen's score, not a training


DATA_OPTIONS = {  # the data options of everything that trains: the train evaluator, one-shot training
    "data": Field(str, default="digits",
                  choices=("digits", "fashion-mnist", "cifar10", "cifar100", "npz", "folder", "dataset"),
                  help="the data set: a built-in, an .npz file or image folder (data_dir), or a factory (dataset)"),
    "data_dir": Field("path", default="", help="folder (or .npz file) of the data set, relative to the spec's "
                      "folder; for 'folder', one subfolder of images per class"),
    "dataset": Field(str, default="", help="'package.module:callable' returning a torch Dataset (or a "
                                           "(train, test) pair) of (image, label), for data = 'dataset'"),
    "size": Field(int, default=0, min=0, help="downsample images to size x size (0: as they are; an image "
                                              "folder is resized to it, 0: to its most common size)"),
    "valid_fraction": Field(float, default=0.2, min=0.01, max=0.9,
                            help="share of the training set held out to score candidates"),
    "train_limit": Field(int, default=0, min=0, help="use at most this many training images (0: all)"),
    "valid_limit": Field(int, default=0, min=0, help="use at most this many validation images (0: all)"),
}


@dataclass
class Result:
    """What one evaluation produced.

    Attributes:
        state: ``complete``, ``failed`` or ``pruned``.
        metrics: named numbers (accuracy, loss, latency, ...); objectives pick theirs from here.
        info: learning curve, timings, worker, device, and ``error`` for a failure.
        weights: the trained state dict as safetensors bytes, when the evaluator keeps weights
            (``keep_weights``); the driver stores the best K through the artifact store.
    """

    state: str
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    weights: bytes | None = None

    @classmethod
    def failed(cls, reason: str, **info: Any) -> Result:
        """A failed result with its reason."""
        return cls(FAILED, {}, {"error": reason, **info})

    @property
    def error(self) -> str | None:
        """The failure reason, if any."""
        return self.info.get("error")


class Reporter(Protocol):
    """Receives intermediate values; answers whether the trial should stop (pruned)."""

    def report(self, step: int, value: float) -> bool:
        """Record ``value`` at ``step``; True means stop now and return a pruned result."""


class NullReporter:
    """Reporter that records nothing and never prunes."""

    def report(self, step: int, value: float) -> bool:
        return False


class StudyReporter:
    """Reports to an Optuna trial of ``study`` and asks the study's pruner."""

    def __init__(self, study: Any, trial_id: int) -> None:
        self.study, self.trial_id = study, trial_id
        self._trial: Any = None

    def report(self, step: int, value: float) -> bool:
        import optuna

        if self._trial is None:
            self._trial = optuna.trial.Trial(self.study, self.trial_id)
        if not math.isfinite(value):
            return False
        self._trial.report(float(value), step)
        return bool(self._trial.should_prune())


@dataclass(frozen=True)
class EvaluatorSpec:
    """Plain data that rebuilds the space and the evaluator on any worker."""

    name: str
    options: Mapping[str, Any]
    space: str
    space_options: Mapping[str, Any]
    base_dir: str = "."
    screen: EvaluatorSpec | None = None  # the pre-screen's evaluator, for jobs of stage SCREEN

    def make(self, shared: Any = None) -> Evaluator:
        """The space and evaluator instance described here (with a screen: both, as one :class:`Staged`)."""
        from nas import registry

        space = registry.make_space(self.space, dict(self.space_options))
        cls = registry.lookup("evaluators", self.name, "evaluator.name")
        if self.screen is None:
            return cls(space, dict(self.options), shared=shared)
        own, screens = shared if shared is not None else (None, None)
        return Staged(cls(space, dict(self.options), shared=own), self.screen.make(screens))

    def load_shared(self) -> Any:
        """Data the evaluator wants loaded once per run (e.g. a data set), or None; with a screen, the
        pair (this evaluator's, the screen's)."""
        from nas import registry

        cls = registry.lookup("evaluators", self.name, "evaluator.name", declaration=True)
        own = cls.load_shared(dict(self.options))
        return own if self.screen is None else (own, self.screen.load_shared())


@dataclass(frozen=True)
class Job:
    """One evaluation request: which trial, which architecture, how much budget."""

    trial_number: int
    trial_id: int
    genotype_json: str
    arch_id: str
    budget: Mapping[str, Any]
    seed: int


class Evaluator(ABC):
    """Scores architectures of one space.

    Subclasses declare ``OPTIONS`` (validated from the spec's ``[evaluator]`` table), ``BUDGET``
    (the fields of the per-trial budget, ``[evaluator.budget]``) and ``METRICS`` (or override
    ``metric_names``); they may override ``load_shared`` to load data once per run, which the Ray
    executor puts once into the object store for all workers.
    """

    OPTIONS: ClassVar[dict[str, Field]] = {}
    BUDGET: ClassVar[dict[str, Field]] = {}
    METRICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, space: SearchSpace, options: Mapping[str, Any], shared: Any = None) -> None:
        self.space = space
        self.options = self.validate_options(options, check_files=False)

    @classmethod
    def validate_options(cls, options: Mapping[str, Any], base_dir: Any = None,
                         check_files: bool = True) -> dict[str, Any]:
        """Options checked against ``OPTIONS`` (``SpecError`` names the field)."""
        return validate(options, cls.OPTIONS, "evaluator", base_dir=base_dir, ignore=("name",),
                        check_files=check_files)

    @classmethod
    def check_space(cls, options: Mapping[str, Any], space: SearchSpace) -> None:
        """Whether this evaluator can score ``space``'s architectures (``SpecError`` if not)."""

    @classmethod
    def task_for(cls, options: Mapping[str, Any], space: SearchSpace) -> Task:
        """Input shape and class count of the models this evaluator scores (default: the preset's)."""
        return space.default_task()

    @classmethod
    def load_shared(cls, options: Mapping[str, Any]) -> Any:
        """Data loaded once per run and shared by every worker; None by default."""
        return None

    @classmethod
    def metric_names(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the metrics ``evaluate`` returns on success, for validating objectives."""
        return cls.METRICS

    def metrics(self) -> tuple[str, ...]:
        """Names of the metrics this instance returns on success."""
        return self.metric_names(self.options)

    @abstractmethod
    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        """Score one architecture within ``budget`` (the ``BUDGET`` fields, plus the run's ``seed``)."""


class Staged(Evaluator):
    """The run's evaluator and its pre-screen's, built once per worker: a job whose budget says
    ``stage = "screen"`` goes to the screen (which never prunes), any other to the evaluator."""

    def __init__(self, main: Evaluator, screen: Evaluator) -> None:  # noqa: D107 (no options of its own)
        self.main, self.screen, self.space, self.options = main, screen, main.space, main.options

    def metrics(self) -> tuple[str, ...]:
        return self.main.metrics()

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        if budget.get("stage") == SCREEN:
            rest = {k: v for k, v in budget.items() if k != "stage"}
            return self.screen.evaluate(genotype_json, rest, NullReporter())
        return self.main.evaluate(genotype_json, budget, reporter)


def worker_name() -> str:
    """host:pid of this process, for the ledger."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(evaluator: Evaluator, job: Job, reporter: Reporter) -> Result:
    """Evaluate ``job``; any exception becomes a failed result with its reason. Adds timings."""
    started = time.time()
    try:
        result = evaluator.evaluate(job.genotype_json, {**job.budget, "seed": job.seed}, reporter)
    except Exception as err:  # a failing candidate never kills the search
        log.debug("trial %d failed:\n%s", job.trial_number, traceback.format_exc())
        result = Result.failed(f"{type(err).__name__}: {err}")
    if result.state == COMPLETE:
        bad = [k for k, v in result.metrics.items() if not math.isfinite(v)]
        if bad:
            result = Result.failed(f"non-finite metric(s): {', '.join(bad)}", **result.info)
    result.info.setdefault("worker", worker_name())
    result.info["started"] = started
    result.info["seconds"] = time.time() - started
    return result
