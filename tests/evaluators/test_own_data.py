"""Your own data for the trainers: an image folder (tiny PNGs written here) and a Dataset factory
(``tests/examples/datasets.py``), read directly, through the train evaluator, and by ``nas search``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from evaluators.data import load, shape_of, task_of
from evaluators.own_data import scan_folder
from nas.config import SpecError
from nas.space import Task
from tests.conftest import ROOT, run_nas, write_spec

FACTORIES = "tests.examples.datasets"
SHADES = {"ant": 30, "bee": 130, "cow": 230}  # each class's pixel value: the label is readable from the image


def write_png(path: Path, mode: str, size: tuple[int, int], value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("L", size, value).convert("RGBA" if mode == "RGBA" else "RGB")
    image = image.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else image.convert(mode)
    image.save(path)


def image_folder(root: Path, gray: bool = False, per_class: int = 6) -> Path:
    """Three classes of flat images; unless ``gray``, mixed modes and one odd size (12x8) to resize."""
    for name, value in SHADES.items():
        for k in range(per_class):
            mode = "L" if gray or k % 2 else ("RGB", "RGBA", "P")[k % 3]
            write_png(root / name / ("nested" if k == 0 else "") / f"{k}.png", mode, (10, 10), value)
    if not gray:
        write_png(root / "cow" / "odd.png", "RGB", (12, 8), SHADES["cow"])
    (root / "ant" / "notes.txt").write_text("not an image: skipped")
    (root / ".cache").mkdir()  # hidden folders are not classes
    return root


def test_folder_classes_mode_and_most_common_size(tmp_path, caplog):
    root = image_folder(tmp_path / "imgs")
    caplog.set_level("INFO", logger="evaluators.own_data")
    splits = load("folder", str(root), seed=0, valid_fraction=0.25)
    assert splits.input_shape == (3, 10, 10) and splits.classes == 3
    assert len(splits.x_train) + len(splits.x_valid) + len(splits.x_test) == 19  # 18 + the odd one, not the .txt
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int64
    assert "RGB 10x10, the most common size (1 resized)" in caplog.text and "ant, bee, cow" in caplog.text
    # the labels follow the sorted class names: un-normalize and read each image's shade back
    raw = splits.x_train * np.asarray(splits.std)[:, None, None] + np.asarray(splits.mean)[:, None, None]
    shades = np.round(raw.mean(axis=(1, 2, 3)) * 255).astype(int)
    assert set(zip(splits.y_train.tolist(), shades.tolist())) == set(enumerate(SHADES.values()))
    assert shape_of("folder", str(root)) == ((3, 10, 10), 3)


def test_grayscale_folder_is_one_channel_and_size_resizes(tmp_path):
    root = image_folder(tmp_path / "gray", gray=True)
    assert scan_folder(str(root)).mode == "L"
    splits = load("folder", str(root), size=6)
    assert splits.input_shape == (1, 6, 6)
    assert task_of({"data": "folder", "data_dir": str(root), "size": 6}) == Task((1, 6, 6), 3)


@pytest.mark.parametrize("case, message", [
    ("missing", r"evaluator\.data_dir: .*missing: not a folder"),
    ("flat", r"evaluator\.data_dir: .*flat: found 0 class subfolder"),
    ("single", r"evaluator\.data_dir: .*single: found 1 class subfolder\(s\) \['only'\]; .* at least two"),
    ("empty_class", r"evaluator\.data_dir: .*empty_class/b: no images \(class 'b'\)"),
    ("corrupt", r"evaluator\.data_dir: .*corrupt/b/broken\.png: unreadable image"),
])
def test_bad_folders_name_the_field_and_path(tmp_path, case, message):
    root = tmp_path / case
    if case == "flat":
        write_png(root / "a.png", "L", (4, 4), 0)
    if case in ("single", "empty_class", "corrupt"):
        write_png(root / ("only" if case == "single" else "a") / "0.png", "L", (4, 4), 0)
    if case == "empty_class":
        (root / "b").mkdir()
    if case == "corrupt":
        (root / "b").mkdir()
        (root / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(SpecError, match=message):
        load("folder", str(root))


def test_dataset_factory_gets_the_options_and_is_read_into_arrays():
    splits = load("dataset", "/nowhere", valid_fraction=0.2, dataset=f"{FACTORIES}:digits")
    assert splits.input_shape == (1, 8, 8) and splits.classes == 10
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_test)) == (128, 32, 40)  # 200: 20% test carved
    assert shape_of("dataset", "/nowhere", dataset=f"{FACTORIES}:digits") == ((1, 8, 8), 10)


def test_dataset_pair_keeps_its_test_split_and_scales_bytes():
    splits = load("dataset", dataset=f"{FACTORIES}:digits_pair", size=4)  # (H, W, 1) uint8 items, averaged 8 -> 4
    assert splits.input_shape == (1, 4, 4) and len(splits.x_test) == 50
    assert len(splits.x_train) + len(splits.x_valid) == 150
    same = load("dataset", dataset=f"{FACTORIES}:digits", size=4)
    assert splits.mean[0] == pytest.approx(same.mean[0], abs=0.05)  # both in [0, 1] before normalizing


@pytest.mark.parametrize("reference, message", [
    ("no_such_package.data:make", r"evaluator\.dataset: cannot import 'no_such_package\.data:make' \(ModuleNotFound"),
    (f"{FACTORIES}:nothing", r"evaluator\.dataset: cannot import .*AttributeError"),
    ("just_a_module", r"evaluator\.dataset: expected 'package\.module:callable'"),
    ("", r"evaluator\.dataset: expected 'package\.module:callable'"),
    (f"{FACTORIES}:NOT_CALLABLE", r"evaluator\.dataset: .* not a callable"),
    (f"{FACTORIES}:one_class", r"evaluator\.dataset: .*every label is 0"),
    (f"{FACTORIES}:ragged", r"evaluator\.dataset: .*item 1 has shape \(1, 6, 6\), item 0 \(1, 8, 8\)"),
    (f"{FACTORIES}:missing_files", r"evaluator\.dataset: .*missing_files raised FileNotFoundError: /data/train\.bin"),
])
def test_bad_dataset_factories_name_the_field(reference, message):
    with pytest.raises(SpecError, match=message):
        load("dataset", "/data", dataset=reference)


def test_dataset_option_belongs_to_data_dataset():
    with pytest.raises(SpecError, match=r"evaluator\.dataset: only read with data = 'dataset' \(data is 'digits'\)"):
        shape_of("digits", dataset=f"{FACTORIES}:digits")


def test_train_evaluator_builds_for_the_folders_shape_and_classes(tmp_path):
    from evaluators.train import TrainEvaluator
    from nas.evaluator import COMPLETE, Job, NullReporter, run_job
    from nas.registry import make_space

    root = image_folder(tmp_path / "imgs")
    space = make_space("nb201", {"preset": "proxy"})
    evaluator = TrainEvaluator(space, {"data": "folder", "data_dir": str(root), "batch_size": 4})
    genotype = space.sample(random.Random(0))
    result = run_job(evaluator, Job(0, 0, genotype.to_json(), genotype.arch_id, {"epochs": 1}, 0), NullReporter())
    assert result.state == COMPLETE, result.error
    assert evaluator.task == Task((3, 10, 10), 3)


def search_spec(evaluator: dict) -> dict:
    return {"run": {"name": "own", "budget": 2, "seed": 0}, "space": {"name": "nb201", "preset": "proxy"},
            "controller": {"name": "random"},
            "evaluator": {"name": "train", "batch_size": 16, "budget": {"epochs": 0, "steps": 2}, **evaluator},
            "objectives": [{"metric": "accuracy", "direction": "maximize"}], "executor": {"name": "inline"}}


@pytest.mark.parametrize("source", ["folder", "dataset"])
def test_search_and_export_on_own_data(tmp_path, source):
    options = ({"data": "folder", "data_dir": str(image_folder(tmp_path / "imgs"))} if source == "folder"
               else {"data": "dataset", "dataset": f"{FACTORIES}:digits_pair"})
    spec = write_spec(tmp_path / "own.toml", search_spec(options))
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), cwd=ROOT, check=True)
    shown = json.loads(run_nas("show", str(tmp_path / "run"), "--json", cwd=ROOT, check=True).stdout)
    assert shown["states"]["complete"] == 2 and 0 <= shown["best"]["metrics"]["accuracy"] <= 100
    run_nas("export", str(tmp_path / "run"), "--out", str(tmp_path / "out"), cwd=ROOT, check=True)
    task = json.loads(next((tmp_path / "out").rglob("arch.json")).read_text())["task"]
    expected = ([3, 10, 10], 3) if source == "folder" else ([1, 8, 8], 10)  # the network was built for the data
    assert (task["input_shape"], task["num_classes"]) == expected
    arch = next((tmp_path / "out").rglob("arch.json"))
    extra = ["--data-dir", options["data_dir"]] if source == "folder" else []  # a Dataset factory is recorded
    run_nas("train", str(arch), "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / "full"), *extra,
            cwd=ROOT, check=True)
    assert next((tmp_path / "full").rglob("*.json"), None) is not None


@pytest.mark.parametrize("options, field", [
    ({"data": "dataset", "dataset": "no_such_package.data:make"}, "evaluator.dataset: cannot import"),
    ({"data": "folder", "data_dir": "/no/such/folder"}, "evaluator.data_dir: /no/such/folder: not a folder"),
])
def test_search_refuses_bad_own_data_with_one_line(tmp_path, options, field):
    spec = write_spec(tmp_path / "bad.toml", search_spec(options))
    proc = run_nas("search", str(spec), "--out", str(tmp_path / "run"), cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and field in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()  # nothing half made


def test_a_relative_data_dir_is_the_spec_folders(tmp_path, monkeypatch):
    """Like every path in a spec, data_dir is read relative to the spec's folder, not the current one."""
    import numpy as np

    from nas.search.spec import load_spec

    (tmp_path / "specs").mkdir()
    np.savez(tmp_path / "specs" / "mine.npz", x=np.zeros((40, 6, 6), np.uint8), y=np.arange(40) % 2)
    (tmp_path / "specs" / "s.toml").write_text(
        '[space]\nname = "nasnet"\npreset = "proxy"\n[evaluator]\nname = "train"\ndata = "npz"\n'
        'data_dir = "mine.npz"\n[executor]\nname = "inline"\n')
    monkeypatch.chdir(tmp_path)
    spec = load_spec(tmp_path / "specs" / "s.toml")
    assert spec.evaluator["data_dir"] == str(tmp_path / "specs" / "mine.npz")
