"""A nasforge search-space plugin: multilayer perceptrons (the worked example of examples/own_space)."""

from nasforge_mlp.genotype import MLPGenotype
from nasforge_mlp.space import MLPSpace

__all__ = ["MLPGenotype", "MLPSpace"]
