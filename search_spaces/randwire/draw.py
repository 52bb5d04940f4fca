"""Picture of a randomly wired network: one row per stage, its DAG in layers from input to output.

A node's column is its longest-path depth from the stage input (input node at the left, output node
at the right); within a column nodes are ordered by the mean height of their predecessors, which
keeps most edges short. Nodes fed by the stage input (they stride) are tinted.
"""

from __future__ import annotations

from typing import Hashable

from search_spaces.drawing import Edge, draw_graph, new_figure, save, title as put_title
from search_spaces.randwire.dag import Edges, adjacency, depths, sources_and_sinks
from search_spaces.randwire.genotype import RandWireGenotype

_COLORS = {"in": "#cfe8cf", "out": "#f6dcc0", "source": "#e4daf2"}


def layered_positions(n: int, edges: Edges) -> dict[Hashable, tuple[float, float]]:
    """(x, y) of nodes ``0..n-1`` and of ``"in"``/``"out"``: x = depth + 1, y centred per column."""
    depth = depths(n, edges)
    preds = adjacency(n, edges)[0]
    columns: dict[int, list[int]] = {}
    for node in range(n):
        columns.setdefault(depth[node], []).append(node)
    positions: dict[Hashable, tuple[float, float]] = {"in": (0.0, 0.0)}
    for column in sorted(columns):
        members = columns[column]
        if column:  # order by the mean height of the predecessors (barycentre heuristic)
            members.sort(key=lambda v: (sum(positions[p][1] for p in preds[v]) / len(preds[v]), v))
        top = (len(members) - 1) / 2
        for row, node in enumerate(members):
            positions[node] = (float(column + 1), top - row)
    positions["out"] = (float(max(depth, default=0) + 2), 0.0)
    return positions


def _stage_edges(n: int, edges: Edges, positions: dict[Hashable, tuple[float, float]]) -> list[Edge]:
    """The stage's edges plus input -> sources and sinks -> output; edges skipping columns arc."""
    sources, sinks = sources_and_sinks(n, edges)
    inner = []
    for src, dst in edges:
        span = positions[dst][0] - positions[src][0]
        bend = 0.0 if span <= 1 else (0.12 if (src + dst) % 2 else -0.12)  # keep long edges off the rows
        inner.append(Edge(src, dst, bend=bend))
    return [Edge("in", v) for v in sources] + inner + [Edge(v, "out") for v in sinks]


def draw_stages(genotype: RandWireGenotype, path: str, title: str = "") -> None:
    """Write a PNG with one layered DAG per stage to ``path``."""
    layouts = [layered_positions(n, e) for n, e in zip(genotype.nodes, genotype.edges)]
    width = max(6.0, 0.75 * max(max(x for x, _ in p.values()) for p in layouts) + 1.5)
    heights = [max(2.2, 0.5 * (max(y for _, y in p.values()) * 2 + 1)) for p in layouts]
    fig, ax = new_figure(width, sum(heights) + 0.4)
    ax.remove()
    axes = fig.subplots(len(layouts), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for i, (axis, positions) in enumerate(zip(axes, layouts)):
        n, edges = genotype.nodes[i], genotype.edges[i]
        axis.set_axis_off()
        sources = sources_and_sinks(n, edges)[0]
        colors: dict[Hashable, str] = {v: _COLORS["source"] for v in sources}
        colors.update({"in": _COLORS["in"], "out": _COLORS["out"]})
        labels: dict[Hashable, str] = {v: str(v) for v in range(n)}
        labels.update({"in": "in", "out": "out"})
        draw_graph(axis, positions, _stage_edges(n, edges, positions), labels, colors, node_size=0.2, font_size=6.0)
        put_title(axis, f"stage {i + 1}: {genotype.generators[i]}  ({n} nodes, {len(edges)} edges)", 8.0)
    if title:
        fig.suptitle(title, fontsize=9)
    save(fig, path, tight=False)
