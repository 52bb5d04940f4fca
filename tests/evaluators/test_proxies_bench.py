"""``nas bench proxies``: rank correlations of proxies with a table's or a run's accuracies."""

from __future__ import annotations

import csv
import random

import pytest

from evaluators.proxies.bench import correlations, proxy_batch, run_proxies
from nas import registry
from nas.space import Task
from tests.conftest import load_json, nb201_spec, run_nas, write_spec


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """Eight nb201 cells whose 'accuracy' is their parameter count: params must rank them perfectly."""
    space = registry.make_space("nb201", {"preset": "proxy"})
    rng = random.Random(3)
    cells = {space.label(g): g for g in (space.sample(rng) for _ in range(40))}
    path = tmp_path_factory.mktemp("table") / "t.csv"
    task = space.default_task()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "acc"])
        for text, genotype in list(cells.items())[:8]:
            writer.writerow([text, space.cost(genotype, task).params])
    return path


def test_params_ranks_a_table_of_parameter_counts_perfectly(small_table):
    result = run_proxies("nb201", "proxy", table=str(small_table), archs=8, proxies=["params", "synflow"], seed=1)
    assert result["archs"] == 8 and result["data"] == ""  # neither proxy reads data
    row = result["proxies"]["params"]
    assert row["spearman"] == pytest.approx(1.0) and row["kendall"] == pytest.approx(1.0)
    assert row["failed_share"] == 0.0 and row["seconds_per_network"] >= 0.0
    assert set(result["proxies"]) == {"params", "synflow", "vote"}
    assert -1.0 <= result["proxies"]["vote"]["spearman"] <= 1.0


def test_the_sample_is_seeded(small_table):
    a = run_proxies("nb201", "proxy", table=str(small_table), archs=5, proxies=["synflow"], seed=2)
    b = run_proxies("nb201", "proxy", table=str(small_table), archs=5, proxies=["synflow"], seed=2)
    assert a["proxies"]["synflow"]["spearman"] == b["proxies"]["synflow"]["spearman"]


def test_correlations_leave_failed_networks_out():
    result = correlations([1.0, None, 2.0, 3.0, None], [10.0, 0.0, 20.0, 30.0, 5.0])
    assert result["spearman"] == pytest.approx(1.0) and result["scored"] == 3
    assert result["failed_share"] == pytest.approx(0.4)
    assert correlations([None, 1.0], [1.0, 2.0])["spearman"] is None


def test_the_batch_is_fitted_to_the_networks_input():
    x, y = proxy_batch(Task((3, 32, 32), 5), "digits", "", 16, seed=0)
    assert tuple(x.shape) == (16, 3, 32, 32) and int(y.max()) < 5
    assert bool((x[:, 0] == x[:, 1]).all())  # one grey channel repeated


def test_a_run_folder_is_the_truth(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "s.toml", nb201_spec(nb201_table, run={"budget": 6}, space={"preset": "proxy"}))
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), check=True)
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    out = run_nas("bench", "proxies", "--space", "nb201", "--preset", "proxy", "--truth", str(tmp_path / "run"),
                  "--archs", "6", "--proxies", "params", "--json", check=True)
    result = load_json(out.stdout)
    assert result["archs"] == 6 and result["proxies"]["params"]["scored"] == 6
    # built as the run built them: the tabular evaluator's task is the preset's
    assert result["input_shape"] == list(registry.make_space("nb201", {"preset": "proxy"}).default_task().input_shape)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before  # read-only


@pytest.mark.parametrize("args, field", [
    (["--proxies", "magic"], "--proxies: unknown proxy 'magic'"),
    (["--truth", "somewhere"], "--table/--truth: give exactly one"),
    (["--archs", "2"], "--archs"),
])
def test_bad_input_exits_2_naming_the_option(small_table, args, field):
    out = run_nas("bench", "proxies", "--space", "nb201", "--preset", "proxy", "--table", str(small_table), *args)
    assert out.returncode == 2
    assert field in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_run_s_networks_are_built_for_its_data(tmp_path):
    from tests.evaluators.test_zerocost import zero_cost_spec

    spec = write_spec(tmp_path / "s.toml", zero_cost_spec(["params"], budget=5))  # digits: 1 x 8 x 8
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), check=True)
    out = run_nas("bench", "proxies", "--truth", str(tmp_path / "run"), "--archs", "5", "--proxies", "params",
                  "--metric", "proxy_params", "--json", check=True)
    result = load_json(out.stdout)
    assert result["input_shape"] == [1, 8, 8] and result["space"] == "nb201"
    assert result["proxies"]["params"]["spearman"] == pytest.approx(1.0)  # params against itself


def test_scores_are_written_for_a_pre_screen_to_read(small_table, tmp_path):
    out = tmp_path / "scores.csv"
    run_proxies("nb201", "proxy", table=str(small_table), archs=8, proxies=["params", "synflow"], seed=1,
                scores=str(out))
    rows = list(csv.DictReader(out.open()))
    truth = {r["arch"]: float(r["acc"]) for r in csv.DictReader(small_table.open())}
    assert len(rows) == 8 and set(rows[0]) == {"arch", "params", "synflow"}
    assert all(float(r["params"]) == truth[r["arch"]] and float(r["synflow"]) > 0 for r in rows)
