"""The report page of a run or a comparison, written atomically (what ``nas report`` and every search
write): the view of the run (:mod:`nas.report.view`) rendered section by section."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from nas.config import SpecError
from nas.report.comparison import comparisons_section, is_comparison, render_comparison
from nas.report.oneshot import oneshot_section
from nas.report.html import page
from nas.report.sections import (
    curves_section,
    failures_section,
    lineage_section,
    objectives_section,
    outputs_section,
    progress_section,
    run_section,
    top_section,
)
from nas.report.view import REPORT_NAME, TOP_K, RunView, open_run, run_subtitle
from nas.search.summary import summarize

log = logging.getLogger(__name__)


def write_report(path: str | Path, out: str | Path | None = None, top: int = TOP_K) -> Path:
    """Write the report of the run in ``path`` to ``out`` (default ``<run>/report.html``); its path.

    ``path`` may also be a ``nas compare`` folder: the page is then the comparison's
    (:mod:`nas.report.comparison`). The file is replaced atomically, so a browser never reads half a report.
    """
    folder = Path(path)
    comparison = not (folder / "spec.toml").is_file() and is_comparison(folder)
    run = None if comparison else open_run(path)
    target = Path(out) if out else (folder if comparison else run.path) / REPORT_NAME  # type: ignore[union-attr]
    if target.is_dir():
        raise SpecError(f"--out: {target} is a folder; give a file name")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"--out: {target.parent}: no such folder")
    text = render_comparison(folder.resolve()) if comparison else render(run, top)  # type: ignore[arg-type]
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target.resolve()


def write_run_report(path: str | Path) -> str | None:
    """The report at the end of ``nas search``/``nas resume``: its path, or None (logged) if it failed."""
    try:
        return str(write_report(path))
    except Exception:  # like the best's picture: never fail a finished search over it
        log.warning("could not write the run's report", exc_info=True)
        return None


def render(run: RunView, top: int = TOP_K) -> str:
    """The whole page as HTML text."""
    summary = summarize(run.spec, run.study, str(run.path), top)

    sections = [run_section(run, summary), progress_section(run), objectives_section(run),
                top_section(run, summary), curves_section(run, summary), lineage_section(run, summary),
                failures_section(run), outputs_section(run)]
    oneshot = oneshot_section(run)
    if oneshot:
        sections.insert(4, oneshot)
    compared = comparisons_section(run.path)  # comparisons next to the run that train its best
    if compared:
        sections.append(compared)
    return page(f"nas report: {run.spec.name}", run_subtitle(run), sections)
