"""Picture of a genotype's two cells, as in the papers' figures: hidden states on the left, one box
per op, an add node per block, and the concatenation that forms the cell output (dashed inputs)."""

from __future__ import annotations

from typing import Any

from search_spaces.drawing import Edge, draw_graph, new_figure, save, title as put_title
from search_spaces.nasnet.genotype import Block, NASNetGenotype

_COLOURS = {"sep": "#c9dcf2", "dil": "#c9dcf2", "con": "#c9dcf2", "nor": "#c9dcf2", "avg": "#fbe3c2",
            "max": "#fbe3c2", "ski": "#e6e6e6", "non": "#f2f2f2"}


def _depths(blocks: tuple[Block, ...]) -> list[int]:
    """Column of every state: inputs 0, a block one right of its deepest input."""
    depth = [0, 0]
    for block in blocks:
        depth.append(1 + max(depth[src] for src, _ in block))
    return depth


def _layout(blocks: tuple[Block, ...]) -> dict[Any, tuple[float, float]]:
    """Positions of states, op boxes (``("op", b, k)``) and the concat node."""
    depth = _depths(blocks)
    columns: dict[int, list[int]] = {}
    for state, d in enumerate(depth):
        columns.setdefault(d, []).append(state)
    positions: dict[Any, tuple[float, float]] = {}
    for d, states in columns.items():
        gap = 1.3 if d == 0 else 2.4
        for row, state in enumerate(states):
            positions[state] = (4.0 * d, (len(states) - 1) / 2 * gap - gap * row)
    for b in range(len(blocks)):
        x, y = positions[b + 2]
        positions[("op", b, 0)] = (x - 1.9, y + 0.55)
        positions[("op", b, 1)] = (x - 1.9, y - 0.55)
    positions["concat"] = (4.0 * (max(depth) + 1), 0.0)
    return positions


def draw_cell(ax: Any, blocks: tuple[Block, ...], concat: tuple[int, ...], title: str) -> None:
    """Draw one cell on ``ax``."""
    positions = _layout(blocks)
    labels: dict[Any, str] = {0: "h[i-2]", 1: "h[i-1]", "concat": "concat"}
    colours: dict[Any, str] = {0: "#cfe8cf", 1: "#cfe8cf", "concat": "#f6c9a8"}
    edges = []
    for b, block in enumerate(blocks):
        labels[b + 2], colours[b + 2] = "+", "#e8e3f4"
        for k, (src, op) in enumerate(block):
            box = ("op", b, k)
            labels[box], colours[box] = op, _COLOURS.get(op[:3], "#ffffff")
            edges += [Edge(src, box), Edge(box, b + 2)]
    edges += [Edge(state, "concat", dashed=True) for state in concat]
    draw_graph(ax, positions, edges, labels, colours, node_size=0.25, font_size=7.0)
    put_title(ax, title, 9.0)


def draw_cells(genotype: NASNetGenotype, path: str) -> None:
    """Write a PNG with the normal cell above the reduction cell."""
    depth = max(max(_depths(genotype.normal)), max(_depths(genotype.reduce))) + 1
    rows = max(len(genotype.normal), 3)
    fig, _ = new_figure(max(7.0, 2.2 * depth + 2.5), max(6.0, 1.5 * rows + 1.0))
    fig.clf()
    for index, (blocks, concat, title) in enumerate([
            (genotype.normal, genotype.normal_concat, "normal cell"),
            (genotype.reduce, genotype.reduce_concat, "reduction cell (ops reading h[i-2], h[i-1] use stride 2)")]):
        ax = fig.add_subplot(2, 1, index + 1)
        ax.set_axis_off()
        draw_cell(ax, blocks, concat, title)
    save(fig, path, tight=False)
