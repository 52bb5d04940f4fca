"""Per-block latency lookup tables (torch-free): the file format, prediction and the mismatch checks.

A network's latency is predicted as ``scale * sum(table[block] for block in its blocks) +
per_block * len(blocks) + offset``: the blocks come from the space (``SearchSpace.latency_blocks``),
the table from measuring every block at its input shapes (``nas latency build-lut``), and the
correction from a least-squares fit on a few whole-network measurements (what blocks measured
apart miss: caches, dispatch and layout conversions between blocks, the runtime's per-call cost).

Block keys are compact strings ``kind:arg:arg@CxHxW[;CxHxW]``: what the block is, then the shapes
of its inputs (batch excluded). :func:`block_key` writes them and :func:`parse_key` reads them. A
key prefixed with ``~`` (:data:`DEAD`) is a block eager PyTorch runs but whose result never reaches
the output: exported graphs drop it (ONNX Runtime folds constants and removes dead nodes), so only
``torch`` tables count it. A key prefixed with ``^`` (:data:`GRAPH`) is no block but a kernel that a
graph runtime's optimizer leaves after fusing and reordering across blocks (a space that models
them lists them): it has no table entry, only graph-runtime tables count it, and only their
correction prices it (a cost per kind and per key, fitted on the whole networks).

A table is valid only for the space, preset, space options, input shape, backend, device, batch,
threads and library versions it was measured with; :meth:`LatencyTable.check` refuses any other.
It carries where it holds (``target``: runtime, provider, CPU model and ISA flags, threads, batch)
and, for a graph runtime, the optimizer rules detected there (``rules``,
:class:`nas.latency.rules.RuntimeRules`): predictions walk a network's kernels with those rules,
never with the predicting machine's, so a table built on the target predicts for it from anywhere.
"""

from __future__ import annotations

import functools
import json
import statistics
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from nas.config import SpecError
from nas.block_keys import DEAD, GRAPH, kind_of
from nas.latency.rules import RuntimeRules, Target

FIT_NETWORKS = 100  # whole networks a table's correction is fitted on (the kinds form needs several per kind)

LUT_FORMAT = "nasforge-lut/2"  # /2: the target and its detected runtime rules are stored
# space options that do not change the network as measured (inference, batch 1)
IGNORED_OPTIONS = frozenset({"drop_path", "auxiliary", "bn_momentum", "final_phi", "dropout"})


