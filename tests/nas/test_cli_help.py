"""Every ``nas`` command and option explains itself: no empty or echoed help, no cut-off summaries, and
``nas describe --help`` lists what the registry holds."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest

from nas import registry
from nas.cli import main

ELLIPSES = ("...", "…")


def walk(command: click.Command, parent: click.Context | None = None,
         name: str = "nas") -> Iterator[tuple[str, click.Command, click.Context]]:
    """Every command under ``command`` (itself included), with its path and a context to render help in
    (built directly: no group callback runs, so nothing is set up)."""
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=80)
    path = f"{parent.command_path} {name}" if parent is not None else name
    yield path, command, ctx
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            yield from walk(sub, ctx, sub_name)


COMMANDS = list(walk(main))
OPTIONS = [(path, param) for path, command, _ in COMMANDS for param in command.params
           if isinstance(param, click.Option)]


def squash(text: str) -> str:
    """Lower case without dashes, underscores, spaces and final full stops: ``--batch-size`` -> ``batchsize``."""
    return re.sub(r"[-_\s.]", "", text.lower())


def own_text(option: click.Option) -> str:
    """An option's help without a trailing ``[default: ...]``/``[recipe default: ...]`` note."""
    return re.sub(r"\s*\[[^\]]*default:[^\]]*\]\s*$", "", option.help or "").strip()


def test_the_walk_reaches_every_verb_and_subcommand():
    paths = {path for path, _, _ in COMMANDS}
    assert {"nas train", "nas describe", "nas bench ray", "nas latency build-lut", "nas latency validate"} <= paths
    assert len(OPTIONS) > 100


@pytest.mark.parametrize("path, option", OPTIONS, ids=[f"{p} {o.opts[-1]}" for p, o in OPTIONS])
def test_every_option_has_its_own_help(path, option):
    text = own_text(option)
    names = {squash(n) for n in (*option.opts, *option.secondary_opts, option.name or "")}
    assert text, f"{path} {option.opts[-1]}: no help"
    assert squash(text) not in names, f"{path} {option.opts[-1]}: help {option.help!r} only repeats its name"
    assert "\n" not in text.strip(), f"{path} {option.opts[-1]}: help is not one line"


def has_default(option: click.Option) -> bool:
    """Whether ``option`` has a default worth showing (a flag's False, None and "" are not)."""
    default = option.to_info_dict()["default"]  # None when unset
    return not option.is_flag and not option.required and default not in (None, "", ())


@pytest.mark.parametrize("path, option", [(p, o) for p, o in OPTIONS if has_default(o)],
                         ids=[f"{p} {o.opts[-1]}" for p, o in OPTIONS if has_default(o)])
def test_an_option_with_a_default_shows_it(path, option):
    assert option.show_default or "default" in (option.help or "") or "(0:" in (option.help or ""), \
        f"{path} {option.opts[-1]}: default {option.default!r} not shown"


@pytest.mark.parametrize("path, command", [(p, c) for p, c, _ in COMMANDS], ids=[p for p, _, _ in COMMANDS])
def test_every_command_has_help(path, command):
    assert (command.help or "").strip(), f"{path}: no help"


@pytest.mark.parametrize("path, group, ctx", [c for c in COMMANDS if isinstance(c[1], click.Group)],
                         ids=[p for p, c, _ in COMMANDS if isinstance(c, click.Group)])
def test_no_summary_in_a_group_listing_is_cut_off(path, group, ctx):
    listing = group.get_help(ctx).split("Commands:", 1)[1]
    rows = re.findall(r"^  (\S+)\s+(.*(?:\n {4,}.*)*)", listing, flags=re.MULTILINE)
    assert {name for name, _ in rows} == set(group.commands)
    for name, summary in rows:
        assert not summary.rstrip().endswith(ELLIPSES), f"{path} --help: {name}'s summary is cut off: {summary!r}"
    for name, sub in group.commands.items():  # at click's narrowest default limit too
        assert not sub.get_short_help_str(45).endswith(ELLIPSES), f"{path} {name}: summary cut at 45 characters"


def test_describe_help_lists_every_space_its_presets_and_architectures():
    ctx = next(c for p, _, c in COMMANDS if p == "nas describe")
    text = " ".join(main.commands["describe"].get_help(ctx).split())
    for name in registry.names("spaces"):
        space = registry.make_space(name)
        assert re.search(rf"\b{re.escape(name)} presets: ", text), f"space {name} missing from describe --help"
        for preset in space.PRESETS:
            assert preset in text
        assert f"{space.DEFAULT_PRESET}*" in text
        for known in space.known():
            assert known in text, f"{name}'s {known} missing from describe --help"


def test_train_help_names_the_recipe_defaults_and_no_empty_one():
    ctx = next(c for p, _, c in COMMANDS if p == "nas train")
    text = main.commands["train"].get_help(ctx)
    assert "default: ]" not in text and "[default: 50]" in text
    size = next(o for o in main.commands["train"].params if o.name == "size")
    assert "-1" in size.help
