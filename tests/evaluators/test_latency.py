"""Latency measurement: finite positive numbers per backend, thread count and pinning, cache hits."""

from __future__ import annotations

import contextlib
import math
import os
import time

import pytest
import torch
from torch import nn

from evaluators.latency import (LatencyCache, Settings, keep_off, measure, pinned_cpus, round_factors, steadied,
                                summarize, time_rounds)
from nas.config import SpecError

FAST = {"warmup": 2, "min_repeats": 5, "max_repeats": 30, "max_seconds": 0.3}


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "onnxruntime-int8"])
def test_measure_returns_finite_positive_numbers(backend):
    result = measure(small_net(), [(3, 16, 16)], Settings(backend=backend, **FAST))
    for value in (result.median_ms, result.p90_ms, result.mean_ms):
        assert math.isfinite(value) and value > 0
    assert result.p90_ms >= result.median_ms
    assert 5 <= result.repeats <= 30 and result.cv >= 0


class Spy(nn.Module):
    """Records the torch thread count and CPU affinity it runs under."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, frozenset[int]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((torch.get_num_threads(), frozenset(os.sched_getaffinity(0))))
        return x * 2


@pytest.mark.parametrize("threads", [1, 2])
def test_measure_runs_with_the_thread_count_and_pinned_cpus_then_restores(threads):
    if threads > len(os.sched_getaffinity(0)):
        pytest.skip("fewer CPUs than threads")
    before = (torch.get_num_threads(), os.sched_getaffinity(0))
    spy = Spy()
    measure(spy, [(1, 4, 4)], Settings(threads=threads, **FAST))
    expected = frozenset(pinned_cpus(threads))
    assert len(expected) == threads
    assert spy.seen and all(seen == (threads, expected) for seen in spy.seen)
    assert (torch.get_num_threads(), os.sched_getaffinity(0)) == before


def test_reserved_cpus_keep_training_off_and_measurements_on_them():
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("needs two CPUs")
    reserved = max(allowed)
    before = {tid: os.sched_getaffinity(tid) for tid in map(int, os.listdir("/proc/self/task"))}
    try:
        rest = keep_off([reserved])
        assert set(rest) == allowed - {reserved} and os.sched_getaffinity(0) == set(rest)
        spy = Spy()
        measure(spy, [(1, 4, 4)], Settings(cpus=(reserved,), **FAST))
        assert spy.seen and all(cpus == {reserved} for _, cpus in spy.seen)
        assert os.sched_getaffinity(0) == set(rest)  # back off the reserved CPU after measuring
        with pytest.raises(SpecError, match="latency_cpus"):
            keep_off(sorted(allowed))
        with pytest.raises(SpecError, match="latency cpus"):
            Settings(cpus=(10_000,))
    finally:
        for tid, mask in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)


def test_cache_hits_skip_measuring_and_persist(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = LatencyCache(path)
    built = []

    def make() -> nn.Module:
        built.append(1)
        return small_net()

    settings = Settings(**FAST)
    first = cache.get_or_measure("arch-a", make, [(3, 16, 16)], settings)
    again = cache.get_or_measure("arch-a", make, [(3, 16, 16)], settings)
    assert first == again and len(built) == 1 and (cache.hits, cache.misses) == (1, 1)
    # another thread count, batch or input shape is another entry
    cache.get_or_measure("arch-a", make, [(3, 16, 16)], Settings(batch=2, **FAST))
    cache.get_or_measure("arch-a", make, [(3, 8, 8)], settings)
    assert len(built) == 3 and len(cache) == 3
    reloaded = LatencyCache(path)
    assert len(reloaded) == 3
    assert reloaded.get_or_measure("arch-a", make, [(3, 16, 16)], settings) == first and len(built) == 3


def test_summary_statistics_by_hand():
    result = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert result.median_ms == 3.0 and result.p90_ms == 10.0 and result.mean_ms == 4.0
    assert result.cv == pytest.approx(math.sqrt(10.0) / 4.0)


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="backend"):
        Settings(backend="tensorrt")
    with pytest.raises(ValueError, match="threads"):
        Settings(threads=0)


def test_cuda_without_a_device_is_refused():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    with pytest.raises(ValueError, match="no CUDA device"):
        Settings(device="cuda")


def test_round_factors_divide_out_a_drift_common_to_every_call():
    medians = [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [3.0, 6.0, 3.0]]
    factors = round_factors(medians)
    assert factors == pytest.approx([1.0, 2.0, 1.0])
    assert [steadied(m, factors) for m in medians] == [[1.0] * 3, [2.0] * 3, [3.0] * 3]
    assert round_factors(medians[:2]) == [1.0, 1.0, 1.0]  # two calls: nothing to tell drift from a call's own noise


def test_interleaved_calls_share_every_round_and_the_drift_is_taken_out():
    count = [0]

    def busy(ms: float):
        def call():
            slow = 1.6 if (count[0] // 3) % 2 else 1.0  # the machine slows down every other round
            count[0] += 1
            end = time.perf_counter() + ms * slow / 1000
            while time.perf_counter() < end:
                pass
        return call

    settings = Settings(warmup=3, min_repeats=5, rounds=5, round_seconds=0.0, max_repeats=40, max_seconds=5.0)
    first, second, third = time_rounds([busy(1.0), busy(2.0), busy(3.0)], settings)
    assert first.repeats == second.repeats == third.repeats  # one run a round (round_seconds 0), every round
    assert second.median_ms / first.median_ms == pytest.approx(2.0, rel=0.15)
    assert third.median_ms / first.median_ms == pytest.approx(3.0, rel=0.15)
