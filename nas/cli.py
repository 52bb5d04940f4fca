"""The ``nas`` command. Bad input exits with status 2 and one line naming the field or path."""

from __future__ import annotations

import functools
import json
import logging
import random
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click

from nas.config import SpecError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _fail(message: str) -> None:
    click.echo(f"nas: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn caller mistakes into one line and exit status 2; Ctrl-C into a resumable stop."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SpecError, ValueError, KeyError, FileNotFoundError, NotADirectoryError) as err:
            message = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
            if isinstance(err, FileNotFoundError) and err.filename:
                message = f"{err.filename}: {err.strerror or 'not found'}"
            _fail(message)
        except KeyboardInterrupt:
            click.echo("\nnas: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def _setup_logging(verbose: bool) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    logging.getLogger().setLevel(logging.INFO)


def _sigterm_as_interrupt() -> None:
    """SIGTERM stops a search like Ctrl-C: workers stopped, run left resumable."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="nasforge")
@click.option("-v", "--verbose", is_flag=True, help="Log INFO messages to stderr.")
def main(verbose: bool) -> None:
    """nasforge: neural architecture search for PyTorch."""
    _setup_logging(verbose)


# ----- search / resume / show ---------------------------------------------------------------------
def _overrides(budget: int | None, seed: int | None, executor: str | None, workers: int | None,
               ray_address: str | None, storage: str | None) -> dict[str, Any]:
    return {"run.budget": budget, "run.seed": seed, "executor.name": executor, "executor.workers": workers,
            "executor.address": ray_address, "run.storage": storage}


def _executor_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--budget", type=int, help="Unique architectures to evaluate (overrides run.budget)."),
        click.option("--executor", type=click.Choice(["inline", "ray"]), help="Where trials run."),
        click.option("--workers", type=int, help="Trials evaluated at once (ray)."),
        click.option("--ray-address", help="Join this Ray cluster instead of starting a local instance."),
    ]):
        func = option(func)
    return func


def _finish_search(run_dir: Any, outcome: Any, as_json: bool) -> None:
    from nas.show import format_summary

    summary = json.loads((run_dir.path / "summary.json").read_text())
    if as_json:
        click.echo(json.dumps({**summary, "stopped": outcome.reason}, indent=2))
    else:
        click.echo(format_summary(summary))
        if outcome.reason == "time":
            click.echo(f"  stopped at the time limit; continue with: nas resume {run_dir.path}")
        if outcome.reason in ("exhausted", "target"):
            click.echo(f"  stopped: {outcome.message}")
    if outcome.reason in ("failures", "infeasible"):
        click.echo(f"nas: search stopped: {outcome.message}", err=True)
        sys.exit(1)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/<name>/ beside the spec).")
@_executor_options
@click.option("--storage", help="Optuna storage URL (default: a journal file in the run folder).")
@click.option("--seed", type=int, help="Seed of the controller and of training.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in the output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def search(spec: str, out: str | None, budget: int | None, executor: str | None, workers: int | None,
           ray_address: str | None, storage: str | None, seed: int | None, overwrite: bool, as_json: bool) -> None:
    """Run the search described by the TOML file SPEC."""
    from nas import runner

    _sigterm_as_interrupt()
    overrides = _overrides(budget, seed, executor, workers, ray_address, storage)
    if ray_address and not executor:
        overrides["executor.name"] = "ray"
    try:
        run_dir, outcome = runner.start(spec, overrides, out, overwrite)
    except KeyboardInterrupt:
        click.echo("\nnas: interrupted; the run can be continued with 'nas resume <run folder>'", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _finish_search(run_dir, outcome, as_json)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@_executor_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def resume(run_dir: str, budget: int | None, executor: str | None, workers: int | None,
           ray_address: str | None, as_json: bool) -> None:
    """Continue the interrupted search in RUN_DIR to its budget."""
    from nas import runner

    _sigterm_as_interrupt()
    overrides = _overrides(budget, None, executor, workers, ray_address, None)
    try:
        folder, outcome = runner.resume(run_dir, overrides)
    except KeyboardInterrupt:
        click.echo(f"\nnas: interrupted; continue with 'nas resume {run_dir}'", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _finish_search(folder, outcome, as_json)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--top", type=int, default=5, show_default=True, help="How many of the best trials to list.")
@handle_errors
def show(run_dir: str, as_json: bool, top: int) -> None:
    """Trial counts by state, the best trial (or Pareto set), metrics and arch ids of a run."""
    from nas.search import create_study
    from nas.show import format_summary, summarize
    from nas.spec import load_spec
    from nas.store import RunDir, open_storage

    folder = RunDir(run_dir)
    folder.check_run()
    spec = load_spec(folder.spec_file)
    study = create_study(spec, open_storage(spec.run["storage"]))
    summary = summarize(spec, study, str(folder.path), top)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


# ----- describe -----------------------------------------------------------------------------------
@main.command()
@click.option("--space", "space_name", required=True, help="Search space name (nb201, ...).")
@click.option("--arch", help="A published architecture's name (or the space's text form).")
@click.option("--arch-file", type=click.Path(dir_okay=False), help="A genotype JSON file.")
@click.option("--sample", type=int, help="A random architecture from this seed.")
@click.option("--preset", help="Macro network preset (the space's default if not given).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--draw", type=click.Path(dir_okay=False), help="Write a picture of the architecture (PNG).")
@handle_errors
def describe(space_name: str, arch: str | None, arch_file: str | None, sample: int | None, preset: str | None,
             as_json: bool, draw: str | None) -> None:
    """Build a genotype and report params, FLOPs (multiply-accumulates), input shape and arch id."""
    from nas import registry

    chosen = [x is not None for x in (arch, arch_file, sample)]
    if sum(chosen) != 1:
        raise SpecError("give exactly one of --arch, --arch-file, --sample")
    space = registry.make_space(space_name, {"preset": preset} if preset else {}, path="--space")
    if arch is not None:
        genotype, source = _known_or_parsed(space, arch), "--arch"
    elif arch_file is not None:
        genotype, source = _read_genotype(space, arch_file), f"--arch-file: {arch_file}"
    else:
        genotype, source = space.sample(random.Random(sample)), "--sample"
    try:
        info = space.describe(genotype)
    except ValueError as err:  # e.g. a genotype that does not fit the preset
        raise ValueError(f"{source}: {err}") from None
    if draw:
        space.draw(genotype, draw)
        info["picture"] = str(Path(draw).resolve())
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['space']} ({info['preset']})  arch_id {info['arch_id']}")
    click.echo(f"  {space.label(genotype)}")
    click.echo(f"  params {info['params']:,}   flops (MACs) {info['flops']:,}")
    click.echo(f"  input {tuple(info['input_shape'])}   classes {info['num_classes']}")
    if draw:
        click.echo(f"  picture: {info['picture']}")


def _known_or_parsed(space: Any, text: str) -> Any:
    """A KNOWN genotype by name, else the space's text form if it has a parser."""
    if text in space.known():
        return space.get_known(text)
    known = ", ".join(sorted(space.known())) or "none"
    if not hasattr(space, "parse"):
        raise ValueError(f"--arch: {text!r} is not a known {space.name} architecture; known: {known}")
    try:
        return space.parse(text)
    except (ValueError, KeyError) as err:
        reason = err.args[0] if err.args else err
        raise ValueError(f"--arch: {text!r} is neither a known architecture ({known}) nor a valid text form: "
                         f"{reason}") from None


def _read_genotype(space: Any, path: str) -> Any:
    """A genotype from a JSON file (an exported architecture or a bare genotype)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--arch-file: {file}: no such file")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--arch-file: {file}: not JSON ({err})") from None
    if isinstance(data, dict) and "genotype" in data:
        data = data["genotype"]
    try:
        return space.from_dict(data)
    except ValueError as err:
        raise ValueError(f"--arch-file: {file}: {err}") from None


# ----- bench ----------------------------------------------------------------------------------------
@main.group()
def bench() -> None:
    """Benchmarks (numbers for BENCHMARKS.md)."""


@bench.command("controllers")
@click.option("--table", required=True, type=click.Path(dir_okay=False), help="Benchmark table CSV (arch,metric...).")
@click.option("--space", "space_name", default="nb201", show_default=True, help="Space whose text form the table uses.")
@click.option("--metric", help="Column to maximize (default: the table's first metric).")
@click.option("--seeds", type=int, default=30, show_default=True)
@click.option("--budget", type=int, default=300, show_default=True, help="Unique queries per seed.")
@click.option("--controllers", default="random,tpe,evolution,local,guided", show_default=True,
              help="Comma-separated controller names.")
@click.option("--jobs", type=int, default=0, help="Processes (default: one per CPU).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_controllers(table: str, space_name: str, metric: str | None, seeds: int, budget: int, controllers: str,
                      jobs: int, as_json: bool) -> None:
    """Controllers' sample efficiency on a tabular benchmark (same loop and dedup as nas search)."""
    from nas.bench import format_controllers, run_controllers

    names = [c.strip() for c in controllers.split(",") if c.strip()]
    if not names:
        raise SpecError(f"--controllers: expected comma-separated controller names, got {controllers!r}")
    for option, value in (("--seeds", seeds), ("--budget", budget)):
        if value < 1:
            raise SpecError(f"{option}: expected an integer >= 1, got {value}")
    result = run_controllers(table, names, seeds=seeds, budget=budget, space=space_name, metric=metric, jobs=jobs)
    click.echo(json.dumps(result, indent=2) if as_json else format_controllers(result))


@bench.command("loop")
@click.option("--table", required=True, type=click.Path(dir_okay=False), help="Benchmark table CSV.")
@click.option("--trials", type=int, default=1000, show_default=True)
@click.option("--controllers", default="random,tpe,evolution", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_loop(table: str, trials: int, controllers: str, as_json: bool) -> None:
    """Search-loop overhead: trials/s with the tabular evaluator, inline executor, journal storage."""
    from nas.bench import format_loop, run_loop

    result = run_loop(table, [c.strip() for c in controllers.split(",") if c.strip()], trials)
    click.echo(json.dumps(result, indent=2) if as_json else format_loop(result))


@bench.command("ray")
@click.option("--workers", type=int, default=8, show_default=True)
@click.option("--seconds", type=float, default=0.5, show_default=True, help="Sleep per trial.")
@click.option("--trials", type=int, default=160, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_ray(workers: int, seconds: float, trials: int, as_json: bool) -> None:
    """Ray executor overhead: throughput of sleeping trials vs the ideal workers/seconds."""
    from nas.bench import format_ray, run_ray

    result = run_ray(workers, seconds, trials)
    click.echo(json.dumps(result, indent=2) if as_json else format_ray(result))


def _model_options(data: str):
    """The --space/--preset/--data options shared by the training benchmarks."""
    def decorate(f):
        f = click.option("--data", default=data, show_default=True)(f)
        f = click.option("--preset", default="proxy", show_default=True)(f)
        return click.option("--space", "space_name", default="nasnet", show_default=True)(f)
    return decorate


@bench.command("train")
@_model_options(data="digits")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--steps", type=int, default=40, show_default=True, help="Training steps per round.")
@click.option("--rounds", type=int, default=5, show_default=True, help="Alternated rounds of each loop.")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
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


@bench.command("fidelity")
@_model_options(data="fashion-mnist")
@click.option("--archs", type=int, default=30, show_default=True)
@click.option("--epochs", type=float, default=1.0, show_default=True, help="The search budget.")
@click.option("--factor", type=float, default=4.0, show_default=True, help="Longer training = factor x epochs.")
@click.option("--train-limit", type=int, default=5000, show_default=True)
@click.option("--valid-limit", type=int, default=2000, show_default=True)
@click.option("--size", type=int, default=0, help="Downsample images to size x size (0: as they are).")
@click.option("--jobs", type=int, default=0, help="Processes (default: one per CPU).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
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


if __name__ == "__main__":  # pragma: no cover
    main()
