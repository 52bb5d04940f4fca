"""The macro network around the random stages (the paper's Table 1), and its cost from the genotype.

Layers, in order:

* stem: 3x3 convs with BN (the first one Conv-BN, later ones ReLU-Conv-BN), each with its stride;
* random stages: every node sums its inputs with learnable sigmoid-gated weights (one per incoming
  edge; a node with a single input has none), then ReLU -> 3x3 depthwise -> 1x1 pointwise -> BN.
  Nodes fed by the stage input (the sources) stride and change channels; the stage output is the
  unweighted mean of its sinks;
* head: ReLU -> 1x1 conv to ``head`` channels -> BN -> ReLU -> global average pool -> linear.

Every conv is 'same'-padded, so a stride-s layer maps size h to ``(h - 1) // s + 1`` (never below 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from nas.space import Cost, Task
from search_spaces.randwire.dag import in_degrees
from search_spaces.randwire.genotype import RandWireGenotype

MIN_NODES = 4


@dataclass(frozen=True)
class StemConv:
    """A 3x3 conv + BN of the stem."""

    c_out: int
    stride: int


@dataclass(frozen=True)
class StageShape:
    """A random stage: its default node count (for sampling), output channels and input stride."""

    nodes: int
    channels: int
    stride: int


@dataclass(frozen=True)
class Macro:
    """Everything but the wiring: stem, stage widths and strides, head width."""

    stem: tuple[StemConv, ...]
    stages: tuple[StageShape, ...]
    head: int

    @classmethod
    def from_preset(cls, preset: Mapping[str, Any], channels: int, nodes: int) -> Macro:
        """Widths ``C x multiplier`` and node counts ``N x fraction`` from a preset's tables.

        ``preset["stem"]`` holds ``(width multiplier, stride)`` per conv, ``preset["stages"]``
        ``(node fraction, width multiplier, stride)`` per stage.
        """
        stem = tuple(StemConv(max(1, int(channels * mult)), stride) for mult, stride in preset["stem"])
        stages = tuple(StageShape(stage_nodes(nodes, frac), max(1, int(channels * mult)), stride)
                       for frac, mult, stride in preset["stages"])
        return cls(stem, stages, int(preset["head"]))

    def check(self, genotype: RandWireGenotype) -> None:
        """``ValueError`` if the genotype's stage count does not fit this macro network."""
        if genotype.stages != len(self.stages):
            raise ValueError(f"randwire: the genotype has {genotype.stages} stages, this preset needs "
                             f"{len(self.stages)}")


def stage_nodes(nodes: int, fraction: float) -> int:
    """A stage's node count from the network's N (the regular regime's first stage has N/2)."""
    return max(MIN_NODES, int(nodes * fraction))


def out_size(size: int, stride: int) -> int:
    """Output size of a 'same'-padded conv."""
    return (size - 1) // stride + 1


def stage_cost(n: int, edges: tuple[tuple[int, int], ...], c_in: int, c_out: int, area: int) -> tuple[int, int]:
    """(params, MACs) of one random stage whose output maps have ``area`` pixels."""
    degrees = in_degrees(n, edges)
    sources = degrees.count(0)
    weights = sum(d for d in degrees if d > 1)
    per_source = 9 * c_in + c_in * c_out  # depthwise 3x3 + pointwise 1x1
    per_inner = 9 * c_out + c_out * c_out
    convs = sources * per_source + (n - sources) * per_inner
    return convs + 2 * c_out * n + weights, convs * area


def cost(genotype: RandWireGenotype, macro: Macro, task: Task) -> Cost:
    """Params (BN and aggregation weights included) and conv/linear MACs, layer by layer."""
    macro.check(genotype)
    c, h, w = task.input_shape
    params = macs = 0
    for conv in macro.stem:
        h, w = out_size(h, conv.stride), out_size(w, conv.stride)
        params += 9 * c * conv.c_out + 2 * conv.c_out
        macs += 9 * c * conv.c_out * h * w
        c = conv.c_out
    for stage, n, edges in zip(macro.stages, genotype.nodes, genotype.edges):
        h, w = out_size(h, stage.stride), out_size(w, stage.stride)
        stage_params, stage_macs = stage_cost(n, edges, c, stage.channels, h * w)
        params, macs, c = params + stage_params, macs + stage_macs, stage.channels
    params += c * macro.head + 2 * macro.head + macro.head * task.num_classes + task.num_classes
    macs += c * macro.head * h * w + macro.head * task.num_classes
    return Cost(params, macs)
