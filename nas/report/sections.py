"""The sections of ``nas report``: each takes the opened run and returns (id, heading, body HTML)."""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import logging
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from nas.report import plots
from nas.config import SpecError
from nas.report.view import COST_METRICS, RunView, chain, curve, failure_groups, lineage, points, workers_and_devices
from nas.report.html import dl, esc, figure, paragraph, table
from nas.search.summary import TIE_METRIC, _fmt as fmt
from nas.ledger.store import RunDir

log = logging.getLogger(__name__)

Section = tuple[str, str, str]
RUN_FILES = {"spec.toml", "study.journal", "search.log", "summary.json", "driver.json"}
CSV_ROWS = 25  # rows of a space's CSV output shown


# ----- the run --------------------------------------------------------------------------------------
def run_section(run: RunView, summary: dict[str, Any]) -> Section:
    """Spec, space, controller, budget used, wall time, outcome, versions, devices and workers."""
    spec = run.spec
    workers, devices = workers_and_devices(run)
    controller = ", ".join(f"{k}={v}" for k, v in spec.controller.items() if k != "name")
    elapsed = run.study.user_attrs.get("nas:elapsed_s")
    items = [
        ("outcome", outcome(run, summary)),
        ("description", esc(spec.run.get("description") or "-")),
        ("space", esc(f"{spec.space['name']} (preset {spec.space.get('preset', '-')})")),
        ("controller", esc(f"{spec.controller['name']}" + (f" ({controller})" if controller else ""))),
        ("evaluator", esc(f"{spec.evaluator['name']} " + ", ".join(
            f"{k}={v}" for k, v in spec.evaluator.items()
            if k not in ("name", "budget") and v not in ("", 0, [], {})))),
        ("per-trial budget", esc(", ".join(f"{k}={v}" for k, v in spec.trial_budget.items() if v) or "-")),
        ("objectives", esc(", ".join(f"{o['metric']} ({o['direction']})" for o in spec.objectives))),
        ("budget used", esc(f"{summary['evaluated']} of {spec.budget} unique architectures")),
        ("trials", esc(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["states"].items() if v) or "none yet")),
        ("wall time", esc(_duration(elapsed) if elapsed is not None else "-")),
        ("workers", esc(", ".join(f"{w} ({n})" for w, n in workers.most_common()) or "-")),
        ("devices", esc(", ".join(f"{d} ({n})" for d, n in devices.most_common()) or "-")),
        ("storage", f"<code>{esc(spec.run['storage'] or 'study.journal in the run folder')}</code>"),
        ("versions", esc(run_versions(run.study.user_attrs.get("nas:versions", [])) + "; " + versions())),
    ]
    spec_text = (run.path / "spec.toml").read_text()
    body = dl(items, raw=True) + f"<details><summary>spec.toml</summary><pre>{esc(spec_text)}</pre></details>"
    return "run", "The run", body


def outcome(run: RunView, summary: dict[str, Any]) -> str:
    """A badge: running (a live driver other than this process holds the folder: the driver itself
    writes the report as it finishes), finished, or stopped before its budget."""
    holder = RunDir(run.path).lock_holder()
    try:
        RunDir(run.path).check_not_running()
        alive = False
    except SpecError:  # a live driver on this host
        alive = True
    if holder and holder.get("pid") == os.getpid():
        alive = False
    elif holder and summary["states"]["running"]:
        alive = True
    if alive:
        return f'<span class="badge run">running</span> driver pid {esc(holder.get("pid") if holder else "?")}'
    if summary["evaluated"] >= run.spec.budget:
        return '<span class="badge ok">finished</span> the budget is used'
    return (f'<span class="badge stop">stopped</span> before its budget (a time limit, failures, a used-up '
            f"space or an interruption); <code>nas resume {esc(run.path)}</code> continues it")


def run_versions(recorded: list[dict[str, str]]) -> str:
    """The versions the run's drivers recorded (one entry per distinct set; older runs have none)."""
    if not recorded:
        return "run: not recorded"
    return "; ".join("run: " + ", ".join(f"{k} {v}" for k, v in entry.items()) for entry in recorded)


def versions() -> str:
    """Versions of what made this report."""
    names = []
    for package in ("nasforge", "optuna", "matplotlib"):
        try:
            names.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            names.append(f"{package} ?")
    return ", ".join(names) + f", Python {platform.python_version()} (report)"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# ----- progress and objectives ----------------------------------------------------------------------
def progress_section(run: RunView) -> Section:
    """Best so far against unique evaluations and wall time, every evaluated trial a point."""
    pts = points(run)
    if not pts:
        return "progress", "Progress", paragraph("No trial has been evaluated yet.")
    objective = run.spec.objectives[0]
    fig = plots.progress(pts, objective["metric"], objective["direction"] == "maximize")
    counts = plots.trial_points(fig)
    caption = (f"{len(pts)} evaluated trials (each a unique architecture); failed ones (x) sit on the bottom "
               "edge, pruned ones (hollow) at their last reported value")
    return "progress", "Progress", figure(plots.png(fig), "progress", caption, counts)


