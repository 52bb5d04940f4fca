"""The macro network of a NASNet-style genotype as plain data: one plan for ``build`` and ``cost``.

A plan is a list of :class:`Layer` instructions (stems, per-cell preprocessing, ops, concat
adapters, head). ``cost`` sums them with :class:`~search_spaces.op_costs.Tally` without torch;
``build.py`` turns the very same instructions into modules, so the two cannot drift apart.

Two cell plumbings follow their references:

* ``nasnet`` (TF-slim NASNet / TPU AmoebaNet): h[i-1] gets ReLU-1x1-BN to the cell's filters F;
  h[i-2] is adapted only if its size or channels differ (the first cell after the stem reads the
  raw stem output); ops adapt their input channels.
* ``darts`` (DARTS ``NetworkCIFAR``/``NetworkImageNet``): both inputs always get preprocessed to F
  (factorized reduction after a resolution change, else ReLU-1x1-BN).

In both, a concatenated state whose shape differs from the last block's is reduced to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from nas.space import Task
from search_spaces.nasnet.genotype import Block, NASNetGenotype
from search_spaces.op_costs import Tally

PRESETS: dict[str, dict[str, Any]] = {
    # NASNet-A "4 @ 1056": slim mobile_imagenet_config
    "imagenet-mobile": {"style": "nasnet", "stem": "imagenet", "filters": 44, "cells": 4, "stem_filters": 32,
                        "dropout": 0.5, "input_shape": (3, 224, 224), "num_classes": 1000},
    # AmoebaNet-A mobile setting (Real et al. 2019: N=4, F=50)
    "amoebanet-mobile": {"style": "nasnet", "stem": "imagenet", "filters": 50, "cells": 4, "stem_filters": 32,
                         "dropout": 0.5, "input_shape": (3, 224, 224), "num_classes": 1000},
    # NASNet-A CIFAR "6 @ 768": slim cifar_config
    "cifar": {"style": "nasnet", "stem": "cifar", "filters": 32, "cells": 6, "stem_multiplier": 3,
              "dropout": 0.0, "input_shape": (3, 32, 32), "num_classes": 10},
    # DARTS NetworkCIFAR(C=36, layers=20) and NetworkImageNet(C=48, layers=14)
    "darts-cifar": {"style": "darts", "stem": "cifar", "filters": 36, "cells": 6, "stem_multiplier": 3,
                    "dropout": 0.0, "input_shape": (3, 32, 32), "num_classes": 10},
    "darts-imagenet": {"style": "darts", "stem": "darts-imagenet", "filters": 48, "cells": 4,
                       "dropout": 0.0, "input_shape": (3, 224, 224), "num_classes": 1000},
    # small and fast, for searching on small images (down to 8x8)
    "proxy": {"style": "darts", "stem": "cifar", "filters": 8, "cells": 1, "stem_multiplier": 2,
              "dropout": 0.0, "input_shape": (3, 32, 32), "num_classes": 10},
}


@dataclass(frozen=True)
class Layer:
    """One instruction: ``kind`` in op, conv, bn, relu, fr (factorized reduction), rcb (ReLU-1x1-BN)."""

    kind: str
    c_in: int = 0
    c_out: int = 0
    name: str = ""  # op name for kind "op"
    kernel: int = 1
    stride: int = 1
    padding: int = 0


@dataclass
class CellPlan:
    """A cell's instructions and the shapes they produce."""

    reduction: bool
    filters: int
    pre_pp: list[Layer]  # applied to h[i-2] (empty: used as is)
    pre_p: list[Layer]
    raw_pp: bool  # h[i-2] is the raw h[i-1] (slim's first cell after the stem)
    ops: list[tuple[int, Layer]]  # (state read, op) two per block
    concat: list[tuple[int, list[Layer]]]  # (state, adapters to the last block's shape)
    out: tuple[int, int, int] = (0, 0, 0)  # (C, H, W) of the cell output


@dataclass
class NetworkPlan:
    """Stems, cells and head of a whole network."""

    stems: list[list[Layer]]  # one or two stems (two: DARTS ImageNet's stem0, stem1)
    cells: list[CellPlan]
    head_relu: bool
    dropout: float
    classes: int
    features: int
    aux_after: int  # cell index the auxiliary head reads (-1: none)
    aux_channels: int = 0
    first_pp_raw: bool = False  # the first cell's h[i-2] is the raw stem output
    params: int = 0  # totals without the auxiliary head
    macs: int = 0


def layer_cost(tally: Tally, layer: Layer, c: int, h: int, w: int) -> tuple[int, int]:
    """Add one instruction's cost; returns the output (H, W)."""
    if layer.kind == "op":
        return tally.op(layer.name, layer.c_in, layer.c_out, layer.stride, h, w)
    if layer.kind == "conv":
        k, s, p = layer.kernel, layer.stride, layer.padding
        return tally.conv(layer.c_in, layer.c_out, h, w, (k, k), (s, s), (p, p))
    if layer.kind == "bn":
        tally.bn(layer.c_out)
        return h, w
    if layer.kind == "fr":
        return tally.factorized_reduce(layer.c_in, layer.c_out, h, w)
    if layer.kind == "rcb":
        return tally.relu_conv_bn(layer.c_in, layer.c_out, h, w)
    return h, w  # relu


