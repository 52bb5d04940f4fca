"""The supernet evaluator's options and metrics, without torch (what spec validation reads).

``[evaluator] name = "supernet"`` is single-path one-shot search: before the search loop the run
trains one supernet of the space (:mod:`evaluators.oneshot.spos`, checkpointed into the run folder's
``oneshot/``), then scores every candidate with the weights it inherits from it
(:class:`evaluators.oneshot.inherit.SupernetEvaluator`): BatchNorm statistics recomputed on a few
training batches, accuracy on the validation split. Seconds per candidate instead of a training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from evaluators.data import Splits, load, task_of
from nas.config import SpecError, validate
from nas.evaluator import Evaluator
from nas.oneshot.options import SPOS
from nas.space import SearchSpace, Task


class SupernetOptions(Evaluator):
    """What ``[evaluator] name = "supernet"`` accepts and reports: ``accuracy`` (%, validation split,
    inherited weights) and ``loss``."""

    OPTIONS = SPOS
    METRICS = ("accuracy", "loss")

    @classmethod
    def validate_options(cls, options: Mapping[str, Any], base_dir: Any = None,
                         check_files: bool = True) -> dict[str, Any]:
        o = validate(options, cls.OPTIONS, "evaluator", base_dir=base_dir, ignore=("name",), check_files=check_files)
        if o["checkpoint"] and base_dir is not None:
            path = (Path(base_dir) / o["checkpoint"]).resolve()
            if check_files and not path.is_file():
                raise SpecError(f"evaluator.checkpoint: no such file: {path}")
            o["checkpoint"] = str(path)
        return o

    @classmethod
    def check_space(cls, options: Mapping[str, Any], space: SearchSpace) -> None:
        try:
            space.oneshot_edges()
        except NotImplementedError as err:
            raise SpecError(f"evaluator.name: 'supernet' needs a space with a supernet; {err}") from None

    @classmethod
    def task_for(cls, options: Mapping[str, Any], space: SearchSpace) -> Task:
        return task_of(options)

    @classmethod
    def load_shared(cls, options: Mapping[str, Any]) -> Any:
        """(the data splits, the trained supernet's checkpoint as bytes): put once into Ray's object
        store, so each worker holds the supernet once, whatever number of candidates it scores."""
        o = validate(options, cls.OPTIONS, "evaluator", ignore=("name",), check_files=False)
        if not o["checkpoint"]:
            raise SpecError("evaluator.checkpoint: no trained supernet (the run trains one before its search)")
        return load_splits(o), Path(o["checkpoint"]).read_bytes()


def load_splits(o: Mapping[str, Any]) -> Splits:
    """The data options' splits (``SpecError`` names ``data_dir`` when they cannot be read)."""
    try:
        return load(o["data"], o["data_dir"], 0, o["valid_fraction"], o["train_limit"], o["valid_limit"], o["size"],
                    dataset=o.get("dataset", ""))
    except (OSError, ValueError) as err:
        raise SpecError(f"data_dir: {err}") from None
