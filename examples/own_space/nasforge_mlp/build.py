"""The torch side of the MLP space: the network of a genotype (imported only when a model is built)."""

from __future__ import annotations

from torch import nn

from nas.space import Task
from nasforge_mlp.genotype import MLPGenotype

ACTIVATION_MODULES = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def build(genotype: MLPGenotype, task: Task) -> nn.Module:
    """Flatten, then ``Linear -> activation`` per hidden width, then the classifier."""
    c, h, w = task.input_shape
    layers: list[nn.Module] = [nn.Flatten()]  # (B, C, H, W) -> (B, C*H*W)
    c_in = c * h * w
    for c_out in genotype.widths:
        layers += [nn.Linear(c_in, c_out), ACTIVATION_MODULES[genotype.activation]()]
        c_in = c_out
    layers.append(nn.Linear(c_in, task.num_classes))
    return nn.Sequential(*layers)
