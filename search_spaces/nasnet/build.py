"""Modules for a NASNet-style network, made from the plan in ``macro.py`` instruction by instruction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.nasnet.macro import CellPlan, Layer, NetworkPlan
from search_spaces.ops import FactorizedReduce, ReLUConvBN, drop_path, make_op


def make_layer(layer: Layer) -> nn.Module:
    """The module for one plan instruction."""
    if layer.kind == "op":
        return make_op(layer.name, layer.c_in, layer.c_out, layer.stride)
    if layer.kind == "conv":
        return nn.Conv2d(layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.padding, bias=False)
    if layer.kind == "bn":
        return nn.BatchNorm2d(layer.c_out)
    if layer.kind == "fr":
        return FactorizedReduce(layer.c_in, layer.c_out)
    if layer.kind == "rcb":
        return ReLUConvBN(layer.c_in, layer.c_out, 1)
    return nn.ReLU(inplace=False)


def sequence(layers: list[Layer]) -> nn.Sequential:
    return nn.Sequential(*[make_layer(layer) for layer in layers])


class Cell(nn.Module):
    """Blocks add two ops each; the output concatenates the planned states."""

    def __init__(self, plan: CellPlan) -> None:
        super().__init__()
        self.pre_pp, self.pre_p = sequence(plan.pre_pp), sequence(plan.pre_p)
        self.ops = nn.ModuleList(make_layer(layer) for _, layer in plan.ops)
        self.sources = [source for source, _ in plan.ops]
        self.droppable = [not isinstance(op, nn.Identity) for op in self.ops]
        self.adapters = nn.ModuleList(sequence(adapters) for _, adapters in plan.concat)
        self.concat = [index for index, _ in plan.concat]

    def forward(self, pp: torch.Tensor | None, p: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.pre_pp(p if pp is None else pp), self.pre_p(p)]
        for i in range(0, len(self.ops), 2):
            total = None
            for j in (i, i + 1):
                h = self.ops[j](states[self.sources[j]])
                if drop_prob > 0 and self.training and self.droppable[j]:
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([adapt(states[i]) for i, adapt in zip(self.concat, self.adapters)], dim=1)


class AuxHead(nn.Module):
    """Auxiliary classifier (as in NASNet/DARTS), pooled adaptively so that any input size works."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True), nn.Flatten())
        self.classifier = nn.Linear(768, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class NASNetNetwork(nn.Module):
    """Stems, cells and classifier; in training with an auxiliary head, returns (logits, aux_logits).

    ``drop_path_max`` is the largest drop-path probability; trainers set ``drop_path_prob``
    (typically growing linearly to the maximum over training, as DARTS does).
    """

    def __init__(self, plan: NetworkPlan, drop_path_max: float = 0.0) -> None:
        super().__init__()
        self.stems = nn.ModuleList(sequence(stem) for stem in plan.stems)
        self.cells = nn.ModuleList(Cell(cell) for cell in plan.cells)
        self.first_pp_raw = plan.first_pp_raw
        self.aux_after = plan.aux_after
        if plan.aux_after >= 0:
            self.aux = AuxHead(plan.aux_channels, plan.classes)
        self.head_relu = plan.head_relu
        self.dropout = nn.Dropout(plan.dropout) if plan.dropout else nn.Identity()
        self.classifier = nn.Linear(plan.features, plan.classes)
        self.drop_path_max, self.drop_path_prob = drop_path_max, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:  # x: (B, C, H, W)
        outputs = []
        for stem in self.stems:
            x = stem(x)
            outputs.append(x)
        pp, p = (None if self.first_pp_raw else outputs[0]), outputs[-1]
        aux = None
        for i, cell in enumerate(self.cells):
            pp, p = p, cell(pp, p, self.drop_path_prob)
            if i == self.aux_after and self.training:
                aux = self.aux(p)
        if self.head_relu:
            p = F.relu(p)
        logits = self.classifier(self.dropout(torch.flatten(F.adaptive_avg_pool2d(p, 1), 1)))
        return (logits, aux) if aux is not None else logits
