"""Greedy model soups: averaging, BN recomputation, identical ingredients, ``nas train --soup``."""

from __future__ import annotations

import json

import torch

from tests.conftest import run_nas
from tests.evaluators.test_fulltrain import arch  # noqa: F401  (the module-scoped arch.json fixture)

OPTIONS = {"epochs": 1, "train_limit": 128, "valid_limit": 128, "batch_size": 32}


def test_average_is_the_mean_and_keeps_identical_states():
    from evaluators.soup import average

    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(3)}
    assert torch.equal(average([a, b])["w"], torch.tensor([2.0, 4.0]))
    state = {"w": torch.randn(100, generator=torch.Generator().manual_seed(0))}
    assert torch.equal(average([state, state, state])["w"], state["w"])


def test_recompute_bn_gives_the_exact_batch_statistics():
    from evaluators.soup import recompute_bn

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    recompute_bn(model, x, batch=16)
    features = model[0](x)
    assert torch.allclose(model[1].running_mean, features.mean((0, 2, 3)), atol=1e-5)
    assert model[1].momentum == 0.1 and not model.training


def test_a_soup_of_identical_ingredients_equals_the_ingredient(arch, tmp_path):  # noqa: F811
    from evaluators.fulltrain import FullTrainer
    from evaluators.soup import Soup

    trainer = FullTrainer(arch, OPTIONS, tmp_path / "t")
    trainer.run()
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    soup = Soup(trainer, [state, state, state])
    members, greedy_valid = soup.greedy([50.0, 50.0, 50.0])
    assert members == [0, 1, 2]  # an identical ingredient never lowers the accuracy
    assert greedy_valid == soup.score((0,), "valid")
    souped, alone = soup.state((0, 1, 2)), soup.state((0,))
    assert all(torch.equal(souped[k], v) for k, v in alone.items())
    assert soup.score((0, 1, 2), "test") == soup.score((0,), "test")


def test_each_soup_is_made_and_scored_once(arch, tmp_path, monkeypatch):  # noqa: F811
    import evaluators.soup as soup_module
    from evaluators.fulltrain import FullTrainer

    trainer = FullTrainer(arch, OPTIONS, tmp_path / "t")
    trainer.run()
    base = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    other = {k: (v + 0.01 * torch.randn(v.shape, generator=torch.Generator().manual_seed(2)))
             if v.is_floating_point() else v.clone() for k, v in base.items()}
    calls = {"bn": 0, "evaluate": 0}
    for name in ("recompute_bn", "evaluate"):
        real = getattr(soup_module, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls["bn" if _name == "recompute_bn" else _name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(soup_module, name, counted)
    soup = soup_module.Soup(trainer, [base, other, base])
    scores = [soup.score((i,), "valid", raw=True) for i in range(3)]
    members, _ = soup.greedy(scores)
    seen = []
    for _ in range(2):  # the uniform and greedy soups again, their test scores, the saved weights
        soup.score((0, 1, 2), "valid"), soup.score((2, 1, 0), "test"), soup.score(tuple(members), "test")
        soup.state(tuple(members))
        seen.append(dict(calls))
    assert seen[0] == seen[1]  # asking again costs nothing
    # one BN pass per distinct soup: the best alone, two candidates, the uniform soup (at most)
    assert calls["bn"] == soup.bn_passes == len(soup.states) <= 4
    assert calls["evaluate"] == len(soup.scores)  # every (weights, split) scored once


def test_train_with_soup_reports_three_models(arch, tmp_path):  # noqa: F811
    proc = run_nas("train", str(arch), "--out", str(tmp_path / "s"), "--epochs", "2", "--train-limit", "128",
                   "--valid-limit", "128", "--batch-size", "32", "--soup", "2", "--soup-epochs", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    soup = json.loads(proc.stdout)["soup"]
    assert len(soup["ingredients"]) == 2 and soup["greedy_members"][0] == soup["best_ingredient"]["index"]
    for name in ("best_ingredient", "uniform_soup", "greedy_soup"):
        assert 0 <= soup[name]["test_accuracy"] <= 100
    assert (tmp_path / "s" / "soup" / "weights.safetensors").is_file()
    assert "Greedy model soup" in (tmp_path / "s" / "MODEL_CARD.md").read_text()
    import nas

    nas.load(str(tmp_path / "s" / "soup" / "arch.json"))
