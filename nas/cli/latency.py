"""``nas latency``: build a per-block latency lookup table, and validate one against measurements."""

from __future__ import annotations

import json
from typing import Any

import click

from nas.cli.base import handle_errors, main, writable_file
from nas.config import SpecError
from nas.latency.table import FIT_NETWORKS
from nas.latency.fit import is_key

BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8")


@main.group()
def latency() -> None:
    """Latency lookup tables: build-lut, validate."""


def _space_options(preset: str | None, options: tuple[str, ...]) -> dict[str, Any]:
    """``--preset`` and ``--option key=value`` (values parsed as JSON where they parse)."""
    out: dict[str, Any] = {"preset": preset} if preset else {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--option: expected key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _task(input_shape: str | None, classes: int | None, space: Any) -> Any:
    """The task given by ``--input-shape C,H,W`` / ``--classes`` (None: the preset's)."""
    from nas.space import Task

    if input_shape is None and classes is None:
        return None
    default = space.default_task()
    shape = default.input_shape
    if input_shape is not None:
        try:
            shape = tuple(int(x) for x in input_shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise SpecError(f"--input-shape: expected C,H,W (three positive integers), got {input_shape!r}")
    return Task(shape, classes or default.num_classes)  # type: ignore[arg-type]


@latency.command("build-lut", short_help="Measure a space's blocks into a latency lookup table.")
@click.option("--space", "space_name", required=True, help="Search space name (nas describe --help lists them).")
@click.option("--preset", help="Macro network preset (default: the space's).")
@click.option("--option", "options", multiple=True,
              help="Another space option, key=value, the value parsed as JSON where it parses (repeatable).")
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="Runtime that times the blocks: eager PyTorch, ONNX Runtime fp32 or int8.")
@click.option("--device", type=click.Choice(("cpu", "cuda")), default="cpu", show_default=True,
              help="Device the blocks run on while timed.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Intra-op threads while timing.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images per timed forward pass.")
@click.option("--input-shape", help="C,H,W the networks get, in channels and pixels (default: the preset's).")
@click.option("--classes", type=click.IntRange(min=1), help="Output classes (default: the preset's).")
@click.option("--fit", type=click.IntRange(min=0), default=FIT_NETWORKS, show_default=True,
              help="Whole networks measured to fit the correction.")
@click.option("--stat", type=click.Choice(("median", "min")), default="median", show_default=True,
              help="Statistic kept: median of the interleaved rounds' medians, or the fastest run.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="JSON file to write the table to (missing folders are created).")
@handle_errors
def build_lut(space_name: str, preset: str | None, options: tuple[str, ...], backend: str, device: str,
              threads: int, batch: int, input_shape: str | None, classes: int | None, fit: int, stat: str,
              out: str) -> None:
    """Measure every block configuration of a space on this machine into a lookup table."""
    from evaluators.lut import build_table
    from evaluators.timing import Settings
    from nas import registry
    from nas.space import require_latency_support

    space = registry.make_space(space_name, _space_options(preset, options), path="--space")
    require_latency_support(space, "--space")
    task = _task(input_shape, classes, space)
    writable_file(out, "--out")  # before minutes of measuring, not after
    total = len(space.latency_universe(task))
    click.echo(f"measuring {total} blocks of {space_name}/{space.preset} ({backend}, {device}, "
               f"{threads} thread(s), batch {batch}), then {fit} networks", err=True)

    def progress(done: int, count: int) -> None:
        if done % 25 == 0 or done == count:
            click.echo(f"  {done}/{count} blocks", err=True)

    table = build_table(space, Settings(backend, device, batch, threads), task, fit, progress, stat)
    table.save(out)
    rules = table.runtime_rules()
    click.echo(f"target: {table.target_info().describe()}; {rules.describe() if rules else 'no graph rules (eager)'}",
               err=True)
    if table.fp32_blocks:
        click.echo(f"{len(table.fp32_blocks)} block(s) the int8 quantizer refused, timed in fp32: "
                   f"{', '.join(table.fp32_blocks)}", err=True)
    keys = sum(is_key(term) for term in table.kind_ms)
    kinds = (f" + {len(table.kind_ms) - keys} kind and {keys} block-key costs" if table.kind_ms else "")
    click.echo(f"{out}: {len(table.blocks)} blocks, correction ({table.fit.get('form', 'none')}) {table.scale:.3f} x sum + "
               f"{table.per_block * 1e3:.3g} us x blocks{kinds} + {table.offset:.4g} ms, "
               f"built in {table.build_seconds:.0f}s")


@latency.command("validate", short_help="Compare a table's predictions with measured networks.")
@click.option("--lut", "lut_path", required=True, type=click.Path(dir_okay=False), help="A table from build-lut.")
@click.option("--samples", type=click.IntRange(min=2), default=100, show_default=True,
              help="Sampled architectures measured and compared with the table's prediction.")
@click.option("--seed", type=int, help="Integer sampling seed (default: a fresh one, printed).")
@click.option("--repeat", type=click.IntRange(min=0), default=0, show_default=True,
              help="Measure this many networks twice and report the repeatability (0: none).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for validation.json, samples.csv, scatter.png (default: write none).")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="Re-measure the table's reference networks in every group of samples and scale the "
                   "predictions by the machine's speed now against at build time (the uncalibrated "
                   "figures are reported too).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def validate(lut_path: str, samples: int, seed: int | None, repeat: int, out: str | None, calibrate: bool,
             as_json: bool) -> None:
    """Measure sampled architectures and compare them with the table's predictions.

    The samples are drawn with a fresh seed unless ``--seed`` is given (and never include the
    table's fit networks): a figure on a seed that no design step has seen."""
    import secrets

    from evaluators.lut import validate_table
    from nas import registry
    from nas.latency.table import LatencyTable

    table = LatencyTable.load(lut_path)
    space = registry.make_space(table.space, dict(table.space_options), path=f"{lut_path}: space")
    table.check(space)
    seed = secrets.randbelow(2**31) if seed is None else seed
    report = validate_table(table, space, samples, seed, repeat=repeat, out=out, calibrate=calibrate)
    report["seed"] = seed
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{report['lut']}; samples drawn with --seed {seed}")
    if table.fp32_blocks:
        click.echo(f"  {len(table.fp32_blocks)} block(s) timed in fp32 (the int8 quantizer refused them): "
                   f"{', '.join(table.fp32_blocks)}")
    click.echo(f"  {report['samples']} networks: {report['within_10pct']:.0%} within ±10%, MAPE "
               f"{report['mape']:.1%}, Kendall tau {report['kendall_tau']:.3f} (FLOPs: {report['flops_kendall_tau']:.3f})")
    if "uncalibrated" in report:
        raw = report["uncalibrated"]
        click.echo(f"  calibrated by the machine's speed against at build time (x{report['drift']:.3f}, median of "
                   f"{len(report['calibration']['group_ratios'])} groups); uncalibrated: {raw['within_10pct']:.0%} "
                   f"within ±10%, MAPE {raw['mape']:.1%}, Kendall tau {raw['kendall_tau']:.3f}")
    click.echo(f"  prediction {report['predict_us']:.0f} µs per architecture"
               + (f", repeatability {report['repeatability']:.1%}" if "repeatability" in report else ""))
    if out:
        click.echo(f"  written: {out}/validation.json, samples.csv, scatter.png")
