"""Latency measurement on CUDA (marker ``gpu``: deselected by default; ``pytest -m gpu`` on a GPU box)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from evaluators.latency import measure
from evaluators.timing import Settings
from tests.conftest import need

pytestmark = pytest.mark.gpu


def test_cuda_measurement_with_events_is_finite_and_positive():
    need(torch.cuda.is_available(), "no CUDA device")
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1))
    result = measure(model, [(3, 64, 64)], Settings(device="cuda", batch=8, warmup=3, min_repeats=5,
                                                    max_repeats=50, max_seconds=1.0))
    assert math.isfinite(result.median_ms) and result.median_ms > 0 and result.p90_ms >= result.median_ms

