"""Run outputs of the scaling space, written at the end of a search (``ScalingSpace.report``).

Coefficients search (Tan & Le's steps 1 and 2):

- ``grid.csv``: one row per evaluated candidate, best first: its (alpha, beta, gamma), the FLOPs
  factor ``alpha * beta^2 * gamma^2``, the metric (``accuracy`` where trials measured it, else the
  first objective), params, FLOPs (at the run's input), state, trial number and arch id;
- ``heatmap.png``: the metric over beta (x) and gamma (y); the constraint leaves alpha implied, so
  each cell names its alpha (where the tolerance admits several, the cell shows the best of them);
  the best candidate's cell is outlined;
- ``scaled.json``: the best coefficients and the baseline scaled by them to ``final_phi``, with
  params and FLOPs at the preset's task, next to the baseline's.

Baseline search: ``stages.csv``, the stage tables of the best genotypes (one row per stage).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Sequence

from search_spaces.scaling.compound import coefficients_of, compound_cost, scale
from search_spaces.scaling.genotype import ScalingGenotype, format_stage

TOP = 5  # genotypes whose stage tables stages.csv lists
COEFFICIENT_DECIMALS = 4  # coefficients recovered from genotypes off the grid


def write_report(space: Any, records: list[dict[str, Any]], folder: Path) -> list[str]:
    """Write the outputs of ``space.search`` into ``folder``; returns the file names written.

    Args:
        space: the ``ScalingSpace`` the run searched.
        records: ``nas.search.summary.trial_record`` dicts of the evaluated trials, best first.
        folder: the run folder.
    """
    writers = {"coefficients": coefficient_outputs, "baseline": baseline_outputs}
    return writers[space.search](space, [r for r in records if r.get("genotype")], folder)


# ----- coefficients search -------------------------------------------------------------------------
def metric_of(records: Sequence[dict[str, Any]]) -> str:
    """The column reported: ``accuracy`` where trials measured it, else the first objective."""
    if any("accuracy" in r["metrics"] for r in records):
        return "accuracy"
    return next((next(iter(r["values"])) for r in records if r["values"]), "accuracy")


def state_of(record: dict[str, Any]) -> str:
    """complete (scored), failed or pruned."""
    if record["values"]:
        return "complete"
    return "failed" if "error" in record["info"] else "pruned"


def grid_rows(space: Any, records: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One row per grid point a record's network stands for (records in order): coefficients, FLOPs
    factor, metric, cost and state. Points that round to the same network share its one evaluation."""
    on_grid: dict[str, list[tuple[float, float, float]]] = {}
    for genotype, coefficients in space.mode.all_grid_points():
        on_grid.setdefault(genotype.arch_id, []).append(coefficients)
    rows = []
    for rank, record in enumerate(records, start=1):
        genotype = space.from_dict(record["genotype"])
        value = record["values"].get(metric, record["metrics"].get(metric))
        for alpha, beta, gamma in on_grid.get(genotype.arch_id) or [_recovered(space, genotype)]:
            rows.append({"rank": rank, "trial": record["number"], "alpha": alpha, "beta": beta, "gamma": gamma,
                         "flops_factor": round(compound_cost(alpha, beta, gamma), 6), metric: value,
                         "params": _int(record["metrics"].get("params")),
                         "flops": _int(record["metrics"].get("flops")),
                         "state": state_of(record), "arch_id": record["arch_id"]})
    return rows


def _recovered(space: Any, genotype: ScalingGenotype) -> tuple[float, float, float]:
    """Coefficients of a genotype off the grid (another controller's mutation), rounded."""
    found = coefficients_of(genotype, space.baseline, space.mode.phi)
    return tuple(round(c, COEFFICIENT_DECIMALS) for c in found)  # type: ignore[return-value]


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _cell(metric: str, value: Any) -> Any:
    """params and flops as integers, other metrics as they are."""
    return _int(value) if metric in ("params", "flops") else value


def coefficient_outputs(space: Any, records: list[dict[str, Any]], folder: Path) -> list[str]:
    """``grid.csv`` always; ``heatmap.png`` and ``scaled.json`` once a candidate has a score."""
    metric = metric_of(records)
    rows = grid_rows(space, records, metric)
    write_csv(folder / "grid.csv", rows, ["rank", "trial", "alpha", "beta", "gamma", "flops_factor", metric,
                                          "params", "flops", "state", "arch_id"])
    written = ["grid.csv"]
    scored = [row for row in rows if row["state"] == "complete" and row[metric] is not None]
    if not scored:
        return written
    best = scored[0]  # records come best first by the first objective
    o = space.options
    title = (f"{metric} over the compound-coefficient grid (searched at φ = {o['phi']:g})\n"
             f"α·β²·γ² = {o['grid_target']:g} ± {o['grid_tolerance']:g}, step {o['grid_step']:g}")
    draw_heatmap(rows, metric, best, title, str(folder / "heatmap.png"))
    summary = scaled_summary(space, best, records[best["rank"] - 1], metric)
    (folder / "scaled.json").write_text(json.dumps(summary, indent=2) + "\n")
    return written + ["heatmap.png", "scaled.json"]


