"""Benchmarks behind ``nas bench``: controllers' sample efficiency, loop overhead, Ray overhead.

Every benchmark runs the real search loop (:class:`nas.search.Search`) with the same dedup and
ledger code as ``nas search``; only the storage (in memory for the controller study) and the
evaluator (a table, or sleeping trials) are chosen for speed.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.config import SpecError
from nas.executors.inline import InlineExecutor
from nas.search import Search, create_study
from nas.show import evaluated_trials
from nas.spec import RunSpec, parse_spec
from nas.store import open_storage

CHECKPOINTS = (50, 100, 200, 300)


def parse_controller(text: str) -> dict[str, Any]:
    """``"evolution:population=10:sample=3"`` -> ``{"name": "evolution", "population": 10, "sample": 3}``.

    Values are read as TOML values (numbers, booleans, quoted strings); bare words stay strings.
    """
    from nas.spec import tomllib

    name, *pairs = text.split(":")
    table: dict[str, Any] = {"name": name}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(f"--controllers: expected NAME:KEY=VALUE:..., got {text!r}")
        try:
            table[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            table[key] = value
    return table


def table_spec(table: str, space: str, metric: str, controller: str, seed: int, budget: int,
               executor: dict[str, Any] | None = None, evaluator: dict[str, Any] | None = None,
               target: float | None = None) -> RunSpec:
    """A spec searching ``space`` on a tabular benchmark (or another evaluator) for the benchmarks.

    ``controller`` is a name with optional options, as :func:`parse_controller` reads them.
    """
    evaluator = evaluator or {"name": "tabular", "table": str(Path(table).resolve()), "metrics": [metric]}
    run = {"name": f"bench-{seed}", "seed": seed, "budget": budget, "max_failures": budget + 1}
    if target is not None:
        run["target"] = target
    return parse_spec({
        "run": run,
        "space": {"name": space}, "controller": parse_controller(controller), "evaluator": evaluator,
        "objectives": [{"metric": metric, "direction": "maximize"}],
        "executor": executor or {"name": "inline"},
    }, Path.cwd())


def trace(table: str, space: str, metric: str, controller: str, seed: int, budget: int,
          target: float | None = None) -> list[float]:
    """Values of the unique architectures one seeded search evaluated, in order (NaN for failures).

    With ``target`` (the table's optimum) the search stops when it reaches it: nothing after that
    can change the best-so-far curve or the queries-to-optimum count.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = table_spec(table, space, metric, controller, seed, budget, target=target)
    study = create_study(spec, optuna.storages.InMemoryStorage())
    Search(spec, study, InlineExecutor(), "", None).run()
    return [t.values[0] if t.state == TrialState.COMPLETE else math.nan for t in evaluated_trials(study)]


def _trace_job(args: tuple) -> list[float]:
    return trace(*args)


def run_controllers(table: str, controllers: list[str], seeds: int = 30, budget: int = 300, space: str = "nb201",
                    metric: str | None = None, jobs: int = 0) -> dict[str, Any]:
    """Queries to the table's optimum, hit rate and best-so-far per controller (DESIGN's contract)."""
    from evaluators.tabular import Table

    rows = Table.read(table)
    metric = metric or rows.columns[0]
    if metric not in rows.columns:
        raise SpecError(f"--metric: column {metric!r} not in {table}; columns: {', '.join(rows.columns)}")
    optimum = rows.best(metric)
    for name in controllers:  # fail fast on a bad name before starting processes
        table_spec(table, space, metric, name, 0, budget)
    work = [(table, space, metric, name, seed, budget, optimum) for name in controllers for seed in range(seeds)]
    started = time.time()
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        traces = list(pool.map(_trace_job, work))
    out: dict[str, Any] = {"table": str(Path(table).resolve()), "metric": metric, "optimum": optimum,
                           "budget": budget, "seeds": seeds, "controllers": {}}
    for i, name in enumerate(controllers):
        out["controllers"][name] = controller_stats(traces[i * seeds:(i + 1) * seeds], optimum, budget)
    out["seconds"] = round(time.time() - started, 1)
    return out


def controller_stats(traces: list[list[float]], optimum: float, budget: int) -> dict[str, Any]:
    """Median queries to the optimum (budget + 1 when missed), hit rate, median best within k queries."""
    hits = []
    for values in traces:
        first = next((i + 1 for i, v in enumerate(values) if v >= optimum - 1e-9), budget + 1)
        hits.append(first)
    best_at = {}
    for k in CHECKPOINTS:  # a trace that stopped at the optimum keeps it as its best
        bests = [max((v for v in values[:k] if not math.isnan(v)), default=math.nan) for values in traces]
        best_at[str(k)] = round(statistics.median(bests), 4)
    return {"queries_to_optimum_median": statistics.median(hits),
            "queries_to_optimum": sorted(hits),
            "hit_rate": round(sum(h <= budget for h in hits) / len(hits), 4),
            "best_at": best_at}


def format_controllers(result: dict[str, Any]) -> str:
    """A text table of :func:`run_controllers`' result."""
    width = max(12, *(len(n) + 2 for n in result["controllers"]))
    lines = [f"{result['metric']} optimum {result['optimum']}, budget {result['budget']}, "
             f"{result['seeds']} seeds ({result['seconds']} s)",
             f"{'controller':<{width}}{'median queries':>15}{'hit rate':>10}" + "".join(f"{'best@' + k:>10}" for k in map(str, CHECKPOINTS))]
    for name, stats in result["controllers"].items():
        lines.append(f"{name:<{width}}{stats['queries_to_optimum_median']:>15}{stats['hit_rate']:>10.2f}"
                     + "".join(f"{stats['best_at'][str(k)]:>10.2f}" for k in CHECKPOINTS))
    return "\n".join(lines)


# ----- loop overhead ------------------------------------------------------------------------------------
def run_loop(table: str, controllers: list[str], trials: int = 1000) -> dict[str, Any]:
    """Trials/s of the search loop (tabular evaluator, inline executor, journal file), and of a bare
    Optuna loop on the same journal storage and on SQLite, measured in one run for ratios."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict[str, Any] = {"trials": trials, "rates": {}}
    with tempfile.TemporaryDirectory() as tmp:
        from evaluators.tabular import Table

        rows = Table.read(table)
        metric = rows.columns[0]
        out["rates"]["optuna-journal (bare loop)"] = _bare_optuna(rows, metric, f"journal:{tmp}/bare.journal", trials)
        out["rates"]["optuna-sqlite (bare loop)"] = _bare_optuna(rows, metric, f"sqlite:///{tmp}/bare.db",
                                                                 min(trials, 300))
        for name in controllers:
            spec = table_spec(table, "nb201", metric, name, 0, trials)
            url = f"journal:{tmp}/{name}.journal"
            study = create_study(spec, open_storage(url))
            started = time.time()
            Search(spec, study, InlineExecutor(), url, None).run()
            elapsed = time.time() - started
            out["rates"][f"nas search ({name})"] = round(len(study.get_trials(deepcopy=False)) / elapsed, 1)
    return out


def _bare_optuna(rows: Any, metric: str, url: str, trials: int) -> float:
    """Trials/s of a plain ask/tell loop with Optuna's random sampler on the NB201 params."""
    from search_spaces.nb201.space import NB201Space

    space = NB201Space()
    study = optuna.create_study(storage=open_storage(url), sampler=optuna.samplers.RandomSampler(seed=0),
                                direction="maximize")
    started = time.time()
    for _ in range(trials):
        trial = study.ask(space.distributions())
        study.tell(trial, rows.rows[space.from_params(trial.params).to_string()][metric])
    return round(trials / (time.time() - started), 1)


def format_loop(result: dict[str, Any]) -> str:
    lines = [f"{result['trials']} trials (SQLite: at most 300)"]
    lines += [f"  {name:<32}{rate:>8.1f} trials/s" for name, rate in result["rates"].items()]
    return "\n".join(lines)


# ----- Ray executor overhead ----------------------------------------------------------------------------
def run_ray(workers: int = 8, seconds: float = 0.5, trials: int = 160) -> dict[str, Any]:
    """Throughput of trials that sleep ``seconds`` on ``workers`` Ray workers, vs the ideal."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    evaluator = {"name": "synthetic", "seconds": seconds}
    spec = table_spec("", "nb201", "score", "random", 0, trials,
                      executor={"name": "ray", "workers": workers}, evaluator=evaluator)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"journal:{tmp}/ray.journal"
        study = create_study(spec, open_storage(url))
        from nas.executors.ray import RayExecutor

        started = time.time()
        Search(spec, study, RayExecutor(**{k: v for k, v in spec.executor.items() if k != "name"}), url, None).run()
        wall = time.time() - started
        done = [t for t in evaluated_trials(study) if t.state == TrialState.COMPLETE]
        info = [t.user_attrs["info"] for t in done]
    first = min(i["started"] for i in info)
    last = max(i["started"] + i["seconds"] for i in info)
    rate = len(done) / (last - first)
    ideal = workers / seconds
    return {"workers": workers, "seconds": seconds, "trials": len(done), "throughput": round(rate, 2),
            "ideal": ideal, "efficiency": round(rate / ideal, 3), "wall_with_startup": round(wall, 1)}


def format_ray(result: dict[str, Any]) -> str:
    return (f"{result['trials']} trials of {result['seconds']} s on {result['workers']} workers: "
            f"{result['throughput']} trials/s of ideal {result['ideal']:g} "
            f"({100 * result['efficiency']:.1f}%); wall {result['wall_with_startup']} s with Ray start-up")
