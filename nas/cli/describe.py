"""``nas describe``: build a genotype and report its size, cost and id."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import click

from nas.cli.base import handle_errors, main, writable_file
from nas.config import SpecError


class _DescribeCommand(click.Command):
    """``nas describe``, whose ``--help`` ends with the registered spaces, presets and architectures."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = space_catalogue()
        with formatter.section("Spaces (presets, the default marked *; named architectures for --arch)"):
            formatter.write_dl(rows)


def space_catalogue() -> list[tuple[str, str]]:
    """One ``(space, "presets: ...; architectures: ...")`` row per registered space, from the registry."""
    from nas import registry

    rows = []
    for name in registry.names("spaces"):
        try:
            space = registry.make_space(name)
        except Exception as err:  # noqa: BLE001 - a broken plugin must not break --help
            rows.append((name, f"(cannot be loaded: {type(err).__name__})"))
            continue
        presets = ", ".join(p + ("*" if p == space.DEFAULT_PRESET else "") for p in space.PRESETS) or "-"
        known = ", ".join(sorted(space.known())) or "none"
        rows.append((name, f"presets: {presets}; architectures: {known}"))
    return rows


# ----- describe -----------------------------------------------------------------------------------
@main.command(cls=_DescribeCommand, short_help="Report an architecture's params, FLOPs, input and arch id.")
@click.option("--space", "space_name",
              help="Search space name (listed below); not needed with an --arch-file that names its space.")
@click.option("--arch", help="A published architecture's name (listed below) or the space's text form.")
@click.option("--arch-file", type=click.Path(dir_okay=False),
              help="An arch.json from nas export (its space, preset, input shape and classes apply) or a bare "
                   "genotype JSON file.")
@click.option("--sample", type=int, help="A random architecture drawn with this integer seed.")
@click.option("--preset", help="Macro network preset (default: the space's, marked * below).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--draw", type=click.Path(dir_okay=False),
              help="Write a picture of the architecture to this PNG file (missing folders are created).")
@handle_errors
def describe(space_name: str | None, arch: str | None, arch_file: str | None, sample: int | None,
             preset: str | None, as_json: bool, draw: str | None) -> None:
    """Build a genotype and report params, FLOPs (multiply-accumulates), input shape and arch id.

    An exported arch.json is priced at its own task (input shape and classes) and refused, as nas
    train refuses it, when its arch_id or cost does not match its genotype."""
    from nas import registry

    chosen = [x is not None for x in (arch, arch_file, sample)]
    if sum(chosen) != 1:
        raise SpecError("give exactly one of --arch, --arch-file, --sample")
    task = None
    if arch_file is not None:
        space, genotype, task = _read_arch_file(arch_file, space_name, preset)
        source = f"--arch-file: {arch_file}"
    else:
        if space_name is None:
            raise SpecError("--space: required with --arch and --sample (an --arch-file names its own space)")
        space = registry.make_space(space_name, {"preset": preset} if preset else {}, path="--space")
        if arch is not None:
            genotype, source = _known_or_parsed(space, arch), "--arch"
        else:
            genotype, source = space.sample(random.Random(sample)), "--sample"
    try:
        info = space.describe(genotype, task)
    except ValueError as err:  # e.g. a genotype that does not fit the preset
        raise SpecError(f"{source}: {err}") from None
    if draw:
        space.draw(genotype, str(writable_file(draw, "--draw")))
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


def _read_arch_file(path: str, space_name: str | None, preset: str | None) -> tuple[Any, Any, Any]:
    """Space, genotype and task (None: the preset's) of ``--arch-file``: an exported ``arch.json``
    (checked by :func:`nas.export.archfile.read`, as ``nas train`` reads it) or a bare genotype."""
    from nas import registry
    from nas.export import archfile

    file = Path(path)
    data = _json(file)
    if not (isinstance(data, dict) and "format" in data):
        if space_name is None:
            raise SpecError(f"--space: required: {file} is a bare genotype that names no space")
        space = registry.make_space(space_name, {"preset": preset} if preset else {}, path="--space")
        return space, _bare_genotype(space, file, data), None
    try:
        arch = archfile.read(file)
    except SpecError as err:
        raise SpecError(f"--arch-file: {err}") from None
    for option, given, recorded in (("--space", space_name, arch.space.name), ("--preset", preset, arch.space.preset)):
        if given is not None and given != recorded:
            raise SpecError(f"{option}: {given!r} conflicts with {file}, whose {option[2:]} is {recorded!r}; "
                            f"leave {option} out")
    return arch.space, arch.genotype, arch.task


def _json(file: Path) -> Any:
    """The parsed JSON of ``--arch-file``."""
    if not file.is_file():
        raise FileNotFoundError(f"--arch-file: {file}: no such file")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"--arch-file: {file}: not JSON ({err})") from None


def _bare_genotype(space: Any, file: Path, data: Any) -> Any:
    """A genotype from a file's JSON (a genotype, or an object holding one under ``genotype``)."""
    if isinstance(data, dict) and "genotype" in data:
        data = data["genotype"]
    try:
        return space.from_dict(data)
    except ValueError as err:
        raise SpecError(f"--arch-file: {file}: {err}") from None
