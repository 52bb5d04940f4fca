"""What one-shot search writes into the study (the ledger), and how readers get it back.

* ``nas:oneshot:epoch:NNNN``: one record per training epoch: losses and accuracies, seconds, and for
  differentiable search the architecture probabilities per edge, the derived genotype and its
  expected latency;
* ``nas:oneshot:final``: the differentiable search's result (genotype, probabilities, collapse);
* ``nas:oneshot:retrained:N``: trial N trained standalone after a supernet search (``retrain_top``).
"""

from __future__ import annotations

from typing import Any

from nas.space import path_ops

EPOCH_ATTR = "nas:oneshot:epoch:"
FINAL_ATTR = "nas:oneshot:final"
RETRAINED_ATTR = "nas:oneshot:retrained:"


def epoch_key(epoch: int) -> str:
    """The study attribute of one epoch's record (zero-padded, so names sort by epoch)."""
    return f"{EPOCH_ATTR}{epoch:04d}"


def epochs_of(user_attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The epoch records of a study's user attributes, in epoch order."""
    return [user_attrs[k] for k in sorted(user_attrs) if k.startswith(EPOCH_ATTR)]


def retrained_of(user_attrs: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Trial number -> its standalone retraining's metrics."""
    return {int(k[len(RETRAINED_ATTR):]): v for k, v in user_attrs.items() if k.startswith(RETRAINED_ATTR)}


def collapsed(space: Any, genotype: Any) -> list[str]:
    """The cell types (edge groups) of ``genotype`` left without a parametric op: DARTS' collapse to
    skip connections and pools. Empty when every cell type keeps a convolution."""
    groups: dict[str, bool] = {}
    for (name, ops), index in zip(space.oneshot_edges(), space.oneshot_path(genotype)):
        group = name.split("/", 1)[0]
        groups[group] = groups.get(group, False) or any("conv" in ops[k] for k in path_ops(index, len(ops)))
    return [g for g, parametric in groups.items() if not parametric]
