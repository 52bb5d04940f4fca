"""The figures of ``nas report``, drawn with matplotlib (imported lazily, Agg backend) from plain data.

Each function takes lists of :class:`Point` (or curves, or lineage nodes) and returns a figure; the
report turns it into PNG bytes with :func:`png`. Scatter collections that stand for trials carry the
gid ``"trials"`` so :func:`trial_points` can count what a figure really shows.
"""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

STATE_STYLE = {  # how each kind of trial is marked in every scatter plot
    "complete": dict(marker="o", s=18, facecolors="#1f77b4", edgecolors="none", alpha=0.75),
    "pruned": dict(marker="o", s=18, facecolors="none", edgecolors="0.45", linewidths=0.8),
    "failed": dict(marker="x", s=22, c="#d62728", linewidths=1.0),
}


@dataclass(frozen=True)
class Point:
    """One evaluated trial: its rank among evaluations, seconds since the run began, value and state."""

    number: int
    index: int
    seconds: float
    value: float | None  # None for a failed trial (drawn on the bottom edge)
    state: str  # complete | pruned | failed
    bred: bool = False  # made from parents (mutation, crossover), not sampled at random


@dataclass(frozen=True)
class Node:
    """An ancestor in the best trial's lineage (generation 0 is the best itself)."""

    arch_id: str
    number: int | None  # None when the ledger has no evaluation of this architecture
    value: float | None
    generation: int
    parents: tuple[str, ...]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any, dpi: int = 90) -> bytes:
    """The figure as compact PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return compact(buffer.getvalue())


def compact(data: bytes, max_width: int = 1200, colors: int = 64) -> bytes:
    """A PNG at most ``max_width`` wide (shrunk by an integer factor) with a ``colors``-colour palette:
    3-10x smaller for plots and cell drawings, which use few colours, in ~0.1 s. The input unchanged
    if Pillow cannot read it."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            picture = image.convert("RGB")
    except Exception:  # not a PNG Pillow reads (or no Pillow): embed it as it is
        return data
    factor = -(-picture.width // max_width)
    if factor > 1:
        picture = picture.reduce(factor)
    buffer = io.BytesIO()
    picture.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG")
    return buffer.getvalue() if buffer.tell() < len(data) else data


def trial_points(fig: Any) -> list[int]:
    """Per axes holding trials, how many trial markers it shows."""
    counts = []
    for ax in fig.axes:
        sizes = [len(c.get_offsets()) for c in ax.collections if c.get_gid() == "trials"]
        if sizes:
            counts.append(sum(sizes))
    return counts


def _scatter_states(ax: Any, points: Sequence[Point], x_of: Any, floor: float) -> None:
    """Every point by state (complete ones split into random samples and bred children when the run
    has both); failed ones on the ``floor`` line."""
    bred = any(p.bred for p in points)
    groups = [(state, lambda p, s=state: p.state == s, style) for state, style in STATE_STYLE.items()]
    if bred:
        random_style = {**STATE_STYLE["complete"], "facecolors": "#9ecae1"}
        groups[0:1] = [("random sample", lambda p: p.state == "complete" and not p.bred, random_style),
                       ("bred", lambda p: p.state == "complete" and p.bred, STATE_STYLE["complete"])]
    for label, keep, style in groups:
        chosen = [p for p in points if keep(p)]
        if chosen:
            ys = [floor if p.value is None else p.value for p in chosen]
            ax.scatter([x_of(p) for p in chosen], ys, label=f"{label} ({len(chosen)})", gid="trials", zorder=3,
                       **style)
    sampled = sorted(p.value for p in points if p.state == "complete" and not p.bred and p.value is not None)
    if bred and sampled:
        ax.axhline(statistics.median(sampled), color="0.4", ls="--", lw=1, label="median of the random samples",
                   zorder=2)


def progress(points: Sequence[Point], metric: str, maximize: bool) -> Any:
    """Best-so-far against unique evaluations (left) and wall time (right), every trial a point."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    values = [p.value for p in points if p.value is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    floor = low - 0.05 * ((high - low) or 1.0)
    span = max((p.seconds for p in points), default=0.0)
    unit, scale = ("s", 1.0) if span < 120 else ("min", 60.0) if span < 7200 else ("h", 3600.0)
    for ax, x_of, label in ((axes[0], lambda p: p.index, "unique evaluations"),
                            (axes[1], lambda p: p.seconds / scale, f"wall time ({unit})")):
        ordered = sorted((p for p in points if p.value is not None and p.state == "complete"), key=x_of)
        best, xs, ys = None, [], []
        for p in ordered:
            if best is None or (p.value > best if maximize else p.value < best):
                best = p.value
            xs.append(x_of(p))
            ys.append(best)
        if xs:
            ax.step(xs, ys, where="post", color="#ff7f0e", lw=1.8, label="best so far", zorder=4)
        _scatter_states(ax, points, x_of, floor)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(metric if values else f"{metric} (no value yet)")
    if not values:
        axes[0].set_yticks([])
    axes[0].legend(fontsize=8, loc="lower right" if maximize else "upper right")
    return fig


def objectives_single(points: Sequence[tuple[Point, dict[str, float]]], metric: str,
                      costs: Sequence[str]) -> Any:
    """The objective against each cost metric (params, FLOPs, latency), log scale."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(costs), figsize=(4.2 * len(costs), 3.6), sharey=True, squeeze=False)
    for ax, cost in zip(axes[0], costs):
        for state, style in STATE_STYLE.items():
            chosen = [(p, m) for p, m in points if p.state == state and p.value is not None and m.get(cost)]
            if chosen:
                ax.scatter([m[cost] for _, m in chosen], [p.value for p, _ in chosen], gid="trials", zorder=3,
                           label=f"{state} ({len(chosen)})", **style)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())  # minor labels of a narrow log range overlap
        ax.set_xlabel(cost)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(metric)
    axes[0][0].legend(fontsize=8)
    return fig


