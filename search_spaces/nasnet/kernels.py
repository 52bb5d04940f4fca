"""The kernels ONNX Runtime runs for a NASNet-cell network (torch-free; see ``search_spaces.graph_kernels``).

The walk follows the plan ``build.py`` builds from (``macro.py``) and the ops of
``search_spaces/ops.py``: every ReLU-led op reads the ReLU of its state, shared by every op that
reads it; a separable convolution is ReLU, depthwise, pointwise, twice for ``sep_conv``; a
factorized 1xK-Kx1 convolution goes through its bottleneck; a factorized reduction pads and slices
one path; batch norms after a convolution are folded into it, those after a concatenation are not.
Checked against ONNX Runtime's saved optimized graphs: ``tests/search_spaces/nasnet/test_kernels.py``.
"""

from __future__ import annotations

import functools
from typing import Any

from nas.latency.rules import RuntimeRules
from nas.space import Task
from search_spaces.graph_kernels import INPUT, Graph, Shape, graph_terms as terms_of
from search_spaces.nasnet.genotype import NASNetGenotype
from search_spaces.nasnet.macro import Layer, adapt_pp, cell_kinds, cells_of, concat_adapters, stems
from search_spaces.op_costs import bottleneck_width


def _strided(shape: Shape, c: int, stride_h: int, stride_w: int) -> Shape:
    return (c, (shape[1] + stride_h - 1) // stride_h, (shape[2] + stride_w - 1) // stride_w)


def _relu(g: Graph, x: str) -> str:
    return g.add("relu", [x], g.shapes[x], shared=True)


def _conv(g: Graph, x: str, c_out: int, stride_h: int = 1, stride_w: int = 1, depthwise: bool = False) -> str:
    return g.add("dw" if depthwise else "conv", [x], _strided(g.shapes[x], c_out, stride_h, stride_w))


def _factorized_reduce(g: Graph, x: str, c_out: int) -> str:
    r = _relu(g, x)
    shifted = g.add("slice", [g.add("slice", [g.add("pad", [r], g.shapes[r], shared=True)], g.shapes[r], shared=True)],
                    g.shapes[r], shared=True, tag="w")
    a, b = _conv(g, r, c_out // 2, 2, 2), _conv(g, shifted, c_out - c_out // 2, 2, 2)
    cat = g.add("concat", [a, b], _strided(g.shapes[r], c_out, 2, 2))
    return g.add("bn", [cat], g.shapes[cat])


def _layer(g: Graph, layer: Layer, x: str) -> str:
    """The kernels of one plan instruction reading ``x``."""
    if layer.kind == "rcb":
        return _conv(g, _relu(g, x), layer.c_out)
    if layer.kind == "fr":
        return _factorized_reduce(g, x, layer.c_out)
    if layer.kind == "conv":
        return _conv(g, x, layer.c_out, layer.stride, layer.stride)
    if layer.kind == "relu":
        return _relu(g, x)
    if layer.kind == "bn":
        return x  # folded into the convolution before it
    return _op(g, layer.name, x, layer.c_out, layer.stride)


def _op(g: Graph, name: str, x: str, c_out: int, stride: int) -> str:
    c_in = g.shapes[x][0]
    if name == "skip_connect":
        if stride == 1 and c_in == c_out:
            return x
        return _conv(g, _relu(g, x), c_out) if stride == 1 else _factorized_reduce(g, x, c_out)
    if "pool" in name:
        out = g.add("pool", [x], _strided(g.shapes[x], c_in, stride, stride), shared=True, tag=f"{name}/{stride}")
        return out if c_in == c_out else _conv(g, out, c_out)
    if name.startswith("sep_conv"):
        y = _conv(g, _conv(g, _relu(g, x), c_in, stride, stride, depthwise=True), c_out)
        return _conv(g, _conv(g, _relu(g, y), c_out, depthwise=True), c_out)
    if name.startswith("dil_conv"):
        return _conv(g, _conv(g, _relu(g, x), c_in, stride, stride, depthwise=True), c_out)
    if name in ("conv_1x3_3x1", "conv_1x7_7x1"):
        kernel = 3 if name == "conv_1x3_3x1" else 7
        inner = bottleneck_width(kernel, c_out)
        y = _conv(g, _relu(g, x), inner) if inner else x
        y = _conv(g, _relu(g, y), inner or c_out, 1, stride)
        y = _conv(g, _relu(g, y), inner or c_out, stride, 1)
        return _conv(g, _relu(g, y), c_out) if inner else y
    return _conv(g, _relu(g, x), c_out, stride, stride)  # conv_1x1, conv_3x3, conv_3x3_dil2


def _cell(g: Graph, blocks: tuple, concat: tuple, style: str, reduction: bool, filters: int, pp: str | None,
          p: str) -> str:
    states = [p if pp is None else pp, p]
    for layer in adapt_pp(style, None if pp is None else g.shapes[pp], g.shapes[p], filters):
        states[0] = _layer(g, layer, states[0])
    states[1] = _layer(g, Layer("rcb", g.shapes[p][0], filters), p)
    for block in blocks:
        outs = [_op(g, op, states[source], filters, 2 if reduction and source < 2 else 1) for source, op in block]
        states.append(g.add("add", outs, g.shapes[outs[0]], shared=True))
    final = g.shapes[states[-1]]
    adapted = []
    for index in concat:
        x = states[index]
        for layer in concat_adapters(g.shapes[x], final):
            x = _layer(g, layer, x)
        adapted.append(x)
    return g.add("concat", adapted, (sum(g.shapes[a][0] for a in adapted), final[1], final[2]))


def network(genotype: NASNetGenotype, macro: dict[str, Any], task: Task, cse: bool = True) -> Graph:
    """The network's kernels before fusion (the same walk as ``macro.plan_network``; ``cse``: the
    runtime computes a weightless op of the same input once)."""
    g = Graph(cse=cse)
    g.shapes[INPUT] = tuple(task.input_shape)  # type: ignore[assignment]
    x = INPUT
    outputs = []
    for stem in stems(macro["stem"], task.input_shape[0], macro["filters"], macro):
        for layer in stem:
            x = _layer(g, layer, x)
        outputs.append(x)
    pp: str | None = None if len(outputs) == 1 and macro["style"] == "nasnet" else outputs[0]
    p = outputs[-1]
    for reduction, filters, blocks, concat in cells_of(genotype, macro):
        pp, p = p, _cell(g, tuple(blocks), tuple(concat), macro["style"], reduction, filters, pp, p)
    if macro["style"] == "nasnet":
        p = _relu(g, p)
    c, h, w = g.shapes[p]
    g.add("gap", [p], (c, 1, 1))
    return g


@functools.lru_cache(maxsize=64)
def modelled(macro_items: tuple, c_in: int, rules: RuntimeRules) -> bool:
    """Whether the stems' and cells' widths are ones the layout rules cover (``known_layouts``):
    NASNet's ImageNet presets have 22-channel cells, and no walk is worth making there."""
    macro = dict(macro_items)
    block, multiple = rules.block, rules.conv_multiple
    if not block:
        return True
    widths = [layer.c_out for stem in stems(macro["stem"], c_in, macro["filters"], macro) for layer in stem
              if layer.kind == "conv"] + [filters for _, filters in cell_kinds(macro["stem"], macro["filters"], macro["cells"])]
    return all(c < block or c % multiple == 0 for c in widths)


@functools.lru_cache(maxsize=4096)
def graph_terms(genotype: NASNetGenotype, macro_items: tuple, task: Task,
                rules: RuntimeRules | None) -> tuple[str, ...]:
    """The network's graph-runtime correction terms under the target's ``rules``
    (``search_spaces.graph_kernels.graph_terms``)."""
    if rules is None or not modelled(macro_items, task.input_shape[0], rules):
        return ()
    return terms_of(network(genotype, dict(macro_items), task, rules.cse), rules)
