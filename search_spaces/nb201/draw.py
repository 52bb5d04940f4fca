"""Picture of an NB201 cell: nodes 0..3 left to right, op-labelled edges, `none` edges dashed."""

from __future__ import annotations

from search_spaces.drawing import Edge, draw_graph, new_figure, save, title
from search_spaces.nb201.genotype import EDGES, NB201Genotype


def draw_cell(genotype: NB201Genotype, path: str) -> None:
    """Write a PNG of the cell to ``path``."""
    fig, ax = new_figure(7.5, 3.2)
    positions = {0: (0.0, 0.0), 1: (2.0, 0.9), 2: (4.0, -0.9), 3: (6.0, 0.0)}
    labels = {0: "input", 1: "node 1", 2: "node 2", 3: "output"}
    edges = []
    for (dst, src), op in zip(EDGES, genotype.ops):
        bend = 0.35 if (dst - src) == 3 else 0.0
        edges.append(Edge(src, dst, op, dashed=op == "none", bend=bend))
    colors = {0: "#cfe8cf", 3: "#f6dcc0"}
    draw_graph(ax, positions, edges, labels, colors)
    title(ax, genotype.to_string(), 7.0)
    save(fig, path, tight=False)
