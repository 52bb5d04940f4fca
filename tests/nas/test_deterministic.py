"""``[run] deterministic = true``: a seeded run gives the same trials with 1 and 2 Ray workers."""

from __future__ import annotations


import pytest

from nas.config import SpecError
from nas.evaluator import Job, Result
from nas.search.order import Order
from nas.search.spec import parse_spec
from tests.conftest import run_nas, write_spec

pytestmark = pytest.mark.xdist_group("ray")


def digits_spec(workers: int, deterministic: bool = True) -> dict:
    return {
        "run": {"name": "det", "budget": 8, "seed": 3, "deterministic": deterministic, "window": 2},
        "space": {"name": "nasnet", "preset": "proxy"},
        # evolution learns from the results: what it has been told when it proposes decides the trials
        "controller": {"name": "evolution", "population": 2, "sample": 2},
        "evaluator": {"name": "train", "data": "digits", "train_limit": 200, "valid_limit": 150,
                      "budget": {"epochs": 1}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "executor": {"name": "ray", "workers": workers},
    }


def trials(folder) -> list[tuple]:
    from nas.export.exporter import open_ledger

    study = open_ledger(folder).study
    return [(t.number, t.state.name, t.user_attrs.get("arch_id"), t.values,
             t.user_attrs.get("info", {}).get("duplicate_of")) for t in study.get_trials(deepcopy=False)]


def test_a_deterministic_run_gives_the_same_trials_with_1_and_2_ray_workers(tmp_path):
    runs = {}
    for workers in (1, 2):
        path = write_spec(tmp_path / f"w{workers}.toml", digits_spec(workers))
        run_nas("search", str(path), "--out", str(tmp_path / f"w{workers}"), timeout=600, check=True)
        runs[workers] = trials(tmp_path / f"w{workers}")
    assert len([t for t in runs[1] if t[1] == "COMPLETE"]) == 8
    assert runs[1] == runs[2]  # numbers, architectures, states and accuracies alike


def test_results_are_told_in_proposal_order_whatever_order_they_come_back():
    class Pool:  # the executor's side Order talks to
        workers, running = 2, []

        def in_flight(self):
            return len(self.running)

        def submit(self, job):
            self.running.append(job)

    pool, order = Pool(), Order(window=3)
    jobs = [Job(n, n, "{}", f"a{n}", {}, 0) for n in range(3)]
    for job in jobs:
        assert order.room()
        order.add(job)
    assert not order.room()
    order.dispatch(pool)
    assert [j.trial_number for j in pool.running] == [0, 1]  # the third waits for a worker
    told = []
    for job in (jobs[1], jobs[0]):  # 1 finishes first
        pool.running.remove(job)
        order.arrive(job, Result.failed("x"))
        while (done := order.next()) is not None:
            told.append(done[0].trial_number)
        order.dispatch(pool)
    assert told == [0, 1] and [j.trial_number for j in pool.running] == [2]
    assert order.room() and order.busy()


@pytest.mark.parametrize("section, message", [
    ({"pruner": {"name": "median"}}, "pruner.name: a deterministic run cannot prune"),
    ({"prescreen": {"proxy": ["synflow"], "keep": 2, "batch": 4}}, "prescreen: a deterministic run cannot"),
])
def test_a_deterministic_run_refuses_what_depends_on_timing(tmp_path, section, message):
    data = {**digits_spec(1), **section}
    data["executor"] = {"name": "inline"}
    with pytest.raises(SpecError, match=message):
        parse_spec(data, tmp_path)


def test_a_deterministic_run_cannot_join_a_shared_study(tmp_path):
    data = digits_spec(1)
    data["executor"] = {"name": "inline"}
    path = write_spec(tmp_path / "det.toml", data)
    proc = run_nas("search", str(path), "--join", "--storage", f"journal:{tmp_path / 'shared.journal'}",
                   "--out", str(tmp_path / "det"))
    assert proc.returncode == 2 and "--join: several drivers on one study cannot give a deterministic run" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
