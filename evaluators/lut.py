"""Build and validate per-block latency lookup tables (``nas latency build-lut`` / ``validate``).

Build: every block key of the space's universe (``SearchSpace.latency_universe``) is built alone
(``latency_module``) and as :data:`COPIES` chained (or side-by-side) copies, both timed in
interleaved rounds with their group; the block's entry is the time each extra copy adds, i.e. its
own work inside a graph without the per-call cost (feeds, outputs, layout conversions at the
graph's edges) that a network pays once. Then ``fit`` sampled whole networks are measured and the
correction ``measured ~ scale * sum(blocks) + offset [+ costs per block, per kind or per block
key]`` fitted (``nas.latency.table.choose_correction``, the form chosen by leave-one-out error). A build of several block groups
re-times a few blocks of the first group with every later group and rescales that group's entries
by their speed ratio (the machine's speed drifts within minutes).

Validate: sampled networks (other seeds than the fit's) measured whole, all in one set of
interleaved rounds when memory allows (:func:`network_groups`), and compared with the table's
prediction; FLOPs' rank correlation on the same samples.

Calibration: a table's absolute values hold for the machine as fast as during its build. The fit
networks and their build-time latencies stay in the table; measured again later (a few of them,
:data:`REFERENCES`), their speed ratio scales the predictions (:func:`calibrate_table` before a
search; in validate, inside every group's interleaved rounds, so drift falls on the references and
the samples alike). Validate reports the calibrated and the uncalibrated figures.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import logging
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from evaluators.latency import (LatencyCache, Measurement, Settings, measure, measure_many, pinned,
                                prepare_call, time_rounds)
from nas.latency.table import (FIT_NETWORKS, LatencyTable, accuracy_stats, choose_correction, kendall_tau, parse_key, speed_ratio,
                         versions)
from nas.config import SpecError
from nas.space import Task

log = logging.getLogger(__name__)

BLOCK_POLICY = {"warmup": 3, "min_repeats": 5, "rounds": 5, "round_seconds": 0.01, "max_seconds": 0.2}
NETWORK_POLICY = {"warmup": 3, "min_repeats": 7, "rounds": 7, "round_seconds": 0.03, "max_seconds": 1.5}
BLOCK_GROUP = 64  # blocks held at once and timed in interleaved rounds
# Whole networks are timed in as few interleaved groups as memory allows: the machine's drift over
# the minutes a validation takes then falls on every network alike (groups of 20 left drift of up to
# 48% between groups, which the references could only partly take out).
NETWORK_GROUP = 128  # most networks held at once
NETWORK_GROUP_PARAMS = 400_000_000  # most parameters held at once (about 1.6 GB of fp32 weights)
REFERENCES = 6  # fit networks re-measured in every validation group (and by calibrate_table): the speed now
REFERENCE_BLOCKS = 4  # blocks of the first group re-timed in every later group of a build
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


class ConstantOutput(nn.Module):
    """A network whose output ignores its input, as a graph runtime compiles one whose every path
    from the input is cut: what the runtime charges for a call that computes nothing."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.register_buffer("value", torch.zeros(1, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.clone()


def is_noop(module: nn.Module) -> bool:
    """A block that computes nothing (identity): free in an exported graph."""
    return isinstance(module, nn.Identity) or (isinstance(module, nn.Sequential) and len(module) == 0)


COPIES = 4  # copies of a block in its repeated form
NO_CSE = ("CommonSubexpressionElimination",)  # parallel weightless copies must not be merged


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


def _block_calls(space: Any, key: str, settings: Settings) -> tuple[Callable[[], Any], Callable[[], Any]] | None:
    """The timed calls of one block alone and repeated (None: free in an exported graph)."""
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
        log.info("block %s: int8 quantization failed (%s); measured in fp32", key, err)
        fp32 = replace(settings, backend="onnxruntime")
        return prepare_call(module, shapes, fp32, NO_CSE), prepare_call(many, shapes, fp32, NO_CSE)


def _time_blocks(space: Any, keys: Sequence[str], settings: Settings,
                 stat: str) -> tuple[dict[str, float], dict[str, float]]:
    """(entry, time of the repeated form) of each key, all timed in one set of interleaved rounds
    (entries of free blocks are 0 and they have no time)."""
    with pinned(settings.threads, settings.cpus):
        calls = {key: _block_calls(space, key, settings) for key in keys}
        live = [key for key, pair in calls.items() if pair is not None]
        timed = time_rounds([c for key in live for c in calls[key]], settings) if live else []
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


