"""The correction of a latency table (torch-free): what the sum of measured blocks misses, fitted
on a few whole networks.

Candidate forms, each fitted on the table's fit networks and the one with the smallest
leave-one-out relative error kept (:func:`choose_correction`):

- ``offset``: ``measured ~ raw + offset`` (the runtime's cost of a call);
- ``scale``: ``measured ~ scale * raw + offset``;
- ``per-block``: ``measured ~ scale * raw + per_block * blocks + offset``;
- ``kinds``: ``measured ~ scale * raw + sum(kind_ms[k] * count_k) + offset``: a cost per block of
  each kind (an op, a sum, a stem...) that measuring the block apart misses (the graph runtime
  fuses or reorders across block boundaries, or a cheap block costs more between its neighbours),
  fitted on relative errors with a ridge penalty on the kind costs (strength also chosen by
  leave-one-out), since a space has about as many kinds as the table has fit networks.

A scale outside [0.25, 4] disqualifies a candidate: the sum of the parts should be close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

RIDGES = (0.01, 0.1, 1.0, 10.0)  # penalty strengths tried for the kind costs (relative units)
SCALE_RANGE = (0.25, 4.0)


@dataclass
class Correction:
    """A fitted correction: the table's ``scale``, ``per_block``, ``offset`` and ``kind_ms``, the
    chosen form and every candidate's leave-one-out relative error."""

    scale: float = 1.0
    per_block: float = 0.0
    offset: float = 0.0
    kind_ms: dict[str, float] = field(default_factory=dict)
    form: str = "offset"
    loo: dict[str, float] = field(default_factory=dict)


def solve(columns: Sequence[Sequence[float]], y: Sequence[float], weights: Sequence[float] | None = None,
          ridge: Sequence[float] | None = None) -> list[float] | None:
    """Weighted least-squares coefficients of ``y ~ columns`` with ``ridge[i]`` added to the i-th
    diagonal of the normal equations (None when singular)."""
    k = len(columns)
    w = weights or [1.0] * len(y)
    gram = [[sum(c * a * b for c, a, b in zip(w, columns[i], columns[j])) for j in range(k)] for i in range(k)]
    for i, penalty in enumerate(ridge or ()):
        gram[i][i] += penalty
    rhs = [sum(c * a * b for c, a, b in zip(w, columns[i], y)) for i in range(k)]
    for col in range(k):  # Gauss-Jordan with partial pivoting
        pivot = max(range(col, k), key=lambda r: abs(gram[r][col]))
        if abs(gram[pivot][col]) < 1e-12 * max(1.0, max(abs(v) for row in gram for v in row)):
            return None
        gram[col], gram[pivot], rhs[col], rhs[pivot] = gram[pivot], gram[col], rhs[pivot], rhs[col]
        for r in range(k):
            if r != col:
                f = gram[r][col] / gram[col][col]
                gram[r] = [a - f * b for a, b in zip(gram[r], gram[col])]
                rhs[r] -= f * rhs[col]
    return [rhs[i] / gram[i][i] for i in range(k)]


def loo_error(columns: list[list[float]], y: Sequence[float], base: Sequence[float] | None = None,
              weights: Sequence[float] | None = None, ridge: Sequence[float] | None = None) -> float:
    """Mean relative leave-one-out error of the fit ``y - base ~ columns`` (inf when a fit fails)."""
    base = base or [0.0] * len(y)
    target = [a - b for a, b in zip(y, base)]
    total = 0.0
    for i in range(len(y)):
        keep = [j for j in range(len(y)) if j != i]
        coef = solve([[c[j] for j in keep] for c in columns], [target[j] for j in keep],
                     [weights[j] for j in keep] if weights else None, ridge)
        if coef is None:
            return math.inf
        total += abs(base[i] + sum(w * c[i] for w, c in zip(coef, columns)) - y[i]) / y[i]
    return total / len(y)


def _plain_candidates(raw: Sequence[float], measured: Sequence[float],
                      blocks: Sequence[float] | None) -> list[tuple[float, Correction]]:
    """(leave-one-out error, correction) of the offset, scale and per-block forms."""
    n = len(raw)
    ones = [1.0] * n
    offset_only = Correction(offset=sum(m - r for m, r in zip(measured, raw)) / n)
    out = [(loo_error([ones], measured, raw), offset_only)]
    coef = solve([list(raw), ones], measured)
    if coef is not None and SCALE_RANGE[0] <= coef[0] <= SCALE_RANGE[1]:
        out.append((loo_error([list(raw), ones], measured), Correction(coef[0], 0.0, coef[1], form="scale")))
    if blocks is not None and n >= 6 and len(set(blocks)) > 1:
        columns = [list(raw), list(map(float, blocks)), ones]
        coef = solve(columns, measured)
        if coef is not None and SCALE_RANGE[0] <= coef[0] <= SCALE_RANGE[1]:
            out.append((loo_error(columns, measured), Correction(coef[0], coef[1], coef[2], form="per-block")))
    return out


def _kinds_candidates(raw: Sequence[float], measured: Sequence[float],
                      kinds: Sequence[Mapping[str, int]]) -> list[tuple[float, Correction]]:
    """(leave-one-out error, correction) of the kinds form, one per ridge strength."""
    n = len(raw)
    names = sorted({k for counts in kinds for k in counts})
    names = [k for k in names if len({counts.get(k, 0) for counts in kinds}) > 1]  # constant ones: the offset's
    if not names or n < 6:
        return []
    columns = [list(raw)] + [[float(counts.get(k, 0)) for counts in kinds] for k in names] + [[1.0] * n]
    weights = [1.0 / m ** 2 for m in measured]  # relative errors
    out = []
    for strength in RIDGES:
        ridge = [0.0] + [strength] * len(names) + [0.0]
        coef = solve(columns, measured, weights, ridge)
        if coef is None or not SCALE_RANGE[0] <= coef[0] <= SCALE_RANGE[1]:
            continue
        correction = Correction(coef[0], 0.0, coef[-1], dict(zip(names, coef[1:-1])), form=f"kinds (ridge {strength:g})")
        out.append((loo_error(columns, measured, weights=weights, ridge=ridge), correction))
    return out


def choose_correction(raw: Sequence[float], measured: Sequence[float], blocks: Sequence[float] | None = None,
                      kinds: Sequence[Mapping[str, int]] | None = None) -> Correction:
    """The candidate form (see the module's docstring) with the smallest leave-one-out relative
    error on the fit networks (the offset alone with fewer than three, or a non-positive latency).

    Args:
        raw: each fit network's sum of block entries (ms).
        measured: each fit network's measured latency (ms).
        blocks: each network's number of counted blocks (the per-block form).
        kinds: each network's counted blocks per kind (the kinds form).
    """
    n = len(raw)
    if n == 0:
        return Correction()
    if n < 3 or min(measured) <= 0:
        return Correction(offset=sum(m - r for m, r in zip(measured, raw)) / n)
    candidates = _plain_candidates(raw, measured, blocks)
    if kinds is not None:
        candidates += _kinds_candidates(raw, measured, kinds)
    best = min(candidates, key=lambda c: c[0])[1]
    best.loo = {c.form: round(err, 6) for err, c in candidates}
    return best


def fit_correction(raw: Sequence[float], measured: Sequence[float],
                   blocks: Sequence[float] | None = None) -> tuple[float, float, float]:
    """``(scale, per_block, offset)`` of the best of the offset, scale and per-block forms
    (:func:`choose_correction` without the kinds form)."""
    best = choose_correction(raw, measured, blocks)
    return best.scale, best.per_block, best.offset