def objectives_section(run: RunView) -> Section:
    """One objective: it against params/FLOPs/latency; several: the Pareto front."""
    names = [o["metric"] for o in run.spec.objectives]
    if len(names) > 1:
        done = [t for t in run.evaluated if t.state == TrialState.COMPLETE and t.values]
        if not done:
            return "objectives", "Objectives", paragraph("No completed trial yet.")
        front = {t.number for t in run.study.best_trials}
        fig = plots.pareto([t.values for t in done], [t.number in front for t in done], names)
        caption = f"{len(done)} completed trials; the Pareto front in red, dominated trials faded"
        return "objectives", "Objectives (Pareto front)", figure(plots.png(fig), "Pareto front", caption,
                                                                plots.trial_points(fig))
    metrics = {t.number: t.user_attrs.get("metrics", {}) for t in run.evaluated}
    present = {m for ms in metrics.values() for m, v in ms.items() if isinstance(v, (int, float)) and v > 0}
    costs = [c for c in COST_METRICS if c in present and c != names[0]]
    costs += sorted(m for m in present if "latency" in m and m not in costs and m != names[0])
    pts = [(p, metrics[p.number]) for p in points(run) if p.value is not None]
    if not pts:
        return "objectives", "Objectives", paragraph("No trial with a value yet.")
    if not costs:
        return "objectives", "Objectives", paragraph("No costs (params, FLOPs, latency) recorded.")
    fig = plots.objectives_single(pts, names[0], costs)
    return "objectives", "Objectives", figure(plots.png(fig), "objective against cost",
                                              f"{names[0]} against {', '.join(costs)}", plots.trial_points(fig))


# ----- top architectures and learning curves ---------------------------------------------------------
def top_section(run: RunView, summary: dict[str, Any]) -> Section:
    """The top K table and a picture of each top architecture."""
    records = summary.get("top") or summary.get("pareto") or []
    if not records:
        return "top", "Top architectures", paragraph("No completed trial yet.")
    body = _top_table(run, records)
    if summary.get("top") and any(TIE_METRIC in r["metrics"] for r in records):
        body += paragraph(f"Equal {run.spec.objectives[0]['metric']} values are ranked by the lower "
                          f"validation {TIE_METRIC}.")
    pictures = _pictures(run, records)
    if pictures:
        body += f'<div class="arch">{"".join(pictures)}</div>'
    title = "Top architectures" if summary.get("top") else "Pareto set"
    return "top", title, body