def pareto(values: Sequence[Sequence[float]], front: Sequence[bool], names: Sequence[str]) -> Any:
    """Pairs of objectives: the Pareto front in colour and joined, dominated trials faded."""
    plt = pyplot()
    pairs = [(0, j) for j in range(1, len(names))]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        dominated = [v for v, f in zip(values, front) if not f]
        best = sorted((v for v, f in zip(values, front) if f), key=lambda v: v[j])
        if dominated:
            ax.scatter([v[j] for v in dominated], [v[i] for v in dominated], s=14, c="0.6", alpha=0.3,
                       gid="trials", label=f"dominated ({len(dominated)})")
        if best:
            ax.plot([v[j] for v in best], [v[i] for v in best], color="#d62728", lw=1, alpha=0.6)
            ax.scatter([v[j] for v in best], [v[i] for v in best], s=28, c="#d62728", gid="trials", zorder=3,
                       label=f"Pareto front ({len(best)})")
        ax.set_xlabel(names[j])
        ax.set_ylabel(names[i])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def curves(top: Sequence[tuple[str, Sequence[tuple[float, float]]]],
           pruned: Sequence[Sequence[tuple[float, float]]], metric: str) -> Any:
    """Learning curves: the top trials in colour (labelled), pruned trials in grey."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for index, curve in enumerate(pruned):
        ax.plot([s for s, _ in curve], [v for _, v in curve], color="0.65", lw=0.8, alpha=0.7,
                label=f"pruned ({len(pruned)})" if index == 0 else None)
    for label, curve in top:
        ax.plot([s for s, _ in curve], [v for _, v in curve], marker="o", ms=3, lw=1.6, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs: no 1.2, 1.4 ticks on short curves
    ax.set_xlabel("epoch (step of the learning curve)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def lineage(nodes: Sequence[Node], metric: str) -> Any:
    """Ancestors of the best at (generations back, score), arrows from parent to child."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, min(14.0, 1.0 + 0.6 * len(nodes))), 4))
    where = {n.arch_id: (-n.generation, n.value) for n in nodes if n.value is not None}
    for node in nodes:
        for parent in node.parents:
            if parent in where and node.arch_id in where:
                ax.annotate("", xy=where[node.arch_id], xytext=where[parent],
                            arrowprops=dict(arrowstyle="-|>", color="0.4", lw=1.0, shrinkA=5, shrinkB=5))
    for node in nodes:
        if node.arch_id not in where:
            continue
        x, y = where[node.arch_id]
        colour = "#ff7f0e" if node.generation == 0 else ("#2ca02c" if not node.parents else "#1f77b4")
        ax.scatter([x], [y], s=46, c=colour, zorder=3, gid="trials")
        ax.annotate(f"#{node.number}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generations before the best (green: randomly sampled ancestor, orange: the best)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    return fig
