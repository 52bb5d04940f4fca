"""The kernels ONNX Runtime runs for an NB201 network (torch-free; see ``search_spaces.graph_kernels``).

The walk follows ``build.py``: the stem, each cell's edges (a ReLU-conv-BN reads the ReLU of its
node, shared by every edge from it; a pool likewise), each node's sum in edge order, the residual
reductions (the shortcut's 2x2 ceil-mode average pool runs plain) and the head (BN, ReLU, global
pool). Edges from a node that no edge from the input reaches compute constants, which the runtime
folds; edges into a node that reaches no output are dropped. Checked against ONNX Runtime's saved
optimized graphs: ``tests/search_spaces/nb201/test_kernels.py``.
"""

from __future__ import annotations

import functools

from nas.latency.rules import RuntimeRules
from nas.space import Task
from search_spaces.graph_kernels import CONST, INPUT, Graph, graph_terms as terms_of
from search_spaces.nb201.genotype import EDGES, NB201Genotype
from search_spaces.nb201.latency import reachable


def live_edges(genotype: NB201Genotype) -> list[tuple[int, int, str]]:
    """(dst, src, op) of the non-``none`` edges into nodes that reach the cell output."""
    feeding = reachable(genotype)[1]
    return [(dst, src, op) for (dst, src), op in zip(EDGES, genotype.ops) if op != "none" and dst in feeding]


def _cell(g: Graph, x: str, edges: list[tuple[int, int, str]]) -> str:
    shape = g.shapes[x]
    nodes = [x]
    for dst in (1, 2, 3):
        terms = []
        for d, src, op in edges:
            if d != dst:
                continue
            t = nodes[src]
            if t.startswith(CONST):
                terms.append(g.constant())
            elif op == "skip_connect":
                terms.append(t)
            elif op == "avg_pool_3x3":
                terms.append(g.add("pool", [t], shape, shared=True))
            else:
                terms.append(g.add("conv", [g.add("relu", [t], shape, shared=True)], shape))
        if all(t.startswith(CONST) for t in terms):
            nodes.append(CONST)
            continue
        total = terms[0]
        for t in terms[1:]:
            total = g.add("add", [total, t], shape, shared=True)  # the same sum twice is computed once
        nodes.append(total)
    return nodes[3]


def network(genotype: NB201Genotype, task: Task, channels: int, cells: int, cse: bool = True) -> Graph | None:
    """The network's kernels before fusion (None: its output is a constant; ``cse``: the runtime
    computes a weightless op of the same input once)."""
    g = Graph(cse=cse)
    c_in, h, w = task.input_shape
    g.shapes[INPUT] = (c_in, h, w)
    c = channels
    x = g.add("conv", [INPUT], (c, h, w))
    edges = live_edges(genotype)
    for stage in range(3):
        if stage:
            half = (2 * c, (h + 1) // 2, (w + 1) // 2)
            a = g.add("conv", [g.add("relu", [x], (c, h, w), shared=True)], half)
            b = g.add("conv", [g.add("relu", [a], half, shared=True)], half)
            s = g.add("conv", [g.add("pool_plain", [x], half, shared=True)], half)
            x = g.add("add", [b, s], half)
            c, h, w = half
        for _ in range(cells):
            x = _cell(g, x, edges)
            if x.startswith(CONST):
                return None
    g.add("gap", [g.add("relu", [g.add("bn", [x], (c, h, w))], (c, h, w), shared=True)], (c, 1, 1))
    return g


@functools.lru_cache(maxsize=4096)
def graph_terms(genotype: NB201Genotype, task: Task, channels: int, cells: int,
                rules: RuntimeRules | None) -> tuple[str, ...]:
    """The network's graph-runtime correction terms under the target's ``rules``
    (``search_spaces.graph_kernels.graph_terms``)."""
    if rules is None:
        return ()
    return terms_of(network(genotype, task, channels, cells, rules.cse), rules)
