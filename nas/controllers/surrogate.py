"""A small Gaussian-process surrogate over a space's flat params (numpy and SciPy, no torch).

Architectures are compared through their Optuna params: the distance between two is the number of
categorical params that differ plus the range-normalised gaps of numeric ones, and the kernel is
``exp(-distance / lengthscale)``. Targets are rank-transformed to normal scores, which makes the
model indifferent to the metric's scale and to outliers (collapsed networks at 10% accuracy).
The lengthscale and noise are chosen by marginal likelihood on a small grid.

Written here rather than with scikit-learn's ``GaussianProcessRegressor``: its kernels take numeric
vectors, and this distance over mixed categorical and numeric params (with the refits pinned to
member counts, so that a resumed run chooses as an uninterrupted one) would need a custom kernel
class of about the same size; the linear algebra is numpy's and the normal CDF SciPy's.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import special

_LENGTHSCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
_NOISES = (1e-3, 1e-2, 0.05, 0.2)


class ParamEncoder:
    """Turns param dicts into (categorical codes, normalised numbers) arrays."""

    def __init__(self, distributions: Mapping[str, Any]) -> None:
        self.categorical = [(k, {c: i for i, c in enumerate(d.choices)})
                            for k, d in distributions.items() if hasattr(d, "choices")]
        self.numeric = [(k, float(d.low), float(d.high)) for k, d in distributions.items()
                        if not hasattr(d, "choices")]

    def encode(self, params: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Codes (n, n_categorical) and numbers in [0, 1] (n, n_numeric)."""
        codes = np.array([[index[p[k]] for k, index in self.categorical] for p in params], dtype=np.int32)
        numbers = np.array([[(float(p[k]) - lo) / ((hi - lo) or 1.0) for k, lo, hi in self.numeric]
                            for p in params], dtype=float)
        return codes.reshape(len(params), -1), numbers.reshape(len(params), -1)


def distances(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Pairwise distances (n_a, n_b): differing categorical params + numeric absolute gaps."""
    d = (a[0][:, None, :] != b[0][None, :, :]).sum(-1).astype(float)
    if a[1].shape[1]:
        d += np.abs(a[1][:, None, :] - b[1][None, :, :]).sum(-1)
    return d


def normal_scores(values: Sequence[float]) -> np.ndarray:
    """Ranks mapped to standard-normal quantiles (ties share their mean rank)."""
    y = np.asarray(values, dtype=float)
    order = np.argsort(y, kind="stable")
    ranks = np.empty(len(y))
    ranks[order] = np.arange(len(y))
    for value in np.unique(y):  # average ranks of ties
        tied = y == value
        ranks[tied] = ranks[tied].mean()
    return special.ndtri((ranks + 0.5) / len(y))


class GP:
    """Exact GP regression with the exponential distance kernel and a constant (zero) mean."""

    def __init__(self, x: tuple[np.ndarray, np.ndarray], y: np.ndarray,
                 hyper: tuple[float, float] | None = None) -> None:
        self.x, self.y = x, y
        self.dist = distances(x, x)
        self.hyper = hyper or self.fit_hyper()
        self._factor(*self.hyper)

    def fit_hyper(self) -> tuple[float, float]:
        """(lengthscale, noise) maximising the marginal likelihood over the grid."""
        best, best_ll = (_LENGTHSCALES[0], _NOISES[0]), -math.inf
        for lengthscale in _LENGTHSCALES:
            for noise in _NOISES:
                ll = self._log_likelihood(lengthscale, noise)
                if ll > best_ll:
                    best, best_ll = (lengthscale, noise), ll
        return best

    def _log_likelihood(self, lengthscale: float, noise: float) -> float:
        k = np.exp(-self.dist / lengthscale) + noise * np.eye(len(self.y))
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            return -math.inf
        alpha = np.linalg.solve(k, self.y)
        return float(-0.5 * self.y @ alpha - np.log(np.diag(chol)).sum())

    def _factor(self, lengthscale: float, noise: float) -> None:
        k = np.exp(-self.dist / lengthscale) + noise * np.eye(len(self.y))
        self.chol_inv = np.linalg.inv(np.linalg.cholesky(k))  # L^-1, so predictions are matmuls
        self.alpha = self.chol_inv.T @ (self.chol_inv @ self.y)

    def predict(self, x: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at ``x``."""
        k_star = np.exp(-distances(x, self.x) / self.hyper[0])  # (m, n)
        mean = k_star @ self.alpha
        v = self.chol_inv @ k_star.T  # (n, m)
        var = np.clip(1.0 - (v * v).sum(0), 1e-12, None)
        return mean, np.sqrt(var)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.01) -> np.ndarray:
    """EI of maximisation over ``best``."""
    z = (mean - best - xi) / std
    return (mean - best - xi) * special.ndtr(z) + std * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


