"""Build and validate per-block latency lookup tables (``nas latency build-lut`` / ``validate``).

Build: every block key of the space's universe (``SearchSpace.latency_universe``) is built alone
(``latency_module``) and measured with :func:`evaluators.latency.measure`; then ``fit`` sampled
whole networks are measured and the correction ``measured ~ scale * sum(blocks) + offset`` fitted
(``nas.latency.fit_correction``). Validate: sampled networks (other seeds than the fit's) measured
whole and compared with the table's prediction; FLOPs' rank correlation on the same samples.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from evaluators.latency import LatencyCache, Measurement, Settings, measure
from nas.latency import LatencyTable, accuracy_stats, fit_correction, kendall_tau, parse_key, versions
from nas.space import Task

log = logging.getLogger(__name__)

BLOCK_POLICY = {"warmup": 3, "min_repeats": 7, "max_repeats": 100, "max_seconds": 0.5}
FIT_SEED = 1_000_003  # sampling seed of the correction's networks (validate uses its own seeds)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice on the root logger at WARNING: keep it off the console."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class PlusOne(nn.Module):
    """The cheapest graph a runtime will not fold away: its per-call cost (a constant network's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0


def is_noop(module: nn.Module) -> bool:
    """A block that computes nothing (identity): free in an exported graph."""
    return isinstance(module, nn.Identity) or (isinstance(module, nn.Sequential) and len(module) == 0)


def measure_block(space: Any, key: str, settings: Settings, stat: str = "min") -> float:
    """Latency (ms, the ``stat`` of the timed runs) of one block alone."""
    module = space.latency_module(key)
    if settings.backend != "torch" and is_noop(module):
        return 0.0
    _, _, shapes = parse_key(key)
    with quiet_logs(), torch.no_grad():
        try:
            return measure(module, shapes, settings).stat(stat)
        except Exception as err:  # int8 quantization of glue-only graphs (a lone Add) may be refused
            if settings.backend != "onnxruntime-int8":
                raise
            log.info("block %s: int8 quantization failed (%s); measured in fp32", key, err)
            return measure(module, shapes, replace(settings, backend="onnxruntime")).stat(stat)


def measure_network(space: Any, genotype: Any, task: Task | None, settings: Settings,
                    cache: LatencyCache | None = None) -> Measurement:
    """Latency of a whole network (cached by arch id when a cache is given)."""
    task = task or _task_of(space, genotype)

    def make() -> nn.Module:
        torch.manual_seed(0)
        return space.build(genotype, task).eval()

    with quiet_logs(), torch.no_grad():
        if cache is None:
            return measure(make(), [task.input_shape], settings)
        return cache.get_or_measure(genotype.arch_id, make, [task.input_shape], settings)


def _task_of(space: Any, genotype: Any) -> Task:
    task_for = getattr(space, "task_for", None)
    return task_for(genotype) if task_for is not None else space.default_task()


def sample_unique(space: Any, count: int, seed: int) -> list[Any]:
    """``count`` distinct sampled genotypes (fewer if the space is smaller)."""
    rng = random.Random(seed)
    found: dict[str, Any] = {}
    for _ in range(count * 20):
        genotype = space.sample(rng)
        found.setdefault(genotype.arch_id, genotype)
        if len(found) >= count:
            break
    return list(found.values())


def build_table(space: Any, settings: Settings, task: Task | None = None, fit: int = 10,
                progress: Callable[[int, int], None] | None = None, stat: str = "min") -> LatencyTable:
    """Measure every block of ``space`` and fit the correction on ``fit`` whole networks.

    Args:
        space: a space implementing the latency-block protocol (see ``nas.space.SearchSpace``).
        settings: the measurement (backend, device, batch, threads); blocks use a shorter repeat policy.
        task: input shape and classes (None: the space's preset).
        fit: whole networks measured for the correction (0: none, scale 1 and offset 0).
        progress: called with (blocks done, blocks total).
        stat: ``min`` or ``median`` of each measurement's timed runs.
    """
    started = time.perf_counter()
    keys = space.latency_universe(task)
    block_settings = replace(settings, **BLOCK_POLICY)
    blocks = {}
    for i, key in enumerate(keys):
        blocks[key] = measure_block(space, key, block_settings, stat)
        if progress:
            progress(i + 1, len(keys))
    default = task or space.default_task()
    table = LatencyTable(space.name, space.preset, json.loads(json.dumps(space.options)), tuple(default.input_shape),
                         default.num_classes, settings.backend, settings.device, settings.batch, settings.threads,
                         versions(), blocks, custom_task=task is not None, stat=stat)
    if settings.backend != "torch":
        table.floor_ms = measure(PlusOne(), [default.input_shape], block_settings).stat(stat)
    raw, measured = [], []
    for genotype in sample_unique(space, fit, FIT_SEED):
        raw.append(table.raw(space.latency_blocks(genotype, task)))
        measured.append(measure_network(space, genotype, task, settings).stat(stat))
    table.scale, table.offset = fit_correction(raw, measured)
    table.fit = {"networks": len(raw), "raw_ms": raw, "measured_ms": measured}
    table.build_seconds = time.perf_counter() - started
    return table


def validate_table(table: LatencyTable, space: Any, samples: int, seed: int = 0, task: Task | None = None,
                   repeat: int = 0, out: str | Path | None = None) -> dict[str, Any]:
    """Predicted vs measured on ``samples`` sampled networks; writes JSON, CSV and a scatter to ``out``.

    Returns at least ``samples``, ``within_10pct``, ``mape``, ``kendall_tau`` and ``flops_kendall_tau``;
    also ``predict_us`` (prediction cost per architecture) and, with ``repeat`` > 0, ``repeatability``
    (median relative difference of ``repeat`` networks measured twice).
    """
    settings = Settings(table.backend, table.device, table.batch, table.threads)
    task = task or table.task()
    genotypes = sample_unique(space, samples, seed)
    started = time.perf_counter()
    predicted = [table.predict(space, g, task) for g in genotypes]
    predict_us = (time.perf_counter() - started) / max(1, len(genotypes)) * 1e6
    measured = [measure_network(space, g, task, settings).stat(table.stat) for g in genotypes]
    flops = [float(space.cost(g, task or _task_of(space, g)).flops) for g in genotypes]
    report: dict[str, Any] = {**accuracy_stats(predicted, measured), "flops_kendall_tau": kendall_tau(flops, measured),
                              "predict_us": predict_us, "lut": table.describe()}
    if repeat:
        again = [measure_network(space, g, task, settings).stat(table.stat) for g in genotypes[:repeat]]
        diffs = sorted(abs(a - b) / ((a + b) / 2) for a, b in zip(measured, again))
        report["repeatability"] = diffs[len(diffs) // 2]
    if out is not None:
        _write(Path(out), report, genotypes, predicted, measured, flops)
    return report


def _write(folder: Path, report: dict[str, Any], genotypes: list[Any], predicted: list[float],
           measured: list[float], flops: list[float]) -> None:
    """validation.json, samples.csv and scatter.png."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "validation.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = ["arch_id,predicted_ms,measured_ms,flops"]
    rows += [f"{g.arch_id},{p:.6g},{m:.6g},{f:.0f}" for g, p, m, f in zip(genotypes, predicted, measured, flops)]
    (folder / "samples.csv").write_text("\n".join(rows) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(measured, predicted, s=12)
    low, high = min(measured + predicted), max(measured + predicted)
    ax.plot([low, high], [low, high], color="grey", lw=1)
    ax.fill_between([low, high], [low * 0.9, high * 0.9], [low * 1.1, high * 1.1], color="grey", alpha=0.15)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{report['within_10pct']:.0%} within ±10%, Kendall τ {report['kendall_tau']:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / "scatter.png", dpi=110)
    plt.close(fig)
