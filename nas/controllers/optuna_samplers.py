"""Optuna's own samplers as controllers, with their main knobs exposed as spec options."""

from __future__ import annotations

from typing import Any

import optuna

from nas.config import Field
from nas.controllers import Controller


class RandomController(Controller):
    """Uniform random search: the baseline every controller must beat."""

    def sampler(self) -> Any:
        return optuna.samplers.RandomSampler(seed=self.seed)


class TPEController(Controller):
    """Optuna's tree-structured Parzen estimator."""

    OPTIONS = {
        "n_startup_trials": Field(int, default=10, min=0, help="random trials before the TPE model is used"),
        "n_ei_candidates": Field(int, default=24, min=1,
                                 help="candidates drawn per proposal, the best by expected improvement kept"),
        "multivariate": Field(bool, default=True, help="model parameters jointly (Optuna 5's default)"),
        "constant_liar": Field(bool, default=True, help="penalise in-flight trials' regions"),
    }

    def sampler(self) -> Any:
        return optuna.samplers.TPESampler(seed=self.seed, **self.options)


class NSGA2Controller(Controller):
    """Optuna's NSGA-II genetic algorithm (multi-objective; single objective works too)."""

    OPTIONS = {
        "population_size": Field(int, default=50, min=2, help="trials per generation"),
        "crossover_prob": Field(float, default=0.9, min=0.0, max=1.0,
                                help="probability that a child is a crossover of two parents"),
        "swapping_prob": Field(float, default=0.5, min=0.0, max=1.0,
                               help="uniform crossover: probability of taking each parameter from the other parent"),
    }

    def sampler(self) -> Any:
        return optuna.samplers.NSGAIISampler(seed=self.seed, **self.options)


class GPController(Controller):
    """Optuna's Gaussian-process Bayesian optimisation (uses torch for the GP fit)."""

    OPTIONS = {"n_startup_trials": Field(int, default=10, min=1, help="random trials before the GP is fitted")}

    def sampler(self) -> Any:
        return optuna.samplers.GPSampler(seed=self.seed, **self.options)
