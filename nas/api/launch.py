"""``nas.search``, ``nas.resume`` and ``nas.open``: the Python API that ``nas search``/``resume``/``show`` call."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from nas.api.runner import resume as resume_run, start as start_run
from nas.api.inputs import default_out, overrides_of, resolve_spec
from nas.api.run import Run
from nas.search.spec import RunSpec


def search(spec: str | os.PathLike[str] | Mapping[str, Any] | RunSpec, *, out: str | Path | None = None,
           evaluator: Callable[..., Any] | str | None = None, overwrite: bool = False, join: bool = False,
           progress: bool = True, **overrides: Any) -> Run:
    """Run a search to its end (budget, time limit, target ...) and return the run.

    Args:
        spec: a TOML file's path, a dict with the same tables (``{"run": {...}, "space": {...}, ...}``;
            relative files resolve against the current folder) or a validated
            :class:`~nas.search.spec.RunSpec`.
        out: the run folder (default: ``<run name>`` in the spec's folder; the current one for a dict).
        evaluator: your own training function (or ``"package.module:callable"``): the evaluator becomes
            ``function`` (see :mod:`evaluators.function_options`); the ``[evaluator]`` table's other keys
            are its options.
        overwrite: replace a run already in ``out``.
        join: work on the storage's study of this name with the drivers already on it (shared budget).
        progress: show progress on stderr.
        **overrides: ``nas search``'s options: ``budget``, ``seed``, ``executor`` (inline or ray),
            ``workers``, ``ray_address``, ``storage``; or any spec field by its dotted path
            (``**{"run.max_time": "10m"}``). None sets nothing.

    Returns:
        The run, read-only; ``run.outcome`` says why the search stopped.

    Raises:
        SpecError: bad input (the message starts with the field), e.g. an unknown option, a run already
            in ``out``, a function that does not import.
        KeyboardInterrupt: the search was stopped; ``nas.resume(out)`` continues it.
    """
    resolved = resolve_spec(spec, overrides_of(overrides, evaluator))
    run_dir, outcome = start_run(resolved, out or default_out(resolved), overwrite, progress, join)
    return Run(run_dir.path, outcome)


def resume(run_dir: str | Path, *, evaluator: Callable[..., Any] | str | None = None, progress: bool = True,
           **overrides: Any) -> Run:
    """Continue the interrupted search in ``run_dir`` to its budget and return the run.

    Args:
        run_dir: the run folder.
        evaluator: the training function again, when it was passed from Python and is not importable
            by name (defined in a script, a notebook or inside another function).
        progress: show progress on stderr.
        **overrides: as for :func:`search` (``budget`` may raise the budget; ``executor``, ``workers``,
            ``ray_address`` change where trials run).
    """
    run, outcome = resume_run(run_dir, overrides_of(overrides, evaluator), progress)
    return Run(run.path, outcome)


def open_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir``, read-only: nothing is written to its folder or its storage.

    Raises:
        SpecError: ``run_dir`` is not a run, or its storage or study cannot be found.
    """
    return Run(run_dir)
