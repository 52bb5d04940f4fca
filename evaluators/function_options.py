"""The function evaluator's options, without torch: your own training function as the evaluator.

``[evaluator] name = "function"`` with ``function = "package.module:callable"`` (or, from Python,
``nas.search(spec, evaluator=callable)``) hands each candidate to that callable::

    def train(model, budget, report, options) -> dict[str, float]: ...

``model`` is the network the space builds from the genotype (a ``torch.nn.Module`` for the task of
``input_shape``/``classes``, else the space preset's), ``budget`` the per-trial budget
(``[evaluator.budget]`` plus the run's ``seed``), ``report(step, value)`` records an intermediate
value and answers True when the pruner stops the trial, and ``options`` holds the ``[evaluator]``
table's other keys. It returns the metrics (``evaluator.metrics`` names those objectives may use).

The function's module is found on ``sys.path``, in the spec's folder or in the current folder; the
folder it was found in is kept as ``path`` (so ``nas resume`` and the workers find it again) and,
on Ray, the module travels to the workers in Ray's runtime environment (``py_modules``).
:class:`evaluators.function.FunctionEvaluator` adds the evaluation, which imports torch.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable, Mapping

from nas.config import Field, SpecError, validate
from nas.evaluator import Evaluator
from nas.space import SearchSpace, Task

FIELD = "evaluator.function"
TOML_TYPES = (str, int, float, bool, list, dict)


class FunctionOptions(Evaluator):
    """What ``[evaluator] name = "function"`` accepts and reports (see :class:`evaluators.function.FunctionEvaluator`).

    Keys other than those below are the function's own options, passed to it as they are.
    """

    OPTIONS = {
        "metrics": Field(list, default=["accuracy"], items=str,
                         help="metrics the function returns, each required (objectives choose among them; "
                              "default objective: the first, maximized)"),
        "input_shape": Field(list, default=[], items=int, help="[C, H, W] the network takes ([]: the preset's)"),
        "classes": Field(int, default=0, min=0, help="outputs of the network (0: the preset's)"),
        "path": Field(str, default="", help="folder the function's module is imported from, relative to the "
                                            "spec's ('': found on sys.path, in the spec's folder or the current one)"),
    }
    BUDGET = {
        "epochs": Field(float, default=1.0, min=0.0, help="passes over your training data (the function decides)"),
        "steps": Field(int, default=0, min=0, help="optimizer steps, for functions that count them (0: none)"),
        "seconds": Field(float, default=0.0, min=0.0, help="training time, for functions that watch it (0: none)"),
    }
    OWN = ("function", *OPTIONS)  # every other key is the function's

    @classmethod
    def validate_options(cls, options: Mapping[str, Any], base_dir: Any = None,
                         check_files: bool = True) -> dict[str, Any]:
        """The declared options checked and ``function`` located; the function's own options kept as they are."""
        if "function" not in options:
            raise SpecError(f"{FIELD}: required ('package.module:callable', or a callable from Python)")
        declared = {k: v for k, v in options.items() if k in cls.OPTIONS}
        checked = validate(declared, cls.OPTIONS, "evaluator", base_dir=base_dir, check_files=check_files)
        if checked["input_shape"] and (len(checked["input_shape"]) != 3 or min(checked["input_shape"]) < 1):
            raise SpecError(f"evaluator.input_shape: expected [C, H, W] of positive integers, got {checked['input_shape']}")
        if not checked["metrics"]:
            raise SpecError("evaluator.metrics: expected at least one metric name")
        function = _checked_reference(options["function"])
        if check_files:  # on the driver: where the module is, absolute (workers and nas resume read it)
            folder = Path(base_dir or ".")
            checked["path"] = str((folder / checked["path"]).resolve()) if checked["path"] else locate(function, folder)
        return {"function": function, **checked, **own_options(options)}

    @classmethod
    def metric_names(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(options.get("metrics", ["accuracy"]))

    @classmethod
    def task_for(cls, options: Mapping[str, Any], space: SearchSpace) -> Task:
        """``input_shape``/``classes`` where given, else the space preset's."""
        preset = space.default_task()
        shape = tuple(options.get("input_shape") or preset.input_shape)
        return Task(shape, options.get("classes") or preset.num_classes)  # type: ignore[arg-type]

    @classmethod
    def load_shared(cls, options: Mapping[str, Any]) -> None:
        """Nothing is shared; the driver imports the function once before any trial, so that one that
        does not import stops the search at its start (``SpecError`` naming ``evaluator.function``)."""
        resolve(options)

    @classmethod
    def py_modules(cls, options: Mapping[str, Any]) -> list[str]:
        """The user's code the workers must import, for Ray's runtime environment (``py_modules``): the
        function's top-level package (a folder) or module (a file); none when it is installed or was
        defined in ``__main__`` (Ray sends such a function by value). Imports it first (``SpecError``)."""
        function = resolve(options)
        top = str(getattr(function, "__module__", "") or "").partition(".")[0]
        root = (options.get("path") or _root_of(top)) if top and top != "__main__" else ""
        shipped = [Path(root) / top, Path(root) / f"{top}.py"] if root else []
        return [str(p) for p in shipped if p.exists()][:1]


def own_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[evaluator]`` keys that are the function's own (TOML data, so that the run's spec keeps them)."""
    own = {k: v for k, v in options.items() if k not in FunctionOptions.OWN and k not in ("name", "budget")}
    for key, value in own.items():
        if not isinstance(value, TOML_TYPES):
            raise SpecError(f"evaluator.{key}: expected TOML data (string, number, boolean, list or table) "
                            f"for the function's option, got {type(value).__name__}")
    return own


def _checked_reference(function: Any) -> str | Callable[..., Any]:
    """``function`` if it is a callable or a ``module:name`` string, else ``SpecError``."""
    if callable(function):
        return function
    if isinstance(function, str):
        module, sep, name = function.partition(":")
        if sep and module.strip() and name.strip() and " " not in function:
            return function
    raise SpecError(f"{FIELD}: expected 'package.module:callable' or a Python callable, got {function!r}")


def locate(function: str | Callable[..., Any], base_dir: Path) -> str:
    """The folder holding the top-level module of ``function`` (a reference or a callable) when that
    is not installed: found on ``sys.path``, in ``base_dir`` or in the current folder; "" for installed
    code, ``__main__`` or code not found (importing it at the search's start says what is wrong).
    A reference's module is not imported here."""
    if callable(function):
        top = str(getattr(function, "__module__", "") or "").partition(".")[0]
        return _root_of(top) if top and top != "__main__" else ""
    top = function.partition(":")[0].partition(".")[0]
    if top == "__main__":
        return ""
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    for folder in (base_dir.resolve(), Path.cwd()):
        if found is None:
            found = importlib.machinery.PathFinder.find_spec(top, [str(folder)])
    return _folder_of(found)


def _root_of(top: str) -> str:
    """The folder holding the imported top-level module ``top`` ("" when installed or unknown)."""
    module = sys.modules.get(top)
    return _folder_of(getattr(module, "__spec__", None)) if module is not None else ""


def _folder_of(found: Any) -> str:
    """The folder holding the module of an import spec, unless it is installed code."""
    if found is None:
        return ""
    origin = found.origin if found.has_location else None
    locations = list(found.submodule_search_locations or [])
    if origin is None and locations:  # a namespace package
        origin = os.path.join(locations[0], "__init__.py")
    if origin is None or _installed(origin):
        return ""
    source = Path(origin).resolve()
    return str(source.parent.parent if source.name == "__init__.py" else source.parent)


def resolve(options: Mapping[str, Any]) -> Callable[..., Any]:
    """The callable that ``options["function"]`` names (imported from ``options["path"]`` when not
    importable otherwise); ``SpecError`` naming ``evaluator.function`` when it cannot be imported."""
    function = options["function"]
    if callable(function):
        return function
    from nas.registry import import_callable

    return import_callable(function, FIELD, options.get("path", ""), _hint(function))


def _hint(reference: str) -> str:
    """Why a function passed from Python may not import again (resume)."""
    if reference.startswith("__main__:") or "<locals>" in reference:
        return ("; a function defined in a script, a notebook or another function is found again only "
                "when passed again: nas.resume(run_dir, evaluator=function)")
    return ""


def _installed(path: str) -> bool:
    """Whether ``path`` belongs to the Python installation (site-packages, the standard library)."""
    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    resolved = os.path.realpath(path)
    return any(resolved.startswith(os.path.realpath(root) + os.sep) for root in roots)
