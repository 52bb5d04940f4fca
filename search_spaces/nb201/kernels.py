"""The kernels ONNX Runtime's CPU optimizer leaves of an NB201 network (torch-free).

A per-block table prices every edge op and node sum as measured alone, but a graph runtime runs
fewer, different kernels: common-subexpression elimination computes the ReLU (or pool) of a node
once for all the edges that read it, a convolution absorbs the addition that follows it (its
"sum" input) and the ReLU after it when nothing else reads its output, and the blocked (NCHWc)
layout of convolutions and pools needs reorders wherever a tensor meets an operator of the other
layout (an addition with a folded constant, the reductions' ceil-mode pool). What is left is
counted here by walking the network as ONNX Runtime (1.32, CPU) optimizes it (checked against its saved
optimized graphs: ``tests/search_spaces/nb201/test_kernels.py``), per kernel kind and input shape, as
correction terms of graph-runtime tables (``nas.latency.GRAPH`` keys); their costs are fitted on the
table's whole networks.

A cell's edges from a node that no edge from the input reaches compute constants, which the
runtime folds; edges into a node that reaches no output are dropped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

from nas.latency import GRAPH, block_key
from nas.space import Task
from search_spaces.nb201.genotype import EDGES, NB201Genotype

Shape = tuple[int, int, int]
CONST = "const"  # prefix of a folded constant (each edge from a node no path from the cell input reaches)
INPUT = "input"
BLOCKED = ("conv", "pool")  # kernels that run (and leave their output) in the blocked layout


@dataclass
class Kernel:
    """One kernel of the network, before or after fusion."""

    kind: str  # conv, pool, relu, add, pool2 (a reduction's shortcut pool), head
    inputs: list[str]
    shape: Shape  # of the first input
    sum: str | None = None  # a convolution's fused addend
    act: bool = False  # a convolution's fused ReLU


@dataclass
class Graph:
    """The network's kernels, the shapes of their outputs and the common subexpressions seen."""

    kernels: dict[str, Kernel] = field(default_factory=dict)  # by output tensor, in creation order
    shapes: dict[str, Shape] = field(default_factory=dict)
    reuse: dict[tuple[str, ...], str] = field(default_factory=dict)  # (kind, *inputs) -> output: CSE

    def add(self, kind: str, inputs: list[str], out_shape: Shape, shared: bool = False) -> str:
        key = (kind, *inputs)
        if shared and key in self.reuse:
            return self.reuse[key]
        out = f"t{len(self.kernels)}"
        self.kernels[out] = Kernel(kind, inputs, self.shapes.get(inputs[0], out_shape))
        self.shapes[out] = out_shape
        if shared:
            self.reuse[key] = out
        return out

    def users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for out, k in self.kernels.items():
            for t in k.inputs + ([k.sum] if k.sum else []):
                users.setdefault(t, []).append(out)
        return users

    def rename(self, old: str, new: str, users: dict[str, list[str]]) -> None:
        """Every use of tensor ``old`` reads ``new`` instead (``old``'s kernel was fused away)."""
        for out in users.pop(old, []):
            k = self.kernels[out]
            k.inputs = [new if t == old else t for t in k.inputs]
            if k.sum == old:
                k.sum = new
            users.setdefault(new, []).append(out)


def live_edges(genotype: NB201Genotype) -> list[tuple[int, int, str]]:
    """(dst, src, op) of the non-``none`` edges into nodes that reach the cell output."""
    feeding = {3}
    for (dst, src), op in sorted(zip(EDGES, genotype.ops), key=lambda e: -e[0][1]):
        if op != "none" and dst in feeding:
            feeding.add(src)
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
            if t.startswith(CONST):  # a different constant per edge (they do not merge)
                terms.append(f"{CONST}{len(g.kernels)}:{len(terms)}:{dst}")
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


def network(genotype: NB201Genotype, task: Task, channels: int, cells: int) -> Graph | None:
    """The network's kernels before fusion (None: its output is a constant)."""
    g = Graph()
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
            s = g.add("conv", [g.add("pool2", [x], half, shared=True)], half)
            x = g.add("add", [b, s], half)
            c, h, w = half
        for _ in range(cells):
            x = _cell(g, x, edges)
            if x.startswith(CONST):
                return None
    g.add("head", [x], (c, 1, 1))  # its output: the pooled features
    return g


