"""A run as Python objects: what :func:`nas.search` returns and :func:`nas.open` opens.

Reading a run never writes to its folder or its storage: the study is opened read-only (any write
raises ``PermissionError``); exports go to a folder outside the run; the report, like ``nas report``,
is the run's ``report.html`` unless a path is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas import registry
from nas.export.exporter import open_ledger
from nas.search.spec import RunSpec
from nas.search.summary import summarize, trial_record
from nas.search.telling import Outcome

STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}  # the evaluators' words for Optuna's


class Run:
    """A run folder and its ledger, read-only.

    Attributes:
        path: the run folder.
        spec: the run's resolved spec (its ``spec.toml``).
        study: the Optuna study, opened read-only.
        outcome: how the search that returned this run ended (``reason``: budget, time, target,
            exhausted, failures or infeasible; ``message``); None for a run opened with :func:`nas.open`.
    """

    def __init__(self, path: str | Path, outcome: Outcome | None = None) -> None:
        ledger = open_ledger(path)
        self.path: Path = ledger.run_dir.path
        self.spec: RunSpec = ledger.spec
        self.study: optuna.Study = ledger.study
        self.outcome = outcome
        self._space = registry.make_space(self.spec.space["name"], self.spec.space_options())

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def best(self) -> dict[str, Any] | None:
        """The best completed trial (ties: lower validation loss) as a dict: ``number``, ``state``,
        ``values`` (by objective), ``metrics``, ``arch_id``, ``genotype``, ``label`` and ``info``;
        None before any trial completed, and for several objectives (see :meth:`summary`'s ``pareto``)."""
        best = summarize(self.spec, self.study, str(self.path), top=1).get("best")
        return {**best, "state": "complete"} if best else None

    def trials(self) -> list[dict[str, Any]]:
        """Every trial in order, in every state, as dicts like :attr:`best`'s; ``state`` is complete,
        pruned, failed, running or waiting and ``info`` says more (``error``, ``duplicate_of`` ...)."""
        return [{**trial_record(t, self.spec, self._space), "state": STATES.get(t.state, t.state.name.lower())}
                for t in self.study.get_trials(deepcopy=False)]

    def summary(self, top: int = 5) -> dict[str, Any]:
        """What ``nas show --json`` prints: counts by state, best trial or Pareto set, the ``top`` best."""
        return summarize(self.spec, self.study, str(self.path), top)

    def export(self, out: str | Path, trial: str | int = "best", formats: str | tuple[str, ...] = ("json",),
               weights: bool = False) -> list[dict[str, Any]]:
        """Write portable architectures to ``out`` (never into the run), as ``nas export`` does.

        Args:
            out: folder to write (one sub-folder per trial when several).
            trial: ``"best"``, ``"pareto"``, ``"top:K"`` or a trial number.
            formats: ``json`` (always written), ``onnx``, ``pt2``; a tuple or ``"json,onnx"``.
            weights: also write the weights the search kept (``[evaluator] keep_weights``).

        Returns:
            One dict per trial: ``dir``, ``trial``, ``rank``, ``arch_id``, ``files``, ``checks``, ``weights``.
        """
        from nas.export.exporter import export

        chosen = tuple(f.strip() for f in formats.split(",")) if isinstance(formats, str) else tuple(formats)
        return export(self.path, out, str(trial), tuple(dict.fromkeys(f for f in chosen if f)), weights)

    def report(self, path: str | Path | None = None, top: int = 5) -> Path:
        """Write the run's HTML report, as ``nas report`` does, to ``path`` (default: the run's
        ``report.html``); its path."""
        from nas.report.page import write_report

        return write_report(self.path, path, top)
