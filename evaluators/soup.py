"""Greedy model soups (Wortsman et al. 2022) for ``nas train --soup K``.

K copies of the trained network are fine-tuned with different hyperparameters (learning rate,
augmentation strength, label smoothing, seed) and sorted by validation accuracy. The greedy soup
starts from the best one and adds each next ingredient only if the averaged weights do not lower
validation accuracy. BatchNorm statistics are recomputed on the training split after every
averaging (averaged running statistics do not describe the averaged weights), once per distinct
soup: :class:`Soup` caches each soup's weights and scores. Reported on the test split: the best
single ingredient, the uniform soup (all K averaged) and the greedy soup.
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


Members = tuple[int, ...]


class Soup:
    """Makes and scores soups of one trainer's network; each distinct soup is made and scored once.

    A soup is a set of ingredient indices: their weights averaged in index order, then BatchNorm
    statistics recomputed on the training split (a one-member soup too, so that the greedy
    comparison treats every candidate alike). The recomputed weights and every score are cached
    by the member set, so the greedy search, the uniform soup, the test scores and the saved
    weights never average, recompute BN or evaluate the same weights twice. ``score((i,), split,
    raw=True)`` scores ingredient ``i`` as fine-tuned (its own running statistics), which ranks them.
    """

    def __init__(self, trainer: FullTrainer, ingredients: list[State]) -> None:
        self.trainer = trainer
        self.ingredients = ingredients
        self.model = copy.deepcopy(trainer.model)
        self.x_test = trainer._tensor(trainer.splits.x_test)
        self.y_test = trainer._tensor(trainer.splits.y_test)
        self.states: dict[tuple[str, Members], State] = {}
        self.scores: dict[tuple[str, Members, str], float] = {}
        self.loaded: tuple[str, Members] | None = None
        self.bn_passes = 0  # how many times BN statistics were recomputed (one per distinct soup)

    def state(self, members: Members) -> State:
        """The soup's weights: the members averaged, BN statistics recomputed (made once per member set)."""
        key = ("soup", tuple(sorted(members)))
        if key not in self.states:
            self.model.load_state_dict(average([self.ingredients[i] for i in key[1]]))
            recompute_bn(self.model, self.trainer.x_train, self.trainer.recipe["eval_batch_size"])
            self.bn_passes += 1
            self.states[key] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.loaded = key
        return self.states[key]

    def score(self, members: Members, split: str, raw: bool = False) -> float:
        """Accuracy (%) on ``split`` (valid or test) of a soup, or of ingredient ``members[0]`` as trained."""
        key = ("raw", tuple(members)) if raw else ("soup", tuple(sorted(members)))
        if (*key, split) not in self.scores:
            state = self.ingredients[key[1][0]] if raw else self.state(key[1])
            if self.loaded != key:
                self.model.load_state_dict(state)
                self.loaded = key
            x, y = (self.trainer.x_valid, self.trainer.y_valid) if split == "valid" else (self.x_test, self.y_test)
            self.scores[(*key, split)] = evaluate(self.model, x, y, self.trainer.recipe["eval_batch_size"])[0]
        return self.scores[(*key, split)]

    def greedy(self, scores: list[float]) -> tuple[list[int], float]:
        """Indices of the greedy soup's members (best first) and its validation accuracy."""
        order = sorted(range(len(self.ingredients)), key=lambda i: -scores[i])
        members = [order[0]]
        best = self.score(tuple(members), "valid")
        for i in order[1:]:
            score = self.score((*members, i), "valid")
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
    soup = Soup(trainer, ingredients)
    scores = [soup.score((i,), "valid", raw=True) for i in range(k)]
    for entry, score in zip(described, scores):
        entry["valid_accuracy"] = score
    members, greedy_valid = soup.greedy(scores)
    best, everyone = max(range(k), key=lambda i: scores[i]), tuple(range(k))
    result = {"ingredients": described, "epochs": epochs, "greedy_members": members,
              "best_ingredient": {"index": best, "valid_accuracy": scores[best],
                                  "test_accuracy": soup.score((best,), "test", raw=True)},
              "uniform_soup": {"valid_accuracy": soup.score(everyone, "valid"),
                               "test_accuracy": soup.score(everyone, "test")},
              "greedy_soup": {"valid_accuracy": greedy_valid, "test_accuracy": soup.score(tuple(members), "test")},
              "bn_recomputations": soup.bn_passes}
    folder = trainer.out / "soup"
    folder.mkdir(exist_ok=True)
    save_file({k2: v.detach().cpu().contiguous().clone() for k2, v in soup.state(tuple(members)).items()
               if not k2.startswith(AUX_PREFIX)}, str(folder / "weights.safetensors"))
    arch = json.loads((trainer.out / "arch.json").read_text())
    arch["weights"] = {"from": "nas train --soup", "members": members, "test_accuracy": result["greedy_soup"]["test_accuracy"]}
    (folder / "arch.json").write_text(json.dumps(arch, indent=2) + "\n")
    metrics = {**metrics, "soup": result}
    write_outputs(trainer, metrics)
    return metrics