def _blocked(g: Graph) -> Callable[[str], bool]:
    """Whether a tensor is in the blocked layout (conv and pool outputs, sums and ReLUs of blocked
    tensors), as the graph is now."""
    memo = {INPUT: False}

    def blocked(t: str) -> bool:
        if t.startswith(CONST):
            return False
        if t not in memo:
            k = g.kernels[t]
            memo[t] = (k.kind in BLOCKED or (k.kind == "add" and all(blocked(u) for u in k.inputs))
                       or (k.kind == "relu" and blocked(k.inputs[0])))
        return memo[t]

    for t in list(g.kernels):  # all now: fusion changes the graph, not the layouts
        blocked(t)
    return blocked


def fuse(g: Graph) -> None:
    """A convolution absorbs an addition that alone reads it, when the other addend is blocked; then
    a convolution absorbs a ReLU that alone reads it."""
    blocked = _blocked(g)
    users = g.users()
    for out, k in list(g.kernels.items()):
        if k.kind != "add":
            continue
        for a, b in (k.inputs, k.inputs[::-1]):
            p = g.kernels.get(a)
            if (p is not None and p.kind == "conv" and p.sum is None and users.get(a) == [out] and a != b
                    and blocked(b)):
                p.sum = b
                users[b] = [a if u == out else u for u in users[b]]
                del g.kernels[out]
                users.pop(a)
                g.rename(out, a, users)
                break
    for out, k in list(g.kernels.items()):
        if k.kind != "relu":
            continue
        t = k.inputs[0]
        p = g.kernels.get(t)
        if p is not None and p.kind == "conv" and not p.act and users.get(t) == [out]:
            p.act = True
            del g.kernels[out]
            users.pop(t)
            g.rename(out, t, users)


def kernel_counts(g: Graph) -> dict[tuple[str, Shape], int]:
    """Kernels (ReLU, add, pool) and layout reorders of a fused graph, by kind and input shape."""
    blocked = _blocked(g)
    counts: dict[tuple[str, Shape], int] = {}
    reorder_in: set[str] = set()
    reorder_out: set[str] = set()
    for out, k in g.kernels.items():
        ins = k.inputs + ([k.sum] if k.sum else [])
        if k.kind in ("relu", "add", "pool"):
            counts[(k.kind, k.shape)] = counts.get((k.kind, k.shape), 0) + 1
        if k.kind == "head":  # BN, ReLU, global pool: blocked (then reordered out) or plain with its ReLU apart
            if blocked(k.inputs[0]):
                reorder_out.add(out)
            else:
                counts[("relu", k.shape)] = counts.get(("relu", k.shape), 0) + 1
        elif k.kind in BLOCKED:
            reorder_in.update(t for t in ins if t != INPUT and not blocked(t))
        elif k.kind == "pool2" or (k.kind == "add" and not blocked(out)):
            reorder_out.update(t for t in ins if blocked(t))
    for kind, tensors in (("reorder_in", reorder_in), ("reorder_out", reorder_out)):
        for t in tensors:
            key = (kind, g.shapes[t])
            counts[key] = counts.get(key, 0) + 1
    return counts


@functools.lru_cache(maxsize=4096)
def graph_terms(genotype: NB201Genotype, task: Task, channels: int, cells: int) -> tuple[str, ...]:
    """The network's graph-runtime correction terms: one :data:`nas.latency.GRAPH` key per kernel
    left after fusion (``kernel_relu``, ``kernel_add``, ``kernel_pool``) and per layout reorder
    (``reorder_in``, ``reorder_out``), at its input shape."""
    g = network(genotype, task, channels, cells)
    if g is None:
        return ()
    fuse(g)
    keys: list[str] = []
    for (kind, shape), n in kernel_counts(g).items():
        name = kind if kind.startswith("reorder") else f"kernel_{kind}"
        keys += [GRAPH + block_key(name, (), [shape])] * n
    return tuple(keys)
