"""``nas report`` of a comparison (``nas compare``'s folder), and the comparisons beside a run.

Two ways in, both read-only (nothing but the report file is written):

* ``nas report CMP_DIR`` on a comparison folder (``plan.json`` and ``study.journal``, or
  ``comparison.json``): a page with the comparison (protocol, the table of every arm, the plain
  verdicts, accuracy against compute per seed) and every planned arm x seed trial with its state,
  read from the comparison's study, so a comparison still training shows its progress.
* ``nas report RUN_DIR`` on a search run: when a comparison folder *next to* the run (same parent
  folder, as ``runs/<name>/`` are) has an arm that trains the best of this run (``run = ...``),
  the run's page gets a "Comparisons" section with that comparison's table and plot.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from nas.report.html import dl, esc, figure, page, paragraph, table

log = logging.getLogger(__name__)

Section = tuple[str, str, str]
SUMMARY = "comparison.json"
PLAN = "plan.json"
PLOT = "comparison.png"


def is_comparison(path: str | Path) -> bool:
    """Whether ``path`` is a ``nas compare`` folder (planned, or finished)."""
    folder = Path(path)
    return (folder / SUMMARY).is_file() or ((folder / PLAN).is_file() and (folder / "study.journal").is_file())


def render_comparison(folder: Path) -> str:
    """The whole page of the comparison in ``folder``."""
    import time

    summary = _read_json(folder / SUMMARY)
    plan = _read_json(folder / PLAN) or {}
    name = (summary or {}).get("name") or Path(plan.get("spec", folder.name)).stem
    sections = [comparison_section(folder, summary, plan), trials_section(folder, plan)]
    return page(f"nas report: comparison {name}", f"{folder} · made {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
                sections)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: unreadable ({err})") from None


# ----- the comparison: protocol, table, verdicts, plot ---------------------------------------------
def comparison_section(folder: Path, summary: dict[str, Any] | None, plan: dict[str, Any]) -> Section:
    """Protocol, the table of every arm, what is significant, the plot."""
    if summary is None:
        planned = len(plan.get("trials", []))
        return "comparison", "Comparison", paragraph(
            f"No results yet: {planned} arm x seed trials are planned and the statistics are written when "
            "nas compare finishes (see the trials below for its progress).")
    return "comparison", "Comparison", comparison_body(folder, summary)


def comparison_body(folder: Path, summary: dict[str, Any], heading: str = "") -> str:
    """The protocol, table, verdicts and plot of one comparison, as HTML."""
    protocol, target = summary["protocol"], summary["target"]
    amount = (f"{target['value']:.3f} ms (predicted)" if target["metric"] == "latency" else f"{target['value']:,.0f}"
              ) if target.get("value") else ""
    matched = (f"{target['metric']} matched to {amount} ± {target['tolerance']:.0%} by width (and depth where "
               "no width would do)" if amount else "not matched (fixed widths)")
    done = sum(a["n"] for a in summary["arms"].values())
    planned = sum(a["planned"] for a in summary["arms"].values())
    items = [("reference arm", summary["reference"]), ("compute", matched),
             ("protocol", f"{protocol['data']}, {protocol['epochs']} epochs, batch {protocol['batch_size']}, "
                          f"lr {protocol['lr']}, label smoothing {protocol.get('label_smoothing')}"),
             ("seeds per arm", summary["seeds"]), ("trials", f"{done} of {planned} completed"),
             ("tests", f"Welch's t-test and a permutation test against the reference, Holm-corrected over "
                       f"{len(summary['arms']) - 1} comparisons at alpha = {summary['alpha']:g}; 95% intervals "
                       "are percentile bootstraps of the mean")]
    parts = [heading, dl(items), arms_table(summary)]
    parts.append("<ul>" + "".join(f"<li>{esc(s)}</li>" for s in summary["statements"]) + "</ul>")
    if not summary.get("complete", True):
        parts.append(paragraph("Some arm x seed pairs have no completed trial yet: run the same nas compare "
                               "command again to finish them."))
    png = comparison_png(folder, summary)
    if png:
        parts.append(figure(png, f"comparison {summary['name']}",
                            "test accuracy against compute: every seed a point, each arm's mean ± 95% CI"))
    return "".join(parts)


def arms_table(summary: dict[str, Any]) -> str:
    """One row per arm: n, mean, std, CI, achieved cost and width, tests against the reference."""
    def num(value: Any, digits: int = 2) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    def p(value: Any) -> str:
        return "–" if value is None else f"{value:.3g}"

    latency = any(a.get("latency_ms") is not None for a in summary["arms"].values())
    depth = any(a.get("depth", [0, 0])[1] for a in summary["arms"].values())
    header = ["arm", "family", "n", "mean", "std", "95% CI", "FLOPs", "params"] + (["latency ms"] if latency else [])
    header += ["width"] + (["depth"] if depth else []) + ["Δ vs ref", "p (Welch)", "p (Holm)", "p (perm.)", "Hedges' g", "significant"]
    rows = []
    for name, a in summary["arms"].items():
        ref = name == summary["reference"]
        ci = f"[{num(a['ci95'][0])}, {num(a['ci95'][1])}]" if a.get("ci95") else "–"
        width = _range(a["width"])
        row = [name + (" (ref)" if ref else ""), a["family"], f"{a['n']}/{a['planned']}", num(a["mean"]),
               num(a["std"]), ci, f"{a['flops'] / 1e6:.2f}M", f"{a['params'] / 1e6:.3g}M"]
        row += [num(a.get("latency_ms"), 3)] if latency else []
        row += [width] + ([_range(a.get("depth", [0, 0]))] if depth else []) + [num(a["diff"]), p(a["p_value"]), p(a["p_holm"]), p(a.get("p_permutation")),
                num(a["hedges_g"]), "–" if ref else ("yes" if a["significant"] else "no")]
        rows.append(row)
    numeric = tuple(range(2, len(header) - 1))
    return table(header, rows, numeric=numeric)


def _range(pair: list[int]) -> str:
    low, high = pair
    return "–" if not high else str(low) if low == high else f"{low}–{high}"


def comparison_png(folder: Path, summary: dict[str, Any]) -> bytes | None:
    """The comparison's plot: its ``comparison.png``, else drawn from ``comparison.json`` (into a
    temporary folder: the comparison folder is not written)."""
    from nas.report import plots as report_plots

    path = folder / PLOT
    if path.is_file():
        return report_plots.compact(path.read_bytes())
    from nas.compare.outputs import plot

    with tempfile.TemporaryDirectory(prefix="nas-report-") as scratch:
        drawn = Path(scratch) / PLOT
        return report_plots.compact(drawn.read_bytes()) if plot(drawn, summary, []) else None


# ----- every planned arm x seed and its trial ------------------------------------------------------
def trials_section(folder: Path, plan: dict[str, Any]) -> Section:
    """Every planned arm x seed with the state of its latest trial in the study (read-only)."""
    planned = plan.get("trials", [])
    if not planned:
        return "trials", "Trials", paragraph("No plan.json: the trials of this comparison are unknown.")
    latest = _latest_trials(folder)
    rows = []
    for p in planned:
        trial = latest.get(p["key"])
        state = trial.state.name.lower() if trial else "not started"
        metrics = trial.user_attrs.get("metrics", {}) if trial else {}
        info = trial.user_attrs.get("info", {}) if trial else {}
        accuracy = metrics.get("test_accuracy")
        seconds = metrics.get("train_seconds")
        rows.append([p["arm"], p["index"], p["seed"], p["width"], f"{p['flops'] / 1e6:.2f}M", p["arch_id"][:12],
                     state, "–" if accuracy is None else f"{accuracy:.2f}",
                     "–" if seconds is None else f"{seconds:.0f}", str(info.get("error", ""))[:300]])
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[6]] = counts.get(row[6], 0) + 1
    caption = paragraph(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "trials", "Trials (arm x seed)", caption + table(
        ["arm", "seed #", "seed", "width", "FLOPs", "arch id", "state", "test accuracy", "train s", "error"],
        rows, numeric=(1, 2, 3, 4, 7, 8), wrap=(9,))


def _latest_trials(folder: Path) -> dict[str, Any]:
    """The latest trial of each planned key in the comparison's study, opened read-only."""
    journal = folder / "study.journal"
    if not journal.is_file():
        return {}
    import optuna

    from nas.ledger.store import open_storage_readonly

    storage = open_storage_readonly(str(journal))
    names = [s.study_name for s in storage.get_all_studies()]
    if not names:
        return {}
    study = optuna.load_study(study_name=names[0], storage=storage)
    latest: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        key = trial.user_attrs.get("key")
        old = latest.get(key)
        if old is None or old.state.name != "COMPLETE":  # a completed trial stands; else the newest
            latest[key] = trial
    return latest


