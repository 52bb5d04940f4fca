"""The train evaluator's options, per-trial budget and metrics, without torch.

Validating a spec (every ``nas`` verb loads one: show, report, export, the search's driver) needs
these declarations only; :class:`evaluators.train.TrainEvaluator` adds the training, which imports
torch (about 2 s). The registry hands this class to spec validation and the full one to workers.
"""

from __future__ import annotations

from typing import Any, Mapping

from evaluators.data import Splits, load, task_of
from nas.config import Field, SpecError, validate
from nas.evaluator import DATA_OPTIONS, Evaluator
from nas.space import SearchSpace, Task

METRICS = ("accuracy", "loss", "train_loss", "train_seconds", "images_per_second", "epochs")


class TrainOptions(Evaluator):
    """What ``[evaluator] name = "train"`` accepts and reports (see :class:`evaluators.train.TrainEvaluator`)."""

    OPTIONS = {
        **DATA_OPTIONS,
        "curve_limit": Field(int, default=0, min=0,
                             help="score the epochs before the last on the first N validation images only "
                                  "(0: all); the last epoch, which gives the metrics, always uses all"),
        "batch_size": Field(int, default=64, min=2, help="training images per optimizer step"),
        "eval_batch_size": Field(int, default=512, min=1, help="images per batch when scoring"),
        "optimizer": Field(str, default="sgd", choices=("sgd", "adamw"), help="SGD (with momentum) or AdamW"),
        "lr": Field(float, default=0.05, min=0.0, help="peak learning rate"),
        "momentum": Field(float, default=0.9, min=0.0, max=1.0, help="SGD momentum (AdamW: beta1)"),
        "nesterov": Field(bool, default=True, help="Nesterov momentum (SGD)"),
        "weight_decay": Field(float, default=3e-4, min=0.0, help="weight decay (SGD: L2; AdamW: decoupled)"),
        "schedule": Field(str, default="cosine", choices=("cosine", "constant"),
                          help="learning-rate schedule over the trial's budget"),
        "warmup": Field(float, default=0.0, min=0.0, max=0.9,
                        help="share of the budget over which the learning rate ramps up linearly from 0"),
        "label_smoothing": Field(float, default=0.0, min=0.0, max=1.0,
                                 help="label smoothing of the cross-entropy loss"),
        "grad_clip": Field(float, default=0.0, min=0.0, help="global gradient-norm clip (0: off; DARTS uses 5)"),
        "aux_weight": Field(float, default=0.4, min=0.0, help="loss weight of an auxiliary head"),
        "threads": Field(int, default=0, min=0, help="torch threads (0: OMP_NUM_THREADS or all cores)"),
        "device": Field(str, default="auto", choices=("auto", "cpu", "cuda"),
                        help="where to train (auto: cuda when available)"),
        "amp": Field(bool, default=True, help="bf16 autocast on CUDA"),
        "channels_last": Field(bool, default=True, help="channels-last memory format on CUDA"),
        "latency_backend": Field(str, default="", choices=("", "torch", "onnxruntime", "onnxruntime-int8"),
                                 help="measure latency_ms after training with this backend ('': no)"),
        "latency_device": Field(str, default="cpu", choices=("cpu", "cuda"), help="device latency_ms is measured on"),
        "latency_threads": Field(int, default=1, min=1, help="threads of the latency measurement (pinned)"),
        "latency_batch": Field(int, default=1, min=1, help="images per timed forward pass"),
        "latency_cpus": Field(list, default=[], items=int,
                              help="CPUs reserved for latency measurements: training keeps off them, "
                                   "measurements of all workers take turns on them ([]: none reserved)"),
        "keep_weights": Field(int, default=0, min=0,
                              help="keep the trained weights of the best K candidates in the run folder"),
    }
    BUDGET = {
        "epochs": Field(float, default=1.0, min=0.0, help="passes over the training split (0: no limit)"),
        "steps": Field(int, default=0, min=0, help="optimizer steps (0: no limit)"),
        "seconds": Field(float, default=0.0, min=0.0, help="training wall time (0: no limit)"),
    }
    METRICS = METRICS

    @classmethod
    def load_shared(cls, options: Mapping[str, Any]) -> Splits:
        o = validate(options, cls.OPTIONS, "evaluator", ignore=("name",))
        try:
            return load(o["data"], o["data_dir"], 0, o["valid_fraction"], o["train_limit"], o["valid_limit"],
                        o["size"], o["dataset"])
        except (OSError, ValueError) as err:
            text = str(err)
            raise SpecError(text if text.startswith("evaluator.") else f"evaluator.data_dir: {text}") from None

    @classmethod
    def metric_names(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The training metrics, plus ``latency_ms`` when ``latency_backend`` is set."""
        return METRICS + (("latency_ms",) if options.get("latency_backend") else ())

    @classmethod
    def task_for(cls, options: Mapping[str, Any], space: SearchSpace) -> Task:
        return task_of(options)
