"""The baselines every proxy should beat: parameter count and FLOPs."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from evaluators.cost import count_macs, count_params
from evaluators.proxies._common import Batch, input_shape_of


def params(net: nn.Module, batch: Batch | None = None, *, seed: int = 0) -> float:
    """Trainable parameters of the network as built, auxiliary heads excluded (``evaluators.cost``).
    Higher is better (more capacity), the naive baseline of Abdelfattah et al. 2021.

    Args:
        net: the built network (left unchanged).
        batch: not read.
        seed: not used (every proxy takes one).
    """
    return float(count_params(net))


def flops(net: nn.Module, batch: Batch | None = None, *, cost: Any = None,
          input_shape: tuple[int, ...] | None = None, seed: int = 0) -> float:
    """Multiply-accumulates of one forward pass (conv and linear layers and attention's matmuls), the
    FLOPs baseline of Abdelfattah et al. 2021. Higher is better.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch whose input shape is counted at, when no ``cost`` or ``input_shape`` is given.
        cost: the space's ``Cost`` of this network (``space.cost(genotype, task)``): its ``flops`` is
            returned and nothing is run.
        input_shape: one example's shape ``(C, H, W)``, instead of a batch.
        seed: not used (every proxy takes one).
    """
    if cost is not None:
        return float(cost.flops)
    shape = input_shape_of(batch, input_shape, "flops")
    # a copy: count_macs feeds a CPU tensor and resets every submodule's mode to the root's afterwards
    return float(count_macs(copy.deepcopy(net).cpu(), shape))
