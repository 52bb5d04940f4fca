"""One-shot search, the driver's side (torch-free): options, the ledger's records, the training stage.

A one-shot run trains one supernet instead of every candidate, before the search loop:

* ``[evaluator] name = "supernet"``: single-path one-shot (SPOS). The supernet is trained with
  uniformly (or fairly) sampled paths, checkpointed into the run folder every epoch; then any
  controller's candidates are scored with the weights they inherit from it.
* ``[controller] name = "darts" | "gdas" | "drnas"``: architecture parameters and weights are trained
  together; every epoch's derived genotype and parameters go into the study, and the controller then
  proposes the final genotype (and more from the learned distribution) as ordinary trials.

Either way the training is one task on the executor (a Ray task on a GPU when one is present),
resumable from its last checkpoint. The torch side lives in :mod:`evaluators.oneshot`.
"""

from __future__ import annotations

from nas.oneshot.records import EPOCH_ATTR, FINAL_ATTR, RETRAINED_ATTR, collapsed, epochs_of, retrained_of

__all__ = ["EPOCH_ATTR", "FINAL_ATTR", "RETRAINED_ATTR", "collapsed", "epochs_of", "retrained_of"]
