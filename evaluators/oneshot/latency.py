"""The table's latency of a derived cell, and the last step of a latency-aware search: a cell over the
target gives up, edge by edge, the choices that cost least belief per millisecond saved."""

from __future__ import annotations

import math
from typing import Any

import torch

from nas.space import path_ops

MAX_STEPS = 64


def path_ms(sp: Any, genotype: Any, fixed: float, edge_ms: torch.Tensor) -> float:
    """Fixed part plus the ms of every op on ``genotype``'s path (the table split by edge)."""
    n = edge_ms.shape[1]
    return fixed + sum(float(edge_ms[e, k]) for e, entry in enumerate(sp.oneshot_path(genotype))
                       for k in path_ops(entry, n))


def derived_latency(sp: Any, probs: list[torch.Tensor], fixed: float, edge_ms: torch.Tensor,
                    prevent_collapse: bool) -> float:
    """The latency of the cell derived from ``probs`` now."""
    rows = [[float(v) for v in p.detach()] for p in probs]
    return path_ms(sp, sp.oneshot_derive(rows, prevent_collapse=prevent_collapse), fixed, edge_ms)


def within_target(sp: Any, rows: list[list[float]], fixed: float, edge_ms: torch.Tensor, target: float,
                  prevent_collapse: bool) -> tuple[Any, int]:
    """(the derived cell, or the nearest one the table puts within ``target`` ms; edges changed).

    While over the target, the edge choice that loses the least log-probability per millisecond
    saved is switched to that cheaper op (its row's weight raised just above the row's maximum), and
    the cell is derived again. Stops after :data:`MAX_STEPS` switches, or when nothing cheaper is left.
    """
    rows = [list(r) for r in rows]
    genotype = sp.oneshot_derive(rows, prevent_collapse=prevent_collapse)
    changed = 0
    while path_ms(sp, genotype, fixed, edge_ms) > target and changed < MAX_STEPS:
        path = sp.oneshot_path(genotype)
        best: tuple[float, int, int] | None = None
        for e, entry in enumerate(path):
            current = path_ops(entry, edge_ms.shape[1])
            if len(current) != 1:
                continue
            k0 = current[0]
            for k, p in enumerate(rows[e]):
                saved = float(edge_ms[e, k0] - edge_ms[e, k])
                if saved > 1e-9:
                    cost = (math.log(max(rows[e][k0], 1e-12)) - math.log(max(p, 1e-12))) / saved
                    if best is None or cost < best[0]:
                        best = (cost, e, k)
        if best is None:
            break
        _, e, k = best
        rows[e][k] = max(rows[e]) + 1e-6
        genotype = sp.oneshot_derive(rows, prevent_collapse=prevent_collapse)
        changed += 1
    return genotype, changed
