"""The MLP genotype: the widths of the hidden layers and one activation, and its text form.

Plain, immutable data (``nas.genotype``): the text form ``64-32:relu`` lists the hidden widths from
the input side, then the activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nas.genotype import Genotype

WIDTHS: tuple[int, ...] = (16, 32, 64, 128)
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh")
MAX_LAYERS = 4  # the most hidden layers a genotype may have; a space may search fewer (its max_layers)


@dataclass(frozen=True, slots=True)
class MLPGenotype(Genotype):
    """Hidden-layer widths (input side first) and the activation after each hidden layer."""

    SPACE: ClassVar[str] = "mlp"
    widths: tuple[int, ...]
    activation: str = "relu"

    def __post_init__(self) -> None:
        if not isinstance(self.widths, tuple) or not 1 <= len(self.widths) <= MAX_LAYERS:
            raise ValueError(f"mlp genotype: expected 1 to {MAX_LAYERS} hidden widths, got {self.widths!r}")
        bad = [w for w in self.widths if w not in WIDTHS]
        if bad:
            raise ValueError(f"mlp genotype: widths {bad} not in {list(WIDTHS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"mlp genotype: activation {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")

    @classmethod
    def parse(cls, text: str) -> MLPGenotype:
        """Parse ``64-32:relu`` (the activation may be left out: relu)."""
        widths, _, activation = text.strip().partition(":")
        try:
            return cls(tuple(int(w) for w in widths.split("-")), activation or "relu")
        except ValueError as err:
            raise ValueError(f"mlp string {text!r}: {err}; expected widths joined by '-', then ':activation'") from None

    def to_string(self) -> str:
        """The text form, ``64-32:relu``."""
        return "-".join(map(str, self.widths)) + f":{self.activation}"