def _top_table(run: RunView, records: list[dict[str, Any]]) -> str:
    """Rank, trial, arch id and every metric; the architecture's text on a full-width row below."""
    names = [o["metric"] for o in run.spec.objectives]
    others = [m for m in (TIE_METRIC, "params", "flops")
              if any(m in r["metrics"] for r in records) and m not in names]
    others += sorted({m for r in records for m in r["metrics"]} - set(names) - set(others))
    header = ["rank", "trial", "arch id", *names, *others]
    lines = []
    for rank, r in enumerate(records, start=1):
        cells = [str(rank), f"#{r['number']}", r["arch_id"] or "-",
                 *[fmt(r["metrics"].get(n, r["values"].get(n))) for n in names + others]]
        lines.append("<tr>" + "".join(f'<td class="{"num" if i >= 3 or i == 0 else ""}">{esc(c)}</td>'
                                      for i, c in enumerate(cells)) + "</tr>")
        lines.append(f'<tr class="label"><td></td><td colspan="{len(header) - 1}" class="wrap mono">'
                     f"{esc(r['label'])}</td></tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f'<table class="top"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table>'


def _pictures(run: RunView, records: list[dict[str, Any]]) -> list[str]:
    """Each record's architecture drawn by the space (none if the space cannot draw)."""
    out = []
    saved = _saved_best(run.path / "best")
    with tempfile.TemporaryDirectory(prefix="nas-report-") as folder:
        for rank, record in enumerate(records, start=1):
            path = Path(folder) / f"{rank}.png"
            try:
                if saved and saved[0] == record["genotype"]:
                    path.write_bytes(saved[1])
                else:
                    run.space.draw(run.space.from_dict(record["genotype"]), str(path))
            except NotImplementedError:
                return []
            except Exception:  # a picture is a nicety; the table still holds the architecture
                log.warning("could not draw trial %d", record["number"], exc_info=True)
                continue
            out.append(figure(plots.compact(path.read_bytes()), f"architecture of trial {record['number']}",
                              f"rank {rank}: trial #{record['number']}, arch {record['arch_id']}"))
    return out


def _saved_best(folder: Path) -> tuple[Any, bytes] | None:
    """The genotype in ``best/`` and its picture, when the picture was written after the genotype (the
    search writes them in that order) and decodes; None otherwise. Saves drawing the best again."""
    try:
        picture = folder / "architecture.png"
        if picture.stat().st_mtime_ns < (folder / "genotype.json").stat().st_mtime_ns:
            return None
        genotype, data = json.loads((folder / "genotype.json").read_text()), picture.read_bytes()
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:  # absent, half written or unreadable: draw it instead
        return None
    return genotype, data


def curves_section(run: RunView, summary: dict[str, Any]) -> Section:
    """Learning curves of the top trials; pruned trials in grey."""
    records = summary.get("top") or summary.get("pareto") or []
    by_number = {t.number: t for t in run.trials}
    top = [(f"#{r['number']}", curve(by_number[r["number"]])) for r in records]
    top = [(label, c) for label, c in top if c]
    pruned = [c for c in (curve(t) for t in run.evaluated if t.state == TrialState.PRUNED) if c]
    if not top and not pruned:
        return "curves", "Learning curves", paragraph("No learning curves recorded (e.g. a tabular evaluator).")
    fig = plots.curves(top, pruned, run.spec.objectives[0]["metric"])
    return "curves", "Learning curves", figure(plots.png(fig), "learning curves",
                                               f"top {len(top)} trials; {len(pruned)} pruned trials in grey")


# ----- lineage, failures, the space's outputs -------------------------------------------------------
def lineage_section(run: RunView, summary: dict[str, Any]) -> Section:
    """The best's ancestors through recorded parents, as a plot and as the first-parent chain."""
    best = summary.get("best") or (summary.get("pareto") or [None])[0]
    if not best:
        return "lineage", "Lineage of the best", paragraph("No best trial yet.")
    nodes = lineage(run, best["number"])
    if len(nodes) == 1:
        return "lineage", "Lineage of the best", paragraph(
            f"Trial #{best['number']} has no recorded parents: it was sampled, not bred "
            f"(controller {run.spec.controller['name']}).")
    line = chain(nodes)
    metric = run.spec.objectives[0]["metric"]
    rows = [[n.generation, f"#{n.number}" if n.number is not None else "-", n.arch_id, fmt(n.value),
             _origin(n)] for n in line]
    end = line[-1]
    note = (f"{len(line) - 1} generations back to trial #{end.number}, sampled at random"
            if end.number is not None and not end.parents else "the chain leaves the ledger")
    fig = plots.lineage(nodes, metric)
    body = (figure(plots.png(fig), "lineage", f"{len(nodes)} ancestors (all parents); {note}")
            + table(["generations back", "trial", "arch id", metric, "made by"], rows, numeric=(0, 3)))
    return "lineage", "Lineage of the best", body


def _origin(node: plots.Node) -> str:
    if node.number is None:
        return "not in the ledger"
    return {0: "random sample", 1: "mutation"}.get(len(node.parents), "crossover")


def failures_section(run: RunView) -> Section:
    """Failed (and infeasible, interrupted) trials grouped by reason."""
    groups = failure_groups(run)
    if not groups:
        return "failures", "Failures", paragraph("No trial failed.")
    rows = [[g["count"], g["kind"], g["reason"], ", ".join(f"#{n}" for n in g["trials"][:12])
             + (" ..." if len(g["trials"]) > 12 else ""), g["example"]] for g in groups]
    return "failures", "Failures", table(["trials", "kind", "reason", "which", "example"], rows, numeric=(0,),
                                         wrap=(2, 3, 4))


def outputs_section(run: RunView) -> Section:
    """What the space already wrote into the run folder: pictures, CSV tables, small JSON files."""
    parts = []
    for path in sorted(p for p in run.path.iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.name in RUN_FILES or path.suffix in (".html", ".lock"):
            continue
        try:
            parts.append(_output(path))
        except (OSError, ValueError, UnicodeDecodeError) as err:
            parts.append(paragraph(f"{path.name}: unreadable ({err})"))
    parts = [p for p in parts if p]
    if not parts:
        return "outputs", "Space outputs", paragraph("The space wrote no outputs of its own into the run folder.")
    return "outputs", "Space outputs", "".join(parts)


def _output(path: Path) -> str:
    """One output file as HTML (empty for kinds not shown)."""
    title = f"<h3><code>{esc(path.name)}</code></h3>"
    if path.suffix == ".png":
        return title + figure(plots.compact(path.read_bytes()), path.name)
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(path.read_text())))
        if not rows:
            return ""
        more = paragraph(f"first {CSV_ROWS} of {len(rows) - 1} rows") if len(rows) - 1 > CSV_ROWS else ""
        return title + table(rows[0], rows[1:CSV_ROWS + 1]) + more
    if path.suffix == ".json" and path.stat().st_size < 20_000:
        return title + f"<pre>{esc(json.dumps(json.loads(path.read_text()), indent=2))}</pre>"
    return ""