MAX_FIT = 300  # members the GP is fitted to at most: the best half and the most recent half
FEATURE_WEIGHT = 2.0  # a feature's full range counts as two differing categorical params in the distance


class SurrogateRanker:
    """Ranks candidate genotypes of a space by expected improvement under a GP fitted to members.

    Hyperparameters are refitted whenever the member count reaches a new multiple of ten, using
    exactly those first members, so a resumed run makes the same choices as an uninterrupted one.
    Past ``MAX_FIT`` members, the GP sees the best ``MAX_FIT/2`` and the most recent ones, which
    keeps a proposal's cost flat in long searches.
    """

    def __init__(self, space: Any) -> None:
        self.space = space
        self.encoder = ParamEncoder(space.distributions())
        self._hyper: dict[int, tuple[float, float]] = {}

    def rank(self, members: Sequence[Any], candidates: Sequence[Any],
             features: Mapping[str, float] | None = None) -> list[Any]:
        """``candidates`` from most to least promising; members need ``genotype``, ``arch_id``, ``values``.

        ``features`` (arch id -> a number in [0, 1], e.g. a proxy score's percentile) adds one
        numeric input to the GP, weighted :data:`FEATURE_WEIGHT`; every member and candidate must have one.
        """
        unique = list({m.arch_id: m for m in reversed(members)}.values())[::-1]  # first occurrence wins
        hyper = None if features else self._hyperparameters(unique)  # with a feature: fitted on this call
        if len(unique) > MAX_FIT:
            keep = {id(m) for m in sorted(unique, key=lambda m: m.values, reverse=True)[:MAX_FIT // 2]}
            keep |= {id(m) for m in unique[-(MAX_FIT - len(keep)):]}
            unique = [m for m in unique if id(m) in keep]
        x = self._inputs([m.genotype for m in unique], features)
        y = normal_scores([m.values[0] for m in unique])
        gp = GP(x, y, hyper)
        mean, std = gp.predict(self._inputs(list(candidates), features))
        scores = expected_improvement(mean, std, float(y.max()))
        return [candidates[i] for i in np.argsort(-scores, kind="stable")]

    def _inputs(self, genotypes: Sequence[Any], features: Mapping[str, float] | None) -> tuple[np.ndarray, np.ndarray]:
        codes, numbers = self.encoder.encode([self.space.to_params(g) for g in genotypes])
        if not features:
            return codes, numbers
        extra = FEATURE_WEIGHT * np.array([[features[g.arch_id]] for g in genotypes], dtype=float)
        return codes, np.hstack([numbers, extra.reshape(len(genotypes), 1)])

    def _hyperparameters(self, members: Sequence[Any]) -> tuple[float, float]:
        key = min(max(len(members) // 10 * 10, min(len(members), 2)), MAX_FIT)
        if key not in self._hyper:
            head = members[:key]
            x = self.encoder.encode([self.space.to_params(m.genotype) for m in head])
            self._hyper[key] = GP(x, normal_scores([m.values[0] for m in head])).hyper
        return self._hyper[key]