def measure_blocks(space: Any, keys: Sequence[str], settings: Settings, stat: str = "median",
                   progress: Callable[[int, int], None] | None = None,
                   drift: list[float] | None = None) -> dict[str, float]:
    """What each block adds to a network (ms, from the ``stat`` of the timed runs).

    A block is timed alone and as :data:`COPIES` copies (:class:`Repeated`), in interleaved
    rounds with its group; its entry is the difference per extra copy, ``(T_k - T_1) / (k - 1)``:
    the block's own work without the per-call cost of the runtime (feeding inputs, fetching
    outputs, layout conversions at the graph's edges) that a network pays once, not per block.

    With more than one group, :data:`REFERENCE_BLOCKS` blocks of the first group are timed again
    in every later group's rounds, and that group's entries are divided by their speed ratio (how
    much slower the machine ran then than during the first group; appended to ``drift``), so that
    every entry holds for the machine as fast as during the first group.
    """
    out: dict[str, float] = {}
    references: list[str] = []
    base: list[float] = []
    with quiet_logs(), torch.no_grad():
        for start in range(0, len(keys), BLOCK_GROUP):
            group = list(keys[start:start + BLOCK_GROUP])
            entries, many_ms = _time_blocks(space, group + [k for k in references if k not in group], settings, stat)
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


def measure_block(space: Any, key: str, settings: Settings, stat: str = "median") -> float:
    """Latency (ms, the ``stat`` of the timed runs) of one block alone."""
    return measure_blocks(space, [key], settings, stat)[key]


def _build(space: Any, genotype: Any, task: Task | None) -> nn.Module:
    torch.manual_seed(0)
    return space.build(genotype, task or _task_of(space, genotype)).eval()


def measure_network(space: Any, genotype: Any, task: Task | None, settings: Settings,
                    cache: LatencyCache | None = None) -> Measurement:
    """Latency of a whole network (cached by arch id when a cache is given)."""
    task = task or _task_of(space, genotype)
    with quiet_logs(), torch.no_grad():
        if cache is None:
            return measure(_build(space, genotype, task), [task.input_shape], settings)
        return cache.get_or_measure(genotype.arch_id, lambda: _build(space, genotype, task), [task.input_shape],
                                    settings)


def network_groups(space: Any, genotypes: Sequence[Any], task: Task | None, reserve: int = 0,
                   reserve_params: int = 0) -> list[list[int]]:
    """Indices of ``genotypes`` in consecutive groups of at most :data:`NETWORK_GROUP` networks and
    :data:`NETWORK_GROUP_PARAMS` parameters, each with room left for ``reserve`` more networks of
    ``reserve_params`` parameters together (the references a validation group also holds)."""
    groups: list[list[int]] = []
    count = params = 0
    for i, genotype in enumerate(genotypes):
        size = space.cost(genotype, task or _task_of(space, genotype)).params
        if groups and count < NETWORK_GROUP - reserve and params + size <= NETWORK_GROUP_PARAMS - reserve_params:
            groups[-1].append(i)
            count, params = count + 1, params + size
        else:
            groups.append([i])
            count, params = 1, size
    return groups


def measure_networks(space: Any, genotypes: Sequence[Any], task: Task | None, settings: Settings,
                     grouped: bool = True) -> list[Measurement]:
    """Latencies of whole networks (fresh instances: a genotype listed twice is built and measured
    twice), timed in interleaved groups (:func:`network_groups`; ``grouped=False``: all in one)."""
    groups = network_groups(space, genotypes, task) if grouped else [list(range(len(genotypes)))]
    out: list[Measurement] = []
    with quiet_logs(), torch.no_grad():
        for group in groups:
            items = []
            for genotype in (genotypes[i] for i in group):
                own = task or _task_of(space, genotype)
                items.append((_build(space, genotype, own), [own.input_shape]))
            out += measure_many(items, settings)
            del items
    return out


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


