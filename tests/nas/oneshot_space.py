"""A space plugin for the one-shot run tests: NB201 whose supernet fails to score one kind of candidate.

Its supernet raises when asked, in evaluation mode, for a path with ``avg_pool_3x3`` on the first edge.
Supernet training (always in training mode) is unaffected, so only the inherited-weight evaluation of
those candidates fails, as a broken candidate would.
"""

from __future__ import annotations

from typing import Any

from nas.space import Task
from search_spaces.nb201.genotype import OPS
from search_spaces.nb201.space import NB201Space
from search_spaces.nb201.supernet import NB201Supernet

FAILING_OP = "avg_pool_3x3"
MESSAGE = "test fault: avg_pool_3x3 on the first edge"


class FlakySupernet(NB201Supernet):
    def forward(self, x: Any, arch: Any) -> Any:
        if not self.training and arch[0] == OPS.index(FAILING_OP):
            raise RuntimeError(MESSAGE)
        return super().forward(x, arch)


class FlakySupernetSpace(NB201Space):
    """NB201 whose supernet cannot score a candidate with ``avg_pool_3x3`` on its first edge."""

    def build_supernet(self, task: Task | None = None) -> Any:
        return FlakySupernet(task or self.default_task(), self.channels, self.cells)
