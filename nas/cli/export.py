"""``nas export``: portable architectures, weights, ONNX / torch.export programs and a model card."""

from __future__ import annotations

import json
import sys

import click

from nas.cli.base import handle_errors, main

EXIT_CHECK_FAILED = 1


@main.command("export", short_help="Export a run's trials: arch.json, ONNX, pt2, model card.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--trial", "which", default="best", show_default=True,
              help="Which trials: best, pareto (a multi-objective run's Pareto set), top:K or a trial number.")
@click.option("--format", "formats", default="json", show_default=True,
              help="Comma-separated: json (always written), onnx, pt2.")
@click.option("--weights", is_flag=True, help="Also write the weights the search kept (keep_weights); without it, "
                   "ONNX and pt2 files hold untrained (initial) weights.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder to write (outside the run; one trial-NNNN subfolder per trial when several).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@handle_errors
def export_cmd(run_dir: str, which: str, formats: str, weights: bool, out: str, as_json: bool) -> None:
    """Export trials of a run (read-only: nothing is written into the run folder or its storage)."""
    from nas.export.exporter import export

    chosen = tuple(dict.fromkeys(f.strip() for f in formats.split(",") if f.strip()))
    results = export(run_dir, out, which, chosen, weights)
    failed = [f"{r['dir']}: {c['file']}" for r in results for c in r["checks"].values() if not c["passed"]]
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            click.echo(f"trial #{r['trial']} (rank {r['rank']}, arch {r['arch_id']}) -> {r['dir']}")
            click.echo(f"  {', '.join(r['files'])}")
            for check in r["checks"].values():
                click.echo(f"  {check['file']}: max abs difference {check['max_abs']:.3g} "
                           f"({'ok' if check['passed'] else 'FAILED'}, tolerance {check['tolerance']:g})")
            click.echo(_weights_line(r))
    if failed:
        click.echo(f"nas: error: exported model differs from PyTorch beyond tolerance: {failed[0]}", err=True)
        sys.exit(EXIT_CHECK_FAILED)


def _weights_line(result: dict) -> str:
    """What weights the exported files hold: the search's kept ones, or untrained initial values."""
    if result["weights"] == "trained":
        return f"  weights: trained (kept by the search for trial #{result['trial']})"
    models = [c["file"] for c in result["checks"].values()]
    verb = "holds" if len(models) == 1 else "hold"
    held = f"{' and '.join(models)} {verb} untrained (initial) weights" if models else "no weights exported"
    return (f"  weights: untrained: {held}; for trained ones export with --weights (needs [evaluator] "
            f"keep_weights in the spec) or run: nas train {result['dir']}/arch.json")
