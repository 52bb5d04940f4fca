"""``nas describe``: build a genotype and report its size, cost and id."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import click

from nas.cli.base import handle_errors, main
from nas.config import SpecError


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
        raise SpecError(f"{source}: {err}") from None
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
        raise SpecError(f"--arch: {text!r} is not a known {space.name} architecture; known: {known}")
    try:
        return space.parse(text)
    except (ValueError, KeyError) as err:
        reason = err.args[0] if err.args else err
        raise SpecError(f"--arch: {text!r} is neither a known architecture ({known}) nor a valid text form: "
                         f"{reason}") from None


def _read_genotype(space: Any, path: str) -> Any:
    """A genotype from a JSON file (an exported architecture or a bare genotype)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--arch-file: {file}: no such file")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"--arch-file: {file}: not JSON ({err})") from None
    if isinstance(data, dict) and "genotype" in data:
        data = data["genotype"]
    try:
        return space.from_dict(data)
    except ValueError as err:
        raise SpecError(f"--arch-file: {file}: {err}") from None
