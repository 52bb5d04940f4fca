"""``nas search``, ``nas resume`` and ``nas show``: running a search and reading its ledger."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from nas.cli.base import EXIT_INTERRUPTED, handle_errors, main, sigterm_as_interrupt


# ----- search / resume / show ---------------------------------------------------------------------
def _executor_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--budget", type=int,
                     help="Unique architectures to evaluate (default: the spec's run.budget)."),
        click.option("--executor", type=click.Choice(["inline", "ray"]),
                     help="Where trials run: in this process or on Ray (default: the spec's executor.name)."),
        click.option("--workers", type=int,
                     help="Trials evaluated at once on Ray (default: the spec's executor.workers)."),
        click.option("--ray-address",
                     help="Address of a Ray cluster to join (default: start a local Ray instance)."),
    ]):
        func = option(func)
    return func


def _finish_search(run: Any, as_json: bool) -> None:
    from nas.search.summary import format_summary

    outcome = run.outcome
    summary = json.loads((run.path / "summary.json").read_text())
    if as_json:
        click.echo(json.dumps({**summary, "stopped": outcome.reason}, indent=2))
    else:
        click.echo(format_summary(summary))
        if outcome.reason == "time":
            click.echo(f"  stopped at the time limit; continue with: nas resume {run.path}")
        if outcome.reason in ("exhausted", "target"):
            click.echo(f"  stopped: {outcome.message}")
    if outcome.reason in ("failures", "infeasible"):
        click.echo(f"nas: search stopped: {outcome.message}", err=True)
        sys.exit(1)


@main.command(short_help="Run the search described by the TOML file SPEC.")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: <name>/ in the spec's folder).")
@_executor_options
@click.option("--storage", help="Optuna storage URL (default: a journal file in the run folder).")
@click.option("--seed", type=int, help="Integer seed of the controller and of training (default: the spec's run.seed).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in the output folder.")
@click.option("--join", is_flag=True,
              help="Work on the storage's study of this name with the drivers already on it (shared budget).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def search(spec: str, out: str | None, budget: int | None, executor: str | None, workers: int | None,
           ray_address: str | None, storage: str | None, seed: int | None, overwrite: bool, join: bool,
           as_json: bool) -> None:
    """Run the search described by the TOML file SPEC.

    Several drivers share one search by running the same SPEC with the same --storage (an RDB such
    as PostgreSQL, or Optuna's gRPC proxy) and --join, each with its own --out folder.
    """
    from nas.api import search as run_search

    sigterm_as_interrupt()
    try:
        run = run_search(spec, out=out, overwrite=overwrite, join=join, budget=budget, seed=seed, executor=executor,
                         workers=workers, ray_address=ray_address, storage=storage)
    except KeyboardInterrupt:
        click.echo("\nnas: interrupted; the run can be continued with 'nas resume <run folder>'", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _finish_search(run, as_json)


@main.command(short_help="Continue an interrupted search to its budget.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@_executor_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def resume(run_dir: str, budget: int | None, executor: str | None, workers: int | None,
           ray_address: str | None, as_json: bool) -> None:
    """Continue the interrupted search in RUN_DIR to its budget."""
    from nas.api import resume as run_resume

    sigterm_as_interrupt()
    try:
        run = run_resume(run_dir, budget=budget, executor=executor, workers=workers, ray_address=ray_address)
    except KeyboardInterrupt:
        click.echo(f"\nnas: interrupted; continue with 'nas resume {run_dir}'", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _finish_search(run, as_json)


@main.command(short_help="A run's trial counts, best trial or Pareto set, top trials.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--top", type=int, default=5, show_default=True, help="How many of the best trials to list (>= 1).")
@handle_errors
def show(run_dir: str, as_json: bool, top: int) -> None:
    """Trial counts by state, the best trial (or Pareto set), metrics and arch ids of a run."""
    from nas.api import open_run
    from nas.config import SpecError
    from nas.search.summary import format_summary

    if top < 1:
        raise SpecError(f"--top: expected an integer >= 1, got {top}")
    summary = open_run(run_dir).summary(top)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))
