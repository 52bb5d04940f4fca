"""Scaling space: the coefficient grid, the run outputs (grid.csv, heatmap.png, scaled.json, stages.csv),
and tiny end-to-end coefficient-grid and baseline searches on digits."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from search_spaces.scaling.compound import coefficient_grid, compound_cost, scale
from search_spaces.scaling.genotype import KNOWN
from search_spaces.scaling.space import ScalingSpace
from tests.conftest import run_nas, write_spec

PNG = b"\x89PNG"
B0 = KNOWN["efficientnet-b0"]
TINY = {"grid_step": 0.1, "grid_tolerance": 0.02}  # 3 points: (1.4, 1, 1.2), (1.4, 1.2, 1), (2, 1, 1)


def space_of(search: str = "coefficients", **options) -> ScalingSpace:
    return ScalingSpace(preset="proxy", search=search, **options)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


# ----- the grid ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("step, tolerance, target", [(0.05, 0.1, 2.0), (0.1, 0.02, 2.0), (0.05, 0.05, 1.5),
                                                     (0.1, 0.2, 2.0)])
def test_every_grid_point_respects_the_constraint(step, tolerance, target):
    space = space_of(grid_step=step, grid_tolerance=tolerance, grid_target=target)
    points = space.mode.grid_points()
    everything = space.mode.all_grid_points()
    assert len(everything) == len(coefficient_grid(step, tolerance, target)) >= len(points) > 0
    assert {g.arch_id for g, _ in everything} == {g.arch_id for g, _ in points}
    for genotype, (alpha, beta, gamma) in everything:
        assert abs(compound_cost(alpha, beta, gamma) - target) <= tolerance + 1e-9
        assert genotype == scale(B0, alpha, beta, gamma, 1.0, 0.2)
        assert space.from_params(space.to_params(genotype)) == genotype
    assert [g for g, _ in points] == space.grid()
    by_id: dict[str, list] = {}
    for genotype in space.grid():  # points share an id only when they build the very same network
        by_id.setdefault(genotype.arch_id, []).append(genotype)
    for same in by_id.values():
        assert len({(g.scaled_table(), g.resolution) for g in same}) == 1


def test_grid_applies_phi_and_the_baseline_search_has_none():
    grid = space_of(phi=2.0, **TINY).grid()
    assert [(g.depth, g.width, g.resolution) for g in grid] == [
        (1.96, 1.0, int(round(224 * 1.44))), (1.96, 1.44, 224), (4.0, 1.0, 224)]
    assert space_of("baseline").grid() is None


# ----- run outputs from records ------------------------------------------------------------------------
def records_for(space: ScalingSpace, accuracies: list[float | None]) -> list[dict]:
    """trial_record-like dicts of the grid's points, best first (None: a failed trial, last)."""
    out = []
    for number, (genotype, accuracy) in enumerate(zip(space.grid(), accuracies)):
        cost = space.cost(genotype)
        metrics = {"params": float(cost.params), "flops": float(cost.flops)}
        info: dict = {"counted": True}
        if accuracy is None:
            info["error"] = "non-finite loss at step 25"
        else:
            metrics["accuracy"] = accuracy
        out.append({"number": number, "arch_id": genotype.arch_id, "values": {} if accuracy is None else
                    {"accuracy": accuracy}, "metrics": metrics, "label": space.label(genotype),
                    "genotype": genotype.to_dict(), "info": info})
    return sorted(out, key=lambda r: -r["values"].get("accuracy", -1.0))


def test_coefficient_report_writes_table_heatmap_and_final_scaling(tmp_path):
    space = space_of(grid_step=0.1, grid_tolerance=0.1, final_phi=3.0)
    accuracies = [80.0 + (i * 7 % 11) for i in range(len(space.grid()))]  # one per distinct network
    accuracies[5] = None
    records = records_for(space, accuracies)
    assert space.report(records, tmp_path) == ["grid.csv", "heatmap.png", "scaled.json"]
    rows = read_csv(tmp_path / "grid.csv")
    assert list(rows[0]) == ["rank", "trial", "alpha", "beta", "gamma", "flops_factor", "accuracy", "params",
                             "flops", "state", "arch_id"]
    # a row per grid point (22), points that build the same network sharing its record
    assert len(rows) == len(space.mode.all_grid_points()) == 22 > len(records)
    trials = [r["trial"] for r in rows]
    assert [t for i, t in enumerate(trials) if i == 0 or t != trials[i - 1]] == [str(r["number"]) for r in records]
    points: dict[str, list] = {}
    for genotype, coefficients in space.mode.all_grid_points():
        points.setdefault(genotype.arch_id, []).append(coefficients)
    for row in rows:
        coefficients = tuple(float(row[k]) for k in ("alpha", "beta", "gamma"))
        assert coefficients in points[row["arch_id"]]
        assert abs(float(row["flops_factor"]) - 2.0) <= 0.1 + 1e-9
    on_grid = {g.arch_id: c for g, c in space.mode.grid_points()}
    assert rows[-1]["state"] == "failed" and rows[-1]["accuracy"] == "" and rows[0]["accuracy"] == "90.0"
    assert (tmp_path / "heatmap.png").read_bytes()[:4] == PNG
    scaled = json.loads((tmp_path / "scaled.json").read_text())
    best = on_grid[records[0]["arch_id"]]
    assert tuple(scaled["coefficients"][k] for k in ("alpha", "beta", "gamma")) == best
    assert scaled["phi"] == 3.0 and scaled["best_trial"]["number"] == records[0]["number"]
    genotype = scale(B0, *best, 3.0, 0.2)
    assert space.from_dict(scaled["scaled"]["genotype"]) == genotype
    assert scaled["scaled"]["params"] == space.cost(genotype).params
    assert scaled["scaled"]["flops"] == space.cost(genotype).flops > scaled["baseline"]["flops"] * 4


