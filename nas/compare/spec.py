"""The spec of a ``nas compare`` study (TOML) and its arms, checked field by field (torch-free).

Layout::

    [compare]
    name = "randwire-vs-searched"      # default: the file's stem
    seeds = 3                          # trials per arm (--seeds)
    reference = "darts-v2"             # the arm every other arm is tested against (default: the first)
    alpha = 0.05                       # significance level, after Holm's correction
    seed = 0                           # base seed: trial i of every arm trains with seed + i

    [compare.match]                    # matched compute
    metric = "flops"                   # "flops" (multiply-accumulates), "params" or "latency" (needs lut)
    lut = "luts/nasnet-w{width}.json"  # latency tables (nas latency build-lut), one per width; or a table
                                       # by space or arm name: lut = {nasnet = "...", randwire = "..."}
    target = 5e6                       # an absolute target, or
    arm = "darts-v2"                   # ... the reference's cost at its own width (default when no target)
    tolerance = 0.05                   # every arm x seed within +-5% of the target
    max_width = 512
    depth = true                       # no width reaches the target: change nasnet's cells per stack
    max_depth = 8

    [train]                            # nas train's recipe (evaluators.recipe.RECIPE); --data/--epochs
    data = "fashion-mnist"
    epochs = 4

    [executor]                         # as in a search spec: inline | ray, workers, ...

    [spaces.nasnet]                    # options for every arm of a space (arms may override: options)
    preset = "proxy"

    [[arms]]  name = "darts-v2"    arch = "darts-v2"        # a published architecture (space found by name)
    [[arms]]  name = "ws"          generator = "ws-4-0.75"  # random wiring: new graphs every seed
    [[arms]]  name = "random-cell" sample = "nasnet"        # random samples of a space: new one every seed
    [[arms]]  name = "resnet"      baseline = "resnet"      # hand-designed: resnet | vgg (NASNet skeleton)
    [[arms]]  name = "searched"    run = "runs/quickstart"  top = 3   # best K of a run folder, seed i -> i mod K
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from nas.config import Field, SpecError, validate
from nas.search.spec import read_toml

KINDS = ("arch", "generator", "sample", "baseline", "run")
FAMILIES = {"arch": "searched", "run": "searched", "generator": "random wiring", "sample": "random cell",
            "baseline": "hand-designed"}
DEFAULT_SPACE = {"generator": "randwire", "baseline": "nasnet"}
BASELINE_NAMES = ("resnet", "vgg")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")

COMPARE = {
    "name": Field(str, default="", help="study name and output folder (default: the spec file's name)"),
    "seeds": Field(int, default=3, min=1, max=1000, help="trials per arm, each trained with its own seed"),
    "reference": Field(str, default="", help="the arm every other arm is tested against (default: the first)"),
    "alpha": Field(float, default=0.05, min=1e-6, max=0.5,
                   help="significance level of the tests against the reference, after Holm's correction"),
    "seed": Field(int, default=0, min=0, help="base seed: trial i of every arm trains with seed + i"),
    "match": Field(dict, default={}, help="matched compute: the [compare.match] table"),
}
MATCH = {
    "metric": Field(str, default="flops", choices=("flops", "params", "latency"),
                    help="cost matched across arms: multiply-accumulates, parameters or latency in ms (needs lut)"),
    "target": Field(float, default=0.0, min=0.0, help="absolute target (0: the cost of match.arm); latency in ms"),
    "arm": Field(str, default="", help="arm whose own cost is the target (default: the reference)"),
    "tolerance": Field(float, default=0.05, min=0.0, max=1.0,
                       help="relative distance from the target every arm x seed must reach (0.05: +-5%)"),
    "max_width": Field(int, default=512, min=1, help="the widest the width search tries (channels)"),
    "depth": Field(bool, default=True, help="when no width reaches the target, change the depth where the "
                                             "space has one (nasnet: normal cells per stack)"),
    "max_depth": Field(int, default=8, min=1, help="the deepest the depth fallback goes"),
    "enabled": Field(bool, default=True, help="match compute at all (false: every arm at its own width)"),
}
ARM = {
    "name": Field(str, help="the arm's name in tables and plots"),
    "arch": Field(str, default="", help="a published architecture by name (the space that knows it is found)"),
    "generator": Field(str, default="", help="a random-wiring generator such as 'ws-4-0.75': new graphs every seed"),
    "sample": Field(str, default="", help="a space whose random samples are trained: a new one every seed"),
    "baseline": Field(str, default="", help="a hand-designed network: resnet or vgg (on the NASNet skeleton)"),
    "run": Field(str, default="", help="a run folder whose best trials are trained (see top)"),
    "top": Field(int, default=1, min=1, help="run arms: the best K trials, seed i trains the (i mod K)-th"),
    "space": Field(str, default="", help="the space (arch: default the one that knows the name)"),
    "options": Field(dict, default={}, help="space options of this arm"),
    "family": Field(str, default="", help="colour group in the plot (default from the kind)"),
    "width": Field(int, default=0, min=0, help="fixed width instead of matching (0: match)"),
}
TOP_LEVEL = ("compare", "train", "executor", "spaces", "arms")


@dataclass(frozen=True)
class ArmSpec:
    """One arm as written in the spec (checked, not yet resolved to architectures)."""

    name: str
    kind: str
    value: str  # the published name, generator, space, baseline name or run folder
    space: str
    options: Mapping[str, Any]
    family: str
    top: int = 1
    width: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the resolved spec and the trial keys)."""
        return {"name": self.name, "kind": self.kind, "value": self.value, "space": self.space,
                "options": dict(self.options), "family": self.family, "top": self.top, "width": self.width}


