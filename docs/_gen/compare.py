"""``reference/compare-spec.md``: the tables of a ``nas compare`` spec, read from ``nas.compare.spec``."""

from __future__ import annotations

from evaluators.recipe import RECIPE
from nas.compare import spec as compare_spec
from nas.executors import OPTIONS as EXECUTOR_FIELDS

from _gen.tables import field_table, names_list

INTRO = """# Compare spec reference

`nas compare SPEC` trains several arms (published, randomly wired, sampled, hand-designed or
searched architectures) on one recipe at matched compute, over several seeds, and tests each arm
against a reference. Its spec is a TOML file of the tables below, all checked before anything
trains. This page is generated from the declarations in `nas/compare/spec.py`.
"""


def compare_page() -> str:
    """The whole page as Markdown."""
    return "\n\n".join([
        INTRO,
        f"## `[compare]` {{#compare}}\n\n{field_table(compare_spec.COMPARE)}",
        "## `[compare.match]` {#compare-match}\n\nMatched compute: every arm's width (and, failing that, "
        "depth) is chosen so that its cost lies within `tolerance` of the target.\n\n"
        f"{field_table(compare_spec.MATCH)}\n\n"
        "`lut` (path, or a table of paths by space or arm name; each may hold `{width}`): latency tables "
        "made by `nas latency build-lut`, needed by `metric = \"latency\"`.",
        "## `[train]` {#train}\n\nThe training recipe of every arm (`nas train`'s; `--data` and `--epochs` "
        f"override it).\n\n{field_table(RECIPE)}",
        "## `[executor]` {#executor}\n\nAs in a run spec: `name` is `\"inline\"` or `\"ray\"`, with these "
        f"options.\n\n{field_table(EXECUTOR_FIELDS)}",
        "## `[spaces.<name>]` {#spaces}\n\nOptions for every arm of a space, such as `preset` "
        "(see the [run spec's spaces](spec.md#space)); an arm's own `options` override them.",
        f"## `[[arms]]` {{#arms}}\n\nOne table per arm; each names exactly one of "
        f"{names_list(compare_spec.KINDS)}.\n\n{field_table(compare_spec.ARM)}",
    ]) + "\n"

