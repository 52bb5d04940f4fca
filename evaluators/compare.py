"""The worker side of ``nas compare``: one arm x seed trained by ``nas train``'s :class:`FullTrainer`.

A job's ``genotype_json`` is a small JSON payload (workers receive JSON, never modules):
``{"arch": <arch.json data>, "out": <trial folder>, "recipe": <nas train settings, seed included>}``.
The trial folder gets ``arch.json`` first, then everything ``nas train`` writes; a checkpoint left
there by an interrupted comparison with the same recipe is continued, not restarted.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from nas.evaluator import COMPLETE, Evaluator, Reporter, Result

log = logging.getLogger(__name__)

METRICS = ("test_accuracy", "test_loss", "valid_accuracy", "train_seconds")


class CompareEvaluator(Evaluator):
    """Full training of one planned trial; the test split is scored once at the end."""

    METRICS = METRICS

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        from evaluators.fulltrain import CHECKPOINT, FullTrainer

        payload = json.loads(genotype_json)
        out = Path(payload["out"])
        out.mkdir(parents=True, exist_ok=True)
        arch_path = out / "arch.json"
        arch_path.write_text(json.dumps(payload["arch"], indent=2) + "\n")  # nas train rewrites it at the end
        trainer = FullTrainer(arch_path, payload["recipe"], out)
        metrics = None
        if (out / CHECKPOINT).is_file():
            try:
                metrics = trainer.run(resume=True)
                log.info("%s: continued from its checkpoint", out)
            except ValueError as err:  # another recipe or architecture: start over
                log.info("%s: checkpoint not used (%s)", out, err)
        if metrics is None:
            metrics = trainer.run()
        (out / CHECKPOINT).unlink(missing_ok=True)  # the study holds the result now
        curve = [[row["epoch"], row["valid_accuracy"]] for row in metrics["history"]]
        values = {k: float(metrics[k]) for k in METRICS if isinstance(metrics.get(k), (int, float))}
        return Result(COMPLETE, values, {"curve": curve, "device": metrics["device"], "epochs": metrics["epochs"],
                                         "test_images": metrics["test_images"]})
