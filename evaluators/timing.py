"""Timing calls in interleaved rounds: the measurement settings (:class:`Settings`), the rounds and
their drift correction (:func:`time_rounds`), and the summary of the timed runs (:class:`Measurement`).

The clock is a parameter (``clock``: seconds, :func:`time.perf_counter` unless a caller gives
another), so that the logic of the rounds can be checked with durations a test chooses.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import torch

from nas.config import SpecError

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "onnxruntime-int8")
DEVICES: tuple[str, ...] = ("cpu", "cuda")

Clock = Callable[[], float]  # seconds since any fixed point


@dataclass(frozen=True)
class Settings:
    """How to measure: backend, device, batch size, threads and the repeat policy."""

    backend: str = "torch"
    device: str = "cpu"
    batch: int = 1
    threads: int = 1
    warmup: int = 5
    min_repeats: int = 10
    max_repeats: int = 10000
    target_cv: float = 0.05
    max_seconds: float = 2.0
    rounds: int = 5  # interleaved rounds (a lone call: back to back)
    round_seconds: float = 0.02  # time each call gets in a round
    cpus: tuple[int, ...] = ()  # CPUs to pin to (empty: the last `threads` allowed ones)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SpecError(f"latency backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.device not in DEVICES:
            raise SpecError(f"latency device: expected cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SpecError("latency device: 'cuda' requested but no CUDA device is visible")
        if any(c < 0 or c >= (os.cpu_count() or 1) for c in self.cpus):
            raise SpecError(f"latency cpus: expected CPU numbers below {os.cpu_count()}, got {list(self.cpus)}")
        if self.batch < 1 or self.threads < 1:
            raise SpecError(f"latency: batch and threads must be >= 1, got {self.batch} and {self.threads}")

    def key(self) -> str:
        """The part of a cache key these settings contribute."""
        return f"{self.backend}|{self.device}|b{self.batch}|t{self.threads}"


@dataclass(frozen=True)
class Measurement:
    """Summary of the timed runs (milliseconds)."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    cv: float
    repeats: int
    min_ms: float = float("nan")

    def stat(self, name: str) -> float:
        """``median`` or ``min`` (ms)."""
        return self.min_ms if name == "min" else self.median_ms

    def to_dict(self) -> dict[str, float]:
        """Plain data."""
        return asdict(self)


def summarize(times_ms: Sequence[float]) -> Measurement:
    """Median, p90 (nearest rank), mean, coefficient of variation and minimum of ``times_ms``."""
    ordered = sorted(times_ms)
    mean = statistics.fmean(ordered)
    cv = statistics.pstdev(ordered) / mean if len(ordered) > 1 and mean > 0 else 0.0
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return Measurement(statistics.median(ordered), p90, mean, cv, len(ordered), ordered[0])


def _timed(call: Callable[[], Any], cuda: bool, sync: Callable[[], None] | None, clock: Clock) -> float:
    """One timed call (ms): CUDA events around it on CUDA, ``clock`` otherwise."""
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    started = clock()
    call()
    if sync is not None:
        sync()
    return (clock() - started) * 1e3


def time_rounds(calls: Sequence[Callable[[], Any]], settings: Settings, sync: Callable[[], None] | None = None,
                clock: Clock = time.perf_counter) -> list[Measurement]:
    """Time several calls in interleaved rounds (each round: every call for ``round_seconds``).

    Interleaving spreads the machine's slow drifts (frequency, neighbours' load) over the calls
    alike, so they compare fairly. Every call is timed in every round (a call that left early would
    miss the drift of the later rounds, and e.g. a block's alone and repeated forms would then be
    timed at different speeds): the rounds go on until every call has ``rounds`` round medians whose
    CV is at most ``target_cv`` (the spread check), or ``max_repeats`` runs, or ``max_seconds`` per
    call are spent. With three calls or more, each round's common factor (the median over the calls
    of the round's median against the call's own) is divided out before a call's ``median_ms``, the
    median of its round medians, is taken: what remains of the drift between rounds. ``clock``
    (seconds) times the runs, the rounds and the deadline (CUDA runs: CUDA events time the runs).
    """
    cuda = settings.device == "cuda" and settings.backend == "torch"
    timed = functools.partial(_timed, cuda=cuda, sync=sync, clock=clock)
    for call in calls:
        for _ in range(settings.warmup):
            call()
    times: list[list[float]] = [[] for _ in calls]
    medians: list[list[float]] = [[] for _ in calls]
    done = [False] * len(calls)  # max_repeats reached: no more rounds for this call
    factors: list[float] = []  # each round's speed factor, updated after every round
    deadline = clock() + settings.max_seconds * len(calls)
    while not all(done) and (clock() < deadline or not medians[-1]):
        for i, call in enumerate(calls):
            if not done[i]:
                _round(call, times[i], medians[i], settings, timed, clock)
                done[i] = len(times[i]) >= settings.max_repeats
        factors = round_factors(medians)
        if all(len(m) >= settings.rounds and summarize(steadied(m, factors)).cv <= settings.target_cv
               for m in medians):
            break
    return [_steady_summary(runs, meds, factors) for runs, meds in zip(times, medians)]


def _round(call: Callable[[], Any], runs: list[float], medians: list[float], settings: Settings,
           timed: Callable[[Callable[[], Any]], float], clock: Clock) -> None:
    """One call's turn in a round: at least ``min_repeats / rounds`` runs and ``round_seconds``
    (at most ``max_repeats`` runs in all), appended to ``runs``; their median to ``medians``."""
    per_round = max(1, math.ceil(settings.min_repeats / settings.rounds))
    this: list[float] = []
    started = clock()
    while len(this) < per_round or (clock() - started) < settings.round_seconds:
        this.append(timed(call))
        if len(runs) + len(this) >= settings.max_repeats:
            break
    runs.extend(this)
    medians.append(statistics.median(this))


def _steady_summary(runs: Sequence[float], medians: Sequence[float], factors: Sequence[float]) -> Measurement:
    """The runs' summary, with the median and CV of the round medians once the drift is divided out."""
    summary = summarize(runs)
    steady = steadied(medians, factors)
    median = statistics.median(steady)
    return replace(summary, median_ms=median, p90_ms=max(summary.p90_ms, median), cv=summarize(steady).cv)


def steadied(medians: Sequence[float], factors: Sequence[float]) -> list[float]:
    """A call's round medians with each round's speed factor divided out."""
    return [m / f for m, f in zip(medians, factors)]


def round_factors(medians: Sequence[Sequence[float]]) -> list[float]:
    """Each round's speed factor: the median over the calls of the round's median divided by the
    call's median over all rounds (1.0 for every round with fewer than three calls)."""
    rounds = max((len(m) for m in medians), default=0)
    if len(medians) < 3:
        return [1.0] * rounds
    typical = [statistics.median(m) if m else 0.0 for m in medians]
    factors = []
    for r in range(rounds):
        ratios = [m[r] / t for m, t in zip(medians, typical) if len(m) > r and t > 0]
        factors.append(statistics.median(ratios) if ratios else 1.0)
    return factors
