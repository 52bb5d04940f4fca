"""How differentiable search turns architecture parameters into each step's edge choices.

One small class per method, all over the same parameters: one row of logits per supernet edge.

* :class:`Darts` (Liu et al. 2019, first order): the softmax of each row weighs all ops; optionally
  Beta-DARTS' regularisation (Ye et al. 2022), the mean log-sum-exp of the rows, against collapse.
* :class:`Gdas` (Dong & Yang 2019): one op per edge drawn by a hard Gumbel-softmax whose value is
  exactly one-hot while its gradient reaches every logit; the temperature falls linearly.
* :class:`Drnas` (Chen et al. 2021): weights drawn from a Dirichlet whose concentration is
  ``elu(logits) + 1`` (reparameterised), with an L2 term on the concentrations against collapse.

``probabilities`` is what the method believes of each op (softmax, or the Dirichlet's mean): the
derived genotype, the report's heat map and the expected latency read it.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F


class Strategy:
    """Edge choices for training steps and the regularisation added to the architecture loss."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.o = options

    def probabilities(self, logits: list[torch.Tensor]) -> list[torch.Tensor]:
        return [F.softmax(row, dim=-1) for row in logits]

    def choices(self, logits: list[torch.Tensor], progress: float) -> list[Any]:
        """The ``Arch`` of one step (``progress``: share of the search done, 0..1)."""
        return self.probabilities(logits)

    def regularization(self, logits: list[torch.Tensor], progress: float) -> torch.Tensor:
        return logits[0].new_zeros(())


class Darts(Strategy):
    def regularization(self, logits: list[torch.Tensor], progress: float) -> torch.Tensor:
        if self.o.get("regularization", "none") != "beta":
            return super().regularization(logits, progress)
        lse = torch.stack([torch.logsumexp(row, dim=-1) for row in logits]).mean()
        return self.o["reg_weight"] * progress * lse  # the weight grows linearly, as in Beta-DARTS


class Gdas(Strategy):
    def choices(self, logits: list[torch.Tensor], progress: float) -> list[Any]:
        tau = self.o["tau_max"] - (self.o["tau_max"] - self.o["tau_min"]) * progress
        out = []
        for row in logits:
            hard = F.gumbel_softmax(row, tau=tau, hard=True)
            out.append((int(hard.argmax()), hard))
        return out


class Drnas(Strategy):
    @staticmethod
    def concentration(row: torch.Tensor) -> torch.Tensor:
        return F.elu(row) + 1.0

    def probabilities(self, logits: list[torch.Tensor]) -> list[torch.Tensor]:
        return [c / c.sum() for c in map(self.concentration, logits)]

    def choices(self, logits: list[torch.Tensor], progress: float) -> list[Any]:
        return [torch.distributions.Dirichlet(self.concentration(row)).rsample() for row in logits]

    def regularization(self, logits: list[torch.Tensor], progress: float) -> torch.Tensor:
        return self.o["reg_weight"] * sum((self.concentration(row) ** 2).sum() for row in logits)


STRATEGIES: dict[str, type[Strategy]] = {"darts": Darts, "gdas": Gdas, "drnas": Drnas}


def expected_latency(probabilities: list[torch.Tensor], fixed_ms: float, edge_ms: torch.Tensor) -> torch.Tensor:
    """E[latency] = fixed + sum over edges and ops of p(op) * ms(op) (FBNet, ProxylessNAS): a
    differentiable function of the probabilities. ``edge_ms``: (edges, ops)."""
    p = torch.stack(probabilities)  # (E, K)
    return fixed_ms + (p * edge_ms.to(p)).sum()


def straight_through(expected: torch.Tensor, derived_ms: float) -> torch.Tensor:
    """The derived cell's latency as the value, the expectation's gradient as the gradient (as GDAS does
    for its hard samples): the target is judged on the network the search would return now, while
    the probabilities of every op still receive the pressure. (The expectation of a nearly flat mixture
    lies far below the latency of any cell it derives, so a target on it alone never binds.)"""
    return expected - expected.detach() + derived_ms


def latency_loss(expected: torch.Tensor, weight: float, target: float, reference: float) -> torch.Tensor:
    """``weight * max(0, E/target - 1)`` with a target in ms (a hinge: no pressure below it), else
    ``weight * E / reference`` (the uniform mixture's latency)."""
    if target > 0:
        return weight * F.relu(expected / target - 1.0)
    return weight * expected / reference
