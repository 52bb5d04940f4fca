"""The generated reference pages (docs/_gen) name everything the code declares, and the site builds.

The expected names come from the code (the registry, the spec modules' field tables, the click group),
not from the generators, so a new field, part, table or option that a page leaves out fails here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from typing import Any, Iterator, Mapping

import click
import pytest

from nas import registry
from nas.config import Field
from tests.conftest import ROOT, need

if str(ROOT / "docs") not in sys.path:
    sys.path.insert(0, str(ROOT / "docs"))

from _gen import PAGES  # noqa: E402  (docs/_gen, imported as docs/hooks.py imports it)
from _gen.benchmarks import benchmarks_page  # noqa: E402

SPEC_MODULES = ("nas.search.spec", "nas.search.objectives", "nas.search.prescreen", "nas.search.pruners",
                "nas.executors")
COMPARE_MODULES = ("nas.compare.spec", "evaluators.recipe")
SECTION_KINDS = {"spaces": "space", "controllers": "controller", "evaluators": "evaluator"}
BUILD_SECONDS = 60  # the strict build takes ~15 s on one busy core; slower than this, rely on `make docs`


def sections(page: str) -> dict[str, str]:
    """The page's text under each heading with an explicit id, by id (up to the next such heading)."""
    found = list(re.finditer(r"^#+ .*\{#([\w-]+)\}\s*$", page, re.MULTILINE))
    return {m.group(1): page[m.end(): found[i + 1].start() if i + 1 < len(found) else len(page)]
            for i, m in enumerate(found)}


def names_field(text: str, name: str) -> bool:
    """Whether ``text`` names the field ``name`` in code (alone or with a table prefix: ``reward.w``)."""
    return re.search(r"`(?:[\w.]+\.)?" + re.escape(name) + "`", text) is not None


def field_tables(module_name: str) -> Iterator[tuple[str, Mapping[str, Field]]]:
    """Every module-level table of ``Field`` declarations (also those nested in a dict's values)."""
    module = importlib.import_module(module_name)
    for attr, value in vars(module).items():
        for label, table in _tables_in(f"{module_name}.{attr}", value):
            yield label, table


def _tables_in(label: str, value: Any) -> Iterator[tuple[str, Mapping[str, Field]]]:
    if isinstance(value, dict) and value and all(isinstance(v, Field) for v in value.values()):
        yield label, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            nested = inner[0] if isinstance(inner, tuple) and inner else inner  # PRUNERS: (fields, factory)
            yield from _tables_in(f"{label}[{key!r}]", nested)


def part_tables() -> Iterator[tuple[str, str, Mapping[str, Field]]]:
    """(section id, label, fields) of every registered space, controller and evaluator."""
    for kind, word in SECTION_KINDS.items():
        for name in registry.names(kind):
            cls = registry.lookup(kind, name, declaration=True)
            yield f"{word}-{name}", f"{kind} {name} OPTIONS", cls.OPTIONS
            if kind == "evaluators":
                yield f"{word}-{name}", f"{kind} {name} BUDGET", cls.BUDGET


@pytest.fixture(scope="module")
def spec_sections() -> dict[str, str]:
    return sections(PAGES["reference/spec.md"]())


def test_spec_reference_names_every_field_of_every_registered_part(spec_sections: dict[str, str]) -> None:
    missing = [f"{label}: {name}" for section, label, fields in part_tables() for name in fields
               if not names_field(spec_sections.get(section, ""), name)]
    missing += [f"space {name}: preset" for name in registry.names("spaces")
                if not names_field(spec_sections.get(f"space-{name}", ""), "preset")]
    missing += [f"executor {name}" for name in registry.names("executors") if f"executor-{name}" not in spec_sections]
    assert missing == []


def test_spec_reference_has_every_section_and_field_table(spec_sections: dict[str, str]) -> None:
    from nas.search.spec import SECTIONS

    assert [s for s in SECTIONS if s not in spec_sections] == []
    tables = [t for module in SPEC_MODULES for t in field_tables(module)]
    assert len(tables) >= 8  # run, objectives, bounds, latency, reward, prescreen, executor, pruners
    unrendered = [label for label, table in tables
                  if not any(all(names_field(text, name) for name in table) for text in spec_sections.values())]
    assert unrendered == []


def test_compare_reference_has_every_field_table() -> None:
    page = sections(PAGES["reference/compare-spec.md"]())
    tables = [t for module in COMPARE_MODULES for t in field_tables(module)]
    assert len(tables) >= 4  # compare, match, arm, recipe
    unrendered = [label for label, table in tables
                  if not any(all(names_field(text, name) for name in table) for text in page.values())]
    assert unrendered == []


def test_every_declared_field_has_help() -> None:
    tables = [(label, table) for module in SPEC_MODULES + COMPARE_MODULES for label, table in field_tables(module)]
    tables += [(label, table) for _section, label, table in part_tables()]
    assert [f"{label}: {name}" for label, table in tables for name, f in table.items() if not f.help.strip()] == []


def cli_commands(cmd: click.Command, path: tuple[str, ...] = ("nas",)) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from cli_commands(sub, path + (name,))


def test_cli_reference_names_every_command_option_and_argument() -> None:
    from nas.cli import main

    page = sections(PAGES["reference/cli.md"]())
    walked = list(cli_commands(main))
    assert len(walked) > 15
    missing = []
    for path, cmd in walked:
        text = page.get("-".join(path))
        if text is None:
            missing.append(" ".join(path))
            continue
        for param in cmd.params:
            names = param.opts + param.secondary_opts if isinstance(param, click.Option) else [param.human_readable_name]
            missing += [f"{' '.join(path)} {n}" for n in names if f"`{n}`" not in text]
    assert missing == []


def test_benchmarks_links_point_into_the_site() -> None:
    text = ("![plot](docs/a.png) [code](nas/search/loop.py) [web](https://optuna.org) [here](#results)\n"
            "[ref]: docs/b.png\n")
    assert benchmarks_page(text) == ("![plot](a.png) code (`nas/search/loop.py`) [web](https://optuna.org) "
                                     "[here](#results)\n[ref]: b.png\n")
    assert "](docs/" not in benchmarks_page()


def test_site_builds_strictly(tmp_path) -> None:
    need(importlib.util.find_spec("mkdocs") is not None and importlib.util.find_spec("mkdocstrings") is not None,
         "the docs extra is not installed (make docs installs it)")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stderr[-4000:]
    for page in ("reference/spec", "reference/compare-spec", "reference/cli", "reference/api", "benchmarks"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page
    assert time.monotonic() - started < BUILD_SECONDS, "the build got slow: skip it here and rely on make docs"
