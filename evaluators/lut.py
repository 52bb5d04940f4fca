"""Build and validate per-block latency lookup tables (``nas latency build-lut`` / ``validate``).

Build: every block key of the space's universe (``SearchSpace.latency_universe``) is built alone
(``latency_module``) and as ``COPIES`` chained (or side-by-side) copies, both timed in
interleaved rounds with their group; the block's entry is the time each extra copy adds, i.e. its
own work inside a graph without the per-call cost (feeds, outputs, layout conversions at the
graph's edges) that a network pays once (:mod:`evaluators.block_timing`). Then ``fit`` sampled whole
networks are measured and the correction ``measured ~ scale * sum(blocks) + offset [+ costs per
block, per kind or per block key]`` fitted (``nas.latency.fit.choose_correction``, the form chosen
by leave-one-out error). A build of several block groups re-times a few blocks of the first group
with every later group and rescales that group's entries by their speed ratio (the machine's speed
drifts within minutes).

Validate: sampled networks (other seeds than the fit's) measured whole, all in one set of
interleaved rounds when memory allows (:func:`network_groups`), and compared with the table's
prediction; FLOPs' rank correlation on the same samples.

Calibration: a table's absolute values hold for the machine as fast as during its build. The fit
networks and their build-time latencies stay in the table; measured again later (a few of them,
:data:`REFERENCES`), their speed ratio scales the predictions (:func:`calibrate_table` before a
search; in validate, inside every group's interleaved rounds, so drift falls on the references and
the samples alike). Validate reports the calibrated and the uncalibrated figures. Calibration
carried up to 57 points within +-10% on a held-out seed (nb201/onnxruntime, the machine 10% faster
than at build time; BENCHMARKS.md, "Latency tables that travel"); a search does it by default only
on the table's own machine (``[latency] calibrate = "auto"``).
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from evaluators import runtime_probe
from evaluators.block_timing import BLOCK_POLICY, block_entries
from evaluators.latency import LatencyCache, measure, measure_many, quiet_logs
from evaluators.timing import Measurement, Settings
from nas.latency.fit import choose_correction
from nas.latency.table import FIT_NETWORKS, LatencyTable, accuracy_stats, kendall_tau, speed_ratio, versions
from nas.config import SpecError
from nas.space import Task

NETWORK_POLICY = {"warmup": 3, "min_repeats": 7, "rounds": 7, "round_seconds": 0.03, "max_seconds": 1.5}
# Whole networks are timed in as few interleaved groups as memory allows: the machine's drift over
# the minutes a validation takes then falls on every network alike (groups of 20 left drift of up to
# 48% between groups, which the references could only partly take out).
NETWORK_GROUP = 128  # most networks held at once
NETWORK_GROUP_PARAMS = 400_000_000  # most parameters held at once (about 1.6 GB of fp32 weights)
REFERENCES = 6  # fit networks re-measured in every validation group (and by calibrate_table): the speed now
FIT_SEED = 1_000_003  # sampling seed of the correction's networks (validate uses its own seeds)


class ConstantOutput(nn.Module):
    """A network whose output ignores its input, as a graph runtime compiles one whose every path
    from the input is cut: what the runtime charges for a call that computes nothing."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.register_buffer("value", torch.zeros(1, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.clone()


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
            repeat policies ``BLOCK_POLICY`` and :data:`NETWORK_POLICY`.
        task: input shape and classes (None: the space's preset).
        fit: whole networks measured for the correction (0: none, scale 1 and offset 0; a space
            with fewer than twice as many networks gives half of them, the rest are left to validate on).
        progress: called with (blocks done, blocks total).
        stat: ``median`` (of the round medians) or ``min`` of each measurement's timed runs.
    """
    started = time.perf_counter()
    rules = runtime_probe.detect(settings)
    default = task or space.default_task()
    floors = [_floor(default, settings, stat)]
    block_drift: list[float] = []
    fallbacks: list[str] = []
    blocks = block_entries(space, space.latency_universe(task), replace(settings, **BLOCK_POLICY), stat, progress,
                           block_drift, fallbacks=fallbacks)
    table = LatencyTable(space.name, space.preset, json.loads(json.dumps(space.options)), tuple(default.input_shape),
                         default.num_classes, settings.backend, settings.device, settings.batch, settings.threads,
                         versions(), blocks, custom_task=task is not None, stat=stat,
                         target=runtime_probe.target(settings).to_dict(), rules=rules.to_dict() if rules else {},
                         fp32_blocks=sorted(set(fallbacks)))
    _fit_correction(table, space, fit_genotypes(space, fit), task, replace(settings, **NETWORK_POLICY), block_drift)
    if settings.backend != "torch":  # the least of two measurements, minutes apart: a call's cost is a floor
        table.floor_ms = min(floors + [_floor(default, settings, stat)])  # that a busy moment only raises
    table.build_seconds = time.perf_counter() - started
    return table


def _floor(task: Task, settings: Settings, stat: str) -> float:
    """What the runtime charges for a call that computes nothing (ms): a network folded to a constant."""
    if settings.backend == "torch":
        return 0.0
    return measure(ConstantOutput(task.num_classes), [task.input_shape], replace(settings, **NETWORK_POLICY)).stat(stat)


def _fit_correction(table: LatencyTable, space: Any, genotypes: list[Any], task: Task | None, settings: Settings,
                    block_drift: list[float]) -> None:
    """Measure ``genotypes`` whole and set the table's correction and its ``fit`` record (with the
    build's ``block_drift``) from them."""
    network_keys = [table.network_keys(space, g, task) for g in genotypes]
    parts = [table.parts(k) for k in network_keys]
    measured = [m.stat(table.stat) for m in measure_networks(space, genotypes, task, settings)]
    raw, live = [p[0] for p in parts], [p[1] for p in parts]
    kept = [i for i in range(len(raw)) if live[i]]  # a network folded to a constant is predicted as floor_ms
    correction = choose_correction([raw[i] for i in kept], [measured[i] for i in kept], [live[i] for i in kept],
                                   [table.term_counts(network_keys[i]) for i in kept])
    table.scale, table.per_block, table.offset = correction.scale, correction.per_block, correction.offset
    table.kind_ms = correction.kind_ms
    table.fit = {"networks": len(raw), "raw_ms": raw, "blocks": live, "measured_ms": measured,
                 "genotypes": [g.to_dict() for g in genotypes], "block_drift": block_drift,
                 "form": correction.form, "loo_error": correction.loo}


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
    genotypes = _validation_samples(table, space, samples, seed)
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
        report.update(_calibration_stats(raw, measured, ratios, len(table.references(REFERENCES))))
    if twice:
        report.update(_repeat_stats(predicted[:twice], measured[:twice], again))
    if out is not None:
        _write(Path(out), report, genotypes, raw, predicted, measured, flops)
    return report


def _validation_samples(table: LatencyTable, space: Any, samples: int, seed: int) -> list[Any]:
    """``samples`` distinct sampled genotypes (seed ``seed``), none of them one of the table's fit networks."""
    fitted = {space.from_dict(d).arch_id for d in table.fit.get("genotypes", [])}  # never validation samples
    genotypes = [g for g in sample_unique(space, samples + len(fitted), seed) if g.arch_id not in fitted][:samples]
    if not genotypes:
        raise SpecError(f"latency table ({table.describe()}): every network of the space is one of its "
                        f"{len(fitted)} fit networks; nothing is left to validate on")
    return genotypes


def _calibration_stats(raw: list[float], measured: list[float], ratios: list[float],
                       references: int) -> dict[str, Any]:
    """The uncalibrated table's figures, the groups' speed ratios and their median (``drift``)."""
    return {"uncalibrated": {k: v for k, v in accuracy_stats(raw, measured).items() if k != "samples"},
            "calibration": {"references": references, "group_ratios": list(dict.fromkeys(ratios))},
            "drift": statistics.median(ratios)}


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