# ----- comparisons beside a run ---------------------------------------------------------------------
def comparisons_of(run_path: Path) -> list[tuple[Path, dict[str, Any], list[str]]]:
    """Comparison folders next to ``run_path`` whose arms train the best of that run:
    (folder, comparison.json data, the arms' names)."""
    found = []
    run_path = run_path.resolve()
    try:
        siblings = sorted(p for p in run_path.parent.iterdir() if p.is_dir() and p != run_path)
    except OSError:
        return []
    for folder in siblings:
        try:
            summary = _read_json(folder / SUMMARY)
        except ValueError:
            continue
        if not summary or not isinstance(summary.get("arms"), dict):
            continue
        arms = [n for n, a in summary["arms"].items()
                if a.get("kind") == "run" and a.get("source") and Path(a["source"]).resolve() == run_path]
        if arms:
            found.append((folder, summary, arms))
    return found


def comparisons_section(run_path: Path) -> Section | None:
    """The run page's "Comparisons" section, or None when no comparison beside the run uses it."""
    found = comparisons_of(run_path)
    if not found:
        return None
    parts = []
    for folder, summary, arms in found:
        heading = (f"<h3>{esc(summary['name'])} <span class=\"muted\">({esc(folder)}; this run is arm "
                   f"{esc(', '.join(arms))}; full page: <code>nas report {esc(folder)}</code>)</span></h3>")
        parts.append(comparison_body(folder, summary, heading))
    return "comparisons", "Comparisons", "".join(parts)
