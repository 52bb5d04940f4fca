"""Block keys: the compact strings that name a block of a network at its input shapes (torch-free).

``kind:arg:arg@CxHxW[;CxHxW]``: what the block is, then the shapes of its inputs (batch excluded).
:func:`block_key` writes them and :func:`parse_key` reads them. A key prefixed with ``~``
(:data:`DEAD`) is a block eager PyTorch runs but whose result never reaches the output; a key
prefixed with ``^`` (:data:`GRAPH`) is a kernel a graph runtime's optimizer leaves across blocks.
Spaces write keys (``SearchSpace.latency_blocks``), tables price them (:mod:`nas.latency.table`).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence


def block_key(kind: str, args: Sequence[Any], shapes: Sequence[Sequence[int]]) -> str:
    """``kind:arg:...@CxHxW;...``: one block at its input shapes."""
    head = ":".join([kind, *(str(a) for a in args)])
    return head + "@" + ";".join("x".join(str(int(d)) for d in s) for s in shapes)


DEAD = "~"  # prefix of a block eager execution computes but whose result never reaches the output
GRAPH = "^"  # prefix of a graph-runtime term: a kernel the runtime's optimizer leaves (no table entry)


def strip_dead(key: str) -> str:
    """The block key without the dead-code marker."""
    return key[1:] if key.startswith(DEAD) else key


def parse_key(key: str) -> tuple[str, list[str], list[tuple[int, ...]]]:
    """(kind, args as strings, input shapes) of a block key."""
    head, sep, tail = strip_dead(key).partition("@")
    if not sep:
        raise ValueError(f"block key {key!r}: expected 'kind:args@CxHxW'")
    kind, *args = head.split(":")
    shapes = [tuple(int(d) for d in part.split("x")) for part in tail.split(";") if part]
    return kind, args, shapes


@functools.lru_cache(maxsize=65536)  # networks share their keys: a prediction looks each up
def kind_of(key: str) -> str:
    """A block key's kind for the correction's per-kind costs: ``op:NAME`` for an op of the shared
    registry, else the block's kind (``sum``, ``mbconv``, ``vit_attn``...)."""
    head = strip_dead(key).partition("@")[0]
    kind, _, rest = head.partition(":")
    return f"op:{rest.partition(':')[0]}" if kind == "op" and rest else kind
