"""Trained weights kept by a search (``[evaluator] keep_weights = K``), through Optuna's artifact store.

An evaluator that keeps weights returns them in ``Result.weights`` as safetensors bytes; the driver
uploads those of a candidate that ranks among the best K so far into ``<run>/artifacts`` (Optuna's
``FileSystemArtifactStore``, the artifact recorded on the trial as Optuna does) and removes the file
of the candidate it displaces. The study's user attribute ``nas:weights`` maps each kept trial's
number to ``{"artifact_id", "value"}``: exactly the best K, which ``nas export --weights`` reads.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import optuna

log = logging.getLogger(__name__)

WEIGHTS_ATTR = "nas:weights"
ARTIFACT_DIR = "artifacts"


def artifact_store(run_path: str | Path) -> Any:
    """The run's artifact store (the folder is made when first written)."""
    return optuna.artifacts.FileSystemArtifactStore(Path(run_path) / ARTIFACT_DIR)


def read_weights(run_path: str | Path, artifact_id: str) -> bytes:
    """The bytes of a kept artifact; ``FileNotFoundError`` if it was removed."""
    try:
        with artifact_store(run_path).open_reader(artifact_id) as reader:
            return reader.read()
    except optuna.artifacts.exceptions.ArtifactNotFound:
        raise FileNotFoundError(f"{Path(run_path) / ARTIFACT_DIR / artifact_id}: kept weights are missing") from None


class WeightsKeeper:
    """Keeps the weights of the best ``keep`` candidates of a study (by its first objective)."""

    def __init__(self, study: optuna.Study, run_path: str | Path, keep: int, maximize: bool) -> None:
        self.study, self.keep, self.maximize = study, keep, maximize
        self.path = Path(run_path) / ARTIFACT_DIR
        self.store = artifact_store(run_path)

    def offer(self, trial: optuna.Trial, value: float, payload: bytes, loss: float | None = None) -> bool:
        """Store ``payload`` for ``trial`` if it ranks among the best K; drop the one it displaces.

        Ranked as ``nas show`` and ``nas export`` rank: equal values by the lower validation ``loss``
        (none: last), then by trial number, so the kept weights are those of the trials they name.
        """
        kept: dict[str, dict[str, Any]] = dict(self.study.user_attrs.get(WEIGHTS_ATTR, {}))
        sign = -1.0 if self.maximize else 1.0
        loss = float(loss) if isinstance(loss, (int, float)) and loss == loss else None
        entries = [*((int(n), e["value"], e.get("loss")) for n, e in kept.items()), (trial.number, value, loss)]
        ranking = sorted(entries, key=lambda e: (sign * e[1], math.inf if e[2] is None else e[2], e[0]))
        winners = {number for number, *_ in ranking[:self.keep]}
        if trial.number not in winners:
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path, suffix=".upload")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(payload)
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=self.store, file_path=name, study_or_trial=trial,
                mimetype="application/octet-stream")
        finally:
            os.unlink(name)
        kept[str(trial.number)] = {"artifact_id": artifact_id, "value": float(value),
                                   **({"loss": float(loss)} if loss is not None else {})}
        for number in [n for n in kept if int(n) not in winners]:
            try:
                self.store.remove(kept.pop(number)["artifact_id"])
            except optuna.artifacts.exceptions.ArtifactNotFound:
                pass
        self.study.set_user_attr(WEIGHTS_ATTR, kept)
        return True
