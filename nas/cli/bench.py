"""``nas bench ...``: the benchmarks whose numbers go into BENCHMARKS.md."""

from __future__ import annotations

import json

import click

from nas.cli.base import handle_errors, main, writable_file
from nas.config import SpecError


# ----- bench ----------------------------------------------------------------------------------------
@main.group()
def bench() -> None:
    """Benchmarks (numbers for BENCHMARKS.md)."""


@bench.command("controllers", short_help="Controllers' sample efficiency on a tabular benchmark.")
@click.option("--table", required=True, type=click.Path(dir_okay=False), help="Benchmark table CSV (arch,metric...).")
@click.option("--space", "space_name", default="nb201", show_default=True, help="Space whose text form the table uses.")
@click.option("--metric", help="Column to maximize (default: the table's first metric).")
@click.option("--seeds", type=int, default=30, show_default=True,
              help="Independent searches per controller, one seed each.")
@click.option("--budget", type=int, default=300, show_default=True, help="Unique queries per seed.")
@click.option("--controllers", default="random,tpe,evolution,local,guided", show_default=True,
              help="Comma-separated controller names.")
@click.option("--jobs", type=int, default=0, show_default=True, help="Processes (0: one per CPU).")
@click.option("--prescreen", default="", help="Screen proposals with a proxy: [prescreen] options as "
              "KEY=VALUE:..., e.g. batch=8:keep=1 (default: no screening).")
@click.option("--prior", type=int, default=0, show_default=True, help="Warm-up: score N random architectures "
              "first and train the best, the controller's first population (0: none).")
@click.option("--proxy", default="synflow", show_default=True, help="Proxy (or comma-separated proxies) of "
              "--prescreen/--prior.")
@click.option("--proxy-scores", default="", type=click.Path(dir_okay=False),
              help="Read the proxy's scores from this CSV (nas bench proxies --scores) instead of computing them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def bench_controllers(table: str, space_name: str, metric: str | None, seeds: int, budget: int, controllers: str,
                      jobs: int, prescreen: str, prior: int, proxy: str, proxy_scores: str, as_json: bool) -> None:
    """Controllers' sample efficiency on a tabular benchmark (same loop and dedup as nas search).

    With --prescreen or --prior a query is still one trained (table) evaluation; proxy evaluations
    are counted and timed beside the queries."""
    from nas.bench.tabular import format_controllers, prescreen_table, run_controllers

    names = [c.strip() for c in controllers.split(",") if c.strip()]
    if not names:
        raise SpecError(f"--controllers: expected comma-separated controller names, got {controllers!r}")
    for option, value in (("--seeds", seeds), ("--budget", budget)):
        if value < 1:
            raise SpecError(f"{option}: expected an integer >= 1, got {value}")
    if prior < 0:
        raise SpecError(f"--prior: expected an integer >= 0, got {prior}")
    screen = prescreen_table(prescreen, prior, proxy, proxy_scores)
    result = run_controllers(table, names, seeds=seeds, budget=budget, space=space_name, metric=metric, jobs=jobs,
                             prescreen=screen)
    click.echo(json.dumps(result, indent=2) if as_json else format_controllers(result))


@bench.command("loop", short_help="Search-loop overhead in trials/s (tabular, inline).")
@click.option("--table", required=True, type=click.Path(dir_okay=False), help="Benchmark table CSV (arch,metric...).")
@click.option("--trials", type=int, default=1000, show_default=True, help="Trials per controller and round.")
@click.option("--controllers", default="random,tpe,evolution", show_default=True,
              help="Comma-separated controller names.")
@click.option("--rounds", type=int, default=1, show_default=True,
              help="Let the loops take turns this many times; report medians (for a busy machine).")