def fit_genotypes(space: Any, fit: int) -> list[Any]:
    """The ``fit`` networks a table's correction is fitted on (seed :data:`FIT_SEED`); a space with
    fewer than ``2 * fit`` networks gives half of them, so that the rest are left to validate on."""
    found = sample_unique(space, 2 * fit, FIT_SEED)
    return found[:fit] if len(found) >= 2 * fit else found[:len(found) // 2]


def build_table(space: Any, settings: Settings, task: Task | None = None, fit: int = FIT_NETWORKS,
                progress: Callable[[int, int], None] | None = None, stat: str = "median") -> LatencyTable:
    """Measure every block of ``space`` and fit the correction on ``fit`` whole networks.

    Args:
        space: a space implementing the latency-block protocol (see ``nas.space.SearchSpace``).
        settings: the measurement (backend, device, batch, threads); blocks and networks use the
            repeat policies :data:`BLOCK_POLICY` and :data:`NETWORK_POLICY`.
        task: input shape and classes (None: the space's preset).
        fit: whole networks measured for the correction (0: none, scale 1 and offset 0; a space
            with fewer than twice as many networks gives half of them, the rest are left to validate on).
        progress: called with (blocks done, blocks total).
        stat: ``median`` (of the round medians) or ``min`` of each measurement's timed runs.
    """
    started = time.perf_counter()
    keys = space.latency_universe(task)
    block_settings = replace(settings, **BLOCK_POLICY)
    block_drift: list[float] = []
    blocks = measure_blocks(space, keys, block_settings, stat, progress, block_drift)
    default = task or space.default_task()
    table = LatencyTable(space.name, space.preset, json.loads(json.dumps(space.options)), tuple(default.input_shape),
                         default.num_classes, settings.backend, settings.device, settings.batch, settings.threads,
                         versions(), blocks, custom_task=task is not None, stat=stat)
    if settings.backend != "torch":
        table.floor_ms = measure(ConstantOutput(default.num_classes), [default.input_shape],
                                 replace(settings, **NETWORK_POLICY)).stat(stat)
    genotypes = fit_genotypes(space, fit)
    network_keys = [table.network_keys(space, g, task) for g in genotypes]
    parts = [table.parts(k) for k in network_keys]
    measured = [m.stat(stat) for m in measure_networks(space, genotypes, task, replace(settings, **NETWORK_POLICY))]
    raw, live = [p[0] for p in parts], [p[1] for p in parts]
    kept = [i for i in range(len(raw)) if live[i]]  # a network folded to a constant is predicted as floor_ms
    correction = choose_correction([raw[i] for i in kept], [measured[i] for i in kept], [live[i] for i in kept],
                                   [table.term_counts(network_keys[i]) for i in kept])
    table.scale, table.per_block, table.offset = correction.scale, correction.per_block, correction.offset
    table.kind_ms = correction.kind_ms
    table.fit = {"networks": len(raw), "raw_ms": raw, "blocks": live, "measured_ms": measured,
                 "genotypes": [g.to_dict() for g in genotypes], "block_drift": block_drift,
                 "form": correction.form, "loo_error": correction.loo}
    table.build_seconds = time.perf_counter() - started
    return table


def measure_with_references(table: LatencyTable, space: Any, genotypes: Sequence[Any], task: Task | None,
                            settings: Settings, count: int = REFERENCES) -> tuple[list[float], list[float]]:
    """Latencies of ``genotypes`` (fresh instances, the table's statistic), each with the speed
    ratio of the group it was timed in.

    Every interleaved group (:func:`network_groups`; one for most validations) holds ``count`` of the table's fit
    networks (:meth:`LatencyTable.references`) besides the genotypes, so that the machine's drift
    falls on both alike; a group's ratio is :func:`nas.latency.table.speed_ratio` of their latencies now
    to those stored at build time (1.0 for every group when the table has no fit networks).
    """
    chosen = table.references(count)
    references = [space.from_dict(table.fit["genotypes"][i]) for i in chosen]
    then = [table.fit["measured_ms"][i] for i in chosen]
    held = sum(space.cost(g, task or _task_of(space, g)).params for g in references)
    times: list[float] = []
    ratios: list[float] = []
    for group in network_groups(space, genotypes, task, len(references), held):
        chunk = [genotypes[i] for i in group]
        result = [m.stat(table.stat) for m in measure_networks(space, references + chunk, task, settings, grouped=False)]
        ratio = speed_ratio(result[:len(references)], then) if references else 1.0
        times += result[len(references):]
        ratios += [ratio] * len(chunk)
    return times, ratios


def calibrate_table(table: LatencyTable, space: Any, task: Task | None = None, count: int = REFERENCES) -> float:
    """Set ``table.speed`` to the machine's speed now against at build time (its fit networks
    measured again, :func:`measure_with_references`), so that its predictions hold for now; returns it."""
    chosen = table.references(count)
    if not chosen:
        raise SpecError(f"latency table ({table.describe()}) has no fit networks to calibrate with "
                        "(built with --fit 0)")
    settings = replace(Settings(table.backend, table.device, table.batch, table.threads), **NETWORK_POLICY)
    references = [space.from_dict(table.fit["genotypes"][i]) for i in chosen]
    now = [m.stat(table.stat) for m in measure_networks(space, references, task or table.task(), settings)]
    table.speed = speed_ratio(now, [table.fit["measured_ms"][i] for i in chosen])
    return table.speed


def validate_table(table: LatencyTable, space: Any, samples: int, seed: int = 0, task: Task | None = None,
                   repeat: int = 0, out: str | Path | None = None, calibrate: bool = True) -> dict[str, Any]:
    """Predicted vs measured on ``samples`` sampled networks; writes JSON, CSV and a scatter to ``out``.

    Returns at least ``samples``, ``within_10pct``, ``mape``, ``kendall_tau`` and ``flops_kendall_tau``;
    also ``predict_us`` (prediction cost per architecture); with ``repeat`` > 0, ``repeatability``
    (median relative difference of the first ``repeat`` networks measured twice: two instances,
    timed in the same interleaved rounds). With ``calibrate`` and a table that has fit networks
    (never validation samples), :data:`REFERENCES` of them are measured in every group's rounds
    (:func:`measure_with_references`) and each prediction is scaled by its group's speed ratio:
    the headline figures are then the calibrated ones, ``uncalibrated`` holds the raw table's,
    ``calibration`` the ratios (``drift``: their median).
    """
    settings = replace(Settings(table.backend, table.device, table.batch, table.threads), **NETWORK_POLICY)
    task = task or table.task()
    table = replace(table, speed=1.0)  # the table as built; calibration is this function's own
    fitted = {space.from_dict(d).arch_id for d in table.fit.get("genotypes", [])}  # never validation samples
    genotypes = [g for g in sample_unique(space, samples + len(fitted), seed) if g.arch_id not in fitted][:samples]
    if not genotypes:
        raise SpecError(f"latency table ({table.describe()}): every network of the space is one of its "
                        f"{len(fitted)} fit networks; nothing is left to validate on")
    started = time.perf_counter()
    raw = [table.predict(space, g, task) for g in genotypes]
    predict_us = (time.perf_counter() - started) / max(1, len(genotypes)) * 1e6
    twice = min(repeat, len(genotypes))
    order = [g for i, g in enumerate(genotypes) for _ in range(2 if i < twice else 1)]
    times, ratios = measure_with_references(table, space, order, task, settings, REFERENCES if calibrate else 0)
    first = [i + min(i, twice) for i in range(len(genotypes))]  # each genotype's first measurement in `order`
    measured = [times[j] for j in first]
    again = [times[j + 1] for j in first[:twice]]
    predicted = [p * ratios[j] for p, j in zip(raw, first)]
    flops = [float(space.cost(g, task or _task_of(space, g)).flops) for g in genotypes]
    report: dict[str, Any] = {**accuracy_stats(predicted, measured), "flops_kendall_tau": kendall_tau(flops, measured),
                              "predict_us": predict_us, "lut": table.describe()}
    if calibrate and table.references(REFERENCES):
        report["uncalibrated"] = {k: v for k, v in accuracy_stats(raw, measured).items() if k != "samples"}
        report["calibration"] = {"references": len(table.references(REFERENCES)),
                                 "group_ratios": list(dict.fromkeys(ratios))}
        report["drift"] = statistics.median(ratios)
    if twice:
        report.update(_repeat_stats(predicted[:twice], measured[:twice], again))
    if out is not None:
        _write(Path(out), report, genotypes, raw, predicted, measured, flops)
    return report


def _repeat_stats(predicted: list[float], measured: list[float], again: list[float]) -> dict[str, Any]:
    """Repeatability of the networks measured twice (median relative difference) and the ranking's
    noise ceiling (Kendall tau of the two measurements with each other)."""
    diffs = sorted(abs(a - b) / ((a + b) / 2) for a, b in zip(measured, again))
    return {"repeatability": statistics.median(diffs), "repeat_kendall_tau": kendall_tau(measured, again),
            "table_kendall_tau_on_repeated": kendall_tau(predicted, measured),
            "repeated_ms": [[a, b] for a, b in zip(measured, again)]}


def _write(folder: Path, report: dict[str, Any], genotypes: list[Any], raw: list[float], predicted: list[float],
           measured: list[float], flops: list[float]) -> None:
    """validation.json, samples.csv and scatter.png."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "validation.json").write_text(json.dumps(report, indent=2) + "\n")
    with (folder / "samples.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch_id", "predicted_ms", "measured_ms", "flops", "genotype", "uncalibrated_ms"])
        writer.writerows([g.arch_id, f"{p:.6g}", f"{m:.6g}", f"{f:.0f}", g.to_json(), f"{r:.6g}"]
                         for g, r, p, m, f in zip(genotypes, raw, predicted, measured, flops))
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
