"""The correction of a latency table (torch-free): what the sum of measured blocks misses, fitted
on a few whole networks.

Candidate forms, each fitted on the table's fit networks by weighted least squares of relative
errors and scored by its leave-one-out error (the root mean square of the relative errors, which is
what the fits minimise: a form that is good on most networks but far off on a few loses to one that
is close on all); the candidates close to the best are averaged (:func:`choose_correction`):

- ``offset``: ``measured ~ raw + offset`` (the runtime's cost of a call);
- ``scale``: ``measured ~ scale * raw + offset``;
- ``per-block``: ``measured ~ scale * raw + per_block * blocks + offset``;
- ``kinds``: ``measured ~ scale * raw + sum(kind_ms[k] * count_k) + offset``: a cost per block of
  each kind (an op, a sum, a stem...) that measuring the block apart misses (the graph runtime
  fuses or reorders across block boundaries, or a cheap block costs more between its neighbours);
- ``blocks``: the kinds form plus a cost per block key (one op at one shape): what the whole
  networks say about each entry beyond its kind. Entries timed apart carry their own noise (a few %
  each, more for memory-bound ones whose speed depends on the machine's state), and a key recurs in
  many networks, so its error would rank them alike; the fit networks correct it.

The kind and key costs carry a ridge penalty (the strength, relative to the typical network's
latency, also chosen by leave-one-out), since a space has about as many kinds, and more keys, than
the table has fit networks: an entry keeps its measured value unless the networks say otherwise.
Leave-one-out errors are exact and cheap for these linear fits (the hat matrix's diagonal).

A scale outside [0.25, 4] disqualifies a candidate: the sum of the parts should be close.

What each piece carries, on held-out seeds (BENCHMARKS.md, "Latency tables that travel", ablation):
the scale and per-block forms up to 30 points within +-10% (vit); the kind costs 0.11 to 0.2 of
Kendall tau (NASNet under eager torch); the key costs and the averaging about 0.01 of tau or 2
points, borderline, kept until the full rerun decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

RIDGES = (0.1, 1.0, 10.0, 100.0, 1000.0)  # penalty strengths tried for kind costs (see the docstring)
KEY_RIDGES = (10.0, 100.0, 1000.0, 10000.0)  # ... and for key costs (many more terms: shrunk harder)
SCALE_RANGE = (0.25, 4.0)
WINDOW = 0.10  # candidates within 10% of the best leave-one-out error are averaged


@dataclass
class Correction:
    """A fitted correction: the table's ``scale``, ``per_block``, ``offset`` and ``kind_ms`` (costs
    per counted block of a kind, or of a block key: names with ``@``), the chosen form and every
    candidate's leave-one-out error."""

    scale: float = 1.0
    per_block: float = 0.0
    offset: float = 0.0
    kind_ms: dict[str, float] = field(default_factory=dict)
    form: str = "offset"
    loo: dict[str, float] = field(default_factory=dict)


def is_key(term: str) -> bool:
    """A correction term of one block key (``kind:args@shapes``), not of a kind."""
    return "@" in term


def ridge_fit(columns: Sequence[Sequence[float]], y: Sequence[float], penalty: Sequence[float] | None = None,
              base: Sequence[float] | None = None) -> tuple[list[float], float] | None:
    """Coefficients of ``y - base ~ columns`` minimising the squared relative errors (against
    ``y``) plus ``penalty[i] * coef[i] ** 2``, and the root mean square of the relative
    leave-one-out errors (None when the fit is singular or a point determines itself)."""
    x = np.asarray(columns, dtype=float).T  # networks x terms
    target = np.asarray(y, dtype=float)
    shift = np.asarray(base if base is not None else np.zeros(len(target)), dtype=float)
    w = 1.0 / target ** 2
    gram = (x * w[:, None]).T @ x + np.diag(np.asarray(penalty if penalty is not None else np.zeros(x.shape[1])))
    try:
        inverse = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(inverse)) or np.linalg.cond(gram) > 1e12:
        return None
    coef = inverse @ ((x * w[:, None]).T @ (target - shift))
    leverage = np.einsum("ij,jk,ik->i", x, inverse, x) * w
    if np.any(leverage > 1 - 1e-9):
        return None
    residual = (target - shift - x @ coef) / (1 - leverage)
    return [float(c) for c in coef], float(np.sqrt(np.mean((residual / target) ** 2)))


def _plain_candidates(raw: Sequence[float], measured: Sequence[float],
                      blocks: Sequence[float] | None) -> list[tuple[float, Correction]]:
    """(leave-one-out error, correction) of the offset, scale and per-block forms."""
    ones = [1.0] * len(raw)
    out = []
    fitted = ridge_fit([ones], measured, base=raw)
    if fitted is not None:
        out.append((fitted[1], Correction(offset=fitted[0][0])))
    fitted = ridge_fit([list(raw), ones], measured)
    if fitted is not None and SCALE_RANGE[0] <= fitted[0][0] <= SCALE_RANGE[1]:
        out.append((fitted[1], Correction(fitted[0][0], 0.0, fitted[0][1], form="scale")))
    if blocks is not None and len(raw) >= 6 and len(set(blocks)) > 1:
        fitted = ridge_fit([list(raw), list(map(float, blocks)), ones], measured)
        if fitted is not None and SCALE_RANGE[0] <= fitted[0][0] <= SCALE_RANGE[1]:
            coef = fitted[0]
            out.append((fitted[1], Correction(coef[0], coef[1], coef[2], form="per-block")))
    return out


