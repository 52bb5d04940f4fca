"""The contract every registered search space passes (STYLE: one parametrized test for all spaces).

Registered means built in or installed as a plugin (the ``nasforge.spaces`` entry-point group): the
example plugin of ``examples/own_space`` is made visible while this module is collected and while its
tests run (``tests/examples/plugin.py``), so that it passes the same contract as the built-in spaces.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from nas import registry
from nas.space import SearchSpace
from tests.examples import plugin


def smallest_preset(name: str) -> str:
    """The preset the full checks run at: ``proxy`` where the space has one (fast to build and run)."""
    cls = registry.lookup("spaces", name)
    return "proxy" if "proxy" in cls.PRESETS else cls.DEFAULT_PRESET


# every preset of every registered space ("name@preset"), plus the nasnet space's other op
# vocabularies at its smallest preset ("name:vocabulary@preset")
with plugin.visible():
    PRESETS = [f"{name}@{preset}" for name in registry.names("spaces")
               for preset in registry.lookup("spaces", name).PRESETS]
CASES = PRESETS + [f"nasnet:{vocabulary}@{smallest_preset('nasnet')}" for vocabulary in ("amoebanet", "darts")]
GOLDEN_DIR = Path(__file__).parent  # each built-in space's golden costs: <space>/golden.json


@pytest.fixture(autouse=True, scope="module")
def example_plugin_installed() -> Iterator[None]:
    """The example plugin is registered during this module's tests only (other modules see the built-ins)."""
    with plugin.visible():
        yield


def golden_path(space: SearchSpace) -> Path:
    """A space's golden file: ``<space>/golden.json`` here for a built-in space, beside its module for a plugin."""
    if space.name in registry.BUILTIN["spaces"]:
        return GOLDEN_DIR / space.name / "golden.json"
    return Path(sys.modules[type(space).__module__].__file__).parent / "golden.json"  # type: ignore[arg-type]


def make(case: str) -> SearchSpace:
    """The space of a case id ``name[:vocabulary]@preset``."""
    name, _, preset = case.partition("@")
    name, _, vocabulary = name.partition(":")
    return registry.make_space(name, {"preset": preset, **({"vocabulary": vocabulary} if vocabulary else {})})


def at_smallest_preset(space: SearchSpace) -> bool:
    """Whether ``space`` is at the preset the full build checks run at."""
    return space.preset == smallest_preset(space.name)


@pytest.fixture(params=CASES)
def space(request) -> SearchSpace:
    return make(request.param)


def samples(space: SearchSpace, n: int = 8) -> list:
    rng = random.Random(0)
    return [space.sample(rng) for _ in range(n)] + list(space.known().values())


def golden_entry(golden: dict[str, Any], preset: str, name: str) -> dict[str, Any] | None:
    """A golden file's entry for a known architecture at a preset: ``{preset: {name: ...}}`` or
    ``{"name@preset": ...}`` (nasnet's layout)."""
    return golden.get(preset, {}).get(name) or golden.get(f"{name}@{preset}")


@pytest.mark.parametrize("case", PRESETS)
def test_known_costs_match_the_golden_file(case):
    space = make(case)
    path = golden_path(space)
    assert path.is_file(), f"{path}: every space pins the params and FLOPs of its KNOWN genotypes"
    golden = json.loads(path.read_text())
    for name, genotype in space.known().items():
        entry = golden_entry(golden, space.preset, name)
        assert entry is not None, f"{path}: no entry for {name!r} at preset {space.preset!r}"
        cost = space.cost(genotype)
        assert (cost.params, cost.flops) == (entry["params"], entry["flops"]), f"{name}@{space.preset}"
        assert entry.get("arch_id", genotype.arch_id) == genotype.arch_id, name


def test_json_round_trip(space):
    for genotype in samples(space):
        text = genotype.to_json()
        again = space.from_json(text)
        assert again == genotype
        assert again.to_json() == text
        assert json.loads(text)["space"] == space.name
        assert again.arch_id == genotype.arch_id


def test_seeded_sampling_is_reproducible(space):
    a = [space.sample(random.Random(7)) for _ in range(3)]
    b = [space.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    assert len({space.sample(rng).arch_id for _ in range(20)}) > 1


def test_mutate_leaves_input_alone_and_changes_something(space):
    rng = random.Random(3)
    changed = 0
    for genotype in samples(space):
        before = genotype.to_json()
        child = space.mutate(genotype, rng)
        assert genotype.to_json() == before
        assert type(child) is type(genotype)
        changed += child != genotype
    assert changed >= len(samples(space)) // 2


def test_crossover_mixes_parents(space):
    rng = random.Random(4)
    a, b = space.sample(rng), space.sample(rng)
    child = space.crossover(a, b, rng)
    assert type(child) is type(a)
    space.from_json(child.to_json())


def test_params_round_trip_and_fixed_keys(space):
    keys = set(space.distributions())
    for genotype in [g for g in samples(space) if space.contains(g)]:
        params = space.to_params(genotype)
        assert set(params) == keys
        for key, dist in space.distributions().items():
            assert dist._contains(dist.to_internal_repr(params[key])), key
        assert space.from_params(params) == genotype


def test_from_params_rejects_values_outside_the_space(space):
    params = space.to_params(space.sample(random.Random(0)))
    key = next(iter(params))
    with pytest.raises(ValueError, match=key):
        space.from_params({**params, key: "not-a-choice-xyz"})
    with pytest.raises(ValueError):
        space.from_params({})


def test_invalid_genotype_data_raises_value_error(space):
    data = space.sample(random.Random(0)).to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        space.from_dict({**data, "bogus": 1})
    with pytest.raises(ValueError, match="space"):
        space.from_dict({**data, "space": "other"})
    with pytest.raises(ValueError):
        space.from_json("{not json")


def test_builds_runs_forward_and_cost_matches_module(space):
    """At the smallest preset: samples and every known architecture; at the others (up to ImageNet
    size) the cheapest of a few samples, so that each preset's macro network is built and counted."""
    import torch
    from evaluators.cost import count_macs, count_params

    task = space.default_task()
    if at_smallest_preset(space):
        genotypes = samples(space, 3)
    else:
        rng = random.Random(0)
        genotypes = [min((space.sample(rng) for _ in range(8)), key=lambda g: space.cost(g, task).flops)]
    for genotype in genotypes:
        model = space.build(genotype, task)
        with torch.no_grad():
            out = model(torch.randn(2, *task.input_shape))
        assert out.shape == (2, task.num_classes)
        cost = space.cost(genotype, task)
        assert cost.params == count_params(model)
        assert cost.flops == count_macs(model, task.input_shape)


def test_describe_has_the_contract_fields(space):
    info = space.describe(space.sample(random.Random(0)))
    for key in ("space", "arch_id", "params", "flops", "input_shape", "num_classes"):
        assert key in info
    json.dumps(info)


def test_known_architectures_are_valid(space):
    for name, genotype in space.known().items():
        assert space.get_known(name) == genotype
    with pytest.raises(KeyError, match="known"):
        space.get_known("no-such-architecture")
