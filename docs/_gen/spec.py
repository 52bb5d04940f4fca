"""``reference/spec.md``: every table and field of a run spec, read from the declarations in the code.

Each section has a fixed anchor that other pages may link to: ``#run``, ``#space``, ``#space-<name>``,
``#controller-<name>``, ``#evaluator-<name>``, ``#objectives``, ``#objectives-reward``, ``#constraints``,
``#executor``, ``#executor-<name>``, ``#pruner-<name>``, ``#latency`` and ``#prescreen``.
"""

from __future__ import annotations

from typing import Any

from nas import registry
from nas.config import REQUIRED, Field
from nas.executors import OPTIONS as EXECUTOR_FIELDS
from nas.search import objectives, prescreen, pruners
from nas.search import spec as run_spec

from _gen.tables import code, field_table, names_list, summary

PRUNER_NOTES = {
    "none": "Never prune: every trial runs its whole budget.",
    "median": "Optuna's `MedianPruner`: stop a trial whose intermediate value is worse than the median of "
              "earlier trials at the same step.",
    "sha": "Optuna's `SuccessiveHalvingPruner`: asynchronous successive halving over rungs of steps.",
    "hyperband": "Optuna's `HyperbandPruner`: several successive-halving brackets with different "
                 "minimum resources.",
}
SECTION_NOTES = {
    "run": "The run as a whole: its name, seed, budget and when to stop.",
    "space": "The search space: `name` picks a registered space; the other keys are its options.",
    "controller": "What proposes architectures: `name` picks a controller (default `\"evolution\"`).",
    "evaluator": "What scores an architecture: `name` picks an evaluator; `[evaluator.budget]` is the "
                 "per-trial budget.",
    "objectives": "What is optimised, one `[[objectives]]` table per objective (default: the evaluator's "
                  "first metric, maximized).",
    "constraints": "Bounds on cheap metrics, checked before anything is evaluated.",
    "executor": "Where trials run.",
    "pruner": "Stops unpromising trials from their intermediate values (single objective only).",
    "latency": "A latency lookup table, for the cheap metric `latency_pred_ms`.",
    "prescreen": "Scores proposals with zero-cost proxies and trains only the best.",
}
REWARD_NOTE = ("A table `reward = {...}` makes the objective MnasNet's reward: "
               "`accuracy * (cost / target) ** w`, with `w = alpha` when `cost <= target` and `w = beta` "
               "otherwise; `metric` then names the reward.")
INTRO = """# Run spec reference

A run spec is a TOML file of the tables below; `nas search SPEC` checks all of it before anything
runs. This page is generated from the option declarations in the code when the site is built, so
it lists every field that exists, with its type, default, allowed values and meaning.

| Table | What it holds |
|---|---|
"""


def spec_page() -> str:
    """The whole page as Markdown."""
    parts = [INTRO + "\n".join(f"| [{code(_title(s))}](#{s}) | {SECTION_NOTES.get(s, '')} |"
                               for s in run_spec.SECTIONS)]
    for section in run_spec.SECTIONS:
        parts.append(f"## {code(_title(section))} {{#{section}}}\n\n{SECTION_NOTES.get(section, '')}")
        parts.append(SECTION_WRITERS[section]())
    return "\n\n".join(parts) + "\n"


def _title(section: str) -> str:
    return "[[objectives]]" if section == "objectives" else f"[{section}]"


def _run() -> str:
    return field_table(run_spec.RUN_FIELDS)


def parts(kind: str) -> dict[str, Any]:
    """The registered classes of ``kind`` by name (evaluators: their torch-free declarations)."""
    return {name: registry.lookup(kind, name, declaration=True) for name in registry.names(kind)}


def space_fields(cls: Any) -> dict[str, Field]:
    """What ``[space]`` accepts for the space ``cls``: ``preset`` and its ``OPTIONS``."""
    return cls.option_fields()


def _space() -> str:
    spaces = parts("spaces")
    out = [f"`name` (*required*): one of {names_list(spaces)}."]
    for name, cls in spaces.items():
        out.append(f"### {code(name)} {{#space-{name}}}\n\n{summary(cls)}\n\n{field_table(space_fields(cls))}")
    return "\n\n".join(out)


