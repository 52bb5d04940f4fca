"""The evaluator's CUDA path (marker ``gpu``: deselected by default, run with ``-m gpu`` on a GPU box).

Run where a CUDA device is visible: ``.venv/bin/python -m pytest -m gpu tests/evaluators/test_train_gpu.py``.
"""

from __future__ import annotations

import random

import pytest
import torch

from evaluators.train import TrainEvaluator
from nas.evaluator import COMPLETE, FAILED, Job, NullReporter, run_job
from search_spaces.nasnet.space import NASNetSpace
from tests.conftest import need

pytestmark = pytest.mark.gpu

SPACE = NASNetSpace(preset="proxy", filters=8)
GENOTYPE = SPACE.sample(random.Random(0))


def job(budget: dict, genotype=GENOTYPE, seed: int = 0) -> Job:
    return Job(0, 0, genotype.to_json(), genotype.arch_id, budget, seed)


@pytest.fixture(scope="module")
def cuda_evaluator() -> TrainEvaluator:
    need(torch.cuda.is_available(), "no CUDA device visible")
    return TrainEvaluator(SPACE, {"data": "digits", "device": "cuda", "batch_size": 64})


def test_trains_on_cuda_with_bf16_and_channels_last(cuda_evaluator):
    assert cuda_evaluator.device.type == "cuda"
    assert cuda_evaluator.memory_format == torch.channels_last
    result = run_job(cuda_evaluator, job({"epochs": 3}), NullReporter())
    assert result.state == COMPLETE, result.error
    assert result.metrics["accuracy"] > 80 and result.metrics["images_per_second"] > 0


def test_cuda_out_of_memory_fails_the_trial_and_the_evaluator_goes_on(cuda_evaluator):
    free, _ = torch.cuda.mem_get_info()
    hog = None
    try:
        # leave almost nothing free, so the candidate's first batch cannot be allocated
        hog = torch.empty(max(free - (8 << 20), 0), dtype=torch.uint8, device="cuda")
        failed = run_job(cuda_evaluator, job({"epochs": 1}), NullReporter())
    finally:
        del hog
        torch.cuda.empty_cache()
    assert failed.state == FAILED and "out of memory" in failed.error.lower()
    again = run_job(cuda_evaluator, job({"epochs": 1}), NullReporter())
    assert again.state == COMPLETE, again.error
