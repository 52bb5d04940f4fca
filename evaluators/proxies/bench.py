"""``nas bench proxies``: how well zero-cost proxies rank architectures.

The truth is a tabular benchmark's accuracy (``--table``: NAS-Bench-201's CIFAR-10 table, say), with
networks built at the preset's input size, or the trained accuracies of a search run (``--truth
RUN_DIR``, read-only), with networks built as the run built them (its space, options and the input
shape of its evaluator's data). A seeded sample of architectures
is built at initialisation (the same network for every proxy: one ``torch.manual_seed`` per
architecture), each proxy scores it, and the report gives each proxy's Spearman and Kendall rank
correlation with the truth over the networks it scored, the share it failed on, and its seconds
per network. With several proxies, ``vote`` (their rank average) is one more row.

Proxies that read data get one minibatch of the data set named by ``data``, drawn once with the
seed, resized to the networks' input size and repeated to their channel count, labels taken modulo
their class count. For NAS-Bench-201's CIFAR networks that is Fashion-MNIST at 32x32 in 3 channels
by default, which is *not* the papers' setting (CIFAR-10 images): say so next to any figure.
"""

from __future__ import annotations

import logging
import math
import random
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Sequence

import torch

from evaluators.proxies import PROXIES, score, vote
from evaluators.proxies.inputs import proxy_batch, proxy_options
from nas import registry
from nas.config import SpecError
from nas.space import Task

log = logging.getLogger(__name__)


def truth_from_table(space: Any, path: str, metric: str | None, archs: int, seed: int) -> list[tuple[Any, float]]:
    """``archs`` rows of a benchmark table, drawn with ``seed``: (genotype, value of ``metric``)."""
    from evaluators.tabular import Table

    table = Table.load(path)
    column = metric or table.columns[0]
    if column not in table.columns:
        raise SpecError(f"--metric: {column!r} is not a column of {path}; columns: {', '.join(table.columns)}")
    texts = sorted(t for t, row in table.rows.items() if math.isfinite(row[column]))
    chosen = random.Random(seed).sample(texts, min(archs, len(texts)))
    out = []
    for text in chosen:
        try:
            out.append((space.parse(text), table.rows[text][column]))
        except (ValueError, AttributeError) as err:
            raise SpecError(f"{path}:{table.lines.get(text, '?')}: {text!r} is not an architecture of "
                            f"space {space.name!r}: {err}") from None
    return out


