"""The kernels a graph runtime runs for a network, walked without torch (ONNX Runtime's CPU provider).

A per-block table prices every block as measured alone, but a graph runtime runs fewer, different
kernels: common-subexpression elimination computes a weightless op (ReLU, pool, sum, pad, slice) of
a tensor once for all its readers; a convolution absorbs a sum that alone reads it (when the other
addend is in the blocked layout) and then a ReLU that alone reads it; and convolutions and pools
run in a blocked (NCHWc) layout, with a reorder wherever a tensor meets a kernel of the other
layout. A space walks its network into a :class:`Graph` (its kernels before fusion), and
:func:`graph_terms` lists what is left after fusion, per kernel kind and input shape, as
``nas.block_keys.GRAPH`` terms that the correction of a graph-runtime table prices.

What the runtime fuses, shares and lays out is not assumed here: it is the table's
``nas.latency.rules.RuntimeRules``, detected on the target when the table was built
(``evaluators.runtime_probe``), so a walk on any machine gives the target's kernels. With a blocked
layout of ``block`` channels (ONNX Runtime's CPU provider: 16 on AVX-512, 8 on AVX2), a convolution
with fewer input channels than a block, or a multiple of ``conv_multiple``, writes the blocked
layout (channels padded up to the block) and reads it when it has at least a block of input
channels, else the plain layout (a depthwise one reads and writes it); any other convolution runs
plain; pools and concatenations run blocked only at multiples of the block; a global pool, ReLU,
sum or standalone batch norm keeps the layout of its inputs (a sum is plain if any input is); pads
and slices run plain. Without a blocked layout (int8 QDQ graphs, the CUDA provider) nothing is
reordered. Each space's walk is checked against the installed runtime's own optimized graphs with
the rules detected here (``tests/search_spaces/*/test_kernels.py``), and against stored rules of
other machines (``tests/search_spaces/test_graph_rules.py``).

What it carries: 0.15 of Kendall tau on NASNet's proxy under ONNX Runtime and 0.03 on NB201, on
held-out seeds (BENCHMARKS.md, "Latency tables that travel": the ablation's "+ kernel walk" step).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

from nas.block_keys import GRAPH, block_key
from nas.latency.rules import RuntimeRules

Shape = tuple[int, int, int]
CONST = "const"  # prefix of a folded constant (every one distinct: they do not merge)
INPUT = "input"
COUNTED = ("relu", "add", "pool", "concat", "bn", "pad", "slice", "conv", "dw")  # the kernels counted


@dataclass(slots=True)
class Kernel:
    """One kernel of the network, before or after fusion."""

    kind: str  # conv, dw (depthwise conv), pool, pool_plain, gap, relu, add, concat, bn, pad, slice
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
    constants: int = 0  # folded constants named so far
    cse: bool = True  # the runtime computes a weightless op of the same inputs once (RuntimeRules.cse)

    def add(self, kind: str, inputs: list[str], out_shape: Shape, shared: bool = False, tag: str = "") -> str:
        """Append a kernel reading ``inputs`` (``shared``: weightless, so one of the same kind and
        ``tag`` (its settings) already reading the same inputs is reused); returns its output tensor."""
        shared = shared and self.cse
        if shared:
            key = (kind + tag, *inputs)
            found = self.reuse.get(key)
            if found is not None:
                return found
        out = f"t{len(self.kernels)}"
        self.kernels[out] = Kernel(kind, inputs, self.shapes.get(inputs[0], out_shape))
        self.shapes[out] = out_shape
        if shared:
            self.reuse[key] = out
        return out

    def constant(self) -> str:
        """A new folded constant."""
        self.constants += 1
        return f"{CONST}{self.constants}"

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


def runs_blocked(k: Kernel, rules: RuntimeRules) -> bool:
    """Whether a convolution runs in the blocked layout: fewer input channels than a block (read
    plain), or a multiple of ``conv_multiple``."""
    return bool(rules.block) and (k.shape[0] < rules.block or k.shape[0] % rules.conv_multiple == 0)


def layouts(g: Graph, rules: RuntimeRules) -> Callable[[str], bool]:
    """Whether a tensor is in the blocked layout, as the graph is now (see the module's docstring)."""
    memo: dict[str, bool] = {INPUT: False}
    get = memo.get
    block = rules.block
    if not block:
        return lambda t: False
    for t, k in g.kernels.items():  # creation order: every kernel after those it reads
        kind = k.kind
        if kind in ("conv", "dw"):
            memo[t] = runs_blocked(k, rules)
        elif kind == "pool":
            memo[t] = k.shape[0] % block == 0
        elif kind == "concat":
            memo[t] = all(get(u, False) and g.shapes[u][0] % block == 0 for u in k.inputs)
        elif kind in ("relu", "add", "bn", "gap"):
            memo[t] = all(get(u, False) for u in k.inputs)  # a constant (not in memo) is plain
        else:  # pool_plain, pad, slice
            memo[t] = False
    return lambda t: get(t, False)


def prune(g: Graph) -> None:
    """Drop the kernels whose result never reaches the network's output (its last kernel), as the
    exporter and the runtime do (a cell state no block reads and the cell does not concatenate)."""
    live: set[str] = set()
    stack = [next(reversed(g.kernels))]
    while stack:
        t = stack.pop()
        if t in live or t not in g.kernels:
            continue
        live.add(t)
        k = g.kernels[t]
        stack += k.inputs + ([k.sum] if k.sum else [])
    for t in [t for t in g.kernels if t not in live]:
        del g.kernels[t]


def fuse(g: Graph, rules: RuntimeRules) -> None:
    """A convolution absorbs a sum that alone reads it when the other addend has its layout; then a
    convolution (or a blocked batch norm, which runs as one) absorbs a ReLU that alone reads it
    (each as far as the rules say the runtime does)."""
    blocked = layouts(g, rules)
    users = g.users()
    for out, k in list(g.kernels.items()):
        if k.kind != "add" or not rules.fuse_add:
            continue
        for a, b in (k.inputs, k.inputs[::-1]):
            p = g.kernels.get(a)
            if (p is not None and p.kind in ("conv", "dw") and p.sum is None and users.get(a) == [out] and a != b
                    and blocked(b) == blocked(a)):
                p.sum = b
                users[b] = [a if u == out else u for u in users[b]]
                del g.kernels[out]
                users.pop(a)
                g.rename(out, a, users)
                break
    for out, k in list(g.kernels.items()):
        if k.kind != "relu" or not rules.fuse_relu:
            continue
        t = k.inputs[0]
        p = g.kernels.get(t)
        convolution = p is not None and (p.kind in ("conv", "dw") or (p.kind == "bn" and blocked(t)))
        if convolution and not p.act and users.get(t) == [out]:
            p.act = True
            del g.kernels[out]
            users.pop(t)
            g.rename(out, t, users)


def kernel_counts(g: Graph, rules: RuntimeRules) -> dict[tuple[str, Shape], int]:
    """Kernels and layout reorders of a fused graph, by kind and input shape."""
    blocked = layouts(g, rules)
    block = rules.block
    counts: dict[tuple[str, Shape], int] = {}
    reorder_in: set[str] = set()
    reorder_out: set[str] = set()
    for out, k in g.kernels.items():
        ins = k.inputs + ([k.sum] if k.sum else [])
        kind = "pool" if k.kind == "pool_plain" else k.kind
        if kind in COUNTED and not (kind == "bn" and blocked(out)):  # a blocked batch norm runs as a convolution
            counts[(kind, k.shape)] = counts.get((kind, k.shape), 0) + 1
        if k.kind in ("conv", "dw"):
            plain = not blocked(out) or (k.kind == "conv" and k.shape[0] < block)  # the layout it reads
            for t in k.inputs:
                if t != INPUT and blocked(t) == plain:
                    (reorder_out if plain else reorder_in).add(t)
        elif k.kind == "pool" and blocked(out):
            reorder_in.update(t for t in ins if not blocked(t))
        elif k.kind in ("pool", "pool_plain", "pad", "slice") or (k.kind in ("add", "concat") and not blocked(out)):
            reorder_out.update(t for t in ins if blocked(t))
        elif k.kind == "gap" and blocked(out):  # the classifier reads the pooled features plain
            reorder_out.add(out)
    for kind, tensors in (("reorder_in", reorder_in), ("reorder_out", reorder_out)):
        for t in tensors:
            key = (kind, g.shapes[t])
            counts[key] = counts.get(key, 0) + 1
    return counts


def known_layouts(g: Graph, rules: RuntimeRules) -> bool:
    """Whether every convolution's channel counts are below a block or multiples of
    ``conv_multiple``, the networks the walk was checked on (NASNet's ImageNet presets have 22
    channels: such convolutions run plain and fuse differently there, which the walk does not model
    yet); always without a blocked layout."""
    block, multiple = rules.block, rules.conv_multiple
    if not block:
        return True
    shapes = g.shapes
    for out, k in g.kernels.items():
        if k.kind in ("conv", "dw"):
            c_in, c_out = k.shape[0], shapes[out][0]
            if (c_in >= block and c_in % multiple) or (c_out >= block and c_out % multiple):
                return False
    return True


def walks(rules: RuntimeRules | None) -> bool:
    """Whether the walk models a runtime with ``rules`` (none: no rules were detected, as for
    eager torch; a runtime that keeps batch norms apart from their convolutions is not modelled)."""
    return rules is not None and rules.fuse_bn


def graph_terms(g: Graph | None, rules: RuntimeRules | None) -> tuple[str, ...]:
    """The ``nas.block_keys.GRAPH`` terms of a walked network under the target's ``rules`` (none for
    a constant network, None, rules the walk does not model, :func:`walks`, or layouts they do not
    cover, :func:`known_layouts`): one per kernel left after fusion other than the convolutions
    (``kernel_relu``, ``kernel_add``, ...) and per layout reorder (``reorder_in``, ``reorder_out``),
    at its input shape."""
    if g is None or not walks(rules) or not known_layouts(g, rules):
        return ()
    prune(g)
    fuse(g, rules)
    keys: list[str] = []
    for (kind, shape), n in kernel_counts(g, rules).items():
        keys += [_term(kind, shape)] * n
    return tuple(keys)


@functools.lru_cache(maxsize=65536)
def _term(kind: str, shape: Shape) -> str:
    return GRAPH + block_key(kind if kind.startswith("reorder") else f"kernel_{kind}", (), [shape])
