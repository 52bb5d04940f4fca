"""Your own training function as the evaluator (``[evaluator] name = "function"``).

Each candidate is built by the space (seeded by the run's seed) and handed to the function with the
per-trial budget, a ``report(step, value) -> bool`` callback (True: the pruner stops the trial) and
the function's own options; what it returns are the trial's metrics. Whatever goes wrong is the
trial's failure, never the search's: an exception (the reason is the traceback's last line, the
whole traceback is kept in the trial's info), no metrics, a declared metric missing, a value that is
not a finite number. Options and the import of the function: :mod:`evaluators.function_options`.
"""

from __future__ import annotations

import math
import traceback
from typing import Any, Mapping

import torch

from evaluators.function_options import FunctionOptions, own_options, resolve
from nas.evaluator import COMPLETE, PRUNED, Reporter, Result
from nas.space import SearchSpace


class FunctionEvaluator(FunctionOptions):
    """Builds each candidate and lets the user's function train and score it."""

    def __init__(self, space: SearchSpace, options: Mapping[str, Any], shared: Any = None) -> None:
        super().__init__(space, options, shared)
        self.function = resolve(self.options)
        self.name = getattr(self.function, "__name__", type(self.function).__name__)
        self.task = self.task_for(self.options, space)

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        torch.manual_seed(int(budget.get("seed", 0)))
        model = self.space.build(self.space.from_json(genotype_json), self.task)
        watch = _Watch(reporter)
        try:
            returned = self.function(model, dict(budget), watch.report, own_options(self.options))
        except Exception as err:  # the candidate's failure (or the function's bug): the search goes on
            reason = traceback.format_exception_only(type(err), err)[0].strip()
            return Result.failed(reason, traceback=traceback.format_exc(), curve=watch.curve)
        metrics, problem = self._metrics(returned)
        info: dict[str, Any] = {"curve": watch.curve}
        if watch.pruned_at is not None:
            return Result(PRUNED, metrics, {**info, "pruned_at": watch.pruned_at})
        return Result.failed(problem, **info) if problem else Result(COMPLETE, metrics, info)

    def _metrics(self, returned: Any) -> tuple[dict[str, float], str]:
        """The finite metrics the function returned, and what is wrong with them ("" when nothing)."""
        if not isinstance(returned, Mapping) or not returned:
            got = "an empty dict" if isinstance(returned, Mapping) else type(returned).__name__
            return {}, f"{self.name} returned no metrics ({got}); expected a dict like {{'accuracy': 93.1}}"
        metrics, problems = {}, []
        for key, value in returned.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                problems.append(f"{self.name} returned a non-numeric {key!r}: {value!r}")
                continue
            if math.isfinite(number):
                metrics[str(key)] = number
            else:
                problems.append(f"{self.name} returned a non-finite {key!r}: {number}")
        missing = [m for m in self.metrics() if m not in returned]
        if missing:
            problems.append(f"{self.name} returned no {', '.join(map(repr, missing))} (evaluator.metrics: "
                            f"{', '.join(self.metrics())}; it returned {', '.join(map(str, returned))})")
        return metrics, "; ".join(problems)


class _Watch:
    """The ``report`` callback the function gets: keeps the curve and whether the pruner stopped it."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.curve: list[list[float]] = []
        self.pruned_at: int | None = None

    def report(self, step: int, value: float) -> bool:
        """Record ``value`` at ``step``; True when the pruner stops the trial (return soon after)."""
        step, value = int(step), float(value)
        self.curve.append([step, value])
        if self.reporter.report(step, value):
            self.pruned_at = step if self.pruned_at is None else self.pruned_at
        return self.pruned_at is not None
