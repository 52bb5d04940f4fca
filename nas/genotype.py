"""Genotype conventions: plain immutable data, exact JSON round-trip, ``arch_id`` from a canonical form.

A space's genotype is ``@dataclass(frozen=True, slots=True)`` deriving from :class:`Genotype`, with
fields that are str/int/float/bool or (nested) tuples of them. ``to_json``/``from_json`` round-trip to
an equal object; ``arch_id`` hashes ``canonical()``, which a space overrides so that equivalent
architectures (isomorphic cells, relabelled graphs) share one id.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from typing import Any, ClassVar, Mapping, TypeVar

from nas.config import SpecError

G = TypeVar("G", bound="Genotype")


def canonical_json(data: Any) -> str:
    """Deterministic compact JSON (sorted keys) of plain data."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(text: str, length: int = 16) -> str:
    """Hex prefix of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def tuplify(value: Any) -> Any:
    """Turn JSON lists (recursively) into tuples."""
    if isinstance(value, list):
        return tuple(tuplify(v) for v in value)
    return value


class Genotype:
    """Mixin for a space's frozen, slotted genotype dataclass."""

    __slots__ = ()
    SPACE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: ``{"space": ..., <field>: ...}``."""
        out: dict[str, Any] = {"space": self.SPACE}
        for spec_field in dataclasses.fields(self):  # type: ignore[arg-type]
            out[spec_field.name] = _listify(getattr(self, spec_field.name))
        return out

    def to_json(self) -> str:
        """Canonical JSON text of :meth:`to_dict`."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls: type[G], data: Mapping[str, Any]) -> G:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a wrong space or unknown/missing keys."""
        if not isinstance(data, Mapping):
            raise SpecError(f"genotype: expected a JSON object, got {type(data).__name__}")
        space = data.get("space", cls.SPACE)
        if space != cls.SPACE:
            raise SpecError(f"genotype: space is {space!r}, expected {cls.SPACE!r}")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names) - {"space"})
        if unknown:
            raise SpecError(f"genotype: unknown keys {unknown}; expected {names}")
        kwargs = {}
        for spec_field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if spec_field.name in data:
                kwargs[spec_field.name] = tuplify(data[spec_field.name])
            elif spec_field.default is dataclasses.MISSING:
                raise SpecError(f"genotype: missing key {spec_field.name!r}")
        try:
            return cls(**kwargs)
        except SpecError:
            raise
        except (TypeError, ValueError) as err:  # the space's own validation in __post_init__
            raise SpecError(f"genotype: {err}") from None

    @classmethod
    def from_json(cls: type[G], text: str) -> G:
        """Parse JSON text made by :meth:`to_json` (or by hand)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"genotype: invalid JSON ({err})") from None
        return cls.from_dict(data)

    def canonical(self) -> Any:
        """Data that is equal for equivalent architectures; spaces override this."""
        return self.to_dict()

    @property
    def arch_id(self) -> str:
        """16-hex-digit id of the canonical form (cached: genotypes are immutable)."""
        return _arch_id(self)


@functools.lru_cache(maxsize=1 << 16)
def _arch_id(genotype: Genotype) -> str:
    """Hash of a genotype's canonical form."""
    return digest(canonical_json(genotype.canonical()))


def _listify(value: Any) -> Any:
    """Tuples to lists, recursively, for JSON."""
    if isinstance(value, tuple):
        return [_listify(v) for v in value]
    return value
