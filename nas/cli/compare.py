"""``nas compare``: random wiring vs searched vs hand-designed, matched compute, seeds, statistics."""

from __future__ import annotations

import json
import sys

import click

from nas.cli.base import EXIT_INTERRUPTED, handle_errors, main, sigterm_as_interrupt


@main.command("compare", short_help="Train every arm x seed of a study; compare with statistics.")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Comparison folder (default: <name>/ in the spec's folder).")
@click.option("--seeds", type=int, help="Seeds per arm (default: the spec's compare.seeds).")
@click.option("--epochs", type=int, help="Training epochs of every trial (default: the spec's train.epochs).")
@click.option("--data", help="Data set of every trial (default: the spec's train.data; when given, the spec's "
                             "size and data_dir no longer apply).")
@click.option("--executor", type=click.Choice(["inline", "ray"]),
              help="Where trials run: in this process or on Ray (default: the spec's; ray with --workers).")
@click.option("--workers", type=int, help="Trials trained at once on Ray (default: the spec's executor.workers).")
@click.option("--json", "as_json", is_flag=True, help="Print comparison.json at the end instead of the table.")
@handle_errors
def compare(spec: str, out: str | None, seeds: int | None, epochs: int | None, data: str | None,
            executor: str | None, workers: int | None, as_json: bool) -> None:
    """Train every arm x seed of the study in SPEC under one protocol; compare with statistics.

    The table shows each arm's matched cost (FLOPs, or predicted ms with a latency table) and width
    (xN: cells per stack where the depth option applies).

    Running it again resumes: only arm x seed pairs without a completed trial are trained."""
    from nas.compare.study import run

    sigterm_as_interrupt()
    overrides = {"seeds": seeds, "epochs": epochs, "data": data, "executor.name": executor,
                 "executor.workers": workers}
    if workers and not executor:
        overrides["executor.name"] = "ray"
    try:
        summary = run(spec, out, overrides, progress=lambda line: click.echo(line, err=True))
    except KeyboardInterrupt:
        click.echo("\nnas: interrupted; run the same command again to train the missing arm x seed pairs",
                   err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(_table(summary))


def _table(summary: dict) -> str:
    lines = [f"comparison {summary['name']} (reference {summary['reference']}, test accuracy %)",
             f"  {'arm':<18} {'n':>5} {'mean':>7} {'std':>6} {'95% CI':>16} {'cost':>8} {'width xN':>9} "
             f"{'p(Holm)':>8} {'g':>6}"]
    for name, a in summary["arms"].items():
        def num(v: float | None, f: str = ".2f") -> str:
            return "-" if v is None else format(v, f)
        ci = f"[{num(a['ci95'][0])}, {num(a['ci95'][1])}]" if a["ci95"] else "-"
        width = str(a["width"][0]) if a["width"][0] == a["width"][1] else f"{a['width'][0]}-{a['width'][1]}"
        depth = a.get("depth", [0, 0])
        if depth[1]:
            width += f"x{depth[0]}" if depth[0] == depth[1] else f"x{depth[0]}-{depth[1]}"
        cost = f"{a['flops'] / 1e6:>7.2f}M" if a.get("latency_ms") is None else f"{a['latency_ms']:>6.3f}ms"
        lines.append(f"  {name:<18} {a['n']:>2}/{a['planned']:<2} {num(a['mean']):>7} {num(a['std']):>6} {ci:>16} "
                     f"{cost:>8} {width:>9} {num(a['p_holm'], '.3g'):>8} {num(a['hedges_g']):>6}")
    lines += [f"  {s}" for s in summary["statements"]]
    return "\n".join(lines)
