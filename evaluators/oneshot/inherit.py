"""Scoring candidates with weights inherited from a trained supernet (SPOS's search phase).

A worker builds the supernet once from the shared checkpoint and keeps it for every candidate it
scores. Per candidate: BatchNorm statistics recomputed along its path on ``bn_batches`` training
batches (the same batches for every candidate), then accuracy and loss on the validation split.
"""

from __future__ import annotations

import io
from typing import Any, Mapping

import torch

from evaluators.oneshot.common import device_for, recalibrate, score, tensors
from evaluators.supernet_options import SupernetOptions
from nas.evaluator import COMPLETE, Reporter, Result
from nas.space import SearchSpace, Task


class SupernetEvaluator(SupernetOptions):
    """Inherited-weight accuracy of each candidate (see the module docstring)."""

    def __init__(self, space: SearchSpace, options: Mapping[str, Any], shared: Any = None) -> None:
        super().__init__(space, options, shared)
        self.device = device_for(self.options["device"], self.options["threads"])
        splits, checkpoint = shared if shared is not None else self.load_shared(self.options)
        self.x, self.y, self.xv, self.yv = tensors(splits, self.device)
        state = torch.load(io.BytesIO(checkpoint), map_location=self.device, weights_only=False)
        self.net = space.build_supernet(Task(splits.input_shape, splits.classes)).to(self.device)
        self.net.load_state_dict(state["model"])
        self.trained_epochs = int(state.get("epoch", 0))

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        genotype = self.space.from_json(genotype_json)
        path = self.space.oneshot_path(genotype)
        o = self.options

        def forward(xb: torch.Tensor) -> torch.Tensor:
            return self.net(xb, path)

        generator = torch.Generator().manual_seed(int(budget.get("seed", 0)))
        recalibrate(self.net, forward, self.x, o["bn_batches"], o["batch_size"], generator)
        self.net.eval()
        accuracy, loss = score(forward, self.xv, self.yv, o["eval_batch_size"])
        return Result(COMPLETE, {"accuracy": accuracy, "loss": loss},
                      {"inherited": True, "supernet_epochs": self.trained_epochs, "device": str(self.device)})
