"""The one-shot stage of a run: the supernet's training, or the differentiable search, before the loop.

It runs as one task on the run's executor (in-process, or one Ray task with a GPU when the driver's
node has one) and writes into the run folder's ``oneshot/``: ``checkpoint.pt`` every epoch and
``epochs.jsonl``, whose records the driver copies into the study while the task runs. A stage
whose result is in the study already is not run again; one that was killed continues from its
last checkpoint. After the search loop, :meth:`Stage.retrain` trains the best K candidates of a
supernet search standalone, so that the report can set both rankings side by side.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import optuna

from nas.config import SpecError
from nas.evaluator import EvaluatorSpec
from nas.oneshot.options import METHODS
from nas.oneshot.records import FINAL_ATTR, RETRAINED_ATTR, epoch_key, retrained_of

log = logging.getLogger(__name__)

TRAINED_ATTR = "nas:oneshot:trained"
FOLDER = "oneshot"


class Stage:
    """What a run trains before its search loop (see the module docstring)."""

    def __init__(self, spec: Any, folder: Path, study: optuna.Study, kind: str) -> None:
        self.spec, self.folder, self.study, self.kind = spec, Path(folder), study, kind
        self._mirrored: dict[int, str] = {}

    @classmethod
    def of(cls, spec: Any, run_folder: Path, study: optuna.Study) -> Stage | None:
        """The stage of ``spec``'s run, or None when it has none."""
        if spec.controller["name"] in METHODS:
            if spec.controller["latency_weight"] > 0 and not spec.latency.get("lut"):
                raise SpecError("controller.latency_weight: needs a latency table ([latency] lut)")
            return cls(spec, run_folder / FOLDER, study, "differentiable")
        if spec.evaluator["name"] == "supernet" and not spec.evaluator["checkpoint"]:
            return cls(spec, run_folder / FOLDER, study, "spos")
        return None

    # ----- before the loop --------------------------------------------------------------------------
    def prepare(self, executor: Any, evaluator: EvaluatorSpec, space: Any, task: Any,
                latency_table: Any = None) -> EvaluatorSpec:
        """Train what is not trained yet; the evaluator spec the loop then uses."""
        if self.kind == "spos":
            return self._supernet(executor, evaluator)
        if FINAL_ATTR not in self.study.user_attrs:
            name = self.spec.controller["name"]
            latency = self._latency(space, task, latency_table)
            log.info("one-shot: %s search, %d epochs", name, self.spec.controller["epochs"])
            final = executor.run_task("evaluators.oneshot.differentiable:search", {
                "method": name, "space": self.spec.space["name"], "space_options": self.spec.space_options(),
                "options": _options(self.spec.controller), "seed": self.spec.seed, "folder": str(self.folder),
                "latency": latency}, poll=self.mirror)
            self.study.set_user_attr(FINAL_ATTR, {k: final[k] for k in (
                "method", "genotype", "genotype_label", "probabilities", "collapsed", "expected_latency_ms",
                "derived_latency_ms")})
            log.info("one-shot: %s found %s", name, final["genotype_label"])
        return evaluator

    def _latency(self, space: Any, task: Any, table: Any) -> tuple[float, list[list[float]]] | None:
        """The table split by edge, for the latency term and the records (None without a table)."""
        if table is None:
            return None
        try:
            return space.oneshot_latency(table, task)
        except NotImplementedError as err:
            if self.spec.controller["latency_weight"] > 0:
                raise SpecError(f"controller.latency_weight: {err}") from None
            return None

    def _supernet(self, executor: Any, evaluator: EvaluatorSpec) -> EvaluatorSpec:
        checkpoint = self.folder / "checkpoint.pt"
        done = self.study.user_attrs.get(TRAINED_ATTR, {})
        epochs = self.spec.evaluator["epochs"]
        if done.get("epochs", 0) < epochs or not checkpoint.is_file():
            log.info("one-shot: training the supernet, %d epochs, %s sampling", epochs, self.spec.evaluator["sampling"])
            summary = executor.run_task("evaluators.oneshot.spos:train_supernet", {
                "space": self.spec.space["name"], "space_options": self.spec.space_options(),
                "options": _options(self.spec.evaluator), "seed": self.spec.seed, "folder": str(self.folder)},
                poll=self.mirror)
            self.study.set_user_attr(TRAINED_ATTR, summary)
        return dataclasses.replace(evaluator, options={**evaluator.options, "checkpoint": str(checkpoint)})

    def mirror(self) -> None:
        """Copy new epoch records from ``epochs.jsonl`` into the study (a rewritten epoch replaces its record)."""
        path = self.folder / "epochs.jsonl"
        if not path.is_file():
            return
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a line being written
                continue
            epoch = int(record["epoch"])
            if self._mirrored.get(epoch) != line:
                self.study.set_user_attr(epoch_key(epoch), record)
                self._mirrored[epoch] = line

    # ----- after the loop ---------------------------------------------------------------------------
    def retrain(self, executor: Any) -> None:
        """Train the best ``retrain_top`` candidates of a supernet search standalone (once each)."""
        top = self.spec.evaluator.get("retrain_top", 0) if self.kind == "spos" else 0
        if not top:
            return
        sign = 1.0 if self.spec.objectives[0]["direction"] == "maximize" else -1.0
        done = retrained_of(self.study.user_attrs)
        complete = [t for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.values and "info" in t.user_attrs and not t.user_attrs["info"].get("duplicate_of")]
        best = sorted(complete, key=lambda t: -sign * t.values[0])[:top]
        todo = [t for t in best if t.number not in done]
        if not todo:
            return
        options = {k: v for k, v in _options(self.spec.evaluator).items()
                   if k in ("data", "data_dir", "dataset", "size", "valid_fraction", "train_limit", "valid_limit",
                            "batch_size", "threads", "device")}
        options["latency_backend"] = self.spec.evaluator.get("retrain_latency", "")
        log.info("one-shot: training the best %d candidates standalone (%g epochs)", len(todo),
                 self.spec.evaluator["retrain_epochs"])
        results = executor.run_task("evaluators.oneshot.retrain:retrain", {
            "space": self.spec.space["name"], "space_options": self.spec.space_options(), "options": options,
            "epochs": self.spec.evaluator["retrain_epochs"], "seed": self.spec.seed,
            "genotypes": {t.number: t.user_attrs["genotype"] for t in todo}})
        for number, metrics in results.items():
            self.study.set_user_attr(f"{RETRAINED_ATTR}{int(number)}", metrics)


def _options(table: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if k not in ("name", "budget")}


