"""Brief training: build the candidate, train it on the training split, score it on validation.

The whole data set lives as tensors on the worker's device (loaded once by the driver, put once into
Ray's object store); a step indexes a shuffled batch out of them, so no data loader runs. The budget
is epochs, steps or seconds (whichever ends first); the learning-rate schedule follows the budget's
progress. Validation accuracy is reported after every epoch, so pruners can stop bad candidates.
On CUDA: bf16 autocast, channels-last memory and cuDNN autotuning.

Failures come back as failed results with their reason: non-finite loss, CUDA out of memory (the
worker frees the memory and keeps serving), or anything the candidate raises.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from evaluators.data import Splits, load, shape_of
from evaluators.export import state_bytes
from nas.config import Field, SpecError, validate
from nas.evaluator import COMPLETE, PRUNED, Evaluator, Reporter, Result
from nas.space import SearchSpace, Task

METRICS = ("accuracy", "loss", "train_loss", "train_seconds", "images_per_second", "epochs")
NAN_CHECK_EVERY = 25  # steps between loss checks (a check syncs a CUDA device)


@dataclass
class DeviceData:
    """The splits as tensors on one device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor


class TrainEvaluator(Evaluator):
    """Trains each candidate briefly with SGD (or AdamW) and a cosine schedule."""

    OPTIONS = {
        "data": Field(str, default="digits", choices=("digits", "fashion-mnist", "cifar10", "cifar100", "npz")),
        "data_dir": Field(str, default="", help="folder (or .npz file) of the data set"),
        "size": Field(int, default=0, min=0, help="downsample images to size x size (0: as they are)"),
        "valid_fraction": Field(float, default=0.2, min=0.01, max=0.9),
        "train_limit": Field(int, default=0, min=0, help="use at most this many training images (0: all)"),
        "valid_limit": Field(int, default=0, min=0),
        "batch_size": Field(int, default=64, min=2),
        "eval_batch_size": Field(int, default=512, min=1),
        "optimizer": Field(str, default="sgd", choices=("sgd", "adamw")),
        "lr": Field(float, default=0.05, min=0.0),
        "momentum": Field(float, default=0.9, min=0.0, max=1.0),
        "nesterov": Field(bool, default=True),
        "weight_decay": Field(float, default=3e-4, min=0.0),
        "schedule": Field(str, default="cosine", choices=("cosine", "constant")),
        "warmup": Field(float, default=0.0, min=0.0, max=0.9,
                        help="share of the budget over which the learning rate ramps up linearly from 0"),
        "label_smoothing": Field(float, default=0.0, min=0.0, max=1.0),
        "grad_clip": Field(float, default=0.0, min=0.0, help="global gradient-norm clip (0: off; DARTS uses 5)"),
        "aux_weight": Field(float, default=0.4, min=0.0, help="loss weight of an auxiliary head"),
        "threads": Field(int, default=0, min=0, help="torch threads (0: OMP_NUM_THREADS or all cores)"),
        "device": Field(str, default="auto", choices=("auto", "cpu", "cuda")),
        "amp": Field(bool, default=True, help="bf16 autocast on CUDA"),
        "channels_last": Field(bool, default=True, help="channels-last memory format on CUDA"),
        "latency_backend": Field(str, default="", choices=("", "torch", "onnxruntime", "onnxruntime-int8"),
                                 help="measure latency_ms after training with this backend ('': no)"),
        "latency_device": Field(str, default="cpu", choices=("cpu", "cuda")),
        "latency_threads": Field(int, default=1, min=1, help="threads of the latency measurement (pinned)"),
        "latency_batch": Field(int, default=1, min=1),
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

    def __init__(self, space: SearchSpace, options: Mapping[str, Any], shared: Any = None) -> None:
        super().__init__(space, {**space.evaluator_defaults("train"), **options}, shared)
        threads = self.options["threads"] or int(os.environ.get("OMP_NUM_THREADS", 0) or os.cpu_count() or 1)
        if self.options["latency_cpus"]:
            from evaluators.latency import keep_off

            threads = min(threads, len(keep_off(self.options["latency_cpus"])))
        torch.set_num_threads(threads)
        self.device = self._device()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        splits: Splits = shared if shared is not None else self.load_shared(self.options)
        self.task = Task(splits.input_shape, splits.classes)
        self.memory_format = (torch.channels_last if self.device.type == "cuda" and self.options["channels_last"]
                              else torch.contiguous_format)
        self.data = DeviceData(*(self._tensor(a) for a in (splits.x_train, splits.y_train,
                                                             splits.x_valid, splits.y_valid)))

    def _device(self) -> torch.device:
        wanted = self.options["device"]
        if wanted == "cuda" and not torch.cuda.is_available():
            raise SpecError("evaluator.device: 'cuda' requested but no CUDA device is visible")
        return torch.device("cuda" if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()) else "cpu")

    def _tensor(self, array: Any) -> torch.Tensor:
        tensor = torch.tensor(array, device=self.device)  # a copy: Ray's shared arrays are read-only
        return tensor.contiguous(memory_format=self.memory_format) if tensor.ndim == 4 else tensor

    @classmethod
    def load_shared(cls, options: Mapping[str, Any]) -> Splits:
        o = validate(options, cls.OPTIONS, "evaluator", ignore=("name",))
        try:
            return load(o["data"], o["data_dir"], 0, o["valid_fraction"], o["train_limit"], o["valid_limit"],
                        o["size"])
        except (OSError, ValueError) as err:
            text = str(err)
            raise SpecError(text if text.startswith("evaluator.") else f"evaluator.data_dir: {text}") from None

    @classmethod
    def metric_names(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The training metrics, plus ``latency_ms`` when ``latency_backend`` is set."""
        return METRICS + (("latency_ms",) if options.get("latency_backend") else ())

    @classmethod
    def task_for(cls, options: Mapping[str, Any], space: SearchSpace) -> Task:
        shape, classes = shape_of(options.get("data", "digits"), options.get("data_dir", ""), options.get("size", 0))
        return Task(shape, classes)

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        seed = int(budget.get("seed", 0))
        limits = validate({k: v for k, v in budget.items() if k != "seed"}, self.BUDGET, "evaluator.budget")
        torch.manual_seed(seed)
        model = self.space.build(self.space.from_json(genotype_json), self.task)
        try:
            model = model.to(self.device, memory_format=self.memory_format)
            result = Trainer(self, model, limits, seed, reporter).run()
            if result.state == COMPLETE and self.options["latency_backend"]:
                self._measure_latency(model, result)
            return result
        except torch.cuda.OutOfMemoryError as err:
            del model
            torch.cuda.empty_cache()
            return Result.failed(f"CUDA out of memory: {str(err).splitlines()[0]}", device=str(self.device))


    def _measure_latency(self, model: torch.nn.Module, result: Result) -> None:
        """Add ``latency_ms`` (median) and the measurement's details to a completed result."""
        from evaluators.latency import Settings, measure

        o = self.options
        settings = Settings(o["latency_backend"], o["latency_device"], o["latency_batch"], o["latency_threads"],
                            cpus=tuple(o["latency_cpus"]))
        model = model.to(torch.device(settings.device), memory_format=torch.contiguous_format).eval()
        with torch.no_grad():
            measured = measure(model, [self.task.input_shape], settings)
        result.metrics["latency_ms"] = measured.median_ms
        result.info["latency"] = {**measured.to_dict(), "backend": settings.backend, "device": settings.device,
                                  "threads": settings.threads, "batch": settings.batch}


class Trainer:
    """One training run of one model (kept apart so the evaluator stays reusable across trials)."""

    def __init__(self, ev: TrainEvaluator, model: torch.nn.Module, limits: dict[str, Any], seed: int,
                 reporter: Reporter) -> None:
        self.ev, self.model, self.reporter = ev, model, reporter
        self.o = ev.options
        n = len(ev.data.x_train)
        self.batch = min(self.o["batch_size"], n)
        self.per_epoch = max(1, n // self.batch)  # the last partial batch is dropped (BN needs > 1 example)
        self.max_steps = self._max_steps(limits)
        self.max_seconds = limits["seconds"] or math.inf
        if self.max_steps == 0 and self.max_seconds == math.inf:
            raise SpecError("evaluator.budget: give epochs, steps or seconds")
        self.generator = torch.Generator(device=ev.device).manual_seed(seed)
        self.optimizer = self._optimizer()
        self.autocast = ev.device.type == "cuda" and self.o["amp"]
        self.drop_path = hasattr(model, "drop_path_max") and model.drop_path_max > 0

    def _max_steps(self, limits: dict[str, Any]) -> int:
        caps = [s for s in (round(limits["epochs"] * self.per_epoch), limits["steps"]) if s > 0]
        return min(caps) if caps else 0

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.o["optimizer"] == "adamw":
            return torch.optim.AdamW(params, lr=self.o["lr"], weight_decay=self.o["weight_decay"])
        return torch.optim.SGD(params, lr=self.o["lr"], momentum=self.o["momentum"],
                               nesterov=self.o["nesterov"] and self.o["momentum"] > 0,
                               weight_decay=self.o["weight_decay"])

    def progress(self, step: int, elapsed: float) -> float:
        """Fraction of the budget used: the larger of steps and time."""
        by_steps = step / self.max_steps if self.max_steps else 0.0
        return min(1.0, max(by_steps, elapsed / self.max_seconds))

    def run(self) -> Result:
        curve: list[list[float]] = []
        step, images, epoch, train_seconds = 0, 0, 0, 0.0
        last_loss = math.nan
        while step < (self.max_steps or math.inf) and train_seconds < self.max_seconds:
            epoch += 1
            started = time.perf_counter()
            step, images, last_loss, failed = self.train_epoch(step, images, train_seconds)
            train_seconds += time.perf_counter() - started
            if failed:
                return Result.failed(failed, curve=curve, device=str(self.ev.device))
            accuracy, loss = self.validate()
            curve.append([epoch, accuracy])
            if self.reporter.report(epoch, accuracy):
                return Result(PRUNED, {"accuracy": accuracy, "loss": loss}, {"curve": curve, "pruned_at": epoch})
        metrics = {"accuracy": curve[-1][1], "loss": loss, "train_loss": last_loss, "train_seconds": train_seconds,
                   "images_per_second": images / train_seconds if train_seconds else 0.0,
                   "epochs": step / self.per_epoch}
        weights = state_bytes(self.model) if self.o["keep_weights"] else None
        return Result(COMPLETE, metrics, {"curve": curve, "device": str(self.ev.device), "steps": step}, weights)

    def train_epoch(self, step: int, images: int, spent: float) -> tuple[int, int, float, str]:
        """One pass (or until the budget ends); returns step, images, last loss and a failure reason."""
        data, model = self.ev.data, self.model
        model.train()
        order = torch.randperm(len(data.x_train), generator=self.generator, device=self.ev.device)
        started = time.perf_counter()
        loss = torch.zeros((), device=self.ev.device)
        for i in range(self.per_epoch):
            elapsed = spent + time.perf_counter() - started
            if (self.max_steps and step >= self.max_steps) or elapsed >= self.max_seconds:
                break
            self.set_schedule(self.progress(step, elapsed))
            index = order[i * self.batch:(i + 1) * self.batch]
            loss = self.train_step(data.x_train[index], data.y_train[index])
            step += 1
            images += len(index)
            if step % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss):
                return step, images, math.nan, f"non-finite loss at step {step}"
        value = float(loss)
        if not math.isfinite(value):
            return step, images, value, f"non-finite loss at step {step}"
        return step, images, value, ""

    def set_schedule(self, progress: float) -> None:
        """Learning rate (linear warm-up, then cosine or constant) and drop-path probability for this point
        of the budget."""
        warmup, cosine = self.o["warmup"], self.o["schedule"] == "cosine"
        if cosine or warmup:
            if progress < warmup:
                factor = progress / warmup
            elif cosine:
                factor = 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))
            else:
                factor = 1.0
            for group in self.optimizer.param_groups:
                group["lr"] = self.o["lr"] * factor
        if self.drop_path:
            self.model.drop_path_prob = self.model.drop_path_max * progress

    def precision(self) -> Any:
        """bf16 autocast on CUDA when enabled; no context at all otherwise (it costs per step)."""
        if self.autocast:
            return torch.autocast(self.ev.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.precision():
            out = self.model(x)
            if isinstance(out, tuple):  # (logits, auxiliary logits)
                loss = self.criterion(out[0], y) + self.o["aux_weight"] * self.criterion(out[1], y)
            else:
                loss = self.criterion(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.o["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.o["grad_clip"])
        self.optimizer.step()
        return loss.detach()

    def criterion(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, label_smoothing=self.o["label_smoothing"])

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """Validation accuracy (%) and mean loss."""
        data, model = self.ev.data, self.model
        model.eval()
        correct, total_loss = 0, 0.0
        size = self.o["eval_batch_size"]
        for i in range(0, len(data.x_valid), size):
            x, y = data.x_valid[i:i + size], data.y_valid[i:i + size]
            with self.precision():
                logits = model(x).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        n = len(data.x_valid)
        return 100.0 * correct / n, total_loss / n
