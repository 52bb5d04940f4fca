"""The report's one-shot section: the architecture weights per edge over epochs (a heat map), the
derived genotype of every epoch, and how inherited-weight accuracy ranks against standalone training."""

from __future__ import annotations

from typing import Any

from nas.latency.table import kendall_tau
from nas.oneshot import epochs_of, retrained_of
from nas.report import plots
from nas.report.html import figure, paragraph, table
from nas.report.view import RunView
from nas.search.summary import _fmt as fmt

Section = tuple[str, str, str]
HEAT_ROWS = 120  # edge-op rows drawn at most (a NASNet supernet has a few hundred)


def oneshot_section(run: RunView) -> Section | None:
    """The section, or None for a run without one-shot records."""
    records = epochs_of(run.study.user_attrs)
    retrained = retrained_of(run.study.user_attrs)
    if not records and not retrained:
        return None
    parts = []
    if records and "probabilities" in records[-1]:
        parts.append(_heat_map(run, records))
        rows = [[r["epoch"], fmt(r["valid_accuracy"]), fmt(r["valid_loss"]), r["genotype_label"],
                 ", ".join(r["collapsed"]) or "-", fmt(r.get("expected_latency_ms")),
                 fmt(r.get("derived_latency_ms"))] for r in records]
        parts.append(table(["epoch", "valid accuracy (mixture)", "valid loss", "derived genotype",
                            "collapsed before the guard", "E[latency] ms (mixture)", "derived cell's ms"], rows,
                           numeric=(0, 1, 2, 5, 6),
                           wrap=(3,)))
    elif records:
        rows = [[r["epoch"], fmt(r["train_loss"]), fmt(r["train_accuracy"]), fmt(r["seconds"])] for r in records]
        parts.append(paragraph(f"Supernet trained {len(records)} epochs with {records[-1]['sampling']} path sampling."))
        parts.append(table(["epoch", "train loss", "train accuracy", "seconds"], rows, numeric=(0, 1, 2, 3)))
    if retrained:
        parts.append(_agreement(run, retrained))
    return "oneshot", "One-shot search", "".join(parts)


def _heat_map(run: RunView, records: list[dict[str, Any]]) -> str:
    """Rows edge/op, columns epochs, colour the probability."""
    edges = run.space.oneshot_edges()
    labels = [f"{name} {op}" for name, ops in edges for op in ops][:HEAT_ROWS]
    grid = [[p for row in r["probabilities"] for p in row][:HEAT_ROWS] for r in records]  # (epochs, rows)
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(min(2 + 0.5 * len(records), 14), 1 + 0.18 * len(labels)))
    image = ax.imshow(list(map(list, zip(*grid))), aspect="auto", cmap="viridis",
                      interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_xticks(range(len(records)), [str(r["epoch"]) for r in records], fontsize=7)
    ax.set_xlabel("epoch")
    fig.colorbar(image, ax=ax, label="probability")
    return figure(plots.png(fig), "architecture weights", "architecture probabilities per edge and op over epochs")


def _agreement(run: RunView, retrained: dict[int, dict[str, Any]]) -> str:
    """Inherited-weight and standalone accuracy of the retrained candidates, and their Kendall tau."""
    metric = run.spec.objectives[0]["metric"]
    by_number = {t.number: t for t in run.trials}
    rows, inherited, standalone = [], [], []
    for number, metrics in sorted(retrained.items()):
        trial = by_number.get(number)
        value = trial.values[0] if trial is not None and trial.values else None
        rows.append([f"#{number}", fmt(value), fmt(metrics.get(metric)), metrics.get("error", "")])
        if value is not None and metric in metrics:
            inherited.append(value)
            standalone.append(metrics[metric])
    tau = f"Kendall tau {kendall_tau(inherited, standalone):.3f} over {len(inherited)}" if len(inherited) >= 3 else (
        "too few retrained candidates for a rank correlation")
    return (paragraph(f"The best {len(retrained)} candidates trained standalone; {tau}.")
            + table(["trial", f"{metric} (inherited weights)", f"{metric} (standalone)", "error"], rows,
                    numeric=(1, 2)))
