"""The example search-space plugin (examples/own_space): found through its entry point, searched,
described and exported through the CLI as a built-in space is."""

from __future__ import annotations

import json
import random
from importlib import metadata

import pytest

from nas import registry
from tests.conftest import ROOT, run_nas, write_spec
from tests.examples.plugin import python_path, visible, write_dist_info


def not_installed() -> None:
    """Skip a test that needs the example absent from the environment (``pip install -e`` puts it there)."""
    try:
        metadata.distribution("nasforge-mlp")
    except metadata.PackageNotFoundError:
        return
    pytest.skip("nasforge-mlp is installed in this environment (pip uninstall nasforge-mlp)")


def test_entry_point_registers_the_space_only_while_installed():
    not_installed()
    assert "mlp" not in registry.names("spaces")
    with visible():
        assert "mlp" in registry.names("spaces")
        space = registry.make_space("mlp", {"max_layers": 2})
        genotype = space.sample(random.Random(0))
        assert space.from_params(space.to_params(genotype)) == genotype and len(genotype.widths) <= 2
    assert "mlp" not in registry.names("spaces")


def test_space_options_are_checked_like_a_built_in_space():
    with visible(), pytest.raises(ValueError, match=r"space\.max_layers: expected an integer >= 1 and <= 4"):
        registry.make_space("mlp", {"max_layers": 9})


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    return {"PYTHONPATH": python_path(write_dist_info(tmp_path_factory.mktemp("site")))}


def test_search_describe_and_export_with_the_plugin_space(tmp_path, plugin_env):
    spec = write_spec(tmp_path / "mlp.toml", {
        "run": {"name": "mlp", "budget": 3, "seed": 0}, "space": {"name": "mlp", "max_layers": 2},
        "controller": {"name": "evolution", "population": 2, "sample": 2},
        "evaluator": {"name": "train", "data": "digits", "train_limit": 200, "valid_limit": 100,
                      "budget": {"epochs": 0, "steps": 3}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}], "executor": {"name": "inline"}})
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), cwd=ROOT, env=plugin_env, check=True)
    shown = json.loads(run_nas("show", str(tmp_path / "run"), "--json", cwd=ROOT, env=plugin_env, check=True).stdout)
    assert shown["space"] == "mlp" and shown["states"]["complete"] == 3
    run_nas("export", str(tmp_path / "run"), "--out", str(tmp_path / "out"), cwd=ROOT, env=plugin_env, check=True)
    arch_file = next((tmp_path / "out").rglob("arch.json"))
    arch = json.loads(arch_file.read_text())
    assert arch["space"]["name"] == "mlp" and arch["arch_id"] == shown["best"]["arch_id"]
    described = json.loads(run_nas("describe", "--space", "mlp", "--arch-file", str(arch_file), "--json",
                                   cwd=ROOT, env=plugin_env, check=True).stdout)
    assert described["arch_id"] == arch["arch_id"] and described["input_shape"] == [1, 8, 8]
    widths = arch["genotype"]["widths"]
    sizes = [64, *widths, 10]  # digits: 64 inputs, 10 classes
    assert described["params"] == sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def test_describe_parses_the_plugins_text_form(plugin_env):
    out = run_nas("describe", "--space", "mlp", "--arch", "64-32:tanh", "--json", cwd=ROOT, env=plugin_env, check=True)
    info = json.loads(out.stdout)
    macs = 64 * 64 + 64 * 32 + 32 * 10  # digits: 64 inputs -> 64 -> 32 -> 10 classes
    assert (info["string"], info["params"], info["flops"]) == ("64-32:tanh", macs + 64 + 32 + 10, macs)


def test_without_the_plugin_the_space_is_unknown():
    not_installed()
    out = run_nas("describe", "--space", "mlp", "--sample", "0", cwd=ROOT)
    assert out.returncode == 2 and "--space: unknown space 'mlp'; known: nasnet" in out.stderr
