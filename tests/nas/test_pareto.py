"""Multi-objective search: NSGA-II and multi-objective evolution give mutually non-dominated Pareto
sets; non-dominated sorting and crowding by hand; pareto.png and the Pareto set in ``nas show``."""

from __future__ import annotations

import json

import pytest

from nas.controllers.history import dominates
from nas.controllers.pareto import crowding_distances, nondominated_ranks, pareto_winner
from nas.search.summary import evaluated_trials, summarize
from nas.search.spec import parse_spec
from tests.conftest import nb201_spec, run_nas, write_spec
from tests.nas.test_latency_objectives import handmade_table
from tests.nas.test_search import run_in_memory


def test_nondominated_ranks_and_crowding_by_hand():
    values = [(1.0, 5.0), (2.0, 4.0), (3.0, 1.0), (1.0, 1.0), (0.5, 0.5)]
    assert nondominated_ranks(values) == [0, 0, 0, 1, 2]
    crowding = crowding_distances(values, nondominated_ranks(values))
    assert crowding[0] == crowding[2] == float("inf")
    assert crowding[1] == pytest.approx((3 - 1) / 2 + (5 - 1) / 4)


def test_pareto_tournament_prefers_rank_then_crowding():
    class M:
        def __init__(self, *values):
            self.values = values

    a, b, c, d = M(1.0, 5.0), M(2.0, 4.9), M(3.0, 1.0), M(0.0, 0.0)
    population = [a, b, c, d]
    assert pareto_winner([d, b], population) is b  # rank 0 beats rank 1
    assert pareto_winner([b, c], population) is c  # same front: the boundary point is less crowded


def mo_spec(table, lut, controller):
    """NAS-Bench-201 accuracy (the table) against predicted latency (3x3 convs cost, the rest is cheap)."""
    return nb201_spec(table, run={"budget": 40, "seed": 2}, latency={"lut": str(lut)}, controller=controller,
                      objectives=[{"metric": "test_acc", "direction": "maximize"},
                                  {"metric": "latency_pred_ms", "direction": "minimize"}])


@pytest.mark.parametrize("controller", [{"name": "nsga2", "population_size": 10},
                                        {"name": "evolution", "population": 10, "sample": 4}])
def test_multi_objective_search_yields_a_mutually_non_dominated_pareto_set(tmp_path, controller, nb201_table):
    lut = handmade_table(tmp_path / "lut.json", preset="cifar10")
    data = mo_spec(nb201_table, lut, controller)
    study, outcome = run_in_memory(data)
    assert outcome.reason == "budget" and len(evaluated_trials(study)) == 40
    summary = summarize(parse_spec(data, tmp_path), study)
    front = summary["pareto"]
    assert front and summary["best"] is None
    oriented = [(r["values"]["test_acc"], -r["values"]["latency_pred_ms"]) for r in front]
    assert not any(dominates(a, b) for a in oriented for b in oriented)
    # and nothing evaluated dominates a member of the set
    everything = [(t.values[0], -t.values[1]) for t in evaluated_trials(study) if t.values]
    assert not any(dominates(x, member) for x in everything for member in oriented)
    assert len({r["values"]["latency_pred_ms"] for r in front}) >= 2  # a front, not one point


def test_a_multi_objective_run_draws_pareto_png_and_show_lists_the_set(tmp_path, nb201_table):
    lut = handmade_table(tmp_path / "lut.json", preset="cifar10")
    data = mo_spec(nb201_table, lut, {"name": "evolution", "population": 10, "sample": 4})
    data["run"].update(name="mo", budget=20)
    spec = write_spec(tmp_path / "mo.toml", data)
    run_nas("search", str(spec), check=True)
    assert (tmp_path / "mo" / "pareto.png").stat().st_size > 1000
    shown = json.loads(run_nas("show", str(tmp_path / "mo"), "--json", check=True).stdout)
    assert shown["pareto"] and all("latency_pred_ms" in r["values"] for r in shown["pareto"])
    text = run_nas("show", str(tmp_path / "mo"), check=True).stdout
    assert "Pareto set" in text and "latency_pred_ms" in text
