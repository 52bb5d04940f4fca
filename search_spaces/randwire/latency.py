"""RandWire blocks for latency tables (torch-free): stem convs, every node (its in-degree, channels,
stride and map size), each stage's mean over its sinks, and the head.

A node's cost depends on its stage and in-degree only, so the table lists, per stage, the source
node and inner nodes of every in-degree up to the largest node count the space allows, and the
sink means of every width: :func:`universe` enumerates them directly."""

from __future__ import annotations

import functools
from typing import Any

from nas.block_keys import block_key
from nas.space import Task
from search_spaces.randwire.genotype import RandWireGenotype
from search_spaces.randwire.macro import Macro, out_size

Shape = tuple[int, int, int]


def stem_blocks(macro: Macro, task: Task) -> tuple[list[str], Shape]:
    """Keys of the stem convs and the stem's output shape."""
    c, h, w = task.input_shape
    keys = []
    for i, conv in enumerate(macro.stem):
        keys.append(block_key("rw_stem" if i == 0 else "rw_rcb", (c, conv.c_out, conv.stride), [(c, h, w)]))
        c, h, w = conv.c_out, out_size(h, conv.stride), out_size(w, conv.stride)
    return keys, (c, h, w)


@functools.lru_cache(maxsize=16384)
def node_key(degree: int, c_in: int, c_out: int, stride: int, shape: Shape, out: Shape) -> str:
    """A node with ``degree`` inputs (0: a source reading the stage input of ``shape``)."""
    if degree == 0:
        return block_key("rw_node", (1, c_in, c_out, stride), [shape])
    return block_key("rw_node", (degree, c_out, c_out, 1), [out] * degree)


def _degrees_and_sinks(n: int, edges: tuple[tuple[int, int], ...]) -> tuple[list[int], int]:
    """In-degree of every node and the number of sinks, in one pass (what the blocks depend on)."""
    degrees = [0] * n
    has_succ = [False] * n
    for src, dst in edges:
        degrees[dst] += 1
        has_succ[src] = True
    return degrees, n - sum(has_succ)


def network_blocks(genotype: RandWireGenotype, macro: Macro, task: Task) -> list[str]:
    """Every block of the network in forward order (nodes by stage, in node order)."""
    macro.check(genotype)
    keys, shape = stem_blocks(macro, task)
    for stage, n, edges in zip(macro.stages, genotype.nodes, genotype.edges):
        c, h, w = shape
        out = (stage.channels, out_size(h, stage.stride), out_size(w, stage.stride))
        degrees, sinks = _degrees_and_sinks(n, edges)
        keys += [node_key(d, c, stage.channels, stage.stride, shape, out) for d in degrees]
        if sinks > 1:
            keys.append(block_key("mean", (sinks,), [out] * sinks))
        shape = out
    keys.append(block_key("rw_head", (shape[0], macro.head, task.num_classes), [shape]))
    return keys


def universe(macro: Macro, task: Task, max_nodes: list[int]) -> list[str]:
    """Every block a genotype can have when stage ``i`` has at most ``max_nodes[i]`` nodes."""
    keys, shape = stem_blocks(macro, task)
    for stage, n in zip(macro.stages, max_nodes):
        c, h, w = shape
        out = (stage.channels, out_size(h, stage.stride), out_size(w, stage.stride))
        keys += [node_key(d, c, stage.channels, stage.stride, shape, out) for d in range(n)]
        keys += [block_key("mean", (k,), [out] * k) for k in range(2, n + 1)]
        shape = out
    keys.append(block_key("rw_head", (shape[0], macro.head, task.num_classes), [shape]))
    return keys


def module(key: str) -> Any:
    """Torch module of a RandWire block key (imports torch)."""
    from torch import nn

    from search_spaces.latency_blocks import generic_module
    from search_spaces.ops import ReLUConvBN
    from search_spaces.randwire.build import Node

    class NodeBlock(nn.Module):
        def __init__(self, degree: int, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.node = Node(degree, c_in, c_out, stride)

        def forward(self, *xs: Any) -> Any:
            return self.node(list(xs))

    own = {
        "rw_stem": lambda a: nn.Sequential(nn.Conv2d(int(a[0]), int(a[1]), 3, int(a[2]), 1, bias=False),
                                           nn.BatchNorm2d(int(a[1]))),
        "rw_rcb": lambda a: ReLUConvBN(int(a[0]), int(a[1]), 3, int(a[2])),
        "rw_node": lambda a: NodeBlock(*(int(x) for x in a)),
        "rw_head": lambda a: nn.Sequential(nn.ReLU(), nn.Conv2d(int(a[0]), int(a[1]), 1, bias=False),
                                           nn.BatchNorm2d(int(a[1])), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                           nn.Flatten(), nn.Linear(int(a[1]), int(a[2]))),
    }
    return generic_module(key, own)