@dataclass
class CompareSpec:
    """A validated comparison spec with command-line overrides applied."""

    path: Path
    name: str
    seeds: int
    reference: str
    alpha: float
    seed: int
    match: dict[str, Any]
    train: dict[str, Any]
    executor: dict[str, Any]
    arms: list[ArmSpec] = field(default_factory=list)

    def arm(self, name: str) -> ArmSpec:
        return next(a for a in self.arms if a.name == name)


def load_compare_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> CompareSpec:
    """Read and check a comparison spec; ``overrides``: ``seeds``, ``epochs``, ``data``, ``executor``,
    ``workers``. ``SpecError`` names the bad field (``arms[2].generator: ...``)."""
    from nas.executors import validate_executor

    path = Path(path).resolve()
    raw = read_toml(path)
    extra = sorted(set(raw) - set(TOP_LEVEL))
    if extra:
        raise SpecError(f"{extra[0]}: unknown table; allowed: {', '.join(TOP_LEVEL)}")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    head = validate(raw.get("compare", {}), COMPARE, "compare")
    raw_match = dict(head.pop("match"))
    lut = _lut_field(raw_match.pop("lut", ""), path.parent)
    match = validate(raw_match, MATCH, "compare.match")
    match["lut"] = lut
    if match["metric"] == "latency" and not lut:
        raise SpecError("compare.match.lut: metric = \"latency\" needs latency tables (nas latency build-lut): "
                        "a path, or a table of paths by space or arm name, each may hold {width}")
    if "seeds" in overrides:
        head["seeds"] = _positive(overrides["seeds"], "--seeds")
    recipe = _recipe(raw.get("train", {}), overrides, path.parent)
    executor = validate_executor(_executor_table(raw.get("executor", {}), overrides))
    spaces = raw.get("spaces", {})
    if not isinstance(spaces, dict) or not all(isinstance(v, dict) for v in spaces.values()):
        raise SpecError("spaces: expected tables of space options, e.g. [spaces.nasnet]")
    arms = _arms(raw.get("arms"), spaces, path.parent)
    names = [a.name for a in arms]
    reference = head["reference"] or names[0]
    if reference not in names:
        raise SpecError(f"compare.reference: {reference!r} is not an arm; arms: {', '.join(names)}")
    if match["arm"] and match["arm"] not in names:
        raise SpecError(f"compare.match.arm: {match['arm']!r} is not an arm; arms: {', '.join(names)}")
    match["arm"] = "" if match["target"] else (match["arm"] or reference)
    return CompareSpec(path, head["name"] or path.stem, head["seeds"], reference, head["alpha"], head["seed"],
                       match, recipe, executor, arms)


