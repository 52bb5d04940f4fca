"""NASNet-cell blocks for latency tables (torch-free), read off the same plan ``build`` and ``cost``
use: every plan instruction (stem layers, preprocessing, ops, concat adapters) at its input shape,
plus each block's sum, each cell's concatenation and the classifier head."""

from __future__ import annotations

import functools
from typing import Any, Sequence

from nas.block_keys import block_key
from nas.space import Task
from search_spaces.nasnet.genotype import Block, NASNetGenotype
from search_spaces.nasnet.macro import (CellPlan, Layer, adapt_pp, cells_of, concat_adapters, layer_cost,
                                        plan_cell, stems)
from search_spaces.op_costs import Tally

Shape = tuple[int, int, int]


def layer_key(layer: Layer, shape: Shape) -> str:
    """The key of one plan instruction reading ``shape``."""
    args: dict[str, tuple[Any, ...]] = {
        "op": (layer.name, layer.c_in, layer.c_out, layer.stride),
        "conv": (layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.padding),
        "bn": (layer.c_out,), "fr": (layer.c_in, layer.c_out), "rcb": (layer.c_in, layer.c_out), "relu": (),
    }
    return block_key(layer.kind, args[layer.kind], [shape])


@functools.lru_cache(maxsize=65536)
def step(layer: Layer, shape: Shape) -> tuple[str, Shape]:
    """Key and output shape of one instruction (cached: networks repeat their layers)."""
    c, h, w = shape
    h, w = layer_cost(Tally(), layer, c, h, w)
    return layer_key(layer, shape), (layer.c_out or c, h, w)


def walk(layers: Sequence[Layer], shape: Shape, keys: list[str]) -> Shape:
    """Append the keys of a layer sequence; returns its output shape."""
    for layer in layers:
        key, shape = step(layer, shape)
        keys.append(key)
    return shape


def cell_keys(cell: CellPlan, pp: Shape | None, p: Shape) -> list[str]:
    """Keys of one planned cell reading states of shapes ``pp`` (None: raw ``p``) and ``p``."""
    keys: list[str] = []
    states = [walk(cell.pre_pp, pp or p, keys), walk(cell.pre_p, p, keys)]
    for i in range(0, len(cell.ops), 2):
        outs = [walk([layer], states[source], keys) for source, layer in cell.ops[i:i + 2]]
        keys.append(block_key("sum", (2,), outs))
        states.append(outs[0])
    adapted = [walk(adapters, states[index], keys) for index, adapters in cell.concat]
    keys.append(block_key("cat", (len(adapted),), adapted))
    return keys


@functools.lru_cache(maxsize=65536)
def _op(name: str, c_in: int, c_out: int, stride: int, shape: Shape) -> tuple[str, Shape]:
    """Key and output shape of an op reading ``shape`` (cached on plain values: cheap to hash)."""
    return step(Layer("op", c_in, c_out, name=name, stride=stride), shape)


@functools.lru_cache(maxsize=65536)
def _glue(kind: str, shapes: tuple[Shape, ...]) -> str:
    """Key of a sum or concatenation of ``shapes``."""
    return block_key(kind, (len(shapes),), shapes)


@functools.lru_cache(maxsize=65536)
def _adapters(state: Shape, final: Shape) -> tuple[tuple[str, ...], Shape]:
    """Keys and output shape of the adapters of a concatenated state."""
    keys: list[str] = []
    out = walk(concat_adapters(state, final), state, keys)
    return tuple(keys), out


@functools.lru_cache(maxsize=4096)
def _cell(blocks: tuple, concat: tuple, style: str, reduction: bool, filters: int, pp: Shape | None,
          p: Shape) -> tuple[list[str], Shape]:
    """Keys and output shape of a cell (cached: a network repeats its cells, a search its genotypes).

    The same walk as ``plan_cell`` + :func:`cell_keys`, without the cost tally and with every
    step cached on plain values, so a new genotype costs little (a test checks the two agree).
    """
    keys: list[str] = []
    states = [walk(adapt_pp(style, pp, p, filters), pp or p, keys), walk([Layer("rcb", p[0], filters)], p, keys)]
    for block in blocks:
        outs = []
        for source, op in block:
            key, out = _op(op, states[source][0], filters, 2 if reduction and source < 2 else 1, states[source])
            keys.append(key)
            outs.append(out)
        keys.append(_glue("sum", tuple(outs)))
        states.append(outs[0])
    final = states[-1]
    adapted = []
    for index in concat:
        adapter_keys, out = _adapters(states[index], final)
        keys += adapter_keys
        adapted.append(out)
    keys.append(_glue("cat", tuple(adapted)))
    return keys, (final[0] * len(concat), final[1], final[2])


def planned_cell(blocks: tuple, concat: tuple, style: str, reduction: bool, filters: int, pp: Shape | None,
                 p: Shape) -> tuple[list[str], Shape]:
    """Keys and output shape of a cell through ``plan_cell`` (the reference :func:`_cell` follows)."""
    cell = plan_cell(Tally(), blocks, concat, style, reduction, filters, pp, p)
    return cell_keys(cell, pp, p), cell.out


def network_blocks(genotype: NASNetGenotype, macro: dict[str, Any], task: Task) -> list[str]:
    """Every block of the network in forward order (the same walk as ``macro.plan_network``)."""
    keys: list[str] = []
    shape: Shape = tuple(task.input_shape)  # type: ignore[assignment]
    outputs = []
    for stem in stems(macro["stem"], task.input_shape[0], macro["filters"], macro):
        shape = walk(stem, shape, keys)
        outputs.append(shape)
    pp: Shape | None = None if len(outputs) == 1 and macro["style"] == "nasnet" else outputs[0]
    p = outputs[-1]
    for reduction, filters, blocks, concat in cells_of(genotype, macro):
        cell, out = _cell(blocks, concat, macro["style"], reduction, filters, pp, p)
        keys += cell
        pp, p = p, out
    keys.append(block_key("pool_linear", (p[0], task.num_classes, int(macro["style"] == "nasnet")), [p]))
    return keys


def chain_cell(op: str, blocks: int, independent: int) -> tuple[Block, ...]:
    """A cell of one op: a chain of blocks (block b reads block b-1 and h[i-2]), then ``independent``
    blocks reading only the cell inputs; with the unused-states rule it concatenates independent + 1."""
    cell: list[Block] = [((0, op), (1, op))]
    for b in range(1, blocks - independent):
        cell.append(((b + 1, op), (0, op)))
    cell += [((0, op), (1, op))] * independent
    return tuple(cell)


def cover(space: Any) -> list[NASNetGenotype]:
    """For every op, cells of that op with every concatenation width in both cells: every op at every
    input it can read, and every preprocessing, concatenation and head the widths lead to; plus the
    published cells."""
    out = list(space.known().values())  # cheap, and outside the searchable concatenation rule
    b = space.blocks
    for op in space.vocabulary:
        for normal in range(b):
            for reduce in range(b):
                out.append(space._genotype(chain_cell(op, b, normal), chain_cell(op, b, reduce)))
    return out


def module(key: str) -> Any:
    """Torch module of a NASNet block key (all kinds are the shared ones)."""
    from search_spaces.latency_blocks import generic_module

    return generic_module(key)
