"""A controller plugin for the exit-code tests: Optuna's random sampler that hits a real internal
error (numpy's ``LinAlgError`` from inverting a singular matrix) at trial ``NAS_TEST_FAULT_AT``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import optuna

from nas.controllers import Controller


class _FaultySampler(optuna.samplers.RandomSampler):
    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        if str(trial.number) == os.environ.get("NAS_TEST_FAULT_AT"):
            np.linalg.inv(np.zeros((2, 2)))  # raises LinAlgError: Singular matrix
        return super().sample_independent(study, trial, name, distribution)


class FaultyController(Controller):
    def sampler(self) -> Any:
        return _FaultySampler(seed=self.seed)