def run(tally: Tally, layers: Sequence[Layer], shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Cost of a sequence; returns its output (C, H, W)."""
    c, h, w = shape
    for layer in layers:
        h, w = layer_cost(tally, layer, c, h, w)
        c = layer.c_out or c
    return c, h, w


def stems(stem: str, c_in: int, filters: int, preset: dict[str, Any]) -> list[list[Layer]]:
    """The stem layers: conv-BN (CIFAR), strided conv-BN before the stem cells (slim ImageNet),
    or DARTS ImageNet's two stems."""
    if stem == "cifar":
        c = int(filters * preset["stem_multiplier"])
        return [[Layer("conv", c_in, c, kernel=3, padding=1), Layer("bn", c_out=c)]]
    if stem == "imagenet":
        c = preset["stem_filters"]
        return [[Layer("conv", c_in, c, kernel=3, stride=2), Layer("bn", c_out=c)]]
    half = filters // 2
    return [[Layer("conv", c_in, half, kernel=3, stride=2, padding=1), Layer("bn", c_out=half), Layer("relu"),
             Layer("conv", half, filters, kernel=3, stride=2, padding=1), Layer("bn", c_out=filters)],
            [Layer("relu"), Layer("conv", filters, filters, kernel=3, stride=2, padding=1),
             Layer("bn", c_out=filters)]]


def cell_kinds(stem: str, filters: int, cells: int) -> list[tuple[bool, int]]:
    """(reduction, filters) of every cell: [stem cells] N normal, R, N normal, R, N normal."""
    kinds = [(True, filters // 4), (True, filters // 2)] if stem == "imagenet" else []
    for stack in range(3):
        if stack:
            kinds.append((True, filters * 2 ** stack))
        kinds += [(False, filters * 2 ** stack)] * cells
    return kinds


def cells_of(genotype: NASNetGenotype, macro: dict[str, Any]) -> list[tuple[bool, int, Sequence[Block], Sequence[int]]]:
    """(reduction, filters, blocks, concat) of every cell of the network, in order."""
    return [(reduction, filters, *((genotype.reduce, genotype.reduce_concat) if reduction
                                   else (genotype.normal, genotype.normal_concat)))
            for reduction, filters in cell_kinds(macro["stem"], macro["filters"], macro["cells"])]


def plan_cell(tally: Tally, blocks: Sequence[Block], concat: Sequence[int], style: str, reduction: bool,
              filters: int, pp: tuple[int, int, int] | None, p: tuple[int, int, int]) -> CellPlan:
    """Instructions of one cell reading states of shapes ``pp`` (None: raw ``p``) and ``p``;
    their cost is added to ``tally``."""
    pre_pp = adapt_pp(style, pp, p, filters)
    pre_p = [Layer("rcb", p[0], filters)]
    states = [run(tally, pre_pp, pp or p), run(tally, pre_p, p)]
    ops: list[tuple[int, Layer]] = []
    for block in blocks:
        outs = []
        for source, op in block:
            stride = 2 if reduction and source < 2 else 1
            layer = Layer("op", states[source][0], filters, name=op, stride=stride)
            ops.append((source, layer))
            outs.append(run(tally, [layer], states[source]))
        states.append(outs[0])
    final = states[-1]
    adapted = []
    for index in concat:
        adapters = concat_adapters(states[index], final)
        run(tally, adapters, states[index])
        adapted.append((index, adapters))
    out = (final[0] * len(concat), final[1], final[2])
    return CellPlan(reduction, filters, pre_pp, pre_p, pp is None, ops, adapted, out)


def concat_adapters(state: tuple[int, int, int], final: tuple[int, int, int]) -> list[Layer]:
    """Layers that bring a concatenated state to the last block's shape."""
    c, h, w = state
    if (h, w) != final[1:]:
        return [Layer("fr", c, final[0])]
    if c != final[0]:
        return [Layer("conv", c, final[0]), Layer("bn", c_out=final[0])]
    return []


def adapt_pp(style: str, pp: tuple[int, int, int] | None, p: tuple[int, int, int], filters: int) -> list[Layer]:
    """Preprocessing of h[i-2] in each plumbing."""
    if pp is None:
        return []
    if pp[1:] != p[1:]:
        return [Layer("fr", pp[0], filters)]
    if style == "darts" or pp[0] != filters:
        return [Layer("rcb", pp[0], filters)]
    return []


def plan_network(genotype: NASNetGenotype, macro: dict[str, Any], task: Task, auxiliary: bool = False) -> NetworkPlan:
    """The whole network for ``genotype`` with macro settings ``macro`` (a preset plus overrides)."""
    tally = Tally()
    stem_layers = stems(macro["stem"], task.input_shape[0], macro["filters"], macro)
    shape = tuple(task.input_shape)
    outputs = []
    for stem in stem_layers:
        shape = run(tally, stem, shape)
        outputs.append(shape)
    first_pp_raw = len(outputs) == 1 and macro["style"] == "nasnet"
    pp: tuple[int, int, int] | None = None if first_pp_raw else outputs[0]
    p = outputs[-1]
    kinds = cell_kinds(macro["stem"], macro["filters"], macro["cells"])
    cells, shapes = [], []
    for reduction, filters in kinds:
        blocks, concat = ((genotype.reduce, genotype.reduce_concat) if reduction
                          else (genotype.normal, genotype.normal_concat))
        cell = plan_cell(tally, blocks, concat, macro["style"], reduction, filters, pp, p)
        cells.append(cell)
        shapes.append(cell.out)
        pp, p = p, cell.out
    reductions = [i for i, (reduction, _) in enumerate(kinds) if reduction]
    aux_after = -1
    if auxiliary and reductions:
        aux_after = reductions[-1] if macro["style"] == "darts" else reductions[-1] - 1
    tally.linear(p[0], task.num_classes)
    return NetworkPlan(stem_layers, cells, macro["style"] == "nasnet", macro["dropout"], task.num_classes,
                       p[0], aux_after, shapes[aux_after][0] if aux_after >= 0 else 0, first_pp_raw,
                       tally.params, tally.macs)
