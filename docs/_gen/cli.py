"""``reference/cli.md``: every ``nas`` command, walked from the click group ``nas.cli:main``.

Each command has the anchor of its words joined by dashes (``#nas-search``, ``#nas-latency-build-lut``).
"""

from __future__ import annotations

import inspect
import re
from typing import Iterator

import click

from _gen.tables import cell, code

HEADER = "| Option | Type | Default | Description |\n|---|---|---|---|"
INTRO = """# Command-line reference

Every command of `nas`, with its usage, its help and each argument and option. This page is generated
from the command definitions when the site is built; `nas COMMAND --help` prints the same help.
"""


def commands(group: click.Command | None = None, path: tuple[str, ...] = ("nas",),
             parent: click.Context | None = None) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every command below ``group`` (default: ``nas`` itself), depth first: its words, itself, its context."""
    if group is None:
        from nas.cli import main as group
    ctx = click.Context(group, info_name=path[-1], parent=parent, **group.context_settings)
    yield path, group, ctx
    if isinstance(group, click.Group):
        for name in sorted(group.list_commands(ctx)):
            yield from commands(group.get_command(ctx, name), path + (name,), ctx)


def anchor(path: tuple[str, ...]) -> str:
    """The heading id of a command (``nas-latency-build-lut``)."""
    return "-".join(path)


def cli_page() -> str:
    """The whole page as Markdown: an index of the commands, then one section each."""
    walked = list(commands())
    index = "\n".join(f"- [`{' '.join(path)}`](#{anchor(path)}): {cell(cmd.get_short_help_str(80))}"
                      for path, cmd, _ctx in walked if not cmd.hidden)
    sections = [command_section(path, cmd, ctx) for path, cmd, ctx in walked if not cmd.hidden]
    return "\n\n".join([INTRO, index, *sections]) + "\n"


def command_section(path: tuple[str, ...], cmd: click.Command, ctx: click.Context) -> str:
    """One command: heading, usage, help text, subcommands, arguments and options."""
    level = "#" * min(len(path) + 1, 4)
    out = [f"{level} `{' '.join(path)}` {{#{anchor(path)}}}",
           f"```text\n{cmd.get_usage(ctx).strip()}\n```", help_markdown(cmd.help or "")]
    if isinstance(cmd, click.Group):
        out.append("Commands: " + ", ".join(f"[`{name}`](#{anchor(path + (name,))})"
                                            for name in sorted(cmd.list_commands(ctx))))
    arguments = [p for p in cmd.params if isinstance(p, click.Argument)]
    if arguments:
        out.append("**Arguments**\n\n" + "\n".join(f"- {code(p.human_readable_name)} ({type_word(p, ctx)})"
                                                  f"{'' if p.required else ', optional'}" for p in arguments))
    out.append("**Options**\n\n" + options_table(cmd, ctx))
    epilog = _epilog(cmd, ctx)
    if epilog:
        out.append(f"```text\n{epilog}\n```")
    return "\n\n".join(o for o in out if o)


def options_table(cmd: click.Command, ctx: click.Context) -> str:
    """A table of the command's options (hidden ones left out), ``--help`` last."""
    rows = [HEADER]
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        names = ", ".join(code(n) for n in param.opts + param.secondary_opts)
        if param.multiple:
            names += " (repeatable)"
        rows.append(f"| {names} | {type_word(param, ctx)} | {default_word(param)} | {cell(param.help or '')} |")
    return "\n".join(rows)


def type_word(param: click.Parameter, ctx: click.Context) -> str:
    """The parameter's type in words: flag, choice list, range or click's type name."""
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    info = param.type.to_info_dict()
    if "choices" in info:
        return "one of " + ", ".join(code(str(c)) for c in info["choices"])
    word = {"text": "text", "integer": "integer", "float": "number", "path": "path", "file": "file",
            "boolean": "boolean"}.get(info.get("param_type", "").lower(), info.get("name", "value").lower())
    if info.get("min") is not None or info.get("max") is not None:
        low, high = info.get("min"), info.get("max")
        word += f" {low if low is not None else ''}..{high if high is not None else ''}"
    return word


def default_word(param: click.Option) -> str:
    """The default as a table cell ("" when none or computed at run time)."""
    default = param.to_info_dict().get("default")  # click's own view: None when unset
    if default is None or callable(default) or (param.is_flag and default is False) or default == ():
        return ""
    if isinstance(default, bool):
        return code("true" if default else "false")
    return code(str(default))


def help_markdown(text: str) -> str:
    """A click help text as Markdown: ``\\b`` paragraphs kept as they are, others as prose."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(text))
    out = []
    for paragraph in paragraphs:
        if paragraph.startswith("\b"):
            out.append("```text\n" + paragraph.lstrip("\b").strip("\n") + "\n```")
        else:
            out.append(re.sub(r"([*\[])", r"\\\1", paragraph).replace("<", "&lt;"))
    return "\n\n".join(out)


def _epilog(cmd: click.Command, ctx: click.Context) -> str:
    """What the command prints after its options (a plain epilog, or one a command class formats)."""
    formatter = click.HelpFormatter(width=100)
    cmd.format_epilog(ctx, formatter)
    return formatter.getvalue().strip("\n")
