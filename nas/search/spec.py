"""Run specs: a TOML file -> a validated :class:`RunSpec` (or one ``SpecError`` naming the field).

A spec has the sections ``[run]``, ``[space]``, ``[controller]``, ``[evaluator]`` (with an optional
``[evaluator.budget]`` per-trial budget), ``[[objectives]]``, ``[constraints]``, ``[executor]``,
``[pruner]``, ``[latency]`` and ``[prescreen]``. Everything is checked before anything runs: unknown
keys, types, ranges, names of spaces/controllers/evaluators, files, and that every objective is a
metric the evaluator reports.
The resolved spec (defaults filled, paths absolute, command-line overrides applied) is written to
the run folder, so ``nas resume`` needs nothing else.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from nas import registry
from nas.config import Field, SpecError, validate
from nas.evaluator import EvaluatorSpec
from nas.executors import validate_executor
from nas.latency.table import FIT_NETWORKS
from nas.search.objectives import validate_reward
from nas.search.prescreen import validate_prescreen
from nas.search.pruners import validate_pruner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CHEAP_METRICS: tuple[str, ...] = ("params", "flops")  # computed from the genotype before evaluation
PREDICTED_LATENCY = "latency_pred_ms"  # cheap too, from the [latency] lookup table
MEASURED_LATENCY = "latency_ms"  # measured by the evaluator (train: evaluator.latency_backend)
LATENCY_FIELDS = {
    "lut": Field(str, default="", help="latency lookup table (nas latency build-lut) for latency_pred_ms"),
    "build": Field(bool, default=True, help="build the table on this machine when the file is missing"),
    "backend": Field(str, default="torch", choices=("torch", "onnxruntime", "onnxruntime-int8"),
                     help="runtime the table is measured with; must match the table's"),
    "device": Field(str, default="cpu", choices=("cpu", "cuda"), help="device the table is measured on"),
    "threads": Field(int, default=1, min=1, help="CPU threads of the measurement"),
    "batch": Field(int, default=1, min=1, help="images per timed forward pass"),
    "fit": Field(int, default=FIT_NETWORKS, min=0, help="whole networks measured for the table's correction"),
    "calibrate": Field((bool, str), default="auto", choices=(True, False, "auto"),
                       help="re-measure a few of the table's fit networks when the search starts and scale its "
                       "predictions by the machine's speed now against at build time ('auto': when this is "
                       "the machine the table was built on)"),
}

RUN_FIELDS = {
    "name": Field(str, default="", help="run and study name (default: the spec file's name)"),
    "description": Field(str, default="", help="free text, shown in the report"),
    "seed": Field(int, default=0, min=0, help="seed of the controller and of every evaluation"),
    "budget": Field(int, default=50, min=1, help="unique architectures to evaluate"),
    "max_time": Field("duration", default=0.0, help="wall-clock limit of the search (0: none)"),
    "max_failures": Field(int, default=25, min=1, help="consecutive failed candidates that stop the search"),
    "target": Field(float, default=float("nan"), help="stop once the (single) objective reaches this value"),
    "storage": Field(str, default="", help="Optuna storage URL ('' : a journal file in the run folder)"),
    "report": Field(bool, default=True, help="write report.html into the run folder at the end of a search"),
    "deterministic": Field(bool, default=False, help="tell results in proposal order, with a fixed number of "
                           "proposals open (window), so that a seeded run gives the same trials with any executor "
                           "and any number of workers"),
    "window": Field(int, default=4, min=1, help="deterministic runs: proposals open at once; proposal n is asked "
                    "after the results of proposals 0..n-window are told (more workers than this idle)"),
}
OBJECTIVE_FIELDS = {
    "metric": Field(str, help="a metric the evaluator reports, params/flops, or the name of a reward"),
    "direction": Field(str, default="maximize", choices=("maximize", "minimize"),
                       help="whether higher or lower values of the metric are better"),
    "reward": Field(dict, default={}, help="MnasNet reward: accuracy, cost, target, w (or alpha, beta)"),
}
BOUND_FIELDS = {"min": Field(float, default=float("-inf"), help="smallest allowed value of the metric (inclusive)"),
                "max": Field(float, default=float("inf"), help="largest allowed value of the metric (inclusive)")}
SECTIONS = ("run", "space", "controller", "evaluator", "objectives", "constraints", "executor", "pruner",
            "latency", "prescreen")


@dataclass
class RunSpec:
    """A validated run spec; every table holds plain data with defaults filled."""

    run: dict[str, Any]
    space: dict[str, Any]
    controller: dict[str, Any]
    evaluator: dict[str, Any]
    objectives: list[dict[str, Any]]
    constraints: dict[str, dict[str, float]]
    executor: dict[str, Any]
    pruner: dict[str, Any]
    base_dir: str = "."
    metrics: tuple[str, ...] = field(default=())  # what the evaluator reports
    latency: dict[str, Any] = field(default_factory=dict)  # [latency]: lut (absolute path or "")
    prescreen: dict[str, Any] = field(default_factory=dict)  # [prescreen]; {} when proposals are not screened

    @property
    def name(self) -> str:
        return self.run["name"]

    @property
    def seed(self) -> int:
        return self.run["seed"]

    @property
    def budget(self) -> int:
        return self.run["budget"]

    @property
    def directions(self) -> list[str]:
        return [o["direction"] for o in self.objectives]

    @property
    def trial_budget(self) -> dict[str, Any]:
        """The per-trial budget handed to the evaluator."""
        return dict(self.evaluator.get("budget", {}))

    def space_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.space.items() if k != "name"}

    def evaluator_spec(self) -> EvaluatorSpec:
        options = {k: v for k, v in self.evaluator.items() if k not in ("name", "budget")}
        return EvaluatorSpec(self.evaluator["name"], options, self.space["name"], self.space_options(),
                             self.base_dir)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the TOML layout (infinite bounds and an unset target left out)."""
        constraints = {m: {k: v for k, v in b.items() if abs(v) != float("inf")} for m, b in self.constraints.items()}
        run = {k: v for k, v in self.run.items() if not (k == "target" and v != v)}
        return {"run": run, "space": self.space, "controller": self.controller,
                "evaluator": self.evaluator, "objectives": self.objectives, "constraints": constraints,
                "executor": self.executor, "pruner": self.pruner,
                **({"latency": self.latency} if self.latency.get("lut") else {}),
                **({"prescreen": self.prescreen} if self.prescreen else {})}

    def to_toml(self) -> str:
        """The resolved spec as TOML text."""
        import tomli_w

        return tomli_w.dumps(_drop_empty(self.to_dict()))


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; ``SpecError`` for a missing file or invalid TOML."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: invalid TOML: {err}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file") from None


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> RunSpec:
    """Read and validate a spec file; ``overrides`` maps dotted paths (``run.budget``) to values."""
    path = Path(path).resolve()
    data = read_toml(path)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, _, key = dotted.partition(".")
            data.setdefault(section, {})[key] = value
    data.setdefault("run", {})
    if not data["run"].get("name"):
        data["run"]["name"] = path.stem
    return parse_spec(data, path.parent)


