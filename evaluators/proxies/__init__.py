"""Zero-cost proxies: scores of a network at initialisation that predict its accuracy after training.

Each proxy is a plain function ``proxy(net, batch, *, seed=0, **options) -> float`` of a built
network and, where it needs one, a minibatch ``(x, y)`` (inputs and class indices); a higher score
predicts a better network. A proxy works on a deep copy and never changes the caller's network
(weights, buffers, modes, gradients), and all its randomness comes from ``seed``.

:func:`score` runs one proxy by name and never raises for a failing network: NaN, infinity, an
exception or a network the proxy does not apply to come back as a :class:`ProxyScore` whose value is
``None`` and whose ``error`` says why in one line. :func:`vote` rank-averages several proxies over a
list of networks.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from evaluators.proxies._activation import RELU_FAMILY, jacob_cov, meco, naswot
from evaluators.proxies._baseline import flops, params
from evaluators.proxies._common import Batch, MissingInput, NotApplicable
from evaluators.proxies._pruning import fisher, grad_norm, grasp, snip, synflow
from evaluators.proxies._zico import zico

__all__ = ["PROXIES", "RELU_FAMILY", "MissingInput", "NotApplicable", "Proxy", "ProxyScore", "fisher", "flops",
           "grad_norm", "grasp", "jacob_cov", "meco", "naswot", "params", "score", "snip", "synflow", "vote", "zico"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: the function and whether it reads real data (inputs and labels of a batch);
    the others need at most an input shape."""

    function: Callable[..., float]
    needs_data: bool


@dataclass(frozen=True)
class ProxyScore:
    """One proxy's result for one network: ``value`` (higher is better) or ``None`` with a one-line
    ``error``, and the wall-clock seconds it took."""

    value: float | None
    error: str | None
    seconds: float


PROXIES: dict[str, Proxy] = {
    "synflow": Proxy(synflow, needs_data=False),
    "naswot": Proxy(naswot, needs_data=True),
    "jacob_cov": Proxy(jacob_cov, needs_data=True),
    "snip": Proxy(snip, needs_data=True),
    "grad_norm": Proxy(grad_norm, needs_data=True),
    "grasp": Proxy(grasp, needs_data=True),
    "fisher": Proxy(fisher, needs_data=True),
    "zico": Proxy(zico, needs_data=True),
    "meco": Proxy(meco, needs_data=True),
    "params": Proxy(params, needs_data=False),
    "flops": Proxy(flops, needs_data=False),
}


def score(name: str, net: Any, batch: Batch | None = None, *, seed: int = 0, **options: Any) -> ProxyScore:
    """Run the proxy ``name`` on ``net``, catching every failure of the network.

    Args:
        name: a key of :data:`PROXIES`.
        net: the built network (``torch.nn.Module``), left unchanged.
        batch: a minibatch ``(x, y)``; may be ``None`` for proxies that do not need data when what
            they need instead is in ``options`` (``input_shape``, or ``cost`` for flops).
        seed: seeds every random choice of the proxy.
        **options: the proxy's own keyword options (e.g. ``splits`` for zico, ``cost`` for flops).

    Returns:
        The score, or ``value=None`` and a one-line ``error`` naming the proxy: NaN or infinity, an
        exception (out of memory, a shape error), or a network the proxy does not apply to.

    Raises:
        KeyError: ``name`` is not a known proxy.
        ValueError: the caller's mistake: an option the proxy does not take, no batch for a proxy that
            needs one (:class:`MissingInput`).
    """
    if name not in PROXIES:
        raise KeyError(f"unknown proxy {name!r}; known: {', '.join(PROXIES)}")
    function = PROXIES[name].function
    try:
        inspect.signature(function).bind(net, batch, seed=seed, **options)
    except TypeError as error:
        raise ValueError(f"proxy {name}: {error}") from None
    start = time.perf_counter()
    try:
        value = float(function(net, batch, seed=seed, **options))
    except MissingInput:
        raise
    except Exception as error:  # the network's failure, reported rather than raised
        log.debug("proxy %s failed", name, exc_info=True)
        return ProxyScore(None, f"{name}: {_one_line(error)}", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return ProxyScore(None, f"{name}: the score is {value} (NaN or overflow in the network)", seconds)
    return ProxyScore(value, None, seconds)


def vote(scores_by_proxy: dict[str, list[float | None]]) -> list[float | None]:
    """Rank-average of several proxies over one list of networks (higher is better).

    Each proxy's scores are ranked (``scipy.stats.rankdata``, ties averaged, rank 1 the lowest) over
    the networks that every proxy scored; a network's vote is the mean of its ranks. A network that
    failed any proxy (``None``, NaN or infinity) gets ``None``.

    Args:
        scores_by_proxy: proxy name -> one score (or ``None``) per network, every list in the same order.

    Raises:
        ValueError: no proxies, or lists of different lengths.
    """
    from scipy.stats import rankdata

    if not scores_by_proxy:
        raise ValueError("vote needs the scores of at least one proxy")
    lengths = {name: len(values) for name, values in scores_by_proxy.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"vote needs one score per network from every proxy, got lengths {lengths}")
    count = next(iter(lengths.values()))
    valid = [i for i in range(count)
             if all(values[i] is not None and math.isfinite(values[i]) for values in scores_by_proxy.values())]
    votes: list[float | None] = [None] * count
    if not valid:
        return votes
    total = sum(rankdata([values[i] for i in valid]) for values in scores_by_proxy.values())
    for i, rank_sum in zip(valid, total):
        votes[i] = float(rank_sum) / len(scores_by_proxy)
    return votes


def _one_line(error: Exception) -> str:
    """A failure in one line: a not-applicable reason as it is, anything else with its type."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(error, NotApplicable):
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
