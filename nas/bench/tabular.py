"""Benchmarks behind ``nas bench``: controllers' sample efficiency, loop overhead, Ray overhead.

Every benchmark runs the real search loop (:class:`nas.search.loop.Search`) with the same dedup and
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

from nas import registry
from nas.config import SpecError
from nas.executors.inline import InlineExecutor
from nas.search.loop import Search, create_study
from nas.search.summary import evaluated_trials
from nas.search.spec import RunSpec, parse_spec
from nas.ledger.store import open_storage

CHECKPOINTS = (50, 100, 200, 300)
LOOP_SPACE = "nb201"  # the space of the loop benchmark's table (its rows are NAS-Bench-201 strings)


def parse_controller(text: str, option: str = "--controllers") -> dict[str, Any]:
    """``"evolution:population=10:sample=3"`` -> ``{"name": "evolution", "population": 10, "sample": 3}``.

    Values are read as TOML values (numbers, booleans, quoted strings); bare words stay strings.
    """
    from nas.search.spec import tomllib

    name, *pairs = text.split(":")
    table: dict[str, Any] = {"name": name}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(f"{option}: expected NAME:KEY=VALUE:..., got {text!r}")
        try:
            table[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            table[key] = value
    return table


def table_spec(table: str, space: str, metric: str, controller: str, seed: int, budget: int,
               executor: dict[str, Any] | None = None, evaluator: dict[str, Any] | None = None,
               target: float | None = None, prescreen: dict[str, Any] | None = None) -> RunSpec:
    """A spec searching ``space`` on a tabular benchmark (or another evaluator) for the benchmarks.

    ``controller`` is a name with optional options, as :func:`parse_controller` reads them;
    ``prescreen`` the ``[prescreen]`` table, if any.
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
        **({"prescreen": prescreen} if prescreen else {}),
    }, Path.cwd())


