"""The portable architecture file ``arch.json`` (format ``nasforge-arch/1``): write and safely read.

Layout (every key required except ``source``, ``training`` and ``weights``; no others allowed)::

    {
      "format":   "nasforge-arch/1",
      "space":    {"name": "nasnet", "options": {"preset": "proxy", "vocabulary": "nasnet", ...}},
      "genotype": {...},                 # the space's genotype JSON
      "arch_id":  "e963bc6ffce169f8",    # must equal the genotype's own id
      "task":     {"input_shape": [1, 8, 8], "num_classes": 10, "data": "digits", "size": 0,
                   "normalization": {"mean": [0.3], "std": [0.4]} | null},
      "cost":     {"params": 73000, "flops": 724000},   # must equal the space's count
      "metrics":  {"accuracy": 99.3, ...},             # numbers only
      "source":   {...},                 # where it came from: run, trial, rank, lineage (plain data)
      "training": {...},                 # the evaluator settings and budget it was trained with
      "weights":  {...},                 # what produced weights.safetensors (plain data)
      "versions": {"nasforge": "0.1.0", "torch": "2.13.0", ...}
    }

Reading never executes or imports anything named in the file: the space must be a registered space
name, options and genotype go through the space's own validation, numbers are range-checked and the
model's size is bounded before anything is built. Any problem raises ``ValueError`` naming the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nas.config import SpecError, json_safe
from nas.genotype import Genotype
from nas.space import SearchSpace, Task

FORMAT = "nasforge-arch/1"
REQUIRED = ("format", "space", "genotype", "arch_id", "task", "cost", "metrics", "versions")
OPTIONAL = ("source", "training", "weights")
MAX_FILE_BYTES = 8 << 20  # 8 MiB: a genotype is a few KiB; anything far larger is not an arch file
MAX_PARAMS = 1_000_000_000  # refuse to build models beyond a billion parameters
MAX_NUMBER = 1_000_000  # bound on any number in the space options (channels, cells, nodes...)
MAX_SIDE, MAX_CHANNELS, MAX_CLASSES = 4096, 64, 100_000
MAX_DEPTH, MAX_ITEMS = 12, 10_000


@dataclass(frozen=True)
class Arch:
    """A validated ``arch.json``: the space (options applied), the genotype, the task and the rest."""

    path: Path | None
    data: dict[str, Any]
    space: SearchSpace
    genotype: Genotype
    task: Task

    @property
    def normalization(self) -> dict[str, list[float]] | None:
        return self.data["task"].get("normalization")


def read(path: str | Path) -> Arch:
    """Read and validate an arch file; ``ValueError`` (or ``FileNotFoundError``) names the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such arch file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SpecError(f"{path}: {path.stat().st_size} bytes is too large for an arch file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise SpecError(f"{path}: not valid JSON ({err})") from None
    try:
        return parse(data, path)
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None
    except ValueError as err:
        raise SpecError(f"{path}: {err.args[0] if err.args else err}") from None


def parse(data: Any, path: Path | None = None) -> Arch:
    """Validate parsed arch data (see the module docstring); ``ValueError`` names the field."""
    if not isinstance(data, dict):
        raise SpecError(f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise SpecError(f"format: expected {FORMAT!r}, got {data.get('format')!r} (a file from another "
                         "nasforge version or not an arch file)")
    extra = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if extra:
        raise SpecError(f"{extra[0]}: unknown key; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise SpecError(f"{missing[0]}: missing")
    for key in ("source", "training", "weights", "versions"):
        _plain(data.get(key, {}), key, 0)
    space = _space(data["space"])
    try:
        genotype = space.from_dict(data["genotype"])
    except (ValueError, KeyError, TypeError) as err:
        raise SpecError(f"genotype: {_message(err).removeprefix('genotype: ')}") from None
    if data["arch_id"] != genotype.arch_id:
        raise SpecError(f"arch_id: {data['arch_id']!r} does not match the genotype's id {genotype.arch_id!r}")
    task = _task(data["task"])
    _metrics(data["metrics"])
    _cost(data["cost"], space, genotype, task)
    return Arch(path, data, space, genotype, task)


def make(space: SearchSpace, genotype: Genotype, task: Task, *, normalization: Mapping[str, Any] | None,
         data_name: str, size: int, metrics: Mapping[str, float], source: Mapping[str, Any],
         training: Mapping[str, Any]) -> dict[str, Any]:
    """The arch data for ``genotype`` built by ``space`` for ``task`` (checked by :func:`parse`)."""
    cost = space.cost(genotype, task)
    data = {
        "format": FORMAT,
        "space": {"name": space.name, "options": json_safe(space.options)},
        "genotype": genotype.to_dict(),
        "arch_id": genotype.arch_id,
        "task": {**task.to_dict(), "data": data_name, "size": size,
                 "normalization": dict(normalization) if normalization else None},
        "cost": {"params": cost.params, "flops": cost.flops},
        "metrics": {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
        "source": json_safe(dict(source)),
        "training": json_safe(dict(training)),
        "versions": versions(),
    }
    parse(json.loads(json.dumps(data)))
    return data


def versions(packages: tuple[str, ...] = ("torch", "optuna", "onnx", "onnxruntime")) -> dict[str, str]:
    """Versions of nasforge and the installed ``packages`` (a model's libraries by default; nothing
    is imported)."""
    from importlib import metadata

    import nas

    out = {"nasforge": nas.__version__}
    for package in packages:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


# ----- field checks ----------------------------------------------------------------------------------
def _space(value: Any) -> SearchSpace:
    from nas import registry

    if not isinstance(value, dict) or set(value) != {"name", "options"}:
        raise SpecError("space: expected {\"name\": ..., \"options\": {...}}")
    name, options = value["name"], value["options"]
    known = registry.names("spaces")
    if not isinstance(name, str) or name not in known:  # never a dotted import path
        raise SpecError(f"space.name: {name!r} is not a known space; known: {', '.join(known)}")
    if not isinstance(options, dict):
        raise SpecError("space.options: expected an object")
    for key, option in options.items():
        for number in _numbers(option):
            if abs(number) > MAX_NUMBER:
                raise SpecError(f"space.options.{key}: {number} is out of range")
    try:
        return registry.make_space(name, options, path="space.name")
    except SpecError as err:
        raise SpecError(str(err).replace("space.", "space.options.", 1)) from None


def _task(value: Any) -> Task:
    allowed = {"input_shape", "num_classes", "data", "size", "normalization"}
    if not isinstance(value, dict):
        raise SpecError("task: expected an object")
    extra = sorted(set(value) - allowed)
    if extra:
        raise SpecError(f"task.{extra[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")
    shape = value.get("input_shape")
    if (not isinstance(shape, list) or len(shape) != 3 or not all(_int(v) and v >= 1 for v in shape)
            or shape[0] > MAX_CHANNELS or max(shape[1:]) > MAX_SIDE):
        raise SpecError(f"task.input_shape: expected [C, H, W] with 1 <= C <= {MAX_CHANNELS} and "
                         f"1 <= H, W <= {MAX_SIDE}, got {shape!r}")
    classes = value.get("num_classes")
    if not _int(classes) or not 1 <= classes <= MAX_CLASSES:
        raise SpecError(f"task.num_classes: expected an integer in [1, {MAX_CLASSES}], got {classes!r}")
    if not isinstance(value.get("data", ""), str) or not _int(value.get("size", 0)) or value.get("size", 0) < 0:
        raise SpecError("task.data/size: expected a data set name and a size >= 0")
    _normalization(value.get("normalization"), shape[0])
    return Task(tuple(shape), classes)  # type: ignore[arg-type]


def _normalization(value: Any, channels: int) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or set(value) != {"mean", "std"}:
        raise SpecError("task.normalization: expected null or {\"mean\": [...], \"std\": [...]}")
    for key in ("mean", "std"):
        numbers = value[key]
        if (not isinstance(numbers, list) or len(numbers) != channels
                or not all(_number(v) and abs(v) < 1e6 for v in numbers)):
            raise SpecError(f"task.normalization.{key}: expected {channels} finite numbers, got {numbers!r}")
    if not all(v > 0 for v in value["std"]):
        raise SpecError("task.normalization.std: every value must be > 0")


def _metrics(value: Any) -> None:
    if not isinstance(value, dict) or len(value) > MAX_ITEMS:
        raise SpecError("metrics: expected an object of numbers")
    for key, number in value.items():
        if not _number(number):
            raise SpecError(f"metrics.{key}: expected a finite number, got {number!r}")


def _cost(value: Any, space: SearchSpace, genotype: Genotype, task: Task) -> None:
    if not isinstance(value, dict) or set(value) != {"params", "flops"}:
        raise SpecError("cost: expected {\"params\": N, \"flops\": N}")
    try:
        cost = space.cost(genotype, task)
    except (ValueError, KeyError) as err:
        raise SpecError(f"genotype: does not fit the space's settings and task: {_message(err)}") from None
    if cost.params > MAX_PARAMS:
        raise SpecError(f"space.options: the model would have {cost.params:,} parameters "
                         f"(more than {MAX_PARAMS:,})")
    for key in ("params", "flops"):
        if value[key] != getattr(cost, key):
            raise SpecError(f"cost.{key}: {value[key]!r} does not match the architecture's "
                             f"{getattr(cost, key)} (edited file?)")


def _plain(value: Any, path: str, depth: int) -> None:
    """Plain JSON data of bounded depth and size (strings, numbers, booleans, null, lists, objects)."""
    if depth > MAX_DEPTH:
        raise SpecError(f"{path}: nested too deeply")
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise SpecError(f"{path}: too many entries")
        for key, item in value.items():
            _plain(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise SpecError(f"{path}: too many entries")
        for i, item in enumerate(value):
            _plain(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{path}: not a finite number")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return []


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _no_constant(name: str) -> Any:
    raise SpecError(f"{name} is not allowed")


def _message(err: Exception) -> str:
    return str(err.args[0]) if err.args else str(err)
