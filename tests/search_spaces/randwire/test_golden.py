"""Golden params/FLOPs of every KNOWN randwire architecture in every preset, and the paper's figures.

Regenerate ``golden.json`` after an intended change (e.g. a networkx release that draws other graphs
for the KNOWN seeds, which moves their arch ids) with
``.venv/bin/python -c "from tests.search_spaces.randwire.test_golden import write_golden; write_golden()"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from search_spaces.randwire.space import RandWireSpace

GOLDEN = Path(__file__).with_name("golden.json")
CONFIGS: dict[str, dict[str, Any]] = {
    "small": {"preset": "small"},
    "regular": {"preset": "regular"},
    "regular-c154": {"preset": "regular", "channels": 154},
    "proxy": {"preset": "proxy"},
}
# Xie et al. 2019, Table 2 (small regime) and Table 4 (regular regime): RandWire-WS(4, 0.75)
PAPER = {"small": (5.6e6, 583e6), "regular": (31.9e6, 4.0e9), "regular-c154": (61.5e6, 7.9e9)}


def entry(space: RandWireSpace, name: str) -> dict[str, Any]:
    """What the golden file pins for one KNOWN architecture."""
    genotype = space.get_known(name)
    cost = space.cost(genotype)
    return {"params": cost.params, "flops": cost.flops, "arch_id": genotype.arch_id,
            "label": space.label(genotype), "edges": [len(e) for e in genotype.edges]}


def compute() -> dict[str, dict[str, Any]]:
    """Every config x KNOWN entry, from the genotypes alone."""
    out = {}
    for config, options in CONFIGS.items():
        space = RandWireSpace(**options)
        out[config] = {name: entry(space, name) for name in sorted(space.known())}
    return out


def write_golden() -> None:
    """Rewrite ``golden.json`` from the current code."""
    GOLDEN.write_text(json.dumps(compute(), indent=2, sort_keys=True) + "\n")


def test_golden_file_matches_the_genotype_side_cost():
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) == set(CONFIGS)
    assert compute() == golden


@pytest.mark.parametrize("name", ["ws-4-0.75", "er-0.2", "ba-5"])
def test_proxy_golden_matches_the_built_module(name):
    from evaluators.cost import count_macs, count_params

    golden = json.loads(GOLDEN.read_text())["proxy"][name]
    space = RandWireSpace(preset="proxy")
    model = space.build(space.get_known(name))
    assert count_params(model) == golden["params"]
    assert count_macs(model, space.default_task().input_shape) == golden["flops"]


def test_small_ws_cost_matches_the_built_module():
    from evaluators.cost import count_macs, count_params
    from nas.space import Task

    space = RandWireSpace(preset="small")
    genotype = space.get_known("ws-4-0.75")
    assert count_params(space.build(genotype)) == space.cost(genotype).params
    task = Task((3, 72, 72), 1000)  # the small regime's layers at a cheaper input size (odd maps on the way)
    assert count_macs(space.build(genotype, task), task.input_shape) == space.cost(genotype, task).flops


@pytest.mark.parametrize("config", sorted(PAPER))
def test_known_ws_lands_close_to_the_papers_figures(config):
    params, flops = PAPER[config]
    ours = json.loads(GOLDEN.read_text())[config]["ws-4-0.75"]
    assert abs(ours["params"] / params - 1) < 0.03, ours
    assert abs(ours["flops"] / flops - 1) < 0.03, ours