@click.option("--dir", "folder", type=click.Path(file_okay=False, exists=True), default=None,
              help="Where the journals go (default: a temporary folder); e.g. /dev/shm to leave fsync out.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def bench_loop(table: str, trials: int, controllers: str, rounds: int, folder: str | None, as_json: bool) -> None:
    """Search-loop overhead: trials/s with the tabular evaluator, inline executor, journal storage."""
    from nas.bench.tabular import format_loop, run_loop

    for option, value in (("--trials", trials), ("--rounds", rounds)):
        if value < 1:
            raise SpecError(f"{option}: expected an integer >= 1, got {value}")
    names = [c.strip() for c in controllers.split(",") if c.strip()]
    result = run_loop(table, names, trials, rounds, folder)
    click.echo(json.dumps(result, indent=2) if as_json else format_loop(result))


@bench.command("ray", short_help="Ray executor overhead with sleeping trials.")
@click.option("--workers", type=int, default=8, show_default=True, help="Ray workers running trials at once.")
@click.option("--seconds", type=float, default=0.5, show_default=True, help="Sleep per trial, in seconds.")
@click.option("--trials", type=int, default=160, show_default=True, help="Sleeping trials in all.")
@click.option("--nodes", type=int, default=0, show_default=True,
              help="Simulate a cluster on this machine: a head and NODES worker nodes (0: a local instance).")
@click.option("--cpus-per-node", type=int, default=4, show_default=True, help="Logical CPUs of each simulated node.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def bench_ray(workers: int, seconds: float, trials: int, nodes: int, cpus_per_node: int, as_json: bool) -> None:
    """Ray executor overhead: throughput of sleeping trials vs the ideal workers/seconds."""
    from nas.bench.tabular import format_ray, run_ray

    for option, value, low in (("--workers", workers, 1), ("--trials", trials, 1), ("--nodes", nodes, 0),
                               ("--cpus-per-node", cpus_per_node, 1)):
        if value < low:
            raise SpecError(f"{option}: expected an integer >= {low}, got {value}")
    if nodes and workers > (nodes + 1) * cpus_per_node:
        raise SpecError(f"--workers: {workers} workers need {workers} CPUs; the simulated cluster has "
                        f"{(nodes + 1) * cpus_per_node}")
    result = run_ray(workers, seconds, trials, nodes, cpus_per_node)
    click.echo(json.dumps(result, indent=2) if as_json else format_ray(result))


def _model_options(data: str):
    """The --space/--preset/--data options shared by the training benchmarks."""
    def decorate(f):
        f = click.option("--data", default=data, show_default=True, help="Data set the networks train on.")(f)
        f = click.option("--preset", default="proxy", show_default=True, help="The space's macro network preset.")(f)
        return click.option("--space", "space_name", default="nasnet", show_default=True,
                            help="Search space of the networks.")(f)
    return decorate


@bench.command("train", short_help="Training-loop images/s vs a minimal PyTorch loop.")
@_model_options(data="digits")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images per training step.")
@click.option("--steps", type=int, default=40, show_default=True, help="Training steps per round.")
@click.option("--rounds", type=int, default=5, show_default=True, help="Alternated rounds of each loop.")
@click.option("--threads", type=int, default=1, show_default=True, help="PyTorch intra-op threads.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def bench_train(space_name: str, preset: str, data: str, batch_size: int, steps: int, rounds: int, threads: int,
                as_json: bool) -> None:
    """Training-loop efficiency: the evaluator's images/s vs a minimal PyTorch loop, alternated."""
    from evaluators.benchmarks import run_train_efficiency

    r = run_train_efficiency(space_name, preset, data, batch_size, steps, rounds, threads=threads)
    click.echo(json.dumps(r, indent=2) if as_json else
               f"{r['space']}/{r['preset']} on {r['data']} ({r['device']}, {r['threads']} thread(s), batch "
               f"{r['batch']}): evaluator {r['evaluator_images_per_s']:.0f} img/s, minimal loop "
               f"{r['minimal_images_per_s']:.0f} img/s, ratio {r['ratio']:.3f}")


@bench.command("fidelity", short_help="Kendall tau of the search budget's ranking vs longer training.")
@_model_options(data="fashion-mnist")
@click.option("--archs", type=int, default=30, show_default=True, help="Architectures sampled and trained.")
@click.option("--epochs", type=float, default=1.0, show_default=True, help="The search budget, in epochs.")
@click.option("--factor", type=float, default=4.0, show_default=True, help="Longer training = factor x epochs.")
@click.option("--train-limit", type=int, default=5000, show_default=True, help="Training images used (0: all).")
@click.option("--valid-limit", type=int, default=2000, show_default=True, help="Validation images used (0: all).")
@click.option("--size", type=int, default=0, show_default=True,
              help="Downsample images to size x size pixels (0: as they are).")
@click.option("--jobs", type=int, default=0, show_default=True, help="Processes (0: one per CPU).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def bench_fidelity(space_name: str, preset: str, data: str, archs: int, epochs: float, factor: float,
                   train_limit: int, valid_limit: int, size: int, jobs: int, as_json: bool) -> None:
    """Proxy fidelity: Kendall tau between the search budget's accuracy and factor x longer training."""
    from evaluators.benchmarks import run_fidelity

    r = run_fidelity(space_name, preset, data, archs, epochs, factor, train_limit, valid_limit, jobs=jobs,
                     size=size)
    click.echo(json.dumps(r, indent=2) if as_json else
               f"{r['archs']} {r['space']}/{r['preset']} architectures on {r['data']}: Kendall tau "
               f"{r['kendall_tau']:.3f} between {r['epochs']:g} and {r['epochs'] * r['factor']:g} epochs; "
               f"cost ratio {r['cost_ratio']:.3f}")


@bench.command("proxies", short_help="Zero-cost proxies: rank correlation, seconds per network.")
@click.option("--space", "space_name", default="nb201", show_default=True, help="Search space of the architectures.")
@click.option("--preset", default="", help="The space's preset (default: the space's own default preset).")
@click.option("--table", default="", type=click.Path(dir_okay=False),
              help="Benchmark table CSV (arch,metric...) holding the true accuracies.")
@click.option("--truth", "truth_run", default="", type=click.Path(file_okay=False),
              help="Or a search run folder: its trained accuracies are the truth (read-only).")
@click.option("--metric", help="Column of the table, or metric of the run (default: the first / the objective).")
@click.option("--archs", type=int, default=100, show_default=True, help="Architectures sampled (seeded) from the truth.")
@click.option("--proxies", default="synflow", show_default=True,
              help="Comma-separated proxies (synflow, naswot, jacob_cov, snip, grad_norm, grasp, fisher, zico, "
                   "meco, params, flops); with several, their rank-average 'vote' is reported too.")
@click.option("--data", default="fashion-mnist", show_default=True,
              help="Data set of the minibatch the data-reading proxies get (resized to the networks' input).")
@click.option("--data-dir", default="", help="Folder of the data set (default: where its loader looks).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images in that minibatch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the sample, the batch and the initial weights.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Processes, one thread each.")
@click.option("--scores", default="", type=click.Path(dir_okay=False),
              help="Also write every network's scores to this CSV (arch,proxy...; for --proxy-scores; "
                   "default: none).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def bench_proxies(space_name: str, preset: str, table: str, truth_run: str, metric: str | None, archs: int,
                  proxies: str, data: str, data_dir: str, batch_size: int, seed: int, jobs: int, scores: str,
                  as_json: bool) -> None:
    """Zero-cost proxies: rank correlation with a table's or a run's accuracy, seconds per network."""
    from evaluators.proxies.bench import format_proxies, run_proxies

    if archs < 3 or batch_size < 2 or jobs < 1:
        raise SpecError("--archs/--batch-size/--jobs: expected at least 3 architectures, 2 images and 1 job")
    names = [p.strip() for p in proxies.split(",") if p.strip()]
    if scores:
        writable_file(scores, "--scores")
    result = run_proxies(space_name, preset, table, truth_run, archs, names, metric, data, data_dir, batch_size,
                         seed, jobs, scores)
    click.echo(json.dumps(result, indent=2) if as_json else format_proxies(result))