def scaled_summary(space: Any, best: dict[str, Any], record: dict[str, Any], metric: str) -> dict[str, Any]:
    """The best coefficients and the baseline scaled by them to ``final_phi`` (cost at the preset's task)."""
    phi = space.options["final_phi"]
    alpha, beta, gamma = best["alpha"], best["beta"], best["gamma"]
    dropout = space.from_dict(record["genotype"]).dropout
    scaled = scale(space.baseline, alpha, beta, gamma, phi, dropout)
    described = space.describe(scaled)
    baseline = space.cost(space.baseline, space.task_for(space.baseline))
    return {
        "coefficients": {"alpha": alpha, "beta": beta, "gamma": gamma, "flops_factor": best["flops_factor"]},
        "best_trial": {"number": best["trial"], "arch_id": best["arch_id"], metric: best[metric],
                       "values": record["values"], "searched_at_phi": space.options["phi"]},
        "phi": phi,
        "scaled": {"label": space.label(scaled), **described},
        "baseline": {"label": space.label(space.baseline), "params": baseline.params, "flops": baseline.flops,
                     "input_shape": list(space.task_for(space.baseline).input_shape)},
        "flops_vs_baseline": described["flops"] / baseline.flops if baseline.flops else None,
        "expected_flops_vs_baseline": best["flops_factor"] ** phi,
        "preset": space.preset,
    }


def draw_heatmap(rows: Sequence[dict[str, Any]], metric: str, best: dict[str, Any], title: str, path: str) -> None:
    """Write ``metric`` over beta (x) and gamma (y) as a PNG; alpha is printed in each cell."""
    import numpy as np

    from search_spaces.drawing import new_figure, save

    betas, gammas = sorted({r["beta"] for r in rows}), sorted({r["gamma"] for r in rows})
    cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((gammas.index(row["gamma"]), betas.index(row["beta"])), []).append(row)
    grid = np.full((len(gammas), len(betas)), np.nan)
    shown: dict[tuple[int, int], dict[str, Any]] = {}
    for key, members in cells.items():
        scored = [r for r in members if r["state"] == "complete" and r[metric] is not None]
        shown[key] = min(scored or members, key=lambda r: r["rank"])  # the best-ranked of the cell
        if scored:
            grid[key] = shown[key][metric]
    fig, ax = new_figure(max(5.5, 1.05 * len(betas) + 2.6), max(4.2, 0.85 * len(gammas) + 2.0))
    ax.set_axis_on()
    image = _cells(ax, grid, fig, metric)
    for (i, j), row in shown.items():
        _annotate(ax, i, j, row, metric, len(cells[(i, j)]), grid, image)
    i, j = gammas.index(best["gamma"]), betas.index(best["beta"])
    _outline(ax, i, j)
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_yticks(range(len(gammas)), [f"{g:g}" for g in gammas])
    ax.set_xlabel("β (width coefficient)")
    ax.set_ylabel("γ (resolution coefficient)")
    ax.set_title(f"{title}\nα (depth) is implied by the constraint and printed in each cell\n"
                 f"outlined: best, trial #{best['trial']} (α {best['alpha']:g}, β {best['beta']:g}, "
                 f"γ {best['gamma']:g}): {metric} {best[metric]:.4g}", fontsize=8)
    save(fig, path)


def _cells(ax: Any, grid: Any, fig: Any, metric: str) -> Any:
    """The coloured cells (empty: light grey) and the colour bar."""
    import matplotlib
    import numpy as np

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")
    finite = grid[~np.isnan(grid)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = ax.imshow(grid, origin="lower", cmap=cmap, vmin=low, vmax=high if high > low else low + 1e-9,
                      aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03, label=metric)
    return image


def _annotate(ax: Any, i: int, j: int, row: dict[str, Any], metric: str, count: int, grid: Any, image: Any) -> None:
    """Value and alpha in a cell, in a colour readable on the cell's fill."""
    value = grid[i, j]
    if math.isnan(value):
        text, color = f"{row['state']}\nα {row['alpha']:g}", "0.35"
    else:
        red, green, blue, _ = image.cmap(image.norm(value))
        color = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
        text = f"{value:.4g}\nα {row['alpha']:g}"
    if count > 1:
        text += f"\n(best of {count})"
    ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color=color)


def _outline(ax: Any, i: int, j: int) -> None:
    """A red frame around cell (i, j)."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor="#d62728", linewidth=2.5))


# ----- baseline search ---------------------------------------------------------------------------------
STAGE_COLUMNS = ("stage", "repeats", "kernel", "stride", "expansion", "channels", "se", "stage_string")


def baseline_outputs(space: Any, records: list[dict[str, Any]], folder: Path) -> list[str]:
    """``stages.csv``: the stage tables of the ``TOP`` best scored genotypes, best first."""
    scored = [r for r in records if r["values"]][:TOP]
    if not scored:
        return []
    objectives = list(scored[0]["values"])
    extra = [m for m in ("accuracy", "params", "flops") if m not in objectives]
    rows = []
    for rank, record in enumerate(scored, start=1):
        genotype = space.from_dict(record["genotype"])
        head = {"rank": rank, "trial": record["number"], "arch_id": record["arch_id"],
                **{m: record["values"][m] for m in objectives},
                **{m: _cell(m, record["metrics"].get(m)) for m in extra}}
        for index, stage in enumerate(genotype.scaled_table(), start=1):
            rows.append({**head, "stage": index, "repeats": stage.repeats, "kernel": stage.kernel,
                         "stride": stage.stride, "expansion": stage.expansion, "channels": stage.channels,
                         "se": stage.se, "stage_string": format_stage(stage)})
    write_csv(folder / "stages.csv", rows, ["rank", "trial", *objectives, *extra, *STAGE_COLUMNS, "arch_id"])
    return ["stages.csv"]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Rows as CSV with a header; None becomes an empty cell."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
