"""``nas train``: outputs, the test split, --resume equal to an uninterrupted run, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas import registry

from nas.export import archfile
from nas.space import Task
from tests.conftest import run_nas

FAST = ["--epochs", "3", "--train-limit", "128", "--valid-limit", "128", "--batch-size", "32", "--ema", "0.9"]


@pytest.fixture(scope="module")
def arch(tmp_path_factory) -> Path:
    """An exported-like arch.json of a small NASNet-cell network on digits (with an auxiliary head)."""
    space = registry.make_space("nasnet", {"preset": "proxy"})
    data = archfile.make(space, space.get_known("darts-v2"), Task((1, 8, 8), 10), normalization=None,
                         data_name="digits", size=0, metrics={"accuracy": 90.0}, source={}, training={})
    path = tmp_path_factory.mktemp("arch") / "arch.json"
    path.write_text(json.dumps(data))
    return path


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "weights.safetensors"))


def test_train_writes_everything_and_scores_the_test_split(arch, tmp_path):
    import nas

    proc = run_nas("train", str(arch), "--out", str(tmp_path / "t"), *FAST, "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["test_images"] == 359 and 0 <= metrics["test_accuracy"] <= 100  # digits' held-out 20%
    assert "ETA" in proc.stderr and "[3/3]" in proc.stderr
    folder = tmp_path / "t"
    for name in ("metrics.json", "curve.png", "weights.safetensors", "arch.json", "MODEL_CARD.md", "checkpoint.pt"):
        assert (folder / name).is_file(), name
    assert not any(k.startswith("aux.") for k in weights(folder))  # the auxiliary head trains only
    assert "## Full training" in (folder / "MODEL_CARD.md").read_text()
    saved = json.loads((folder / "metrics.json").read_text())
    assert len(saved["history"]) == 3 and saved["recipe"]["label_smoothing"] == 0.1
    model = nas.load(str(folder / "arch.json"))
    assert torch.equal(model.state_dict()["classifier.weight"], weights(folder)["classifier.weight"])


def test_resume_after_an_interruption_equals_an_uninterrupted_run(arch, tmp_path):
    whole = run_nas("train", str(arch), "--out", str(tmp_path / "whole"), *FAST, "--json")
    assert whole.returncode == 0, whole.stderr
    first = run_nas("train", str(arch), "--out", str(tmp_path / "parts"), *FAST, "--stop-after", "1")
    assert first.returncode == 0 and "--resume" in first.stderr, first.stderr
    assert not (tmp_path / "parts" / "weights.safetensors").exists()
    second = run_nas("train", str(arch), "--out", str(tmp_path / "parts"), *FAST, "--resume", "--json")
    assert second.returncode == 0, second.stderr
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "parts")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    one, two = json.loads(whole.stdout), json.loads(second.stdout)
    assert one["test_accuracy"] == two["test_accuracy"] and one["valid_accuracy"] == two["valid_accuracy"]


def test_resume_refuses_another_recipe_and_a_missing_checkpoint(arch, tmp_path):
    proc = run_nas("train", str(arch), "--out", str(tmp_path / "none"), "--resume")
    assert proc.returncode == 2 and "no checkpoint" in proc.stderr
    run_nas("train", str(arch), "--out", str(tmp_path / "p"), *FAST, "--stop-after", "1", check=True)
    proc = run_nas("train", str(arch), "--out", str(tmp_path / "p"), *FAST, "--lr", "0.1", "--resume")
    assert proc.returncode == 2 and "lr" in proc.stderr


@pytest.mark.parametrize("edit, field", [
    ({"format": "nasforge-arch/0"}, "format"),
    ({"space": {"name": "builtins:eval", "options": {}}}, "space.name"),
    ({"extra": 1}, "extra"),
])
def test_malformed_arch_exits_2_naming_the_field(arch, tmp_path, edit, field):
    bad = tmp_path / "arch.json"
    bad.write_text(json.dumps({**json.loads(arch.read_text()), **edit}))
    proc = run_nas("train", str(bad), "--epochs", "1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and f": {field}" in proc.stderr, proc.stderr


def test_bad_recipe_values_exit_2(arch, tmp_path):
    proc = run_nas("train", str(arch), "--label-smoothing", "2")
    assert proc.returncode == 2 and "recipe.label_smoothing" in proc.stderr
    config = tmp_path / "r.toml"
    config.write_text("optimiser = 'adam'\n")
    proc = run_nas("train", str(arch), "--config", str(config))
    assert proc.returncode == 2 and "recipe.optimiser" in proc.stderr


def test_the_data_folder_defaults_to_the_searchs(tmp_path):
    """An architecture searched on its own .npz trains on that file unless --data-dir names another."""
    import numpy as np

    from evaluators.fulltrain import load_splits
    from evaluators.recipe import make_recipe

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", x=rng.integers(0, 255, (60, 6, 6), dtype=np.uint8), y=np.arange(60) % 3)
    space = registry.make_space("nasnet", {"preset": "proxy"})
    data = archfile.make(space, space.get_known("darts-v2"), Task((1, 6, 6), 3), normalization=None,
                         data_name="npz", size=0, metrics={"accuracy": 50.0}, source={},
                         training={"data_dir": str(tmp_path / "mine.npz")})
    arch = archfile.parse(json.loads(json.dumps(data)), tmp_path / "arch.json")
    splits, used = load_splits(arch, make_recipe({}))
    assert splits.classes == 3 and splits.input_shape == (1, 6, 6) and used is arch
    with pytest.raises(Exception, match="elsewhere.npz"):
        load_splits(arch, make_recipe({"data_dir": str(tmp_path / "elsewhere.npz")}))
