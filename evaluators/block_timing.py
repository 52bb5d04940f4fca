"""Per-block latency for lookup tables: each block of a space timed alone and as :data:`COPIES`
copies, in interleaved rounds with its group; its entry is what each extra copy adds (its own work
inside a graph, without the runtime's per-call cost), and reference blocks keep the groups of a long
build on one speed scale (:func:`block_entries`).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import torch
from torch import nn

from evaluators.latency import pinned, prepare_call, quiet_logs
from evaluators.timing import Clock, Settings, time_rounds
from nas.block_keys import parse_key
from nas.latency.table import speed_ratio

log = logging.getLogger(__name__)

BLOCK_POLICY = {"warmup": 3, "min_repeats": 5, "rounds": 5, "round_seconds": 0.01, "max_seconds": 0.2}
BLOCK_GROUP = 64  # blocks held at once and timed in interleaved rounds
REFERENCE_BLOCKS = 4  # blocks of the first group re-timed in every later group of a build
COPIES = 4  # copies of a block in its repeated form
NO_CSE = ("CommonSubexpressionElimination",)  # parallel weightless copies must not be merged


def is_noop(module: nn.Module) -> bool:
    """A block that computes nothing (identity): free in an exported graph."""
    return isinstance(module, nn.Identity) or (isinstance(module, nn.Sequential) and len(module) == 0)


class Repeated(nn.Module):
    """``copies`` copies of a block with distinct weights: chained when the block keeps the shape of
    its first input (the others are read by every copy), else side by side on the same inputs."""

    def __init__(self, block: nn.Module, copies: int, chain: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([block] + [copy.deepcopy(block) for _ in range(copies - 1)])
        with torch.no_grad():
            for i, b in enumerate(self.blocks):
                for p in b.parameters():
                    p.mul_(1.0 + 1e-3 * i)  # distinct initializers: nothing for a compiler to share
        self.chain = chain

    def forward(self, *xs: torch.Tensor) -> Any:
        if not self.chain:
            return tuple(b(*xs) for b in self.blocks)
        y = xs[0]
        for b in self.blocks:
            y = b(y, *xs[1:])
        return y


def repeated(block: nn.Module, shapes: Sequence[Sequence[int]], copies: int = COPIES) -> Repeated:
    """The repeated form of ``block`` (chained if its output has the shape of its first input)."""
    block = block.eval()
    with torch.no_grad():
        out = block(*(torch.zeros(1, *s) for s in shapes))
    chain = isinstance(out, torch.Tensor) and tuple(out.shape[1:]) == tuple(shapes[0])
    return Repeated(block, copies, chain).eval()


def _block_calls(space: Any, key: str, settings: Settings,
                 fallbacks: list[str] | None = None) -> tuple[Callable[[], Any], Callable[[], Any]] | None:
    """The timed calls of one block alone and repeated (None: free in an exported graph); an int8
    block the quantizer refuses is timed in fp32 and its key appended to ``fallbacks``."""
    module = space.latency_module(key)
    if settings.backend != "torch" and is_noop(module):
        return None
    _, _, shapes = parse_key(key)
    many = repeated(module, shapes)
    try:
        return prepare_call(module, shapes, settings, NO_CSE), prepare_call(many, shapes, settings, NO_CSE)
    except Exception as err:  # int8 quantization of glue-only graphs (a lone Add) may be refused
        if settings.backend != "onnxruntime-int8":
            raise
        log.warning("block %s: int8 quantization failed (%s); measured in fp32", key, err)
        if fallbacks is not None:
            fallbacks.append(key)
        fp32 = replace(settings, backend="onnxruntime")
        return prepare_call(module, shapes, fp32, NO_CSE), prepare_call(many, shapes, fp32, NO_CSE)


def _time_group(space: Any, keys: Sequence[str], settings: Settings, stat: str,
                clock: Clock = time.perf_counter,
                fallbacks: list[str] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """(entry, time of the repeated form) of each key, all timed in one set of interleaved rounds
    (entries of free blocks are 0 and they have no time)."""
    with pinned(settings.threads, settings.cpus):
        calls = {key: _block_calls(space, key, settings, fallbacks) for key in keys}
        live = [key for key, pair in calls.items() if pair is not None]
        timed = time_rounds([c for key in live for c in calls[key]], settings, clock=clock) if live else []
    entries = {key: 0.0 for key in keys}
    many_ms = {}
    for i, key in enumerate(live):
        alone, many = timed[2 * i].stat(stat), timed[2 * i + 1].stat(stat)
        entries[key] = max(0.0, (many - alone) / (COPIES - 1))
        many_ms[key] = many
    return entries, many_ms


def _reference_blocks(many_ms: dict[str, float], count: int = REFERENCE_BLOCKS) -> list[str]:
    """``count`` blocks spread over the upper three quarters of the repeated forms' times (the
    smallest are the noisiest to re-time)."""
    ordered = sorted(many_ms, key=many_ms.__getitem__)[len(many_ms) // 4:]
    if not ordered:
        return []
    count = min(count, len(ordered))
    return list(dict.fromkeys(ordered[round(j * (len(ordered) - 1) / max(1, count - 1))] for j in range(count)))


def block_entries(space: Any, keys: Sequence[str], settings: Settings, stat: str = "median",
                  progress: Callable[[int, int], None] | None = None,
                  drift: list[float] | None = None, clock: Clock = time.perf_counter,
                  fallbacks: list[str] | None = None) -> dict[str, float]:
    """What each block adds to a network (ms, from the ``stat`` of the timed runs).

    A block is timed alone and as :data:`COPIES` copies (:class:`Repeated`), in interleaved
    rounds with its group; its entry is the difference per extra copy, ``(T_k - T_1) / (k - 1)``:
    the block's own work without the per-call cost of the runtime (feeding inputs, fetching
    outputs, layout conversions at the graph's edges) that a network pays once, not per block.

    With more than one group, :data:`REFERENCE_BLOCKS` blocks of the first group are timed again
    in every later group's rounds, and that group's entries are divided by their speed ratio (how
    much slower the machine ran then than during the first group; appended to ``drift``), so that
    every entry holds for the machine as fast as during the first group. ``clock`` (seconds) times
    the runs (:func:`evaluators.timing.time_rounds`). An int8 block the quantizer refuses is
    timed in fp32 and its key appended to ``fallbacks`` (re-timed references again: dedupe).
    """
    out: dict[str, float] = {}
    references: list[str] = []
    base: list[float] = []
    with quiet_logs(), torch.no_grad():
        for start in range(0, len(keys), BLOCK_GROUP):
            group = list(keys[start:start + BLOCK_GROUP])
            timed = group + [k for k in references if k not in group]
            entries, many_ms = _time_group(space, timed, settings, stat, clock, fallbacks)
            factor = speed_ratio([many_ms[k] for k in references], base) if references else 1.0
            out.update({key: entries[key] / factor for key in group})
            if references and drift is not None:
                drift.append(factor)
            if start == 0 and len(keys) > BLOCK_GROUP:
                references = _reference_blocks(many_ms)
                base = [many_ms[k] for k in references]
            if progress:
                progress(min(start + BLOCK_GROUP, len(keys)), len(keys))
    return out
