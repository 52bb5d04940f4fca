"""Latency measurement: finite positive numbers per backend, thread count and pinning, cache hits,
and the logic of the timed rounds on a clock the test moves."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import replace

import pytest
import torch
from torch import nn

from evaluators.latency import LatencyCache, keep_off, measure, pinned_cpus
from evaluators.timing import Settings, round_factors, steadied, summarize, time_rounds
from nas.config import SpecError
from tests.conftest import need

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
    assert 1 <= result.repeats <= 30 and result.cv >= 0  # a slow machine may reach max_seconds before min_repeats


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
    need(threads <= len(os.sched_getaffinity(0)), f"{threads} CPUs needed, {len(os.sched_getaffinity(0))} allowed")
    before = (torch.get_num_threads(), os.sched_getaffinity(0))
    spy = Spy()
    measure(spy, [(1, 4, 4)], Settings(threads=threads, **FAST))
    expected = frozenset(pinned_cpus(threads))
    assert len(expected) == threads
    assert spy.seen and all(seen == (threads, expected) for seen in spy.seen)
    assert (torch.get_num_threads(), os.sched_getaffinity(0)) == before


def test_reserved_cpus_keep_training_off_and_measurements_on_them():
    allowed = os.sched_getaffinity(0)
    need(len(allowed) >= 2, f"2 CPUs needed, {len(allowed)} allowed")
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


def test_cuda_without_a_device_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # on a GPU machine too, as if none were visible
    with pytest.raises(ValueError, match="no CUDA device"):
        Settings(device="cuda")


def test_round_factors_divide_out_a_drift_common_to_every_call():
    medians = [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [3.0, 6.0, 3.0]]
    factors = round_factors(medians)
    assert factors == pytest.approx([1.0, 2.0, 1.0])
    assert [steadied(m, factors) for m in medians] == [[1.0] * 3, [2.0] * 3, [3.0] * 3]
    assert round_factors(medians[:2]) == [1.0, 1.0, 1.0]  # two calls: nothing to tell drift from a call's own noise


class FakeClock:
    """A clock (seconds) that moves only when a fake call says it took time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def call_taking(self, ms: float, slowdowns: dict[int, float] | None = None):
        """A call that takes ``ms`` times the machine's slowdown at this call (by the count of calls so far)."""
        def call() -> None:
            self.now += ms * (slowdowns or {}).get(self.calls, 1.0) / 1e3
            self.calls += 1
        return call


def test_interleaved_calls_share_every_round_and_the_drift_is_taken_out():
    clock = FakeClock()
    # 3 warm-up runs of each of the 3 calls (calls 0-8), then one run a round (round_seconds 0): the
    # machine runs 1.6x slower in every other round, for every call of that round alike
    slow = {9 + 3 * r + i: 1.6 for r in (1, 3) for i in range(3)}
    calls = [clock.call_taking(ms, slow) for ms in (1.0, 2.0, 3.0)]
    settings = Settings(warmup=3, min_repeats=5, rounds=5, round_seconds=0.0, max_repeats=40, max_seconds=5.0)
    first, second, third = time_rounds(calls, settings, clock=clock)
    assert clock.calls == 9 + 3 * 5  # the drift is divided out: the spread check passes after 5 rounds
    assert (first.repeats, second.repeats, third.repeats) == (5, 5, 5)
    assert [m.median_ms for m in (first, second, third)] == pytest.approx([1.0, 2.0, 3.0])
    assert [m.cv for m in (first, second, third)] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert third.p90_ms == pytest.approx(3.0 * 1.6) and third.mean_ms == pytest.approx(3.0 * (3 + 2 * 1.6) / 5)


def test_rounds_time_each_call_for_round_seconds_and_stop_at_the_caps():
    settings = Settings(warmup=0, min_repeats=1, rounds=3, round_seconds=0.005, max_repeats=1000, max_seconds=1.0)
    clock = FakeClock()
    (steady,) = time_rounds([clock.call_taking(1.0)], settings, clock=clock)
    assert steady.repeats == 3 * 5 and clock.now == pytest.approx(0.015)  # 5 runs of 1 ms fill a 5 ms round
    # one run a round, of 1 ms and 2 ms in turn: the spread check never passes, a cap ends the rounds
    alternating, one_run = {n: 2.0 for n in range(1, 1000, 2)}, replace(settings, round_seconds=0.0)
    clock = FakeClock()
    (capped,) = time_rounds([clock.call_taking(1.0, alternating)], replace(one_run, max_repeats=20), clock=clock)
    assert capped.repeats == clock.calls == 20 and capped.median_ms == pytest.approx(1.5)
    clock = FakeClock()
    (late,) = time_rounds([clock.call_taking(1.0, alternating)], replace(one_run, max_seconds=0.0505), clock=clock)
    assert late.repeats == 34 and clock.now == pytest.approx(0.051)  # the round that ends past the deadline is the last
