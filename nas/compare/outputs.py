"""Files a comparison leaves in its folder: ``comparison.md``/``.csv``/``.json``, ``trials.csv``, the plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

SUMMARY_COLUMNS = ("arm", "family", "space", "n", "mean", "std", "ci95_low", "ci95_high", "flops", "params",
                   "width_min", "width_max", "depth_min", "depth_max", "latency_ms", "diff", "p_value", "p_holm", "p_permutation", "p_permutation_holm",
                   "hedges_g", "significant")
TRIAL_COLUMNS = ("arm", "family", "index", "seed", "space", "arch_id", "width", "depth", "flops", "params",
                 "latency_ms", "state",
                 "test_accuracy", "valid_accuracy", "train_seconds", "label")
PLOT = "comparison.png"


def write_outputs(folder: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Write every output file; returns their names."""
    (folder / "comparison.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(folder / "comparison.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUMMARY_COLUMNS)
        for name, arm in summary["arms"].items():
            writer.writerow([_cell(v) for v in _summary_row(name, arm)])
    with open(folder / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRIAL_COLUMNS)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in TRIAL_COLUMNS])
    plotted = plot(folder / PLOT, summary, rows)
    (folder / "comparison.md").write_text(markdown(summary, plotted))
    return ["comparison.json", "comparison.csv", "trials.csv", "comparison.md"] + ([PLOT] if plotted else [])


def _summary_row(name: str, arm: dict[str, Any]) -> list[Any]:
    ci = arm["ci95"] or [None, None]
    return [name, arm["family"], arm["space"], arm["n"], arm["mean"], arm["std"], ci[0], ci[1], arm["flops"],
            arm["params"], arm["width"][0], arm["width"][1], *arm.get("depth", [None, None]), arm.get("latency_ms"),
            arm["diff"], arm["p_value"], arm["p_holm"],
            arm["p_permutation"], arm["p_permutation_holm"], arm["hedges_g"], arm["significant"]]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: Any) -> str:
    return "–" if value is None else f"{value:.3g}"


def _count(value: float) -> str:
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k"


def _width(arm: dict[str, Any]) -> str:
    return _range(arm["width"])


def _range(pair: list[int]) -> str:
    low, high = pair
    return "–" if not high else str(low) if low == high else f"{low}–{high}"


def markdown(summary: dict[str, Any], plotted: bool) -> str:
    """``comparison.md``: protocol, the table, the verdicts, the plot."""
    protocol = summary["protocol"]
    target = summary["target"]
    amount = (f"{target['value']:.3f} ms (predicted by the latency tables)" if target["metric"] == "latency"
              else f"{target['value']:,.0f}") if target["value"] else ""
    matched = (f"{target['metric']} matched to {amount} ± {target['tolerance']:.0%} by each arm's width (and depth "
               "where no width would do)" if target["value"] else "compute not matched (fixed widths)")
    arms = summary["arms"].values()
    latency = any(a.get("latency_ms") is not None for a in arms)
    depth = any(a.get("depth", [0, 0])[1] for a in arms)
    lines = [f"# Comparison: {summary['name']}", "",
             f"Test accuracy (%) after `nas train` on **{protocol['data']}** ({protocol['epochs']} epochs, "
             f"batch {protocol['batch_size']}, lr {protocol['lr']}, label smoothing {protocol['label_smoothing']}); "
             f"{summary['seeds']} seeds per arm; {matched}. Reference arm: **{summary['reference']}**; tests: "
             f"Welch's t-test and a permutation test against it, Holm-corrected over {len(summary['arms']) - 1} "
             f"comparisons; 95% intervals are percentile bootstraps of the mean.", "",
             "| arm | family | n | mean | std | 95% CI | FLOPs | params | " + ("latency ms | " if latency else "")
             + "width | " + ("depth | " if depth else "") + "Δ vs ref | p (Welch) | p (Holm) | p (perm.) | Hedges' g | "
             "significant |",
             "|" + " --- |" * (15 + latency + depth)]
    for name, a in summary["arms"].items():
        ci = f"[{_num(a['ci95'][0])}, {_num(a['ci95'][1])}]" if a["ci95"] else "–"
        is_ref = name == summary["reference"]
        lines.append(f"| {name}{' (ref)' if is_ref else ''} | {a['family']} | {a['n']}/{a['planned']} | "
                     f"{_num(a['mean'])} | {_num(a['std'])} | {ci} | {a['flops'] / 1e6:.2f}M | "
                     f"{_count(a['params'])} | " + (f"{_num(a.get('latency_ms'), 3)} | " if latency else "")
                     + f"{_width(a)} | " + (f"{_range(a.get('depth', [0, 0]))} | " if depth else "")
                     + f"{_num(a['diff'])} | {_p(a['p_value'])} | "
                     f"{_p(a['p_holm'])} | {_p(a['p_permutation'])} | {_num(a['hedges_g'])} | "
                     f"{'–' if is_ref else ('yes' if a['significant'] else 'no')} |")
    lines += ["", "## What is significant", ""] + [f"- {s}" for s in summary["statements"]]
    if not summary["complete"]:
        lines += ["", "Some arm x seed pairs have no completed trial yet (see trials.csv); run the same "
                  "command again to finish them."]
    if plotted:
        lines += ["", f"![accuracy against FLOPs]({PLOT})"]
    return "\n".join(lines) + "\n"


def plot(path: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """Accuracy against FLOPs: every seed a point, each arm's mean with its 95% CI; one colour per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(a["family"] for a in summary["arms"].values()))
    colours = {f: plt.get_cmap("tab10")(i % 10) for i, f in enumerate(families)}
    markers = "osD^vP*Xh<>"
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    drawn = False
    on_latency = all(None not in a.get("latency_per_seed", [None]) for a in summary["arms"].values() if a["values"])
    for i, (name, arm) in enumerate(summary["arms"].items()):
        if not arm["values"]:
            continue
        colour, marker = colours[arm["family"]], markers[i % len(markers)]
        xs = arm["latency_per_seed"] if on_latency else [f / 1e6 for f in arm["flops_per_seed"]]
        ax.scatter(xs, arm["values"], color=colour, marker=marker, alpha=0.45, s=22)
        mean_flops = sum(xs) / len(xs)
        low, high = arm["ci95"]
        ax.errorbar([mean_flops], [arm["mean"]], yerr=[[arm["mean"] - low], [high - arm["mean"]]], color=colour,
                    marker=marker, markersize=8, capsize=4, linestyle="none",
                    label=f"{name} ({arm['family']})", markeredgecolor="black")
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("predicted latency (ms)" if on_latency else "FLOPs (multiply-accumulates, millions)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{summary['name']}: per-seed points, mean ± 95% CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
