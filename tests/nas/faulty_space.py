"""A space plugin for the exit-code tests: NB201 with one checked option, whose constructor has a bug
(a dict lookup of a key its preset table lacks) that only runs after the options passed their check."""

from __future__ import annotations

from typing import Any

from nas.config import Field
from search_spaces.nb201.space import NB201Space


class FaultySpace(NB201Space):
    """NB201 plus an option ``stem`` (a checked field); making it raises ``KeyError('stem_width')``."""

    OPTIONS = {**NB201Space.OPTIONS, "stem": Field(str, default="conv", choices=("conv", "patch"))}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.stem_width = self.PRESETS[self.preset]["stem_width"]  # the bug: no preset has this key