def _controller() -> str:
    controllers = parts("controllers")
    out = [f"`name`: one of {names_list(controllers)} (default `\"evolution\"`)."]
    for name, cls in controllers.items():
        several = "" if getattr(cls, "MULTI_OBJECTIVE", True) else " Single objective only."
        out.append(f"### {code(name)} {{#controller-{name}}}\n\n{summary(cls)}{several}\n\n"
                   f"{field_table(cls.OPTIONS)}")
    return "\n\n".join(out)


def metrics_of(cls: Any) -> tuple[str, ...]:
    """The metrics an evaluator reports with its default options."""
    defaults = {k: f.default for k, f in cls.OPTIONS.items() if f.default is not REQUIRED}
    try:
        return tuple(cls.metric_names(defaults))
    except (KeyError, ValueError, TypeError):
        return tuple(cls.METRICS)


def _evaluator() -> str:
    evaluators = parts("evaluators")
    out = [f"`name` (*required*): one of {names_list(evaluators)}."]
    for name, cls in evaluators.items():
        reports = f"Reports (default options): {names_list(metrics_of(cls))}." if metrics_of(cls) else ""
        budget = (f"**`[evaluator.budget]`**\n\n{field_table(cls.BUDGET)}" if cls.BUDGET
                  else "No `[evaluator.budget]` fields.")
        out.append(f"### {code(name)} {{#evaluator-{name}}}\n\n{summary(cls)}\n\n{reports}\n\n"
                   f"{field_table(cls.OPTIONS)}\n\n{budget}")
    return "\n\n".join(out)


def _objectives() -> str:
    cheap = run_spec.CHEAP_METRICS + (run_spec.PREDICTED_LATENCY,)
    return (f"{field_table(run_spec.OBJECTIVE_FIELDS)}\n\n`metric` may also be a cheap metric: "
            f"{names_list(cheap)} (`{run_spec.PREDICTED_LATENCY}` needs [`[latency]`](#latency)).\n\n"
            f"### `reward` {{#objectives-reward}}\n\n{REWARD_NOTE}\n\n"
            f"{field_table(objectives.REWARD_FIELDS, 'reward.')}")


def _constraints() -> str:
    cheap = run_spec.CHEAP_METRICS + (run_spec.PREDICTED_LATENCY,)
    return (f"One table `[constraints.<metric>]` per bounded metric, where the metric is one of "
            f"{names_list(cheap)}.\n\n{field_table(run_spec.BOUND_FIELDS)}")


def _executor() -> str:
    executors = parts("executors")
    out = [f"`name`: one of {names_list(executors)} (default `\"inline\"`)."]
    out += [f"### {code(name)} {{#executor-{name}}}\n\n{summary(cls)}" for name, cls in executors.items()]
    out.append(f"### Options {{#executor-options}}\n\nEvery executor takes these.\n\n{field_table(EXECUTOR_FIELDS)}")
    return "\n\n".join(out)


def _pruner() -> str:
    out = [f"`name`: one of {names_list(pruners.PRUNERS)} (default `\"none\"`)."]
    for name, (fields, _factory) in pruners.PRUNERS.items():
        out.append(f"### {code(name)} {{#pruner-{name}}}\n\n{PRUNER_NOTES.get(name, '')}\n\n{field_table(fields)}")
    return "\n\n".join(out)


def _latency() -> str:
    return field_table(run_spec.LATENCY_FIELDS)


def prescreen_fields() -> dict[str, Field]:
    """``[prescreen]``'s own fields and those it passes on to the zero-cost evaluator."""
    zero_cost = registry.lookup("evaluators", "zero-cost", declaration=True)
    return {**prescreen.FIELDS, **{k: zero_cost.OPTIONS[k] for k in prescreen.PASSED}}


def _prescreen() -> str:
    inherited = names_list(prescreen.INHERITED)
    return (f"{summary(prescreen)} Absent: no pre-screen. The last fields are the "
            f"[zero-cost evaluator's](#evaluator-zero-cost); {inherited} default to the run evaluator's.\n\n"
            f"{field_table(prescreen_fields())}")


SECTION_WRITERS = {"run": _run, "space": _space, "controller": _controller, "evaluator": _evaluator,
                   "objectives": _objectives, "constraints": _constraints, "executor": _executor,
                   "pruner": _pruner, "latency": _latency, "prescreen": _prescreen}

