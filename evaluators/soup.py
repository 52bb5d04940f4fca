"""Greedy model soups (Wortsman et al. 2022) for ``nas train --soup K``.

K copies of the trained network are fine-tuned with different hyperparameters (learning rate,
augmentation strength, label smoothing, seed) and sorted by validation accuracy. The greedy soup
starts from the best one and adds each next ingredient only if the averaged weights do not lower
validation accuracy. BatchNorm statistics are recomputed on the training split after every
averaging (averaged running statistics do not describe the averaged weights). Reported on the test
split: the best single ingredient, the uniform soup (all K averaged) and the greedy soup.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import torch

from evaluators.fulltrain import FullTrainer, evaluate
from evaluators.export import AUX_PREFIX

log = logging.getLogger(__name__)

State = dict[str, torch.Tensor]
# ingredient i takes row i % len: learning-rate factor, label smoothing, augmentation strength
VARIANTS = ((0.1, None, 1.0), (0.03, 0.0, 1.0), (0.3, 0.2, 1.0), (0.1, 0.0, 0.0), (0.03, 0.2, 2.0),
            (0.3, None, 0.0), (0.1, 0.2, 2.0), (0.03, None, 0.0))


def average(states: list[State]) -> State:
    """Uniform average of state dicts (a running mean, so identical ingredients average to themselves)."""
    out = {k: v.clone() for k, v in states[0].items()}
    for count, state in enumerate(states[1:], start=2):
        for key, value in out.items():
            if value.is_floating_point():
                value.add_((state[key] - value) / count)
    return out


@torch.no_grad()
def recompute_bn(model: torch.nn.Module, x: torch.Tensor, batch: int) -> None:
    """Replace every BatchNorm's running statistics by their exact average over ``x`` (train mode)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    drop = getattr(model, "drop_path_prob", None)
    if drop is not None:
        model.drop_path_prob = 0.0
    model.train()
    for i in range(0, len(x), batch):
        model(x[i:i + batch])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    if drop is not None:
        model.drop_path_prob = drop
    model.eval()


class Soup:
    """Scores state dicts of one trainer's network on its splits."""

    def __init__(self, trainer: FullTrainer) -> None:
        self.trainer = trainer
        self.model = copy.deepcopy(trainer.model)
        self.x_test = trainer._tensor(trainer.splits.x_test)
        self.y_test = trainer._tensor(trainer.splits.y_test)

    def load(self, state: State, recompute: bool) -> torch.nn.Module:
        self.model.load_state_dict(state)
        if recompute:
            recompute_bn(self.model, self.trainer.x_train, self.trainer.recipe["eval_batch_size"])
        return self.model

    def valid(self, state: State, recompute: bool = True) -> float:
        t = self.trainer
        return evaluate(self.load(state, recompute), t.x_valid, t.y_valid, t.recipe["eval_batch_size"])[0]

    def test(self, state: State, recompute: bool = True) -> float:
        return evaluate(self.load(state, recompute), self.x_test, self.y_test, self.trainer.recipe["eval_batch_size"])[0]

    def greedy(self, ingredients: list[State], scores: list[float]) -> tuple[list[int], float]:
        """Indices of the greedy soup's members (best first) and its validation accuracy."""
        order = sorted(range(len(ingredients)), key=lambda i: -scores[i])
        members = [order[0]]
        best = self.valid(ingredients[order[0]])
        for i in order[1:]:
            score = self.valid(average([ingredients[j] for j in members + [i]]))
            if score >= best:
                members, best = members + [i], score
        return members, best


def finetune(trainer: FullTrainer, base: State, variant: tuple[float, float | None, float], seed: int,
             epochs: int) -> State:
    """A copy of the trained network fine-tuned for ``epochs`` with one variant of the recipe."""
    lr_factor, smoothing, strength = variant
    child = copy.copy(trainer)
    recipe = dict(trainer.recipe)
    recipe.update(epochs=epochs, warmup_epochs=0.0, ema=0.0, seed=seed, lr=trainer.recipe["lr"] * lr_factor,
                  crop_padding=round(recipe["crop_padding"] * strength), cutout=round(recipe["cutout"] * strength))
    if smoothing is not None:
        recipe["label_smoothing"] = smoothing
    child.recipe, child.total = recipe, epochs * trainer.per_epoch
    child.fresh()
    child.model.load_state_dict(base)
    for _ in range(epochs):
        child.train_epoch()
    return {k: v.detach().clone() for k, v in child.model.state_dict().items()}


def soup_after_training(trainer: FullTrainer, metrics: dict[str, Any], k: int, epochs: int) -> dict[str, Any]:
    """Fine-tune K ingredients from the trained weights, make the soups, write ``soup/`` and the metrics."""
    from safetensors.torch import save_file

    from evaluators.outputs import write_outputs

    epochs = epochs or max(1, trainer.recipe["epochs"] // 5)
    base = {key: v.detach().clone() for key, v in trainer.eval_model().state_dict().items()}
    ingredients, described = [], []
    for i in range(k):
        variant, seed = VARIANTS[i % len(VARIANTS)], trainer.recipe["seed"] + 1 + i
        ingredients.append(finetune(trainer, base, variant, seed, epochs))
        described.append({"lr_factor": variant[0], "label_smoothing": variant[1], "augmentation": variant[2],
                          "seed": seed})
        log.info("soup ingredient %d/%d fine-tuned", i + 1, k)
    soup = Soup(trainer)
    scores = [soup.valid(s, recompute=False) for s in ingredients]
    for entry, score in zip(described, scores):
        entry["valid_accuracy"] = score
    members, greedy_valid = soup.greedy(ingredients, scores)
    best = max(range(k), key=lambda i: scores[i])
    uniform, greedy = average(ingredients), average([ingredients[i] for i in members])
    result = {"ingredients": described, "epochs": epochs, "greedy_members": members,
              "best_ingredient": {"index": best, "valid_accuracy": scores[best],
                                  "test_accuracy": soup.test(ingredients[best], recompute=False)},
              "uniform_soup": {"valid_accuracy": soup.valid(uniform), "test_accuracy": soup.test(uniform)},
              "greedy_soup": {"valid_accuracy": greedy_valid, "test_accuracy": soup.test(greedy)}}
    folder = trainer.out / "soup"
    folder.mkdir(exist_ok=True)
    soup.load(greedy, recompute=True)
    save_file({k2: v.detach().cpu().contiguous().clone() for k2, v in soup.model.state_dict().items()
               if not k2.startswith(AUX_PREFIX)}, str(folder / "weights.safetensors"))
    arch = json.loads((trainer.out / "arch.json").read_text())
    arch["weights"] = {"from": "nas train --soup", "members": members, "test_accuracy": result["greedy_soup"]["test_accuracy"]}
    (folder / "arch.json").write_text(json.dumps(arch, indent=2) + "\n")
    metrics = {**metrics, "soup": result}
    write_outputs(trainer, metrics)
    return metrics
