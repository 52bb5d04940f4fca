"""nasforge core: search spaces' protocols, controllers, the search loop, executors and the run ledger.

Nothing in this package imports torch at module level; building models happens in
``search_spaces.<space>.build`` and training in ``evaluators``.

The Python API (see :mod:`nas.api`)::

    import nas

    run = nas.search("runs/quickstart.toml", budget=20)   # or a dict of tables; blocks until done
    run.best["metrics"], run.trials(), run.study
    run.export("exported"); run.report()
    nas.open("runs/quickstart")                            # a run, read-only
    model = nas.load("exported/arch.json")

``nas.search`` is also the package of the search loop (``nas.search.spec``, ``nas.search.loop`` ...):
the package object is callable. The names here are imported on first use, so ``import nas`` stays light.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__version__ = "0.1.0"
__all__ = ["Run", "SpecError", "load", "resume", "search"]  # and nas.open, kept out of a star import (builtin)

_LAZY = {"Run": "nas.api.run:Run", "SpecError": "nas.config:SpecError"}  # PEP 562: loaded on first access


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    module, _, attr = _LAZY[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def _api(name: str) -> Any:
    """A function of :mod:`nas.api`, imported on first call (it loads Optuna and the search loop)."""
    return getattr(importlib.import_module("nas.api"), name)


class _CallableSearch(types.ModuleType):
    """The package ``nas.search``, callable as :func:`nas.api.search` (a function of that name could
    not stand beside the package: importing any ``nas.search.*`` module sets the attribute back)."""

    def __call__(self, spec: Any, *, out: Any = None, evaluator: Any = None, **overrides: Any) -> Any:
        return _api("search")(spec, out=out, evaluator=evaluator, **overrides)


_CallableSearch.__call__.__doc__ = "Run a search to its end and return the :class:`nas.Run`; see :func:`nas.api.search`."

from nas import search  # noqa: E402  (the package; its __init__ imports nothing)

search.__class__ = _CallableSearch


def open(run_dir: Any) -> Any:  # noqa: A001  (nas.open, by design; the builtin is not used here)
    """The run in ``run_dir`` as a read-only :class:`nas.Run`; see :func:`nas.api.open_run`."""
    return _api("open_run")(run_dir)


def resume(run_dir: Any, *, evaluator: Any = None, **overrides: Any) -> Any:
    """Continue the interrupted search in ``run_dir``; the :class:`nas.Run`. See :func:`nas.api.resume`."""
    return _api("resume")(run_dir, evaluator=evaluator, **overrides)


def load(path: str, weights: bool = True) -> "torch.nn.Module":  # type: ignore[name-defined]  # noqa: F821
    """Rebuild the ``torch.nn.Module`` described by an exported ``arch.json``.

    Args:
        path: an ``arch.json`` written by ``nas export`` (format ``nasforge-arch/1``).
        weights: load ``weights.safetensors`` from beside the file when it is there.

    Returns:
        The module in eval mode.

    Raises:
        ValueError: the file is malformed (the message names the field) or the weights do not fit.
        FileNotFoundError: no such file.
    """
    from evaluators.export import load_module  # torch is imported here, not with ``nas``

    return load_module(path, weights)