def _recipe(train_table: Mapping[str, Any], overrides: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The training recipe of every arm: the spec's ``[train]`` with ``--data``/``--epochs`` applied."""
    from evaluators.recipe import make_recipe

    train = {"aux_weight": 0.0, "drop_path": 0.0, "data": "digits", **train_table}
    if "data" in overrides and overrides["data"] != train.get("data"):
        train.update(data=overrides["data"], size=-1, data_dir="")  # the spec's size and folder were for its data
    if "epochs" in overrides:
        train["epochs"] = _positive(overrides["epochs"], "--epochs")
    recipe = make_recipe(train)
    if recipe["data_dir"]:
        folder = Path(recipe["data_dir"]).expanduser()
        recipe["data_dir"] = str(folder if folder.is_absolute() else (base / folder).resolve())
    return recipe


def _executor_table(table: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's ``[executor]`` with ``--executor``/``--workers`` applied."""
    table = dict(table)
    for key in ("name", "workers"):
        if overrides.get(f"executor.{key}") is not None:
            table[key] = overrides[f"executor.{key}"]
    if overrides.get("executor.name") == "inline" and overrides.get("executor.workers") is None:
        table["workers"] = 1  # --executor inline runs one trial at a time whatever the spec says
    return table


def _lut_field(value: Any, base: Path) -> str | dict[str, str]:
    """``compare.match.lut``: one path (pattern) or a table of them by space or arm name; made absolute."""
    def absolute(text: Any, where: str) -> str:
        if not isinstance(text, str) or not text:
            raise SpecError(f"{where}: expected a path to a latency table (may hold {{width}}), got {text!r}")
        folder = Path(text).expanduser()
        return str(folder if folder.is_absolute() else base / folder)

    if isinstance(value, dict):
        return {str(k): absolute(v, f"compare.match.lut.{k}") for k, v in value.items()}
    return absolute(value, "compare.match.lut") if value != "" else ""


def _positive(value: Any, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{flag}: expected an integer >= 1, got {value!r}")
    return value


def _arms(table: Any, spaces: Mapping[str, Any], base: Path) -> list[ArmSpec]:
    """Every ``[[arms]]`` entry checked; two or more, distinct names."""
    if not isinstance(table, list) or len(table) < 2:
        raise SpecError("arms: expected at least two [[arms]] tables")
    arms, seen = [], set()
    for i, entry in enumerate(table):
        where = f"arms[{i}]"
        values = validate(entry, ARM, where)
        name = values["name"]
        where = f"arms[{i}] ({name})"
        if not _NAME.match(name):
            raise SpecError(f"{where}.name: expected letters, digits and _.+- (at most 64), got {name!r}")
        if name in seen:
            raise SpecError(f"{where}.name: two arms are named {name!r}")
        seen.add(name)
        kinds = [k for k in KINDS if values[k]]
        if len(kinds) != 1:
            raise SpecError(f"{where}: give exactly one of {', '.join(KINDS)}")
        kind = kinds[0]
        value = values[kind]
        if kind == "run":
            value = str((base / value).resolve()) if not Path(value).is_absolute() else value
        space = values["space"] or (value if kind == "sample" else DEFAULT_SPACE.get(kind, ""))
        if kind == "arch" and not space:
            space = space_knowing(value, f"{where}.arch")
        options = {**spaces.get(space, {}), **values["options"]}
        family = values["family"] or ("random wiring" if kind == "arch" and space == "randwire" else FAMILIES[kind])
        arms.append(ArmSpec(name, kind, value, space, options, family,
                            values["top"], values["width"]))
    return arms


def space_knowing(name: str, where: str) -> str:
    """The registered space whose published architectures include ``name``."""
    from nas import registry

    everything = []
    for space_name in registry.names("spaces"):
        try:
            known = registry.make_space(space_name, {}).known()
        except Exception:  # a plugin space that cannot start bare is simply not searched
            continue
        if name in known:
            return space_name
        everything += sorted(known)
    raise SpecError(f"{where}: {name!r} is not a published architecture of any space; known: "
                    f"{', '.join(everything)}")
