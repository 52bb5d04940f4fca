"""Benchmarks of the shared ledger (issue 9).

    python -m tests.bench.bench_shared throughput [--seconds 0.5] [--trials 16] [--controller random]
        one driver vs two drivers sharing one PostgreSQL study (a throw-away server, see
        tests/fault/pg.py); trials of the synthetic evaluator that sleep --seconds; prints each
        setting's trials/s and the ratio. Throughput counts the trials that started and ended
        while every driver was working (from the ledger's timestamps), as drivers start apart.
    python -m tests.bench.bench_shared contention [--drivers 3] [--trials 50]
        that many drivers walk one compound-scaling grid in the same order on one PostgreSQL study
        (every proposal races): double evaluations (goal 0), withdrawn claims.
    python -m tests.bench.bench_shared memory [--trials 2000]
        one driver's resident memory over --trials trials (synthetic evaluator, 0 s, random
        controller, journal storage): RSS after the first 200 trials and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def spec_data(name: str, budget: int, seconds: float, controller: str = "evolution") -> dict:
    return {"run": {"name": name, "budget": budget, "seed": 0}, "space": {"name": "nb201"},
            "controller": {"name": controller}, "evaluator": {"name": "synthetic", "seconds": seconds},
            "objectives": [{"metric": "score"}]}


def _drivers(root: Path, url: str, name: str, budget: int, seconds: float, drivers: int,
             controller: str) -> tuple[float, float]:
    """Run ``drivers`` joined drivers on a fresh study; trials per second from the ledger's timestamps."""
    import tomli_w

    from nas.search.summary import evaluated_trials
    from nas.ledger.store import open_storage

    spec = root / f"{name}.toml"
    spec.write_text(tomli_w.dumps(spec_data(name, budget, seconds, controller)))
    procs = [subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--storage", url, "--join",
                               "--out", str(root / f"{name}-{i}")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(drivers)]
    for proc in procs:
        if proc.wait(timeout=600) != 0:
            raise RuntimeError(proc.stderr.read())
    counted = evaluated_trials(optuna.load_study(study_name=name, storage=open_storage(url)))
    by_driver: dict[str, list] = {}
    for trial in counted:
        by_driver.setdefault(trial.system_attrs["nas:claim"]["driver"], []).append(trial)
    # the window in which every driver was working (drivers start a few seconds apart)
    begin = max(min(t.datetime_start for t in ts) for ts in by_driver.values())
    end = min(max(t.datetime_complete for t in ts) for ts in by_driver.values())
    inside = [t for t in counted if t.datetime_start >= begin and t.datetime_complete <= end]
    first = min(t.datetime_start for t in counted)
    last = max(t.datetime_complete for t in counted)
    # (window rate, whole-run rate: every trial from the first start to the last end, start-up included)
    return len(inside) / (end - begin).total_seconds(), len(counted) / (last - first).total_seconds()


def throughput(seconds: float, trials: int, controller: str) -> dict:
    from tests.fault.pg import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            one = _drivers(Path(tmp), server.url, "one", trials, seconds, 1, controller)
            two = _drivers(Path(tmp), server.url, "two", 2 * trials, seconds, 2, controller)
    finally:
        server.close()
    return {"controller": controller, "trial_seconds": seconds, "one_driver_trials_per_s": round(one[0], 3),
            "two_drivers_trials_per_s": round(two[0], 3), "ratio": round(two[0] / one[0], 3),
            "whole_run": {"one_driver_trials_per_s": round(one[1], 3), "two_drivers_trials_per_s": round(two[1], 3),
                          "ratio": round(two[1] / one[1], 3)}}


def contention(drivers: int, budget: int) -> dict:
    """``drivers`` drivers walk one grid (61 distinct networks) in the same order on one PostgreSQL
    study: every proposal races; counts double evaluations (goal 0) and withdrawn claims."""
    import collections

    import tomli_w

    from nas.ledger.store import open_storage
    from tests.fault.pg import PostgresServer

    data = {"run": {"name": "race", "budget": budget, "seed": 0},
            "space": {"name": "scaling", "preset": "proxy", "search": "coefficients", "phi": 1.0,
                      "grid_step": 0.05},
            "controller": {"name": "grid"}, "evaluator": {"name": "synthetic", "seconds": 0.05},
            "objectives": [{"metric": "score"}]}
    server = PostgresServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "race.toml"
            spec.write_text(tomli_w.dumps(data))
            procs = [subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--storage", server.url,
                                       "--join", "--out", f"{tmp}/d{i}"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for i in range(drivers)]
            codes = [p.wait(timeout=900) for p in procs]
            study = optuna.load_study(study_name="race", storage=open_storage(server.url))
            trials = study.get_trials()
    finally:
        server.close()
    counted = [t for t in trials if t.user_attrs.get("info", {}).get("counted")]
    per_arch = collections.Counter(t.user_attrs["arch_id"] for t in counted)
    infos = [t.user_attrs.get("info", {}) for t in trials]
    return {"drivers": drivers, "exit_codes": codes, "evaluated": len(counted), "budget": budget,
            "double_evaluations": sum(n - 1 for n in per_arch.values()),
            "withdrawn_claims": sum(str(i.get("error", "")).startswith("skipped") for i in infos),
            "duplicates_told": sum("duplicate_of" in i for i in infos), "trials": len(trials)}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(trials: int) -> dict:
    from nas.executors.inline import InlineExecutor
    from nas.search.loop import Search, create_study
    from nas.search.spec import parse_spec
    from nas.ledger.store import open_storage

    with tempfile.TemporaryDirectory() as tmp:
        url = f"journal:{tmp}/study.journal"
        rss, times = [], []
        for budget in (200, trials):
            spec = parse_spec(spec_data("mem", budget, 0.0, "random"), Path("."))
            started = time.time()
            study = create_study(spec, open_storage(url), stream=str(budget))
            Search(spec, study, InlineExecutor(), url, None).run()
            times.append(time.time() - started)
            rss.append(_rss_mb())
    return {"trials": trials, "rss_mb_after_200": round(rss[0], 1), "rss_mb_at_end": round(rss[1], 1),
            "growth_mb": round(rss[1] - rss[0], 1), "seconds": round(sum(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["throughput", "memory", "contention"])
    parser.add_argument("--drivers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--controller", default="random")
    args = parser.parse_args()
    if args.what == "throughput":
        print(json.dumps(throughput(args.seconds, args.trials or 16, args.controller)))
    elif args.what == "contention":
        print(json.dumps(contention(args.drivers, args.trials or 50)))
    else:
        print(json.dumps(memory(args.trials or 2000)))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
