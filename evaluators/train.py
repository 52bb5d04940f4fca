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

from evaluators.data import Splits
from evaluators.export import state_bytes
from evaluators.train_options import TrainOptions
from nas.config import SpecError, validate
from nas.evaluator import COMPLETE, PRUNED, Reporter, Result
from nas.space import SearchSpace, Task

NAN_CHECK_EVERY = 25  # steps between loss checks (a check syncs a CUDA device)


@dataclass
class DeviceData:
    """The splits as tensors on one device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor


class TrainEvaluator(TrainOptions):
    """Trains each candidate briefly with SGD (or AdamW) and a cosine schedule."""

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
        from evaluators.latency import measure
        from evaluators.timing import Settings

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
            last = step >= (self.max_steps or math.inf) or train_seconds >= self.max_seconds
            accuracy, loss = self.validate(0 if last else self.o["curve_limit"])
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
    def validate(self, limit: int = 0) -> tuple[float, float]:
        """Validation accuracy (%) and mean loss, on the first ``limit`` images if not 0."""
        data, model = self.ev.data, self.model
        model.eval()
        correct, total_loss = 0, 0.0
        size = self.o["eval_batch_size"]
        n = min(limit, len(data.x_valid)) if limit else len(data.x_valid)
        for i in range(0, n, size):
            x, y = data.x_valid[i:min(i + size, n)], data.y_valid[i:min(i + size, n)]
            with self.precision():
                logits = model(x).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        return 100.0 * correct / n, total_loss / n