def parse_spec(data: Mapping[str, Any], base_dir: Path) -> RunSpec:
    """Validate parsed spec data (relative files resolve against ``base_dir``)."""
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise SpecError(f"{unknown[0]}: unknown section; allowed: {', '.join(SECTIONS)}")
    run = validate(data.get("run", {}), RUN_FIELDS, "run", base_dir)
    if not run["name"]:
        raise SpecError("run.name: required (a name for the run and its study)")
    space = _table(data, "space")
    if "name" not in space:
        raise SpecError("space.name: required; known: " + ", ".join(registry.names("spaces")))
    space_obj = registry.make_space(space["name"], _without(space, "name"))
    evaluator_table = _with_latency_measured(_table(data, "evaluator"), data.get("objectives"))
    evaluator, metrics = _validate_evaluator(evaluator_table, base_dir, space_obj)
    latency = validate(_table(data, "latency"), LATENCY_FIELDS, "latency", base_dir)
    cheap = CHEAP_METRICS + ((PREDICTED_LATENCY,) if latency["lut"] else ())
    objectives = _validate_objectives(data.get("objectives"), metrics, evaluator["name"], cheap)
    if run["target"] == run["target"] and len(objectives) != 1:
        raise SpecError("run.target: a target needs exactly one objective")
    pruner = validate_pruner(_table(data, "pruner"))
    if len(objectives) > 1 and pruner["name"] != "none":
        raise SpecError("pruner.name: pruning needs a single objective (Optuna keeps no intermediate values "
                        "in multi-objective studies); use 'none'")
    constraints = _validate_constraints(data.get("constraints", {}), cheap)
    if latency["lut"]:
        latency["lut"] = str((base_dir / latency["lut"]).resolve())
        _check_lut(latency, space_obj, evaluator)
    controller = _validate_controller(_table(data, "controller"), space_obj, run["seed"], len(objectives))
    prescreen = validate_prescreen(_table(data, "prescreen"), evaluator, controller, base_dir)
    if run["deterministic"]:
        _check_deterministic(pruner, prescreen)
    return RunSpec(run=run, space={"name": space["name"], **space_obj.options}, controller=controller,
                   evaluator=evaluator, objectives=objectives, constraints=constraints,
                   executor=validate_executor(_table(data, "executor")),
                   pruner=pruner, base_dir=str(base_dir), metrics=metrics,
                   latency=latency, prescreen=prescreen)


