"""Compound scaling (Tan & Le, 2019, eq. 3): depth alpha^phi, width beta^phi, resolution gamma^phi.

The coefficients are found once, at phi = 1, by a small grid search under the constraint
``alpha * beta^2 * gamma^2 ~= 2`` (FLOPs grow with depth, width squared and resolution squared, so
each unit of phi about doubles them); the paper finds alpha = 1.2, beta = 1.1, gamma = 1.15.
"""

from __future__ import annotations

import dataclasses
import math

from search_spaces.scaling.genotype import ScalingGenotype

MULTIPLIER_DECIMALS = 4  # width/depth multipliers are kept to 4 decimals so params round-trip exactly


def compound_cost(alpha: float, beta: float, gamma: float) -> float:
    """The FLOPs factor of one unit of phi: ``alpha * beta**2 * gamma**2``."""
    return alpha * beta ** 2 * gamma ** 2


def coefficient_grid(step: float = 0.05, tolerance: float = 0.1, target: float = 2.0,
                     low: float = 1.0) -> list[tuple[float, float, float]]:
    """The (alpha, beta, gamma) grid points whose FLOPs factor is within ``tolerance`` of ``target``.

    Each coefficient runs over ``low, low + step, ...`` up to the largest value the constraint
    allows (``target + tolerance`` over the others at ``low``); values are rounded to 10 decimals so
    that e.g. 1.15 is exactly ``1.15``. The default grid holds the paper's (1.2, 1.1, 1.15), whose
    factor is 1.92.

    Args:
        step: grid spacing, > 0.
        tolerance: allowed ``|alpha * beta**2 * gamma**2 - target|``, >= 0.
        target: the FLOPs factor per unit of phi (2 in the paper), > 0.
        low: smallest value of each coefficient (1: never scale down), > 0.

    Returns:
        Triples sorted by alpha, then beta, then gamma.

    Raises:
        ValueError: a non-positive step, target or low, or a negative tolerance.
    """
    if step <= 0 or target <= 0 or low <= 0 or tolerance < 0:
        raise ValueError(f"coefficient_grid: need step > 0, target > 0, low > 0, tolerance >= 0; got "
                         f"step={step}, target={target}, low={low}, tolerance={tolerance}")
    most = target + tolerance

    def values(high: float) -> list[float]:
        count = int(math.floor((high - low) / step + 1e-9))
        return [round(low + i * step, 10) for i in range(count + 1)]

    grid = []
    for alpha in values(most / low ** 4):
        for beta in values(math.sqrt(most / (alpha * low ** 2))):
            for gamma in values(math.sqrt(most / (alpha * beta ** 2))):
                if abs(compound_cost(alpha, beta, gamma) - target) <= tolerance + 1e-12:
                    grid.append((alpha, beta, gamma))
    return grid


def scale(baseline: ScalingGenotype, alpha: float, beta: float, gamma: float, phi: float = 1.0,
          dropout: float | None = None) -> ScalingGenotype:
    """``baseline`` compound-scaled by ``phi``: depth x alpha^phi, width x beta^phi, resolution x gamma^phi.

    Multipliers are rounded to :data:`MULTIPLIER_DECIMALS` decimals and the resolution to the
    nearest integer; channels (multiples of 8, never below 90%) and repeats (``ceil``) are rounded
    when the network is laid out, as in the reference.

    Args:
        baseline: the network at phi = 0 (its own multipliers are scaled further).
        alpha, beta, gamma: depth, width and resolution coefficients, > 0.
        phi: the compound coefficient (0 gives the baseline back).
        dropout: the scaled network's dropout (default: the baseline's).

    Raises:
        ValueError: a non-positive coefficient, or a result that is no valid genotype.
    """
    if min(alpha, beta, gamma) <= 0:
        raise ValueError(f"scale: coefficients must be > 0, got alpha={alpha}, beta={beta}, gamma={gamma}")
    return dataclasses.replace(
        baseline,
        depth=round(baseline.depth * alpha ** phi, MULTIPLIER_DECIMALS),
        width=round(baseline.width * beta ** phi, MULTIPLIER_DECIMALS),
        resolution=int(round(baseline.resolution * gamma ** phi)),
        dropout=baseline.dropout if dropout is None else dropout,
    )


def coefficients_of(genotype: ScalingGenotype, baseline: ScalingGenotype, phi: float = 1.0) -> tuple[float, float, float]:
    """The (alpha, beta, gamma) that :func:`scale` turns ``baseline`` into ``genotype`` with (phi != 0)."""
    if phi == 0:
        raise ValueError("coefficients_of: phi must be non-zero")
    return ((genotype.depth / baseline.depth) ** (1 / phi),
            (genotype.width / baseline.width) ** (1 / phi),
            (genotype.resolution / baseline.resolution) ** (1 / phi))
