"""Generators of the site's reference pages, run by ``docs/hooks.py`` when the site is built.

Each page is Markdown made from the code it documents, so it cannot drift from it: ``PAGES`` maps the
page's path in the site to the function that writes it. Tests import this package with ``docs/`` on
``sys.path`` (``tests/docs/test_reference.py``); to look at a page, run
``python -c "import sys; sys.path.insert(0, 'docs'); from _gen import PAGES; print(PAGES['reference/cli.md']())"``.
"""

from __future__ import annotations

from typing import Callable

from _gen.benchmarks import benchmarks_page
from _gen.cli import cli_page
from _gen.compare import compare_page
from _gen.spec import spec_page

PAGES: dict[str, Callable[[], str]] = {
    "reference/spec.md": spec_page,
    "reference/compare-spec.md": compare_page,
    "reference/cli.md": cli_page,
    "benchmarks.md": benchmarks_page,
}
