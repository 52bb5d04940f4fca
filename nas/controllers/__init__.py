"""Controllers are Optuna samplers; a :class:`Controller` makes the one a run spec names.

Built-ins: Optuna's ``random``, ``tpe``, ``nsga2`` and ``gp``; ours: ``evolution`` (regularized
evolution), ``local`` (local search around the incumbent) and ``guided`` (surrogate-guided
evolution). Ours read the study's history on every call, so their state survives restarts and they
work with any storage and any number of trials in flight.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

from nas.config import Field, validate
from nas.space import SearchSpace


class Controller(ABC):
    """Validated options plus a factory for the Optuna sampler."""

    OPTIONS: ClassVar[dict[str, Field]] = {}
    MULTI_OBJECTIVE: ClassVar[bool] = True

    def __init__(self, space: SearchSpace, options: Mapping[str, Any], seed: int, n_objectives: int) -> None:
        self.space, self.seed, self.n_objectives = space, seed, n_objectives
        self.options = validate(options, self.OPTIONS, "controller", ignore=("name",))

    @abstractmethod
    def sampler(self) -> Any:
        """A fresh ``optuna.samplers.BaseSampler``."""


def make_sampler(name: str, options: Mapping[str, Any], space: SearchSpace, seed: int,
                 n_objectives: int = 1) -> Any:
    """The Optuna sampler for controller ``name`` (``SpecError`` on unknown names or bad options)."""
    from nas import registry

    cls = registry.lookup("controllers", name, "controller.name")
    # options are checked by ``Controller.__init__`` and cross-option checks raise SpecError; any
    # other error while making the sampler is a bug and propagates as is
    return cls(space, options, seed, n_objectives).sampler()
