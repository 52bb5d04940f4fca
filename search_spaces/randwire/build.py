"""The randomly wired network as a torch module (layer order in ``macro.py``'s docstring)."""

from __future__ import annotations

import torch
from torch import nn

from nas.space import Task
from search_spaces.ops import ReLUConvBN, SepConv, drop_path
from search_spaces.randwire.dag import Edges, adjacency, sources_and_sinks, topological_order
from search_spaces.randwire.genotype import RandWireGenotype
from search_spaces.randwire.macro import Macro


class Node(nn.Module):
    """Sigmoid-gated weighted sum of the inputs -> ReLU -> 3x3 separable conv -> BN.

    In training with ``drop_prob > 0``, a node with several inputs drops each input edge per
    example (drop-path on the graph's edges, the DARTS form on a node's incoming sum); a single
    input is the node's only path and is never dropped."""

    def __init__(self, in_degree: int, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        # a single input needs no gate: a positive scale before ReLU-conv-BN is cancelled by the BN
        self.weights = nn.Parameter(torch.zeros(in_degree)) if in_degree > 1 else None
        self.conv = SepConv(c_in, c_out, 3, stride)

    def forward(self, inputs: list[torch.Tensor], drop_prob: float = 0.0) -> torch.Tensor:
        if self.weights is None:
            return self.conv(inputs[0])
        if drop_prob > 0 and self.training:  # Python-level: eval and export trace the plain node
            inputs = [drop_path(tensor, drop_prob) for tensor in inputs]
        gates = torch.sigmoid(self.weights)
        x = inputs[0] * gates[0]
        for gate, tensor in zip(gates[1:], inputs[1:]):
            x = x + gate * tensor
        return self.conv(x)


class Stage(nn.Module):
    """One randomly wired stage; sources read the stage input, the output averages the sinks."""

    def __init__(self, n: int, edges: Edges, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        preds = adjacency(n, edges)[0]
        self.order = topological_order(n, edges)
        self.preds = [list(p) for p in preds]
        self.sinks = sources_and_sinks(n, edges)[1]
        self.nodes = nn.ModuleList(
            Node(len(preds[v]), c_out if preds[v] else c_in, c_out, 1 if preds[v] else stride) for v in range(n))

    def forward(self, x: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:  # x: (B, c_in, H, W)
        outputs: dict[int, torch.Tensor] = {}
        for node in self.order:
            inputs = [outputs[p] for p in self.preds[node]] or [x]
            outputs[node] = self.nodes[node](inputs, drop_prob)
        if len(self.sinks) == 1:
            return outputs[self.sinks[0]]
        return torch.stack([outputs[v] for v in self.sinks]).mean(0)  # (B, c_out, H/s, W/s)


class RandWireNetwork(nn.Module):
    """Stem convs, the random stages, 1x1 conv head, global pool and linear classifier.

    ``drop_path_max`` is the largest edge drop-path probability; trainers set ``drop_path_prob``
    (growing linearly to the maximum over training). Neither changes the module in eval mode.
    """

    def __init__(self, genotype: RandWireGenotype, macro: Macro, task: Task, drop_path_max: float = 0.0) -> None:
        super().__init__()
        macro.check(genotype)
        c = task.input_shape[0]
        stem: list[nn.Module] = []
        for i, conv in enumerate(macro.stem):
            if i == 0:  # on the image: no ReLU first
                stem += [nn.Conv2d(c, conv.c_out, 3, conv.stride, 1, bias=False), nn.BatchNorm2d(conv.c_out)]
            else:
                stem.append(ReLUConvBN(c, conv.c_out, 3, conv.stride))
            c = conv.c_out
        self.stem = nn.Sequential(*stem)
        stages = []
        for shape, n, edges in zip(macro.stages, genotype.nodes, genotype.edges):
            stages.append(Stage(n, edges, c, shape.channels, shape.stride))
            c = shape.channels
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, macro.head, 1, bias=False), nn.BatchNorm2d(macro.head),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(macro.head, task.num_classes)
        self.drop_path_max, self.drop_path_prob = drop_path_max, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x, self.drop_path_prob)
        return self.classifier(self.head(x))


def build(genotype: RandWireGenotype, macro: Macro, task: Task, drop_path_max: float = 0.0) -> nn.Module:
    """The network for ``genotype`` inside ``macro`` (``drop_path_max``: see :class:`RandWireNetwork`)."""
    return RandWireNetwork(genotype, macro, task, drop_path_max)
