"""Single-path one-shot training (Guo et al. 2020, SPOS), with FairNAS's strict fairness as an option.

Each step trains the supernet along sampled paths only: ``uniform`` draws one architecture of the
space at random; ``fair`` (Chu et al. 2021, FairNAS) draws as many paths as an edge has ops, such
that every op of every edge is used exactly once, and updates once with their summed gradients.
The state (weights, optimizer, random streams) is checkpointed every epoch; a new call continues
from the last checkpoint, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from evaluators.supernet_options import load_splits
from evaluators.oneshot.common import (append_record, batches, logits_of, cosine_lr, device_for, load_checkpoint,
                                       rng_state, save_checkpoint, set_rng_state, tensors)
from nas import registry
from nas.space import Task

log = logging.getLogger(__name__)


def train_supernet(space: str, space_options: Mapping[str, Any], options: Mapping[str, Any], seed: int,
                   folder: str) -> dict[str, Any]:
    """Train (or finish training) the supernet of ``space`` into ``folder``; the ledger's summary.

    Args:
        space, space_options: the run's space.
        options: the ``supernet`` evaluator's validated options (:data:`nas.oneshot.options.SPOS`).
        seed: the run's seed.
        folder: where ``checkpoint.pt`` and ``epochs.jsonl`` go (the run folder's ``oneshot/``).

    Returns:
        ``{"epochs": n, "sampling": ..., "params": supernet parameter count, "seconds": ...}``.
    """
    run = _Training(registry.make_space(space, dict(space_options)), dict(options), seed, Path(folder))
    for epoch in range(run.restore(), run.o["epochs"]):
        run.epoch(epoch)
    return {"epochs": run.o["epochs"], "sampling": run.o["sampling"], "seconds": round(run.seconds, 3),
            "params": sum(p.numel() for p in run.net.parameters())}


class _Training:
    """The state of one supernet training: data, supernet, optimizer, random streams, clock."""

    def __init__(self, sp: Any, o: dict[str, Any], seed: int, out: Path) -> None:
        self.sp, self.o, self.out = sp, o, out
        self.device = device_for(o["device"], o["threads"])
        splits = load_splits(o)
        self.x, self.y, _, _ = tensors(splits, self.device)
        torch.manual_seed(seed)  # before the supernet is built: its initial weights are the seed's
        self.net = sp.build_supernet(Task(splits.input_shape, splits.classes)).to(self.device)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=o["lr"], momentum=o["momentum"],
                                   weight_decay=o["weight_decay"], nesterov=True)
        self.rng, self.generator = random.Random(f"spos:{seed}"), torch.Generator().manual_seed(seed)
        self.seconds = 0.0
        self.per_epoch = max(1, len(self.x) // min(o["batch_size"], len(self.x)))

    def restore(self) -> int:
        """Load the last checkpoint, if any; the epoch to start at."""
        state = load_checkpoint(self.out)
        if state is None:
            return 0
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.rng.setstate(state["rng"])
        self.generator.set_state(state["generator"])
        set_rng_state(state["torch"])
        self.seconds = state["seconds"]
        log.info("supernet: resuming after epoch %d of %d", state["epoch"], self.o["epochs"])
        return state["epoch"]

    def epoch(self, epoch: int) -> None:
        """Train one epoch along sampled paths, record it, checkpoint."""
        began, o = time.time(), self.o
        self.net.train()
        total, correct, seen = 0.0, 0, 0
        for step, index in enumerate(batches(len(self.x), o["batch_size"], self.generator)):
            for group in self.opt.param_groups:
                group["lr"] = cosine_lr(o["lr"], epoch * self.per_epoch + step, o["epochs"] * self.per_epoch)
            paths = self.sp.oneshot_fair(self.rng) if o["sampling"] == "fair" else [self.sp.sample(self.rng)]
            self.opt.zero_grad(set_to_none=True)
            xb, yb = self.x[index.to(self.device)], self.y[index.to(self.device)]
            for genotype in paths:  # fair: the paths' gradients add up to one update
                logits = logits_of(self.net(xb, self.sp.oneshot_path(genotype)))
                loss = F.cross_entropy(logits, yb)
                loss.backward()
                total, seen = total + loss.item() * len(yb), seen + len(yb)
                correct += (logits.argmax(1) == yb).sum().item()
            if o["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), o["grad_clip"])
            self.opt.step()
        self.seconds += time.time() - began
        record = {"epoch": epoch + 1, "method": "spos", "sampling": o["sampling"], "train_loss": total / max(seen, 1),
                  "train_accuracy": 100.0 * correct / max(seen, 1), "seconds": round(self.seconds, 3)}
        append_record(self.out, record)
        save_checkpoint(self.out, {"epoch": epoch + 1, "seconds": self.seconds, "model": self.net.state_dict(),
                                   "optimizer": self.opt.state_dict(), "rng": self.rng.getstate(),
                                   "generator": self.generator.get_state(), "torch": rng_state()})
        log.info("supernet epoch %d/%d: train loss %.4f", epoch + 1, o["epochs"], record["train_loss"])