def _term_candidates(raw: Sequence[float], measured: Sequence[float],
                     terms: Sequence[Mapping[str, int]]) -> list[tuple[float, Correction]]:
    """(leave-one-out error, correction) of the kinds form, one per ridge strength, and of the
    blocks form, one per pair of strengths (kind costs, key costs)."""
    n = len(raw)
    varying = sorted(t for t in {t for counts in terms for t in counts}
                     if len({counts.get(t, 0) for counts in terms}) > 1)  # constant ones: the offset's
    kinds = [t for t in varying if not is_key(t)]
    keys = [t for t in varying if is_key(t)]
    if not varying or n < 6:
        return []
    scale = float(np.median(measured)) ** 2
    grid = [(a, None) for a in RIDGES] if kinds else []
    grid += [(a, b) for a in (RIDGES if kinds else (0.0,)) for b in KEY_RIDGES] if keys else []
    out = []
    for kind_ridge, key_ridge in grid:
        names = kinds + (keys if key_ridge is not None else [])
        columns = [list(raw)] + [[float(counts.get(t, 0)) for counts in terms] for t in names] + [[1.0] * n]
        penalty = [0.0] + [kind_ridge / scale] * len(kinds) + [(key_ridge or 0.0) / scale] * (len(names) - len(kinds))
        fitted = ridge_fit(columns, measured, penalty + [0.0])
        if fitted is None or not SCALE_RANGE[0] <= fitted[0][0] <= SCALE_RANGE[1]:
            continue
        coef = fitted[0]
        costs = {t: c for t, c in zip(names, coef[1:-1]) if c != 0.0}
        form = (f"kinds (ridge {kind_ridge:g})" if key_ridge is None
                else f"blocks (ridge {kind_ridge:g}, keys {key_ridge:g})")
        out.append((fitted[1], Correction(coef[0], 0.0, coef[-1], costs, form=form)))
    return out


def average(corrections: Sequence[Correction]) -> Correction:
    """The correction whose predictions are the mean of ``corrections``' (every form is linear in the
    same terms, so the coefficients average)."""
    n = len(corrections)
    costs: dict[str, float] = {}
    for c in corrections:
        for term, ms in c.kind_ms.items():
            costs[term] = costs.get(term, 0.0) + ms / n
    return Correction(sum(c.scale for c in corrections) / n, sum(c.per_block for c in corrections) / n,
                      sum(c.offset for c in corrections) / n, costs)


def choose_correction(raw: Sequence[float], measured: Sequence[float], blocks: Sequence[float] | None = None,
                      terms: Sequence[Mapping[str, int]] | None = None) -> Correction:
    """The average of the candidates (see the module's docstring) whose leave-one-out error on the
    fit networks is within :data:`WINDOW` of the smallest (the offset alone with fewer than three
    networks, or a non-positive latency). Candidates that close are equally good as far as the fit
    networks can tell, and which one wins is the noise of the measurements: the average takes that
    coin toss out of the choice (on the stored validation rows of 2026-11-30 it moved the share
    within +-10% by -2 to +4 points against the single best).

    Args:
        raw: each fit network's sum of block entries (ms).
        measured: each fit network's measured latency (ms).
        blocks: each network's number of counted blocks (the per-block form).
        terms: each network's counted blocks per kind and per block key (``LatencyTable.term_counts``;
            the kinds and blocks forms).
    """
    n = len(raw)
    if n == 0:
        return Correction()
    candidates: list[tuple[float, Correction]] = []
    if n >= 3 and min(measured) > 0:
        candidates = _plain_candidates(raw, measured, blocks)
        if terms is not None:
            candidates += _term_candidates(raw, measured, terms)
    if not candidates:  # the mean difference
        return Correction(offset=sum(m - r for m, r in zip(measured, raw)) / n)
    best_error, best = min(candidates, key=lambda c: c[0])
    close = [c for err, c in candidates if err <= best_error * (1 + WINDOW)]
    chosen = average(close) if len(close) > 1 else best
    chosen.form = best.form if len(close) == 1 else f"average of {len(close)} (best: {best.form})"
    chosen.loo = {c.form: round(err, 6) for err, c in candidates}
    return chosen


def fit_correction(raw: Sequence[float], measured: Sequence[float],
                   blocks: Sequence[float] | None = None) -> tuple[float, float, float]:
    """``(scale, per_block, offset)`` of the best of the offset, scale and per-block forms
    (:func:`choose_correction` without the kinds and blocks forms)."""
    best = choose_correction(raw, measured, blocks)
    return best.scale, best.per_block, best.offset
