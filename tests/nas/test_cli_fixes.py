"""CLI fixes of issue 26: an npz folder, export --trial pareto on one objective, the card's training
advice, describe on an exported arch.json, show --top, a compare spec given to search, --draw folders."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from nas import registry
from nas.config import SpecError
from nas.export import archfile
from nas.space import Task
from tests.conftest import nb201_spec, run_nas, write_spec


def one_line_error(proc, *words: str) -> None:
    """Exit status 2 and one stderr line holding every word."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory, nb201_table) -> Path:
    """A finished single-objective NB201 tabular run."""
    folder = tmp_path_factory.mktemp("fixes")
    spec = write_spec(folder / "s.toml", nb201_spec(nb201_table, run={"name": "s", "budget": 6}))
    run_nas("search", str(spec), "--out", str(folder / "s"), check=True)
    return folder / "s"


def arch_data(size: int = 0, data_name: str = "digits", training: dict | None = None) -> dict:
    """An arch file's data as nas export writes it (nasnet proxy, darts-v2 on 1x8x8 images)."""
    space = registry.make_space("nasnet", {"preset": "proxy"})
    return archfile.make(space, space.get_known("darts-v2"), Task((1, 8, 8), 10), normalization=None,
                         data_name=data_name, size=size, metrics={"accuracy": 90.0}, source={"trial": 1},
                         training=training or {})


# ----- 3: npz data from a folder ----------------------------------------------------------------------
def write_npz(path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 255, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 4)


def test_an_npz_folder_with_one_file_reads_that_file(tmp_path):
    from evaluators.data import load

    write_npz(tmp_path / "mine.npz")
    (tmp_path / "notes.txt").write_text("not data")
    from_folder, from_file = load("npz", str(tmp_path)), load("npz", str(tmp_path / "mine.npz"))
    assert from_folder.input_shape == (1, 8, 8) and from_folder.classes == 4
    assert np.array_equal(from_folder.x_train, from_file.x_train)


@pytest.mark.parametrize("files", [[], ["a.npz", "b.npz"]])
def test_an_npz_folder_without_exactly_one_file_names_the_folder(tmp_path, files):
    from evaluators.data import load

    for name in files:
        write_npz(tmp_path / name)
    with pytest.raises(SpecError, match=rf"evaluator.data_dir: {tmp_path}: a folder must hold exactly one "
                                        rf"\.npz file, found {len(files)}"):
        load("npz", str(tmp_path))


# ----- 4: --trial pareto needs several objectives ------------------------------------------------------
def test_export_pareto_of_a_single_objective_run_is_an_input_error(tabular_run, tmp_path):
    proc = run_nas("export", str(tabular_run), "--trial", "pareto", "--out", str(tmp_path / "o"))
    one_line_error(proc, "--trial", "one objective", "--trial best")
    assert not (tmp_path / "o").exists()


# ----- 6: the model card's training advice -------------------------------------------------------------
def train_args(command: str) -> dict:
    """The parameters ``nas train`` parses from the card's command line (it must parse)."""
    from nas.cli import main

    words = shlex.split(command)
    assert words[:2] == ["nas", "train"]
    return main.commands["train"].make_context("train", words[2:]).params


def test_the_card_trains_at_full_size_from_the_search_data_folder():
    from nas.export.card import train_command

    params = train_args(train_command(arch_data(size=6, training={"data_dir": "/my data/set.npz"})))
    assert params["size"] == 0 and params["epochs"] == 50 and params["data_dir"] == "/my data/set.npz"
    plain = train_args(train_command(arch_data(size=0)))
    assert plain["size"] is None and plain["data_dir"] is None  # full size already: the search's size applies


def test_a_card_of_a_tabular_run_asks_for_a_data_set(tabular_run, tmp_path):
    run_nas("export", str(tabular_run), "--out", str(tmp_path / "o"), check=True)
    card = (tmp_path / "o" / "MODEL_CARD.md").read_text()
    command = card.split("Train it fully: `", 1)[1].split("`", 1)[0]
    assert train_args(command)["data"] == "DATA" and "name a data set with `--data`" in card


# ----- 9: describe prices an exported arch.json at its own task ----------------------------------------
def test_describe_uses_the_arch_file_task_without_space(tmp_path):
    data = arch_data()
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    info = json.loads(run_nas("describe", "--arch-file", str(path), "--json", check=True).stdout)
    assert (info["params"], info["flops"]) == (data["cost"]["params"], data["cost"]["flops"])
    assert info["input_shape"] == [1, 8, 8] and info["num_classes"] == 10 and info["preset"] == "proxy"
    same = json.loads(run_nas("describe", "--space", "nasnet", "--arch-file", str(path), "--json", check=True).stdout)
    assert same["params"] == data["cost"]["params"]


def test_describe_of_an_exported_trial_matches_its_card(tabular_run, tmp_path):
    run_nas("export", str(tabular_run), "--out", str(tmp_path / "o"), check=True)
    exported = json.loads((tmp_path / "o" / "arch.json").read_text())
    info = json.loads(run_nas("describe", "--arch-file", str(tmp_path / "o" / "arch.json"), "--json",
                              check=True).stdout)
    assert info["params"] == exported["cost"]["params"] and info["arch_id"] == exported["arch_id"]
    assert f"parameters: {info['params']:,}" in (tmp_path / "o" / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("edit, args, words", [
    ({}, ["--space", "nb201"], ["--space", "'nb201'", "nasnet"]),
    ({}, ["--preset", "cifar"], ["--preset", "'cifar'", "proxy"]),
    ({"arch_id": "0000000000000000"}, [], ["--arch-file", "arch_id", "does not match"]),
])
def test_describe_refuses_a_conflicting_or_tampered_arch_file(tmp_path, edit, args, words):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**arch_data(), **edit}))
    one_line_error(run_nas("describe", "--arch-file", str(path), *args), *words)


def test_describe_still_needs_a_space_for_a_bare_genotype(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(arch_data()["genotype"]))
    one_line_error(run_nas("describe", "--arch-file", str(path)), "--space", "names no space")
    one_line_error(run_nas("describe", "--arch", "darts-v2"), "--space: required")


# ----- 10, 11, 12 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("top", ["0", "-1"])
def test_show_top_below_one_is_refused(tabular_run, top):
    one_line_error(run_nas("show", str(tabular_run), "--top", top), "--top", f"got {top}")


def test_search_given_a_compare_spec_points_to_nas_compare(tmp_path):
    spec = write_spec(tmp_path / "study.toml", {
        "compare": {"name": "study", "seeds": 2}, "train": {"data": "digits", "epochs": 1},
        "arms": [{"name": "a", "arch": "darts-v2"}, {"name": "b", "sample": "nasnet"}]})
    one_line_error(run_nas("search", str(spec)), "nas compare", f"nas compare {spec}")


def test_describe_draw_creates_missing_folders_and_names_a_blocked_path(tmp_path):
    png = tmp_path / "new" / "deeper" / "cell.png"
    run_nas("describe", "--space", "nb201", "--arch", "resnet", "--draw", str(png), check=True)
    assert png.read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "file").write_text("")
    one_line_error(run_nas("describe", "--space", "nb201", "--arch", "resnet", "--draw",
                           str(tmp_path / "file" / "cell.png")), "--draw", f"{tmp_path / 'file'} is not a folder")

