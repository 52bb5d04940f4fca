"""Synthetic evaluator: sleeps, scores architectures by a hash, and injects faults on request.

For measuring the executors' overhead and testing fault handling (failures, NaN, dying workers)
without training anything.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any, Mapping

from nas.config import Field
from nas.evaluator import COMPLETE, PRUNED, Evaluator, Reporter, Result
from nas.genotype import digest


class SyntheticEvaluator(Evaluator):
    """A deterministic pseudo-score per architecture after ``seconds`` of sleep.

    Options: ``seconds`` per evaluation, ``steps`` (intermediate reports, for pruners),
    ``fail_rate`` (share of architectures that fail), ``crash_dir`` (if set, the first attempt of
    every trial kills its worker process; a marker file in this folder lets the retry succeed),
    ``crash_after`` (steps the dying first attempt reports first, each with the value 1.0, the best
    possible score: stale values a retry's pruning must not see).
    """

    OPTIONS = {
        "seconds": Field(float, default=0.0, min=0.0, help="sleep per evaluation, in seconds"),
        "steps": Field(int, default=1, min=1, help="intermediate values reported per trial (for pruners)"),
        "fail_rate": Field(float, default=0.0, min=0.0, max=1.0, help="share of architectures that fail"),
        "crash_dir": Field(str, default="",
                           help="if set, each trial's first attempt kills its worker (marker files here)"),
        "crash_after": Field(int, default=0, min=0,
                             help="steps a dying first attempt reports (value 1.0) before it dies"),
    }

    METRICS = ("score",)

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        genotype = self.space.from_json(genotype_json)
        arch_id = genotype.arch_id
        if self.options["crash_dir"]:
            marker = Path(self.options["crash_dir"]) / arch_id
            if not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
                for step in range(1, self.options["crash_after"] + 1):
                    reporter.report(step, 1.0)
                os._exit(17)  # the worker dies mid-trial, as on a hardware fault or OOM kill
        rng = random.Random(int(digest(arch_id), 16))
        score = rng.random()
        if rng.random() < self.options["fail_rate"]:
            return Result.failed("synthetic failure")
        steps = self.options["steps"]
        for step in range(1, steps + 1):
            time.sleep(self.options["seconds"] / steps)
            if reporter.report(step, score * step / steps):
                return Result(PRUNED, {"score": score * step / steps}, {"steps": step})
        return Result(COMPLETE, {"score": score}, {"steps": steps})
