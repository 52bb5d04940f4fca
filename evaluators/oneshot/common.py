"""What supernet training, differentiable search and inherited-weight evaluation share: device and
data, atomic checkpoints, the per-epoch record file, batches, BatchNorm recalibration and scoring."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.data import Splits
from nas.config import SpecError

CHECKPOINT = "checkpoint.pt"
EPOCHS = "epochs.jsonl"


def device_for(wanted: str, threads: int = 0) -> torch.device:
    """The device an ``auto``/``cpu``/``cuda`` option names (``SpecError`` for cuda without one);
    sets torch's CPU threads (0: ``OMP_NUM_THREADS`` or all cores)."""
    torch.set_num_threads(threads or int(os.environ.get("OMP_NUM_THREADS", 0) or os.cpu_count() or 1))
    if wanted == "cuda" and not torch.cuda.is_available():
        raise SpecError("device: 'cuda' requested but no CUDA device is visible")
    return torch.device("cuda" if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()) else "cpu")


def tensors(splits: Splits, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_valid, y_valid) on ``device`` (copies: Ray's shared arrays are read-only)."""
    return tuple(torch.tensor(a, device=device) for a in (splits.x_train, splits.y_train,
                                                           splits.x_valid, splits.y_valid))


def logits_of(output: Any) -> torch.Tensor:
    """The main head's logits of a forward (a network with an auxiliary head returns both in training)."""
    return output[0] if isinstance(output, tuple) else output


def batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches of one epoch; the last partial batch is dropped (BatchNorm needs > 1)."""
    order = torch.randperm(n, generator=generator)
    size = min(size, n)
    for start in range(0, n - size + 1, size):
        yield order[start:start + size]


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine annealing from ``base`` to ``base / 1000`` over ``total`` steps."""
    floor = base * 1e-3
    return floor + 0.5 * (base - floor) * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``folder/checkpoint.pt`` atomically (a kill leaves the previous one whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, folder / CHECKPOINT)


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The last checkpoint in ``folder``, or None."""
    path = folder / CHECKPOINT
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def append_record(folder: Path, record: dict[str, Any]) -> None:
    """One epoch's record for the driver to copy into the ledger (written before the checkpoint: a
    kill in between makes the resumed run write that epoch again, which replaces the record)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / EPOCHS, "a") as f:
        f.write(json.dumps(record) + "\n")


def rng_state() -> dict[str, Any]:
    """Torch's random state (CPU, and CUDA where present) for a checkpoint."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.no_grad()
def recalibrate(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                count: int, batch: int, generator: torch.Generator) -> None:
    """Recompute every BatchNorm's running statistics as the plain average over ``count`` training
    batches under ``forward`` (a path's statistics differ from the supernet's running mix)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not count or not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i, index in enumerate(batches(len(x), batch, generator)):
        if i == count:
            break
        forward(x[index])
    for m in norms:
        m.momentum = 0.1
    model.eval()


@torch.no_grad()
def score(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
          batch: int) -> tuple[float, float]:
    """(accuracy in %, mean cross-entropy) of ``forward`` on ``x``, ``y``."""
    correct, loss = 0, 0.0
    for start in range(0, len(x), batch):
        logits = forward(x[start:start + batch]).float()
        loss += F.cross_entropy(logits, y[start:start + batch], reduction="sum").item()
        correct += (logits.argmax(1) == y[start:start + batch]).sum().item()
    return 100.0 * correct / max(len(x), 1), loss / max(len(x), 1)
