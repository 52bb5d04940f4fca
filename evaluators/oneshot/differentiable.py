"""Differentiable architecture search: weights and architecture parameters trained together.

The training split is halved (DARTS' protocol): weights step on one half, architecture parameters
(Adam) on the other, alternately, first order. Every epoch appends a record (probabilities per edge,
the derived genotype, losses, validation accuracy of the mixture, expected latency) and checkpoints
everything, so a killed search resumes at the next epoch with the same parameters.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from evaluators.supernet_options import load_splits
from evaluators.oneshot.common import (append_record, batches, logits_of, cosine_lr, device_for, load_checkpoint,
                                       rng_state, save_checkpoint, score, set_rng_state, tensors)
from evaluators.oneshot.latency import derived_latency, path_ms, within_target
from evaluators.oneshot.strategies import STRATEGIES, expected_latency, latency_loss, straight_through
from nas import registry
from nas.space import Task

log = logging.getLogger(__name__)


def search(method: str, space: str, space_options: Mapping[str, Any], options: Mapping[str, Any], seed: int,
           folder: str, latency: tuple[float, list[list[float]]] | None = None) -> dict[str, Any]:
    """Run (or finish) a ``darts``/``gdas``/``drnas`` search into ``folder``.

    Args:
        method: the controller's name.
        space, space_options: the run's space.
        options: the controller's validated options (:data:`nas.oneshot.options.DIFFERENTIABLE`).
        seed: the run's seed.
        folder: where ``checkpoint.pt`` and ``epochs.jsonl`` go.
        latency: ``(fixed ms, ms per edge and op)`` from the run's latency table, for the latency term.

    Returns:
        The final record: ``genotype`` (dict), ``probabilities``, ``collapsed`` cell types before the
        guard, ``expected_latency_ms``.
    """
    run = _Search(method, registry.make_space(space, dict(space_options)), dict(options), seed, Path(folder), latency)
    record: dict[str, Any] = {}
    for epoch in range(run.restore(), run.o["epochs"]):
        record = run.epoch(epoch)
    return record or run.record(run.o["epochs"] - 1, (float("nan"),) * 2)  # finished before: the checkpoint's


class _Search:
    """The state of one differentiable search: data halves, supernet, logits, optimizers, clock."""

    def __init__(self, method: str, sp: Any, o: dict[str, Any], seed: int, out: Path,
                 latency: tuple[float, list[list[float]]] | None) -> None:
        self.method, self.sp, self.o, self.out = method, sp, o, out
        self.strategy = STRATEGIES[method](o)
        self.device = device_for(o["device"], o["threads"])
        splits = load_splits(o)
        x, y, self.xv, self.yv = tensors(splits, self.device)
        half = len(x) // 2
        self.a, self.b = (x[:half], y[:half]), (x[half:], y[half:])  # weights' half, architecture's half
        torch.manual_seed(seed)
        self.net = sp.build_supernet(Task(splits.input_shape, splits.classes)).to(self.device)
        self.logits = [torch.nn.Parameter(1e-3 * torch.randn(len(ops), device=self.device))
                       for _, ops in sp.oneshot_edges()]
        self.w_opt = torch.optim.SGD(self.net.parameters(), lr=o["lr"], momentum=o["momentum"],
                                     weight_decay=o["weight_decay"])
        self.a_opt = torch.optim.Adam(self.logits, lr=o["arch_lr"], betas=(0.5, 0.999),
                                      weight_decay=o["arch_weight_decay"])
        self.generator = torch.Generator().manual_seed(seed)
        self.fixed, self.edge_ms = (latency[0], torch.tensor(latency[1], device=self.device)) if latency else (0.0, None)
        self.reference = float(expected_latency([torch.full((len(r),), 1 / len(r)) for r in latency[1]],
                                                self.fixed, self.edge_ms.cpu())) if latency else 1.0
        self.per_epoch = max(1, min(half, len(x) - half) // min(o["batch_size"], half))
        self.total = o["epochs"] * self.per_epoch
        self.seconds = 0.0

    def restore(self) -> int:
        """Load the last checkpoint, if any; the epoch to start at."""
        state = load_checkpoint(self.out)
        if state is None:
            return 0
        self.net.load_state_dict(state["model"])
        with torch.no_grad():
            for p, saved in zip(self.logits, state["logits"]):
                p.copy_(saved)
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.generator.set_state(state["generator"])
        set_rng_state(state["torch"])
        self.seconds = state["seconds"]
        log.info("%s: resuming after epoch %d of %d", self.method, state["epoch"], self.o["epochs"])
        return state["epoch"]

    def epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch, record it, checkpoint; the record."""
        began, losses = time.time(), [0.0, 0.0]
        self.net.train()
        pairs = zip(batches(len(self.a[0]), self.o["batch_size"], self.generator),
                    batches(len(self.b[0]), self.o["batch_size"], self.generator))
        for step, (ia, ib) in enumerate(pairs):
            done = epoch * self.per_epoch + step
            if epoch >= round(self.o["warmup"] * self.o["epochs"]):
                losses[1] += self.arch_step(ib.to(self.device), done / max(self.total, 1))
            losses[0] += self.weight_step(ia.to(self.device), done)
        self.seconds += time.time() - began
        record = self.record(epoch, (losses[0] / self.per_epoch, losses[1] / self.per_epoch))
        append_record(self.out, record)
        save_checkpoint(self.out, {"epoch": epoch + 1, "seconds": self.seconds, "model": self.net.state_dict(),
                                   "logits": [p.detach().cpu() for p in self.logits], "w_opt": self.w_opt.state_dict(),
                                   "a_opt": self.a_opt.state_dict(), "generator": self.generator.get_state(),
                                   "torch": rng_state()})
        log.info("%s epoch %d/%d: %s, valid %.2f%%", self.method, epoch + 1, self.o["epochs"], record["genotype_label"],
                 record["valid_accuracy"])
        return record

    def arch_step(self, index: torch.Tensor, progress: float) -> float:
        """One Adam step of the logits on the architecture half (plus regularisation and latency)."""
        self.a_opt.zero_grad(set_to_none=True)
        x, y = self.b
        loss = F.cross_entropy(logits_of(self.net(x[index], self.strategy.choices(self.logits, progress))), y[index])
        loss = loss + self.strategy.regularization(self.logits, progress)
        if self.edge_ms is not None and self.o["latency_weight"] > 0:
            probs = self.strategy.probabilities(self.logits)
            lat = straight_through(expected_latency(probs, self.fixed, self.edge_ms), self.derived_ms(probs))
            loss = loss + latency_loss(lat, self.o["latency_weight"], self.o["latency_target"], self.reference)
        loss.backward()
        self.a_opt.step()
        return loss.item()

    def weight_step(self, index: torch.Tensor, done: int) -> float:
        """One SGD step of the supernet's weights on the weights' half, under a fixed architecture sample."""
        for group in self.w_opt.param_groups:
            group["lr"] = cosine_lr(self.o["lr"], done, self.total)
        self.w_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            arch = self.strategy.choices(self.logits, done / max(self.total, 1))
        x, y = self.a
        loss = F.cross_entropy(logits_of(self.net(x[index], arch)), y[index])
        loss.backward()
        if self.o["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.o["grad_clip"])
        self.w_opt.step()
        return loss.item()

    def derived_ms(self, probs: list[torch.Tensor]) -> float:
        """The latency the split table gives the cell derived from ``probs`` now."""
        return derived_latency(self.sp, probs, self.fixed, self.edge_ms, self.o["prevent_collapse"])

    def record(self, epoch: int, losses: tuple[float, float]) -> dict[str, Any]:
        return _record(self.sp, self.strategy, self.net, self.logits, self.method, epoch, losses, (self.xv, self.yv),
                       self.o, (self.fixed, self.edge_ms), self.seconds)


def _record(sp: Any, strategy: Any, net: Any, logits: list[torch.Tensor], method: str, epoch: int,
            losses: tuple[float, float], valid: tuple[torch.Tensor, torch.Tensor], o: Mapping[str, Any],
            latency: tuple[float, Any], seconds: float) -> dict[str, Any]:
    """One epoch's record: probabilities, derived genotype (and whether it collapsed), scores."""
    from nas.oneshot import collapsed

    with torch.no_grad():
        probs = strategy.probabilities(logits)
        rows = [[round(float(v), 5) for v in p] for p in probs]
        raw = sp.oneshot_derive(rows, prevent_collapse=False)
        genotype, moved = sp.oneshot_derive(rows, prevent_collapse=o["prevent_collapse"]), 0
        if latency[1] is not None and o["latency_weight"] > 0 and o["latency_target"] > 0:
            genotype, moved = within_target(sp, rows, latency[0], latency[1], o["latency_target"],
                                            o["prevent_collapse"])
        net.eval()
        accuracy, loss = score(lambda xb: net(xb, probs), valid[0], valid[1], 256)
        expected = float(expected_latency(probs, latency[0], latency[1])) if latency[1] is not None else None
        derived = path_ms(sp, genotype, latency[0], latency[1]) if latency[1] is not None else None
    return {"epoch": epoch + 1, "method": method, "train_loss": losses[0], "arch_loss": losses[1],
            "valid_loss": loss, "valid_accuracy": accuracy, "probabilities": rows, "genotype": genotype.to_dict(),
            "genotype_label": sp.label(genotype), "collapsed": collapsed(sp, raw),
            "expected_latency_ms": expected, "derived_latency_ms": derived, "moved_for_latency": moved,
            "seconds": round(seconds, 3)}

