"""Run output of the vit space (``VitSpace.report``): which stage types win at the run's budget.

``stage_types.csv`` groups the evaluated candidates twice: by ``family`` (``conv``, ``attn`` or
``mixer`` alone, or ``hybrid``) and by ``pattern`` (the stage types in order, repeats merged, e.g.
``conv>attn``). Each row: how many candidates, how many scored, the highest and median metric
(``accuracy`` where trials measured it, else the first objective, taken as higher-is-better), the
median FLOPs and params, and the best candidate's trial number and arch id; rows are sorted best
first within each grouping.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any, Callable, Sequence

COLUMNS = ("group", "name", "candidates", "scored", "best", "median", "median_flops", "median_params", "best_trial",
           "best_arch_id")


def kinds_of(genotype: dict[str, Any]) -> list[str]:
    """Stage types of a genotype's dict form, in order."""
    return [stage.split("_", 1)[0] for stage in genotype["stages"]]


def pattern(genotype: dict[str, Any]) -> str:
    """Stage types in order with repeats merged: ``conv>attn``."""
    merged: list[str] = []
    for kind in kinds_of(genotype):
        if not merged or merged[-1] != kind:
            merged.append(kind)
    return ">".join(merged)


def family(genotype: dict[str, Any]) -> str:
    """``conv``, ``attn`` or ``mixer`` when every stage has that type, else ``hybrid``."""
    kinds = set(kinds_of(genotype))
    return kinds.pop() if len(kinds) == 1 else "hybrid"


def _metric(records: Sequence[dict[str, Any]]) -> str:
    """``accuracy`` where trials measured it, else the first objective."""
    if any("accuracy" in r["metrics"] for r in records):
        return "accuracy"
    return next((next(iter(r["values"])) for r in records if r["values"]), "accuracy")


def _rows(group: str, key: Callable[[dict[str, Any]], str], records: Sequence[dict[str, Any]],
          metric: str) -> list[dict[str, Any]]:
    """One row per value of ``key`` over ``records`` (which come best first)."""
    buckets: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        buckets.setdefault(key(record["genotype"]), []).append(record)
    rows = []
    for name, members in buckets.items():
        scored = [r for r in members if r["values"] and metric in {**r["metrics"], **r["values"]}]
        values = [{**r["metrics"], **r["values"]}[metric] for r in scored]
        best = scored[values.index(max(values))] if scored else None
        rows.append({"group": group, "name": name, "candidates": len(members), "scored": len(scored),
                     "best": max(values) if values else "", "median": statistics.median(values) if values else "",
                     "median_flops": _median(members, "flops"), "median_params": _median(members, "params"),
                     "best_trial": best["number"] if best else "", "best_arch_id": best["arch_id"] if best else ""})
    return sorted(rows, key=lambda r: -r["best"] if r["best"] != "" else float("inf"))


def _median(records: Sequence[dict[str, Any]], metric: str) -> Any:
    values = [r["metrics"][metric] for r in records if metric in r["metrics"]]
    return statistics.median(values) if values else ""


def write_report(records: list[dict[str, Any]], folder: Path) -> list[str]:
    """Write ``stage_types.csv`` into ``folder`` from ``nas.search.summary.trial_record`` dicts (best first)."""
    records = [r for r in records if r.get("genotype")]
    if not records:
        return []
    metric = _metric(records)
    rows = _rows("family", family, records, metric) + _rows("pattern", pattern, records, metric)
    with open(Path(folder) / "stage_types.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return ["stage_types.csv"]