def truth_from_run(run: str, metric: str | None, archs: int, seed: int) -> tuple[str, dict[str, Any], Task, list[tuple[Any, float]]]:
    """The run's space (name, options), the task its evaluator built networks for, and up to ``archs``
    of its completed trials drawn with ``seed`` as (genotype, metric); read-only."""
    from nas.export.exporter import open_ledger
    from nas.search.summary import evaluated_trials

    ledger = open_ledger(run)
    spec = ledger.spec
    space = registry.make_space(spec.space["name"], spec.space_options())
    task = registry.lookup("evaluators", spec.evaluator["name"], declaration=True).task_for(
        spec.evaluator_spec().options, space)
    name = metric or spec.objectives[0]["metric"]
    rows = [(t.user_attrs["genotype"], t.user_attrs.get("metrics", {}).get(name))
            for t in evaluated_trials(ledger.study) if "genotype" in t.user_attrs]
    rows = [(g, v) for g, v in rows if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(rows) < 3:
        raise SpecError(f"--truth: {run} has {len(rows)} completed trials with {name!r}; need at least 3")
    chosen = random.Random(seed).sample(rows, min(archs, len(rows)))
    return spec.space["name"], spec.space_options(), task, [(space.from_dict(g), float(v)) for g, v in chosen]


def _score_job(args: tuple) -> list[tuple[int, dict[str, tuple[float | None, str | None, float]]]]:
    """Score the networks at ``indices`` with every proxy, in one process on one thread."""
    space_name, space_options, task, genotypes, indices, proxies, batch, seed = args
    torch.set_num_threads(1)
    space = registry.make_space(space_name, space_options)
    out = []
    for i in indices:
        torch.manual_seed(seed * 1_000_003 + i)  # the same initial weights for every proxy
        net = space.build(space.from_json(genotypes[i]), task)
        row = {}
        for name in proxies:
            options = proxy_options(name, space, space.from_json(genotypes[i]), task)
            result = score(name, net, batch if PROXIES[name].needs_data else None, seed=seed, **options)
            row[name] = (result.value, result.error, result.seconds)
        out.append((i, row))
    return out


def _score_all(work: list[tuple]) -> list[tuple[int, dict[str, tuple[float | None, str | None, float]]]]:
    """Every network's scores, in network order: one chunk of ``work`` per process (in this one if a single)."""
    if len(work) == 1:
        return _score_job(work[0])
    with ProcessPoolExecutor(max_workers=len(work)) as pool:
        return sorted((r for part in pool.map(_score_job, work) for r in part), key=lambda r: r[0])


def correlations(values: Sequence[float | None], truth: Sequence[float]) -> dict[str, Any]:
    """Spearman and Kendall tau (SciPy) over the networks with a value; the share that failed."""
    from scipy import stats

    pairs = [(v, t) for v, t in zip(values, truth) if v is not None]
    failed = 1.0 - len(pairs) / len(truth) if truth else 0.0
    if len(pairs) < 3:
        return {"spearman": None, "kendall": None, "scored": len(pairs), "failed_share": round(failed, 4)}
    a, b = zip(*pairs)
    return {"spearman": round(float(stats.spearmanr(a, b).statistic), 4),
            "kendall": round(float(stats.kendalltau(a, b).statistic), 4),
            "scored": len(pairs), "failed_share": round(failed, 4)}


def run_proxies(space_name: str, preset: str = "", table: str = "", truth_run: str = "", archs: int = 100,
                proxies: Sequence[str] = ("synflow",), metric: str | None = None, data: str = "fashion-mnist",
                data_dir: str = "", batch_size: int = 64, seed: int = 0, jobs: int = 0,
                scores: str = "") -> dict[str, Any]:
    """Rank correlation of each proxy (and of their vote) with the truth over ``archs`` architectures.

    With ``scores`` (a CSV path), every network's scores are written there too, one row per
    architecture (``arch`` in the space's text form, then one column per proxy, empty where it
    failed): a table that ``nas bench controllers --proxy-scores`` reads.
    """
    unknown = [p for p in proxies if p not in PROXIES]
    if unknown:
        raise SpecError(f"--proxies: unknown proxy {unknown[0]!r}; known: {', '.join(PROXIES)}")
    if bool(table) == bool(truth_run):
        raise SpecError("--table/--truth: give exactly one source of true accuracies")
    if truth_run:  # the run's own space, options and input shape (--space and --preset are not used)
        space_name, space_options, task, pairs = truth_from_run(truth_run, metric, archs, seed)
    else:
        space_options = {"preset": preset} if preset else {}
        space = registry.make_space(space_name, space_options, path="--space")
        task = space.default_task()
        pairs = truth_from_table(space, table, metric, archs, seed)
    batch = proxy_batch(task, data, data_dir, batch_size, seed) if any(PROXIES[p].needs_data for p in proxies) else None
    genotypes = [g.to_json() for g, _ in pairs]
    jobs = max(1, min(jobs or 1, len(genotypes)))
    started = time.perf_counter()
    rows = _score_all([(space_name, space_options, task, genotypes, list(range(len(genotypes)))[k::jobs],
                        list(proxies), batch, seed) for k in range(jobs)])
    truth = [t for _, t in pairs]
    if scores:
        write_scores(scores, registry.make_space(space_name, space_options), [g for g, _ in pairs], rows, proxies)
    report = _report(rows, truth, proxies)
    return {"space": space_name, "preset": space_options.get("preset", preset), "input_shape": list(task.input_shape), "archs": len(pairs),
            "source": table or truth_run, "metric": metric or "", "data": data if batch is not None else "",
            "batch_size": batch_size if batch is not None else 0, "seed": seed, "jobs": jobs,
            "wall_seconds": round(time.perf_counter() - started, 1), "proxies": report}


def _report(rows: list[tuple[int, dict]], truth: list[float], proxies: Sequence[str]) -> dict[str, Any]:
    """Each proxy's correlations, seconds per network and first errors; their vote's with several."""
    report: dict[str, Any] = {}
    for name in proxies:
        values = [row[name][0] for _, row in rows]
        errors = sorted({row[name][1] for _, row in rows if row[name][1]})
        report[name] = {**correlations(values, truth),
                        "seconds_per_network": round(sum(row[name][2] for _, row in rows) / len(rows), 4),
                        "errors": errors[:3]}
    if len(proxies) > 1:
        voted = vote({name: [row[name][0] for _, row in rows] for name in proxies})
        report["vote"] = {**correlations(voted, truth),
                          "seconds_per_network": round(sum(report[p]["seconds_per_network"] for p in proxies), 4),
                          "errors": []}
    return report


def write_scores(path: str, space: Any, genotypes: list[Any], rows: list[tuple[int, dict]], proxies: Sequence[str]) -> None:
    """Each network's proxy scores as CSV (``arch`` = the space's label, or the arch id)."""
    import csv

    label = getattr(space, "label", None)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["arch", *proxies])
        for i, row in rows:
            text = label(genotypes[i]) if label else genotypes[i].arch_id
            writer.writerow([text, *("" if row[p][0] is None else repr(float(row[p][0])) for p in proxies)])


def format_proxies(result: dict[str, Any]) -> str:
    """The benchmark as a small text table."""
    lines = [f"{result['archs']} {result['space']}/{result['preset']} architectures vs {result['source']}"
             + (f" (data proxies on one batch of {result['batch_size']} {result['data']} images)" if result["data"] else ""),
             f"{'proxy':<10} {'spearman':>9} {'kendall':>8} {'failed':>7} {'s/network':>10}"]
    for name, row in result["proxies"].items():
        lines.append(f"{name:<10} {_num(row['spearman']):>9} {_num(row['kendall']):>8} "
                     f"{row['failed_share']:>7.1%} {row['seconds_per_network']:>10.3f}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