def versions() -> dict[str, str]:
    """Versions of the libraries a measurement depends on ('' when not installed)."""
    out = {}
    for name in ("torch", "onnxruntime"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


@dataclass
class LatencyTable:
    """A lookup table of block latencies (ms) for one space, preset, task and measurement setting."""

    space: str
    preset: str
    space_options: dict[str, Any]
    input_shape: tuple[int, int, int]
    num_classes: int
    backend: str
    device: str
    batch: int
    threads: int
    versions: dict[str, str]
    blocks: dict[str, float]
    scale: float = 1.0
    offset: float = 0.0
    per_block: float = 0.0  # ms added per counted block (what a block costs in a network beyond its own time)
    fit: dict[str, Any] = field(default_factory=dict)  # the whole-network points the correction used
    build_seconds: float = 0.0
    custom_task: bool = False  # built for an input shape other than the preset's (--input-shape)
    stat: str = "min"  # the statistic of the timed runs the table holds: min or median
    floor_ms: float = 0.0  # a network that folds to a constant: the runtime's cost of one call
    kind_ms: dict[str, float] = field(default_factory=dict)  # correction: ms per counted block of a kind or key
    speed: float = 1.0  # calibration: the machine's time now / at build time (see evaluators.lut.calibrate_table)
    target: dict[str, Any] = field(default_factory=dict)  # where it holds (nas.latency.rules.Target)
    rules: dict[str, Any] = field(default_factory=dict)  # the graph runtime's detected rules ({}: none)
    fp32_blocks: list[str] = field(default_factory=list)  # int8 table: blocks the quantizer refused, timed in fp32

    def runtime_rules(self) -> RuntimeRules | None:
        """The graph runtime's rules detected on the target (None: eager torch, or none detected)."""
        if self.backend == "torch" or not self.rules:
            return None
        return _rules(tuple(sorted(self.rules.items())))

    def target_info(self) -> Target:
        return Target.from_dict(self.target)

    def task(self) -> Any:
        """The task the table was built for; None when it is the preset's (as the space decides)."""
        from nas.space import Task

        return Task(tuple(self.input_shape), self.num_classes) if self.custom_task else None  # type: ignore[arg-type]

    # ----- prediction ---------------------------------------------------------------------------
    def raw(self, keys: Iterable[str]) -> float:
        """Sum of the blocks' table entries; ``ValueError`` names a block the table lacks."""
        return self._sum(keys)[0]

    def parts(self, keys: Iterable[str]) -> tuple[float, int]:
        """(sum of the counted blocks' entries, how many were counted): the correction's inputs."""
        return self._sum(keys)

    def _sum(self, keys: Iterable[str], corrected: bool = False) -> tuple[float, int]:
        """(sum of the counted blocks' entries, how many were counted); ``corrected``: the sum
        times ``scale`` plus the blocks' kind and key costs (``kind_ms``)."""
        total = extra = 0.0
        live = 0
        blocks = self.blocks
        eager = self.backend == "torch"
        kind_ms = self.kind_ms if corrected else None
        for key in keys:
            if key[0] == GRAPH:  # a graph runtime's kernel: priced by the correction alone
                if kind_ms and not eager:
                    extra += kind_ms.get(kind_of(key), 0.0) + kind_ms.get(key, 0.0)
                continue
            if key[0] == DEAD:  # dead code: computed by eager torch, dropped by graph compilers
                if not eager:
                    continue
                key = key[1:]
            live += 1
            value = blocks.get(key)
            if value is None:
                raise SpecError(f"latency table lacks block {key!r} (built for {self.describe()}); "
                                 "rebuild it with 'nas latency build-lut'")
            total += value
            if kind_ms:
                extra += kind_ms.get(kind_of(key), 0.0) + kind_ms.get(key, 0.0)
        return (self.scale * total + extra if corrected else total), live

    def term_counts(self, keys: Iterable[str]) -> dict[str, int]:
        """How many counted blocks of each kind (:func:`kind_of`) and of each block key ``keys``
        hold: the correction's terms."""
        counts: dict[str, int] = {}
        for key in keys:
            if key[0] == GRAPH and self.backend == "torch":
                continue
            if key[0] == DEAD:
                if self.backend != "torch":
                    continue
                key = key[1:]
            for term in (kind_of(key), key):
                counts[term] = counts.get(term, 0) + 1
        return counts

    def predict_keys(self, keys: Iterable[str]) -> float:
        """Predicted latency (ms) of a network made of ``keys`` (one whose every block is dead
        compiles to a constant: ``floor_ms``), times the calibration ``speed``."""
        total, live = self._sum(keys, corrected=True)
        return self.speed * (total + self.per_block * live + self.offset if live else self.floor_ms)

    def additive(self, keys: Iterable[str], fixed: bool = False) -> float:
        """What ``keys`` add to a network's predicted latency (ms): their corrected entries and
        per-block costs, times ``speed``; with ``fixed``, plus the correction's offset (the part
        every network has). One-shot search prices each edge's ops this way."""
        total, live = self._sum(keys, corrected=True)
        return self.speed * (total + self.per_block * live + (self.offset if fixed else 0.0))

    def network_keys(self, space: Any, genotype: Any, task: Any = None) -> list[str]:
        """``genotype``'s block keys in ``space``, and for a graph runtime its kernel terms."""
        keys = space.latency_blocks(genotype, task)
        rules = self.runtime_rules()
        if rules is not None:
            keys = keys + list(space.latency_graph_terms(genotype, task, rules))
        return keys

    def predict(self, space: Any, genotype: Any, task: Any = None) -> float:
        """Predicted latency (ms) of ``genotype`` in ``space``."""
        return self.predict_keys(self.network_keys(space, genotype, task))

    # ----- calibration -------------------------------------------------------------------------
    def references(self, count: int) -> list[int]:
        """Indices of ``count`` of the fit networks, spread evenly over their measured latencies:
        the reference networks whose build-time latency (``fit.measured_ms``) calibrates the
        table's absolute values to the machine's speed now (none when the table has no fit)."""
        measured = self.fit.get("measured_ms", [])
        if not measured or not self.fit.get("genotypes") or count <= 0:
            return []
        live = self.fit.get("blocks") or [1] * len(measured)  # not a network folded to a constant
        order = sorted((i for i in range(len(measured)) if live[i]), key=lambda i: measured[i])
        if not order:
            return []
        count = min(count, len(order))
        return sorted({order[round(j * (len(order) - 1) / max(1, count - 1))] for j in range(count)})

    # ----- compatibility ------------------------------------------------------------------------
    def describe(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return (f"{self.space}/{self.preset} input {shape}, {self.backend} on {self.device}, "
                f"batch {self.batch}, {self.threads} thread(s), {self.stat} of runs")

    def check(self, space: Any, task: Any = None, backend: str | None = None, device: str | None = None) -> None:
        """``ValueError`` unless this table fits ``space`` (name, preset, options), the task's input
        shape and class count, ``backend`` and ``device`` (the execution provider; if given) and the
        installed library versions (a runtime of another version fuses and lays out otherwise)."""
        where = f"latency table ({self.describe()})"
        if space.name != self.space or space.preset != self.preset:
            raise SpecError(f"{where} was built for space {self.space!r} preset {self.preset!r}, not "
                             f"{space.name!r} preset {space.preset!r}")
        mine = {k: v for k, v in self.space_options.items() if k not in IGNORED_OPTIONS}
        theirs = {k: v for k, v in json.loads(json.dumps(space.options)).items() if k not in IGNORED_OPTIONS}
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if differ:
            k = differ[0]
            raise SpecError(f"{where} was built with space option {k} = {mine.get(k)!r}, the run has {theirs.get(k)!r}")
        if task is not None and (tuple(task.input_shape) != tuple(self.input_shape)
                                 or task.num_classes != self.num_classes):
            raise SpecError(f"{where} was built for input {list(self.input_shape)} and {self.num_classes} classes; "
                             f"the run feeds {list(task.input_shape)} and {task.num_classes} classes "
                             "(build-lut --input-shape/--classes)")
        if backend is not None and backend != self.backend:
            raise SpecError(f"{where} was built for backend {self.backend!r}, not {backend!r}")
        if device is not None and device != self.device:
            raise SpecError(f"{where} was built for the {self.device} provider, not {device}")
        now = versions()
        relevant = ("torch",) if self.backend == "torch" else ("torch", "onnxruntime")  # the exporter is torch's
        for lib, version in ((k, v) for k, v in self.versions.items() if k in relevant):
            if now.get(lib, "") != version:
                raise SpecError(f"{where} was built with {lib} {version or '(none)'}, this machine has "
                                 f"{now.get(lib) or '(none)'}: stale, rebuild it")

    # ----- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return {"format": LUT_FORMAT, **data}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table; ``FileNotFoundError``/``ValueError`` say what is wrong with the file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: latency table not found")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SpecError(f"{path}: not a latency table (not JSON: {err})") from None
        return cls.load_dict(data, path)

    @classmethod
    def load_dict(cls, data: Any, path: str | Path) -> LatencyTable:
        """A table from its JSON data (``path``: for messages)."""
        if not isinstance(data, Mapping) or data.get("format") != LUT_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else None
            if found == "nasforge-lut/1":
                raise SpecError(f"{path}: a latency table without its target's runtime rules (format {found}); "
                                 "rebuild it with 'nas latency build-lut'")
            raise SpecError(f"{path}: not a latency table of format {LUT_FORMAT!r} (found {found!r})")
        fields = {k: v for k, v in data.items() if k != "format"}
        try:
            table = cls(**fields)
        except TypeError as err:
            raise SpecError(f"{path}: malformed latency table ({err})") from None
        table.input_shape = tuple(table.input_shape)  # type: ignore[assignment]
        if table.rules:
            try:
                RuntimeRules.from_dict(table.rules)
            except (TypeError, ValueError) as err:
                raise SpecError(f"{path}: rules: {err}; rebuild the table with 'nas latency build-lut'") from None
        return table


@functools.lru_cache(maxsize=64)
def _rules(items: tuple) -> RuntimeRules:
    return RuntimeRules.from_dict(dict(items))


def speed_ratio(now: Sequence[float], then: Sequence[float]) -> float:
    """How much slower the machine runs now than then: the median of ``now / then`` over the
    reference networks (1.0 without any)."""
    ratios = [a / b for a, b in zip(now, then) if a > 0 and b > 0]
    return statistics.median(ratios) if ratios else 1.0


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b of two equally long sequences (nan when undefined), by SciPy."""
    from scipy.stats import kendalltau  # imported here: ``nas`` starts without SciPy

    if len(a) < 2:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def accuracy_stats(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Share within +-10% of measured, MAPE (fraction) and Kendall tau of predicted vs measured."""
    errors = [abs(p - m) / m for p, m in zip(predicted, measured)]
    n = len(errors)
    return {"samples": n, "within_10pct": sum(e <= 0.10 for e in errors) / n if n else float("nan"),
            "mape": sum(errors) / n if n else float("nan"), "kendall_tau": kendall_tau(predicted, measured)}
