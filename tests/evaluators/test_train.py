"""The brief-training evaluator: results, failures as failed trials, pruning, determinism."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from evaluators.train import TrainEvaluator
from nas.evaluator import COMPLETE, FAILED, PRUNED, Job, NullReporter, run_job
from search_spaces.nasnet.space import NASNetSpace

SPACE = NASNetSpace(preset="proxy", filters=4)
GENOTYPE = SPACE.sample(random.Random(0))


@pytest.fixture(scope="module")
def evaluator() -> TrainEvaluator:
    return TrainEvaluator(SPACE, {"data": "digits", "train_limit": 256, "batch_size": 32})


def job(budget: dict, seed: int = 0) -> Job:
    return Job(0, 0, GENOTYPE.to_json(), GENOTYPE.arch_id, budget, seed)


class Prune:
    def __init__(self, at: int) -> None:
        self.at, self.reports = at, []

    def report(self, step: int, value: float) -> bool:
        self.reports.append((step, value))
        return step >= self.at


def test_trains_and_reports_every_metric(evaluator):
    result = run_job(evaluator, job({"epochs": 2}), NullReporter())
    assert result.state == COMPLETE, result.error
    assert set(result.metrics) == set(TrainEvaluator.METRICS)
    assert 0 <= result.metrics["accuracy"] <= 100 and result.metrics["images_per_second"] > 0
    assert [step for step, _ in result.info["curve"]] == [1, 2]
    assert result.metrics["epochs"] == pytest.approx(2.0)


def test_steps_budget_stops_early(evaluator):
    result = run_job(evaluator, job({"epochs": 0, "steps": 3}), NullReporter())
    assert result.info["steps"] == 3 and result.metrics["epochs"] == pytest.approx(3 / 8)


def test_same_seed_same_result_on_cpu(evaluator):
    a = run_job(evaluator, job({"epochs": 1}, seed=5), NullReporter())
    b = run_job(evaluator, job({"epochs": 1}, seed=5), NullReporter())
    c = run_job(evaluator, job({"epochs": 1}, seed=6), NullReporter())
    keys = ("accuracy", "loss", "train_loss")
    assert [a.metrics[k] for k in keys] == [b.metrics[k] for k in keys]
    assert [a.metrics[k] for k in keys] != [c.metrics[k] for k in keys]


def test_curve_limit_scores_only_the_last_epoch_on_every_validation_image(evaluator):
    limited = TrainEvaluator(SPACE, {"data": "digits", "train_limit": 256, "batch_size": 32, "curve_limit": 8})
    full = run_job(evaluator, job({"epochs": 3}), NullReporter())
    result = run_job(limited, job({"epochs": 3}), NullReporter())
    assert result.state == COMPLETE, result.error
    earlier, last = result.info["curve"][:-1], result.info["curve"][-1]
    assert len(earlier) == 2 and all(value % 12.5 == 0 for _, value in earlier)  # 8 images: steps of 12.5%
    # the last epoch is scored on the whole split: the same training gives the unlimited run's metrics
    assert last == full.info["curve"][-1] and result.metrics["accuracy"] == full.metrics["accuracy"]
    assert result.metrics["loss"] == full.metrics["loss"] and len(evaluator.data.y_valid) > 8


def test_pruning_stops_the_trial_after_the_reported_epoch(evaluator):
    reporter = Prune(at=1)
    result = run_job(evaluator, job({"epochs": 3}), reporter)
    assert result.state == PRUNED and len(reporter.reports) == 1 and result.info["pruned_at"] == 1


def test_non_finite_loss_is_a_failed_trial():
    exploding = TrainEvaluator(SPACE, {"data": "digits", "train_limit": 256, "batch_size": 32, "lr": 1e30,
                                       "grad_clip": 0.0})
    result = run_job(exploding, job({"epochs": 2}), NullReporter())
    assert result.state == FAILED and "non-finite loss" in result.error


def test_a_candidate_that_raises_is_a_failed_trial(evaluator, monkeypatch):
    monkeypatch.setattr(SPACE, "build", lambda genotype, task=None: nn.Linear(3, 4))  # wrong input shape
    result = run_job(evaluator, job({"epochs": 1}), NullReporter())
    assert result.state == FAILED and result.error.startswith("RuntimeError")


def test_cuda_out_of_memory_fails_the_trial_and_the_worker_keeps_serving(evaluator, monkeypatch):
    from evaluators import train

    calls = {"n": 0}
    original = train.Trainer.run

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(self)

    monkeypatch.setattr(train.Trainer, "run", flaky)
    first = run_job(evaluator, job({"steps": 2, "epochs": 0}), NullReporter())
    second = run_job(evaluator, job({"steps": 2, "epochs": 0}), NullReporter())
    assert first.state == FAILED and first.error.startswith("CUDA out of memory")
    assert second.state == COMPLETE


def test_auxiliary_head_and_drop_path_train(monkeypatch):
    space = NASNetSpace(preset="proxy", filters=4, auxiliary=True, drop_path=0.3)
    evaluator = TrainEvaluator(space, {"data": "digits", "train_limit": 128, "batch_size": 32})
    result = run_job(evaluator, Job(0, 0, GENOTYPE.to_json(), "", {"epochs": 1}, 0), NullReporter())
    assert result.state == COMPLETE, result.error


def test_unknown_budget_key_is_rejected(evaluator):
    result = run_job(evaluator, job({"epoch": 1}), NullReporter())
    assert result.state == FAILED and "evaluator.budget.epoch: unknown key" in result.error


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_warmup_ramps_the_learning_rate_then_follows_the_schedule(schedule):
    from evaluators.train import Trainer

    ev = TrainEvaluator(SPACE, {"data": "digits", "train_limit": 256, "batch_size": 32, "lr": 0.1, "warmup": 0.2,
                                "schedule": schedule})
    trainer = Trainer(ev, SPACE.build(GENOTYPE, ev.task), {"epochs": 1.0, "steps": 0, "seconds": 0.0}, 0,
                      NullReporter())

    def lr_at(progress: float) -> float:
        trainer.set_schedule(progress)
        return trainer.optimizer.param_groups[0]["lr"]

    assert [lr_at(p) for p in (0.0, 0.1, 0.2)] == pytest.approx([0.0, 0.05, 0.1])
    after = [lr_at(p) for p in (0.6, 1.0)]
    assert after == pytest.approx([0.05, 0.0] if schedule == "cosine" else [0.1, 0.1])