def test_coefficient_report_without_scores_writes_only_the_table(tmp_path):
    space = space_of(**TINY)
    assert space.report(records_for(space, [None, None, None]), tmp_path) == ["grid.csv"]
    assert len(read_csv(tmp_path / "grid.csv")) == 3 and not (tmp_path / "heatmap.png").exists()


def test_baseline_report_lists_the_best_stage_tables(tmp_path):
    space = space_of("baseline")
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(7)]
    records = [{"number": i, "arch_id": g.arch_id, "values": {"reward": 1.0 - i / 10},
                "metrics": {"accuracy": 90.0 - i, "flops": 1e7, "params": 1e6}, "label": "", "genotype": g.to_dict(),
                "info": {"counted": True}} for i, g in enumerate(genotypes)]
    assert space.report(records, tmp_path) == ["stages.csv"]
    rows = read_csv(tmp_path / "stages.csv")
    assert len(rows) == 5 * 7 and {r["rank"] for r in rows} == {"1", "2", "3", "4", "5"}
    first = [r["stage_string"] for r in rows if r["rank"] == "1"]
    assert first == list(genotypes[0].stages) and rows[0]["reward"] == "1.0" and rows[0]["accuracy"] == "90.0"


def test_bn_momentum_reaches_the_built_model():
    import torch
    for momentum in (0.01, 0.1):
        model = space_of(bn_momentum=momentum).build(B0)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(m.momentum == momentum for m in norms)


# ----- end to end on digits ------------------------------------------------------------------------------
def digits_spec(name: str, space: dict, controller: dict, objectives: list) -> dict:
    return {"run": {"name": name, "budget": 3, "seed": 0},
            "space": {"name": "scaling", "preset": "proxy", "bn_momentum": 0.1, **space},
            "controller": controller,
            "evaluator": {"name": "train", "data": "digits", "train_limit": 64, "valid_limit": 64, "batch_size": 32,
                          "optimizer": "adamw", "lr": 0.003, "threads": 1, "budget": {"steps": 2}},
            "objectives": objectives}


def test_coefficient_grid_run_on_digits_end_to_end(tmp_path):
    data = digits_spec("grid", {"search": "coefficients", **TINY, "final_phi": 2.0}, {"name": "grid"},
                       [{"metric": "accuracy"}])
    proc = run_nas("search", str(write_spec(tmp_path / "grid.toml", data)), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["evaluated"] == 3 and summary["stopped"] == "budget"
    folder = tmp_path / "grid"
    rows = read_csv(folder / "grid.csv")
    grid = {c for _, c in space_of(**TINY).mode.grid_points()}
    assert {tuple(float(r[k]) for k in ("alpha", "beta", "gamma")) for r in rows} == grid
    for row in rows:
        assert row["state"] == "complete" and 0.0 <= float(row["accuracy"]) <= 100.0
        assert abs(float(row["flops_factor"]) - 2.0) <= 0.02 + 1e-9 and int(row["flops"]) > 0
    assert rows[0]["trial"] == str(summary["best"]["number"])
    assert (folder / "heatmap.png").read_bytes()[:4] == PNG
    scaled = json.loads((folder / "scaled.json").read_text())
    assert scaled["phi"] == 2.0 and tuple(scaled["coefficients"][k] for k in ("alpha", "beta", "gamma")) in grid
    assert scaled["scaled"]["params"] > scaled["baseline"]["params"]
    assert scaled["best_trial"]["accuracy"] == summary["best"]["values"]["accuracy"]


def test_baseline_search_with_the_mnasnet_reward_on_digits_end_to_end(tmp_path):
    reward = {"accuracy": "accuracy", "cost": "flops", "target": 1.5e7, "w": -0.07}
    data = digits_spec("base", {"search": "baseline"}, {"name": "evolution", "population": 2, "sample": 2},
                       [{"metric": "reward", "reward": reward}])
    proc = run_nas("search", str(write_spec(tmp_path / "base.toml", data)), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["evaluated"] == 3
    for record in summary["top"]:
        m = record["metrics"]
        assert record["values"]["reward"] == pytest.approx(m["accuracy"] * (m["flops"] / 1.5e7) ** -0.07)
    rows = read_csv(tmp_path / "base" / "stages.csv")
    assert len(rows) == 3 * 7 and rows[0]["trial"] == str(summary["best"]["number"])
    assert float(rows[0]["reward"]) == pytest.approx(summary["best"]["values"]["reward"])