def _check_deterministic(pruner: Mapping[str, Any], prescreen: Mapping[str, Any]) -> None:
    """What a deterministic run cannot have: its outcome would depend on the workers' timing."""
    if pruner["name"] != "none":
        raise SpecError("pruner.name: a deterministic run cannot prune (a trial is judged against whichever other "
                        "trials have reported by then); use 'none' or set run.deterministic = false")
    if prescreen:
        raise SpecError("prescreen: a deterministic run cannot pre-screen (batches fill in completion order); "
                        "remove [prescreen] or set run.deterministic = false")


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A section that must be a table (absent = empty)."""
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise SpecError(f"{key}: expected a table, got {value!r}")
    return dict(value)


def _without(table: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in table.items() if k not in keys}


def _validate_evaluator(table: dict[str, Any], base_dir: Path, space: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``[evaluator]`` options (the space's defaults for this evaluator under them) and budget, and the
    metrics it will report."""
    if "name" not in table:
        raise SpecError("evaluator.name: required; known: " + ", ".join(registry.names("evaluators")))
    table = {**space.evaluator_defaults(table["name"]), **table}
    cls = registry.lookup("evaluators", table["name"], "evaluator.name", declaration=True)
    options = cls.validate_options(_without(table, "budget"), base_dir)
    cls.check_space(options, space)
    budget = validate(table.get("budget", {}), cls.BUDGET, "evaluator.budget", base_dir)
    metrics = tuple(cls.metric_names(options))
    return {"name": table["name"], **options, "budget": budget}, metrics


def _with_latency_measured(evaluator: dict[str, Any], objectives: Any) -> dict[str, Any]:
    """An objective on ``latency_ms`` switches the evaluator's measurement on (torch) if it has one."""
    named = {o.get("metric") for o in objectives or [] if isinstance(o, Mapping)}
    named |= {o["reward"].get("cost") for o in objectives or [] if isinstance(o, Mapping)
              and isinstance(o.get("reward"), Mapping)}
    if MEASURED_LATENCY not in named or evaluator.get("latency_backend") or "name" not in evaluator:
        return evaluator
    cls = registry.lookup("evaluators", evaluator["name"], "evaluator.name", declaration=True)
    return {**evaluator, "latency_backend": "torch"} if "latency_backend" in cls.OPTIONS else evaluator


