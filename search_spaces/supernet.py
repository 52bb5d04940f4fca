"""Pieces every space's supernet shares: the mixed edge and how a choice is written.

A supernet holds, on every edge of every cell, one module per candidate op, built by ``ops.py``'s
factories exactly as the standalone network builds them, so a single path through it *is* that
network. What flows through an edge is decided per forward by an ``Arch``: one choice per edge of
the space's torch-free description (``SearchSpace.oneshot_edges``):

* an ``int``: that op alone (single-path sampling, a derived genotype); ``-1``: the edge is unused;
* a 1-D tensor of op weights: the weighted sum (DARTS, DrNAS); zero weights are not computed;
* a pair ``(index, weights)``: op ``index`` alone, scaled by ``weights[index]`` (GDAS: a hard
  one-hot sample whose value is 1 while its gradient reaches every op's logit).
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from search_spaces.ops import make_op

Choice = Union[int, torch.Tensor, tuple[int, torch.Tensor]]
Arch = Sequence[Choice]
UNUSED = -1


class MixedEdge(nn.Module):
    """Every candidate op of one edge, each with its own weights, shared by all paths through it."""

    def __init__(self, ops: Sequence[str], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.names = tuple(ops)
        self.ops = nn.ModuleList(make_op(op, c_in, c_out, stride) for op in ops)

    def forward(self, x: torch.Tensor, choice: Choice) -> torch.Tensor | None:
        """The edge's output under ``choice``; None when nothing flows (unused edge, ``none`` op,
        all-zero weights), so that the caller skips the term exactly as the standalone cell does."""
        if isinstance(choice, int):
            return None if choice == UNUSED or self.names[choice] == "none" else self.ops[choice](x)
        if isinstance(choice, tuple):
            index, weights = choice
            if self.names[index] == "none":
                return None
            return weights[index] * self.ops[index](x)
        terms = [w * op(x) for name, op, w in zip(self.names, self.ops, choice)
                 if name != "none" and (w.requires_grad or float(w) != 0.0)]
        return sum(terms[1:], terms[0]) if terms else None


def add_terms(terms: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """A node's sum in the standalone cells' order (first term plus the rest), zeros if there is none."""
    return sum(terms[1:], terms[0]) if terms else torch.zeros_like(like)


def path_state(supernet_state: dict[str, torch.Tensor], edges: dict[str, tuple[str, int]]) -> dict[str, torch.Tensor]:
    """The standalone network's state dict cut out of a supernet's.

    Args:
        supernet_state: the supernet's ``state_dict()``.
        edges: supernet edge prefix (``"cells.0.edges.3"``) -> (standalone module prefix, op index);
            parameters of every other edge op are dropped, every name outside an edge is kept as is.
    """
    out: dict[str, torch.Tensor] = {}
    for name, value in supernet_state.items():
        head, sep, rest = name.partition(".ops.")
        if not sep:
            out[name] = value
            continue
        target = edges.get(head)
        index, _, leaf = rest.partition(".")
        if target is not None and int(index) == target[1]:
            out[f"{target[0]}.{leaf}" if target[0] else leaf] = value
    return out