def trace(table: str, space: str, metric: str, controller: str, seed: int, budget: int,
          target: float | None = None, prescreen: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """One seeded search: the values of the unique architectures it evaluated in the order they
    finished (NaN for failures), and how many proxy scores it had computed before each of them.

    With ``target`` (the table's optimum) the search stops when it reaches it: nothing after that
    can change the best-so-far curve or the queries-to-optimum count.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = table_spec(table, space, metric, controller, seed, budget, target=target, prescreen=prescreen)
    study = create_study(spec, optuna.storages.InMemoryStorage())
    Search(spec, study, InlineExecutor(), "", None).run()
    trials = study.get_trials(deepcopy=False)
    scored = sorted(t.number for t in trials if _scored(t))
    done = sorted(evaluated_trials(study), key=lambda t: (t.datetime_complete, t.number))
    return {"values": [t.values[0] if t.state == TrialState.COMPLETE else math.nan for t in done],
            "proxies": [float(sum(n <= t.number for n in scored)) for t in done],
            "proxy_seconds": [float(sum(t.user_attrs["prescreen"].get("seconds", 0.0) for t in trials if _scored(t)))]}


def _scored(trial: Any) -> bool:
    """Whether the trial's architecture was scored by the pre-screen in this trial (not a reused score)."""
    record = trial.user_attrs.get("prescreen")
    return isinstance(record, dict) and "seconds" in record and not record.get("reused")


def _trace_job(args: tuple) -> list[float]:
    return trace(*args)


def run_controllers(table: str, controllers: list[str], seeds: int = 30, budget: int = 300, space: str = "nb201",
                    metric: str | None = None, jobs: int = 0, prescreen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Queries to the table's optimum, hit rate and best-so-far per controller (DESIGN's contract).

    With ``prescreen`` (a ``[prescreen]`` table) every search screens its proposals: a query is still
    one trained (table) evaluation, and the proxy evaluations are counted and timed beside it.
    """
    from evaluators.tabular import Table

    rows = Table.load(table)
    rows.check_archs(registry.make_space(space, path="--space"))
    metric = metric or rows.columns[0]
    if metric not in rows.columns:
        raise SpecError(f"--metric: column {metric!r} not in {table}; columns: {', '.join(rows.columns)}")
    optimum = rows.best(metric)
    for name in controllers:  # fail fast on a bad name or [prescreen] before starting processes
        table_spec(table, space, metric, name, 0, budget, prescreen=prescreen)
    work = [(table, space, metric, name, seed, budget, optimum, prescreen) for name in controllers
            for seed in range(seeds)]
    started = time.time()
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        traces = list(pool.map(_trace_job, work))
    out: dict[str, Any] = {"table": str(Path(table).resolve()), "metric": metric, "optimum": optimum,
                           "budget": budget, "seeds": seeds, "prescreen": prescreen or {}, "controllers": {}}
    for i, name in enumerate(controllers):
        out["controllers"][name] = controller_stats(traces[i * seeds:(i + 1) * seeds], optimum, budget)
    out["seconds"] = round(time.time() - started, 1)
    return out


def controller_stats(runs: list[dict[str, list[float]]], optimum: float, budget: int) -> dict[str, Any]:
    """Median queries to the optimum (budget + 1 when missed), hit rate, median best within k queries;
    proxy evaluations until the optimum (or in all, when missed) and their seconds per search."""
    traces = [run["values"] for run in runs]
    hits, proxies = [], []
    for run in runs:
        values = run["values"]
        first = next((i + 1 for i, v in enumerate(values) if v >= optimum - 1e-9), budget + 1)
        hits.append(first)
        proxies.append(run["proxies"][min(first, len(values)) - 1] if values else 0.0)
    best_at = {}
    for k in CHECKPOINTS:  # a trace that stopped at the optimum keeps it as its best
        bests = [max((v for v in values[:k] if not math.isnan(v)), default=math.nan) for values in traces]
        best_at[str(k)] = round(statistics.median(bests), 4)
    return {"queries_to_optimum_median": statistics.median(hits),
            "queries_to_optimum": sorted(hits),
            "proxy_evaluations_to_optimum_median": statistics.median(proxies),
            "proxy_seconds_per_search_median": round(statistics.median(r["proxy_seconds"][0] for r in runs), 2),
            "hit_rate": round(sum(h <= budget for h in hits) / len(hits), 4),
            "best_at": best_at}


def format_controllers(result: dict[str, Any]) -> str:
    """A text table of :func:`run_controllers`' result."""
    width = max(12, *(len(n) + 2 for n in result["controllers"]))
    screened = bool(result.get("prescreen"))
    lines = [f"{result['metric']} optimum {result['optimum']}, budget {result['budget']}, "
             f"{result['seeds']} seeds ({result['seconds']} s)"
             + (f"; pre-screen {_describe(result['prescreen'])}" if screened else ""),
             f"{'controller':<{width}}{'median queries':>15}{'hit rate':>10}" + "".join(f"{'best@' + k:>10}" for k in map(str, CHECKPOINTS))
             + (f"{'proxy evals':>12}{'proxy s':>9}" if screened else "")]
    for name, stats in result["controllers"].items():
        lines.append(f"{name:<{width}}{stats['queries_to_optimum_median']:>15}{stats['hit_rate']:>10.2f}"
                     + "".join(f"{stats['best_at'][str(k)]:>10.2f}" for k in CHECKPOINTS)
                     + (f"{stats['proxy_evaluations_to_optimum_median']:>12g}"
                        f"{stats['proxy_seconds_per_search_median']:>9.1f}" if screened else ""))
    return "\n".join(lines)


def prescreen_table(text: str, prior: int, proxy: str, scores: str) -> dict[str, Any] | None:
    """The ``[prescreen]`` table of ``--prescreen KEY=VALUE:...``, ``--prior N`` (a warm-up of N
    architectures), ``--proxy`` and ``--proxy-scores``; None when neither screens anything."""
    if not text and not prior:
        return None
    table = {k: v for k, v in parse_controller("prescreen:" + text, "--prescreen").items() if k != "name"} if text else {"batch": 1}
    table.setdefault("proxy", [p.strip() for p in proxy.split(",") if p.strip()])
    if prior:
        table["warmup"] = prior
    if scores:
        table["scores"] = str(Path(scores).resolve())
    return table


def _describe(prescreen: dict[str, Any]) -> str:
    keys = ("proxy", "batch", "keep", "warmup", "warmup_keep")
    return ", ".join(f"{k}={'+'.join(v) if isinstance(v, list) else v}" for k, v in prescreen.items() if k in keys)


# ----- loop overhead ------------------------------------------------------------------------------------
def run_loop(table: str, controllers: list[str], trials: int = 1000, rounds: int = 1,
             folder: str | None = None) -> dict[str, Any]:
    """Trials/s of the search loop (tabular evaluator, inline executor, journal file), and of a bare
    Optuna loop on the same journal storage and on SQLite, measured in one run for ratios.

    With ``rounds`` > 1 the loops take turns that many times, each round on fresh journals in
    ``folder`` (a temporary folder by default): rates are medians over rounds, and each loop's ratio
    to the bare journal loop is the median of the rounds' ratios (a busy machine's drift cancels).
    The table is read once, before any timing, for every loop.
    """
    from evaluators.tabular import Table

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = Table.load(table)
    rows.check_archs(registry.make_space(LOOP_SPACE))
    metric = rows.columns[0]
    bare = "optuna-journal (bare loop)"
    runs: dict[str, list[float]] = {bare: []}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            runs[bare].append(_bare_optuna(rows, metric, f"journal:{tmp}/bare.journal", trials))
            if "optuna-sqlite (bare loop)" not in runs:
                runs["optuna-sqlite (bare loop)"] = [_bare_optuna(rows, metric, f"sqlite:///{tmp}/bare.db",
                                                                  min(trials, 300))]
            for name in controllers:
                runs.setdefault(f"nas search ({name})", []).append(_search_rate(table, metric, name, trials, tmp))
    out: dict[str, Any] = {"trials": trials, "rounds": rounds, "rates": {}, "ratios": {}}
    for name, rates in runs.items():
        out["rates"][name] = round(statistics.median(rates), 1)
        if len(rates) == rounds:
            out["ratios"][name] = round(statistics.median(r / b for r, b in zip(rates, runs[bare])), 2)
    return out


def _search_rate(table: str, metric: str, controller: str, trials: int, folder: str) -> float:
    """Trials/s of one ``Search.run`` on a fresh journal in ``folder`` (repeats and skips included)."""
    spec = table_spec(table, LOOP_SPACE, metric, controller, 0, trials)
    url = f"journal:{folder}/{controller}.journal"
    study = create_study(spec, open_storage(url))
    started = time.time()
    Search(spec, study, InlineExecutor(), url, None).run()
    elapsed = time.time() - started
    return round(len(study.get_trials(deepcopy=False)) / elapsed, 1)


def _bare_optuna(rows: Any, metric: str, url: str, trials: int) -> float:
    """Trials/s of a plain ask/tell loop with Optuna's random sampler on the NB201 params."""
    space = registry.make_space(LOOP_SPACE)
    study = optuna.create_study(storage=open_storage(url), sampler=optuna.samplers.RandomSampler(seed=0),
                                direction="maximize")
    started = time.time()
    for _ in range(trials):
        trial = study.ask(space.distributions())
        study.tell(trial, rows.rows[space.label(space.from_params(trial.params))][metric])
    return round(trials / (time.time() - started), 1)


def format_loop(result: dict[str, Any]) -> str:
    rounds = result.get("rounds", 1)
    lines = [f"{result['trials']} trials (SQLite: at most 300, once)"
             + (f", median of {rounds} rounds" if rounds > 1 else "")]
    for name, rate in result["rates"].items():
        ratio = result.get("ratios", {}).get(name)
        lines.append(f"  {name:<32}{rate:>8.1f} trials/s" + (f"{ratio:>8.2f}x bare" if ratio is not None else ""))
    return "\n".join(lines)


# ----- Ray executor overhead ----------------------------------------------------------------------------
def run_ray(workers: int = 8, seconds: float = 0.5, trials: int = 160, nodes: int = 0,
            cpus_per_node: int = 4) -> dict[str, Any]:
    """Throughput of trials that sleep ``seconds`` on ``workers`` Ray workers, vs the ideal.

    With ``nodes`` > 0 the workers run on a simulated cluster on this machine
    (``ray.cluster_utils.Cluster``): a head and ``nodes`` worker nodes of ``cpus_per_node`` logical
    CPUs each, one CPU per worker. Throughput is measured while every worker is busy (from the last
    worker's first start to the first worker's last end); the per-trial scheduling overhead is the
    idle time of a worker between two of its trials (the driver's tell, ask and Ray's dispatch).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cluster = _simulated_cluster(nodes, cpus_per_node) if nodes else None
    executor: dict[str, Any] = {"name": "ray", "workers": workers}
    if cluster is not None:
        executor.update(address=cluster.address, cpus_per_trial=1.0)
    spec = table_spec("", "nb201", "score", "random", 0, trials, executor=executor,
                      evaluator={"name": "synthetic", "seconds": seconds})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"journal:{tmp}/ray.journal"
            study = create_study(spec, open_storage(url))
            from nas.executors.ray import RayExecutor

            started = time.time()
            Search(spec, study, RayExecutor(**{k: v for k, v in spec.executor.items() if k != "name"}), url,
                   None).run()
            wall = time.time() - started
            info = [t.user_attrs["info"] for t in evaluated_trials(study) if t.state == TrialState.COMPLETE]
    finally:
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()
    ideal = workers / seconds
    out = {"workers": workers, "seconds": seconds, "trials": len(info), "ideal": ideal,
           "nodes": f"head + {nodes} x {cpus_per_node} CPUs" if nodes else "local", **ray_timing(info, workers)}
    out["efficiency"] = round(out["throughput"] / ideal, 3)
    out["wall_with_startup"] = round(wall, 1)
    return out


def ray_timing(info: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """Steady-state throughput and per-trial scheduling overhead from trials' start times and durations."""
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for i in info:
        by_worker.setdefault(i["worker"], []).append((i["started"], i["started"] + i["seconds"]))
    spans = [sorted(v) for v in by_worker.values()]
    gaps = [b[0] - a[1] for s in spans for a, b in zip(s, s[1:])]
    overall = len(info) / (max(e for s in spans for _, e in s) - min(b for s in spans for b, _ in s))
    if len(spans) < workers:  # some worker never ran a trial: no all-busy window
        return {"throughput": round(overall, 2), "throughput_overall": round(overall, 2),
                "overhead_ms_median": None, "overhead_ms_mean": None}
    lo, hi = max(s[0][0] for s in spans), min(s[-1][1] for s in spans)
    busy = sum(max(0.0, min(e, hi) - max(b, lo)) for s in spans for b, e in s)
    mean_seconds = statistics.mean(e - b for s in spans for b, e in s)
    steady = busy / mean_seconds / (hi - lo) if hi > lo else overall
    return {"throughput": round(steady, 2), "throughput_overall": round(overall, 2),
            "overhead_ms_median": round(1000 * statistics.median(gaps), 1) if gaps else None,
            "overhead_ms_mean": round(1000 * statistics.mean(gaps), 1) if gaps else None}


def _simulated_cluster(nodes: int, cpus_per_node: int) -> Any:
    """A head and ``nodes`` worker nodes of ``cpus_per_node`` logical CPUs each, on this machine."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus_per_node, "include_dashboard": False})
    for _ in range(nodes):
        cluster.add_node(num_cpus=cpus_per_node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    return cluster


def format_ray(result: dict[str, Any]) -> str:
    overhead = ("" if result["overhead_ms_median"] is None else
                f"; scheduling overhead per trial {result['overhead_ms_median']} ms median, "
                f"{result['overhead_ms_mean']} ms mean")
    return (f"{result['trials']} trials of {result['seconds']} s on {result['workers']} workers ({result['nodes']}): "
            f"{result['throughput']} trials/s with all workers busy, of ideal {result['ideal']:g} "
            f"({100 * result['efficiency']:.1f}%); {result['throughput_overall']} trials/s first start to last end"
            f"{overhead}; wall {result['wall_with_startup']} s with Ray start-up")