def _check_lut(latency: dict[str, Any], space: Any, evaluator: dict[str, Any]) -> None:
    """``latency.lut`` must load and fit the run's space, preset, options, input shape and backend
    (a missing file is fine when ``latency.build`` will build it)."""
    from nas.latency.table import LatencyTable
    from nas.space import require_latency_support

    try:
        require_latency_support(space, "latency.lut")
    except ValueError as err:
        raise SpecError(str(err)) from None
    if latency["build"] and not Path(latency["lut"]).exists():
        return
    cls = registry.lookup("evaluators", evaluator["name"], "evaluator.name", declaration=True)
    task = cls.task_for(_without(evaluator, "name", "budget"), space)
    try:
        LatencyTable.load(latency["lut"]).check(space, task, latency["backend"], latency["device"])
    except (OSError, ValueError) as err:
        raise SpecError(f"latency.lut: {err}") from None


def _validate_objectives(items: Any, metrics: tuple[str, ...], evaluator: str,
                         cheap: tuple[str, ...] = CHEAP_METRICS) -> list[dict[str, Any]]:
    """``[[objectives]]``: default is the evaluator's first metric, maximized."""
    if items is None:
        if not metrics:
            raise SpecError("objectives: required (the evaluator reports no default metric)")
        return [{"metric": metrics[0], "direction": "maximize"}]
    if not isinstance(items, list) or not items:
        raise SpecError("objectives: expected a non-empty array of tables ([[objectives]])")
    out = []
    for i, item in enumerate(items):
        objective = validate(item, OBJECTIVE_FIELDS, f"objectives[{i}]")
        if objective["reward"]:
            objective["reward"] = validate_reward(objective["reward"], f"objectives[{i}].reward",
                                                  metrics + cheap)
        elif objective["metric"] == PREDICTED_LATENCY and PREDICTED_LATENCY not in cheap:
            raise SpecError(f"objectives[{i}].metric: {PREDICTED_LATENCY} needs a lookup table: set [latency] lut "
                            "(made by 'nas latency build-lut')")
        elif objective["metric"] not in metrics + cheap:
            raise SpecError(f"objectives[{i}].metric: unknown metric {objective['metric']!r}; the {evaluator} "
                            f"evaluator reports: {', '.join(metrics) or '(none)'}; cheap: {', '.join(cheap)}")
        out.append(objective)
    names = [o["metric"] for o in out]
    if len(set(names)) != len(names):
        raise SpecError(f"objectives: a metric appears twice in {names}")
    return out


def _validate_constraints(table: Any, cheap: tuple[str, ...] = CHEAP_METRICS) -> dict[str, dict[str, float]]:
    """``[constraints]``: bounds on cheap metrics, checked before any evaluation."""
    if not isinstance(table, Mapping):
        raise SpecError(f"constraints: expected a table, got {table!r}")
    out = {}
    for metric, bounds in table.items():
        if metric == PREDICTED_LATENCY and metric not in cheap:
            raise SpecError(f"constraints.{metric}: needs a lookup table: set [latency] lut "
                            "(made by 'nas latency build-lut')")
        if metric not in cheap:
            raise SpecError(f"constraints.{metric}: bounds are allowed on cheap metrics only: {', '.join(cheap)}")
        out[metric] = validate(bounds, BOUND_FIELDS, f"constraints.{metric}")
    return out


def _validate_controller(table: dict[str, Any], space: Any, seed: int, n_objectives: int) -> dict[str, Any]:
    """``[controller]`` (default ``evolution``): options checked by building the sampler once."""
    name = table.get("name", "evolution")
    cls = registry.lookup("controllers", name, "controller.name")
    if n_objectives > 1 and not cls.MULTI_OBJECTIVE:
        raise SpecError(f"controller.name: {name!r} handles one objective; use nsga2 for several")
    controller = cls(space, _without(table, "name"), seed, n_objectives)  # options checked here: SpecError
    controller.sampler()  # anything raised here is a bug (traceback, exit 1), not bad input
    return {"name": name, **controller.options}


def _drop_empty(data: Any) -> Any:
    """Remove empty tables so the TOML stays short."""
    if isinstance(data, dict):
        return {k: _drop_empty(v) for k, v in data.items() if not (isinstance(v, dict) and not v)}
    if isinstance(data, list):
        return [_drop_empty(v) for v in data]
    return data
