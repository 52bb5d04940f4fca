"""``nas train``: full training of an exported architecture with the recipe of :mod:`evaluators.recipe`.

A checkpoint is written atomically after every epoch (``checkpoint.pt``: model, optimizer, EMA,
random states, history); ``resume=True`` continues from it, and on CPU with the same seed the result
equals an uninterrupted run's bit for bit. Checkpoints load with ``torch.load(weights_only=True)``.
At the end, the **test** split (never seen by the search) is scored once, and the output folder gets
``metrics.json``, ``curve.png``, ``weights.safetensors``, ``arch.json`` (so ``nas.load`` finds the
weights beside it) and ``MODEL_CARD.md`` with its "Full training" section.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from evaluators.data import Splits, load
from evaluators.export import state_tensors
from evaluators.recipe import augment, learning_rate, make_recipe, resolve_augmentation
from nas import registry
from nas.export import archfile
from nas.config import SpecError
from nas.space import Task

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "nasforge-checkpoint/1"
STEP_REPORT_EVERY = 10  # steps between progress-bar updates


def load_splits(arch: archfile.Arch, recipe: dict[str, Any]) -> tuple[Splits, archfile.Arch]:
    """The data set the recipe names (default: the architecture's) and the architecture for its images.

    Another data set (or ``size``) than the search's retargets the architecture: the same genotype
    built for the new input shape and class count (its cost recomputed)."""
    searched = arch.data["task"].get("data", "")
    data = recipe["data"] or searched
    if not data:
        raise SpecError("--data: the architecture records no data set; give one (digits, fashion-mnist, ...)")
    size = recipe["size"] if recipe["size"] >= 0 else (int(arch.data["task"].get("size", 0)) if data == searched else 0)
    searched_with = arch.data.get("training") or {}
    dataset = recipe["dataset"] or (str(searched_with.get("dataset", "")) if data == searched == "dataset" else "")
    data_dir = recipe["data_dir"] or (str(searched_with.get("data_dir", "")) if data == searched else "")
    try:  # seed 0 carves the same test split the search never looked at
        splits = load(data, data_dir, 0, recipe["valid_fraction"], recipe["train_limit"],
                      recipe["valid_limit"], size, dataset=dataset)
    except (OSError, ValueError) as err:
        raise SpecError(f"--data: {err}") from None
    if splits.input_shape == arch.task.input_shape and splits.classes == arch.task.num_classes:
        return splits, arch
    new = json.loads(json.dumps(arch.data))
    new["task"].update(input_shape=list(splits.input_shape), num_classes=splits.classes, data=data, size=size,
                       normalization={"mean": list(splits.mean), "std": list(splits.std)})
    try:
        cost = arch.space.cost(arch.genotype, Task(splits.input_shape, splits.classes))
        new["cost"] = {"params": cost.params, "flops": cost.flops}
        return splits, archfile.parse(new, arch.path)
    except ValueError as err:
        raise SpecError(f"--data: the architecture cannot take {data}'s {splits.input_shape} images: {err}") from None


def build_for_training(arch: archfile.Arch, recipe: dict[str, Any]) -> torch.nn.Module:
    """The architecture with training-only parts switched on: auxiliary head, drop-path."""
    options = dict(arch.space.options)
    if "auxiliary" in arch.space.OPTIONS:
        options["auxiliary"] = recipe["aux_weight"] > 0
    if "drop_path" in arch.space.OPTIONS:
        options["drop_path"] = recipe["drop_path"]
    space = registry.make_space(arch.space.name, options)
    return space.build(arch.genotype, arch.task)


class FullTrainer:
    """One full training run of an arch file into ``out``."""

    def __init__(self, arch_path: str | Path, options: Mapping[str, Any], out: str | Path,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None,
                 on_step: Callable[[int, int, float, float], None] | None = None) -> None:
        self.arch_path = Path(arch_path)
        self.arch = archfile.read(arch_path)
        self.out = Path(out)
        recipe = make_recipe(options)
        self.splits, self.arch = load_splits(self.arch, recipe)
        data = recipe["data"] or self.arch.data["task"]["data"]
        self.recipe = {**resolve_augmentation(recipe, data, self.splits.input_shape[-1]), "data": data}
        self.on_epoch, self.on_step = on_epoch, on_step
        threads = self.recipe["threads"] or int(os.environ.get("OMP_NUM_THREADS", 0) or os.cpu_count() or 1)
        torch.set_num_threads(threads)
        cuda = torch.cuda.is_available() and self.recipe["device"] != "cpu"
        if self.recipe["device"] == "cuda" and not cuda:
            raise SpecError("--device: 'cuda' requested but no CUDA device is visible")
        self.device = torch.device("cuda" if cuda else "cpu")
        self.memory = torch.channels_last if cuda and self.recipe["channels_last"] else torch.contiguous_format
        self.autocast = cuda and self.recipe["amp"]
        to = self._tensor
        self.x_train, self.y_train = to(self.splits.x_train), to(self.splits.y_train)
        self.x_valid, self.y_valid = to(self.splits.x_valid), to(self.splits.y_valid)
        self.batch = min(self.recipe["batch_size"], len(self.x_train))
        self.per_epoch = max(1, len(self.x_train) // self.batch)
        self.total = self.recipe["epochs"] * self.per_epoch

    def _tensor(self, array: Any) -> torch.Tensor:
        tensor = torch.tensor(array, device=self.device)
        return tensor.contiguous(memory_format=self.memory) if tensor.ndim == 4 else tensor

    # ----- state --------------------------------------------------------------------------------
    def fresh(self) -> None:
        """Model, optimizer, EMA and random streams at step 0."""
        torch.manual_seed(self.recipe["seed"])
        self.model = build_for_training(self.arch, self.recipe).to(self.device, memory_format=self.memory)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=self.recipe["lr"], momentum=self.recipe["momentum"],
                                         nesterov=self.recipe["nesterov"] and self.recipe["momentum"] > 0,
                                         weight_decay=self.recipe["weight_decay"])
        self.generator = torch.Generator(device=self.device).manual_seed(self.recipe["seed"])
        self.ema = ({k: v.detach().clone() for k, v in self.model.state_dict().items()}
                    if self.recipe["ema"] else {})
        self.epoch, self.step, self.seconds, self.history = 0, 0, 0.0, []

    def save_checkpoint(self) -> None:
        """``checkpoint.pt``, written to a temporary file and renamed (never half-written)."""
        state = {"format": CHECKPOINT_FORMAT, "arch_id": self.arch.genotype.arch_id,
                 "recipe": json.dumps(self.recipe, sort_keys=True), "epoch": self.epoch, "step": self.step,
                 "seconds": self.seconds, "history": json.dumps(self.history),
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "ema": self.ema,
                 "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state()}
        path = self.out / CHECKPOINT
        temporary = path.with_suffix(".pt.tmp")
        torch.save(state, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def load_checkpoint(self) -> None:
        """Continue from ``checkpoint.pt`` (same architecture and recipe required)."""
        path = self.out / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"--resume: {path}: no checkpoint to resume from")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # a damaged or foreign file: say which, never unpickle arbitrary objects
            raise SpecError(f"--resume: {path}: not a readable checkpoint ({str(err).splitlines()[0]})") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise SpecError(f"--resume: {path}: not a nasforge checkpoint")
        if state["arch_id"] != self.arch.genotype.arch_id:
            raise SpecError(f"--resume: {path} trains architecture {state['arch_id']}, not {self.arch.genotype.arch_id}")
        saved = json.loads(state["recipe"])
        changed = sorted(k for k in set(saved) | set(self.recipe) if saved.get(k) != self.recipe.get(k))
        if changed:
            raise SpecError(f"--resume: the recipe differs from the checkpoint's in {', '.join(changed)}")
        self.fresh()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.ema = state["ema"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.step, self.seconds = state["epoch"], state["step"], state["seconds"]
        self.history = json.loads(state["history"])

    # ----- training -----------------------------------------------------------------------------
    def run(self, resume: bool = False, stop_after: int = 0) -> dict[str, Any] | None:
        """Train to the recipe's epochs (or ``stop_after`` more epochs); the final metrics, or None if stopped."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.load_checkpoint() if resume else self.fresh()
        done_now = 0
        while self.epoch < self.recipe["epochs"]:
            if stop_after and done_now >= stop_after:
                return None
            started = time.perf_counter()
            train_loss, train_accuracy = self.train_epoch()
            valid_accuracy, valid_loss = evaluate(self.eval_model(), self.x_valid, self.y_valid,
                                                  self.recipe["eval_batch_size"], self.precision)
            self.epoch += 1
            done_now += 1
            self.seconds += time.perf_counter() - started
            row = {"epoch": self.epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
                   "valid_accuracy": valid_accuracy, "valid_loss": valid_loss,
                   "lr": self.optimizer.param_groups[0]["lr"], "seconds": self.seconds}
            self.history.append(row)
            self.save_checkpoint()
            if self.on_epoch:
                self.on_epoch({**row, "epochs": self.recipe["epochs"]})
        return self.finish()

    def train_epoch(self) -> tuple[float, float]:
        model, recipe = self.model, self.recipe
        model.train()
        order = torch.randperm(len(self.x_train), generator=self.generator, device=self.device)
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for i in range(self.per_epoch):
            lr = learning_rate(recipe, self.step, self.per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            if getattr(model, "drop_path_max", 0) > 0:
                model.drop_path_prob = model.drop_path_max * self.step / self.total
            index = order[i * self.batch:(i + 1) * self.batch]
            x, y = augment(self.x_train[index], recipe, self.generator), self.y_train[index]
            with self.precision():
                out = model(x.contiguous(memory_format=self.memory))
                logits, aux = out if isinstance(out, tuple) else (out, None)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe["label_smoothing"])
                if aux is not None:
                    loss = loss + recipe["aux_weight"] * F.cross_entropy(aux.float(), y,
                                                                         label_smoothing=recipe["label_smoothing"])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["grad_clip"])
            self.optimizer.step()
            self.update_ema()
            self.step += 1
            total_loss += loss.detach()
            correct += (logits.argmax(1) == y).sum()
            if self.on_step is not None and (i + 1) % STEP_REPORT_EVERY == 0:  # a report syncs a CUDA device
                self.on_step(self.step, self.total, float(total_loss) / (i + 1),
                             100.0 * int(correct) / ((i + 1) * self.batch))
        loss_value = float(total_loss) / self.per_epoch
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"non-finite training loss in epoch {self.epoch + 1}; lower --lr")
        return loss_value, 100.0 * int(correct) / (self.per_epoch * self.batch)

    def update_ema(self) -> None:
        if not self.ema:
            return
        decay = self.recipe["ema"]
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                if value.is_floating_point():
                    self.ema[key].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
                else:
                    self.ema[key].copy_(value)

    def eval_model(self) -> torch.nn.Module:
        """The model to score: the EMA of the weights when enabled."""
        if not self.ema:
            return self.model
        shadow = copy.deepcopy(self.model)
        shadow.load_state_dict(self.ema)
        return shadow

    def precision(self) -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()

    # ----- outputs ------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Score the test split once and write the outputs."""
        from safetensors.torch import save_file

        from evaluators.outputs import write_outputs

        final = self.eval_model()
        x_test, y_test = self._tensor(self.splits.x_test), self._tensor(self.splits.y_test)
        test_accuracy, test_loss = evaluate(final, x_test, y_test, self.recipe["eval_batch_size"], self.precision)
        save_file(state_tensors(final), str(self.out / "weights.safetensors"))
        last = self.history[-1] if self.history else {}
        metrics = {"test_accuracy": test_accuracy, "test_loss": test_loss,
                   "valid_accuracy": last.get("valid_accuracy"), "epochs": self.epoch, "steps": self.step,
                   "train_seconds": self.seconds, "params": self.arch.data["cost"]["params"],
                   "flops": self.arch.data["cost"]["flops"], "device": str(self.device),
                   "data": self.recipe["data"], "test_images": len(y_test), "recipe": self.recipe,
                   "history": self.history}
        write_outputs(self, metrics)
        return metrics


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
             precision: Callable[[], Any] = contextlib.nullcontext) -> tuple[float, float]:
    """Accuracy (%) and mean cross-entropy of ``model`` in eval mode."""
    model.eval()
    correct, total_loss = 0, 0.0
    for i in range(0, len(x), batch):
        with precision():
            logits = model(x[i:i + batch]).float()
        total_loss += float(F.cross_entropy(logits, y[i:i + batch], reduction="sum"))
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / len(x), total_loss / len(x)
