"""Shared matplotlib helpers for pictures of cells and graphs (Agg backend, no screen needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Sequence


TITLE_INCHES = 0.3  # room above an axes for one line of title in a fixed layout


@dataclass(frozen=True)
class Edge:
    """An arrow from ``src`` to ``dst`` with an optional label; ``dashed`` for absent/zero edges."""

    src: Hashable
    dst: Hashable
    label: str = ""
    dashed: bool = False
    bend: float = 0.0  # arc curvature, to keep parallel arrows apart


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A figure and axes with the Agg backend, axes hidden."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_axis_off()
    return fig, ax


def draw_graph(ax: Any, positions: dict[Hashable, tuple[float, float]], edges: Sequence[Edge],
               labels: dict[Hashable, str] | None = None, colors: dict[Hashable, str] | None = None,
               node_size: float = 0.32, font_size: float = 8.0) -> None:
    """Draw labelled boxes at ``positions`` and arrows between them."""
    labels = labels or {}
    colors = colors or {}
    for edge in edges:
        (x0, y0), (x1, y1) = positions[edge.src], positions[edge.dst]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="0.6" if edge.dashed else "0.25",
                                    linestyle="--" if edge.dashed else "-", lw=1.0,
                                    shrinkA=14, shrinkB=14, connectionstyle=f"arc3,rad={edge.bend}"))
        if edge.label:
            # label at the arc's midpoint, offset along the normal by the bend
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            dx, dy = x1 - x0, y1 - y0
            mx, my = mx + edge.bend * dy / 2, my - edge.bend * dx / 2
            ax.text(mx, my, edge.label, fontsize=font_size * 0.85, ha="center", va="center",
                    color="0.5" if edge.dashed else "black",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for node, (x, y) in positions.items():
        ax.text(x, y, labels.get(node, str(node)), ha="center", va="center", fontsize=font_size,
                bbox=dict(boxstyle=f"round,pad={node_size}", fc=colors.get(node, "#dbe9f6"), ec="0.3"))
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)


def title(ax: Any, text: str, font_size: float = 9.0) -> None:
    """A title centred above ``ax``. Cheaper than ``ax.set_title``, which measures every artist of the
    axes to place itself (a third of the time of a cell picture with a few dozen boxes)."""
    ax.text(0.5, 1.0, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=font_size)


def save(fig: Any, path: str, tight: bool = True) -> None:
    """Write the figure as PNG and close it.

    ``tight=False`` is for pictures whose axes are hidden and whose limits already hold every box
    (:func:`draw_graph` sets them): fixed margins with room for one title line above each axes replace
    matplotlib's tight layout, which draws the whole figure once more just to measure it.
    """
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    else:
        _fixed_margins(fig)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _fixed_margins(fig: Any) -> None:
    """Axes stacked in one column filling the figure, one title line above each (and the suptitle's)."""
    width, height = fig.get_size_inches()
    rows = max(1, len(fig.axes))
    top = TITLE_INCHES * (2 if fig.get_suptitle() else 1)
    free = height - 0.1 - top - (rows - 1) * TITLE_INCHES  # inches left for the axes themselves
    fig.subplots_adjust(left=0.1 / width, right=1 - 0.1 / width, bottom=0.1 / height, top=1 - top / height,
                        hspace=TITLE_INCHES / max(free / rows, 0.1))
