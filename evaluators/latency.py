"""Latency measurement of a module: PyTorch eager, ONNX Runtime fp32 and int8, on CPU or CUDA.

Protocol (one :func:`measure` call):

1. The module is put in eval mode and, for ONNX Runtime, exported to ONNX (opset 17, the
   TorchScript exporter: fast and deterministic) and loaded into an ``InferenceSession`` with
   ``intra_op_num_threads = threads``, ``inter_op_num_threads = 1`` and sequential execution.
   ``onnxruntime-int8`` first runs static quantization (``onnxruntime.quantization.quantize_static``,
   QDQ format, int8 weights per channel, uint8 activations) calibrated on a few random batches.
2. Threads are pinned: torch runs with ``torch.set_num_threads(threads)`` and every thread of the
   process is bound (``sched_setaffinity``) to ``threads`` CPUs for the duration of the call (the
   last ones of the allowed set unless ``cpus`` names them), then the previous state is restored.
   One thread stands for a phone-like core.
3. ``warmup`` untimed runs, then timed runs in *rounds*: each round times the call for
   ``round_seconds`` (at least ``min_repeats / rounds`` runs) and keeps the round's median. Several
   calls measured together (:func:`measure_many`, lookup tables, validation) take their rounds
   *interleaved*, every call in every round, so slow drifts of the machine's speed (frequency,
   other tenants of a virtual machine) fall on all of them alike; each round's common factor is
   then divided out (:func:`evaluators.timing.round_factors`). The rounds stop once every call has
   ``rounds`` round medians whose CV is at most ``target_cv`` (the spread check), or after
   ``max_repeats`` runs / ``max_seconds`` per call. CUDA runs are timed with CUDA events around the
   call, after synchronising. The rounds are :mod:`evaluators.timing`'s.
4. Reported: ``median_ms`` = the median of the (drift-corrected) round medians (robust to
   pre-emptions within a round and to a slow round), p90 and mean of all timed runs, the CV of the
   round medians, the number of runs and the fastest run (``min_ms``). Lookup tables keep the median by default.

Interference: a measurement is only as clean as the CPUs it runs on. In a search, the cheap
``latency_pred_ms`` comes from a lookup table built once before training (``nas latency
build-lut``); the measured ``latency_ms`` is taken by the train evaluator right after training,
pinned to its CPUs. To keep trials that train on the same machine off those CPUs, reserve some
(evaluator option ``latency_cpus = [3]``): every worker's training threads are then bound to the
other CPUs (:func:`keep_off`), each measurement is bound to the reserved ones, and the workers'
measurements take turns on them (a machine-wide file lock). Without reserved CPUs, give
latency-measuring runs ``workers = 1`` when their numbers must be trusted, or re-measure the Pareto
set afterwards (``nas latency validate``).

Results are cached by (key, backend, device, batch, threads, input shape) in a :class:`LatencyCache`
(in memory, optionally appended to a JSON-lines file), ``key`` being an arch id or a block key.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from evaluators.timing import Measurement, Settings, time_rounds
from nas.config import SpecError

OPSET = 17
CALIBRATION_BATCHES = 4


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice on the root logger at WARNING: keep it off the console."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# ----- pinning ----------------------------------------------------------------------------------
_PIN_LOCK = threading.Lock()


def pinned_cpus(threads: int, cpus: Sequence[int] = ()) -> tuple[int, ...]:
    """The CPUs a measurement with ``threads`` threads is bound to: the named ``cpus`` (reserved,
    possibly outside this thread's current binding), else the last ``threads`` allowed ones."""
    if cpus:
        return tuple(sorted(cpus))[:threads]
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return tuple(allowed[-threads:])


def keep_off(cpus: Sequence[int]) -> tuple[int, ...]:
    """Bind every thread of this process to the allowed CPUs other than ``cpus`` (reserved for
    latency measurements) and return those; threads started later inherit the binding."""
    allowed = set(os.sched_getaffinity(0))
    remaining = tuple(sorted(allowed - set(cpus)))
    if not remaining:
        raise SpecError(f"latency_cpus: reserving {sorted(cpus)} leaves no CPU of {sorted(allowed)} for training")
    for tid in _thread_ids():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, remaining)
    return remaining


@contextlib.contextmanager
def _exclusive(cpus: Sequence[int]) -> Iterator[None]:
    """Hold a machine-wide lock per reserved CPU set, so that workers sharing it measure one at a time."""
    import fcntl

    path = Path(tempfile.gettempdir()) / f"nasforge-latency-cpus-{'-'.join(map(str, cpus))}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def pinned(threads: int, cpus: Sequence[int] = ()) -> Iterator[tuple[int, ...]]:
    """Bind every thread of the process to the chosen CPUs and torch to ``threads`` threads.

    With ``cpus`` named (reserved CPUs, see :func:`keep_off`), measurements of all processes on
    the machine that name the same CPUs take turns (a file lock).
    """
    lock = _exclusive(sorted(cpus)) if cpus else contextlib.nullcontext()
    with _PIN_LOCK, lock:
        chosen = pinned_cpus(threads, cpus)
        torch_threads = torch.get_num_threads()
        saved: dict[int, set[int]] = {}
        if hasattr(os, "sched_setaffinity"):
            for tid in _thread_ids():
                with contextlib.suppress(OSError):
                    saved[tid] = os.sched_getaffinity(tid)
                    os.sched_setaffinity(tid, chosen)
        torch.set_num_threads(threads)
        try:
            yield chosen
        finally:
            torch.set_num_threads(torch_threads)
            for tid, mask in saved.items():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, mask)


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


# ----- backends ---------------------------------------------------------------------------------
def example_inputs(shapes: Sequence[Sequence[int]], batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of ``(batch, *shape)`` for each shape."""
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, *shape, generator=generator) for shape in shapes)


def export_onnx(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bytes:
    """ONNX bytes of ``module`` in eval mode for ``inputs`` (static shapes)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), inputs, buffer, dynamo=False, opset_version=OPSET,
                          input_names=[f"x{i}" for i in range(len(inputs))])
    return buffer.getvalue()


def quantize_int8(model: bytes, inputs: tuple[torch.Tensor, ...], batches: int = CALIBRATION_BATCHES) -> bytes:
    """Static int8 quantization (QDQ, per-channel weights) calibrated on random batches like ``inputs``.
    A graph that reads none of its inputs (a network folded to a constant: the exporter drops them)
    has nothing to quantize and is returned as it is."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    read = {i.name for i in onnx.load_from_string(model).graph.input}
    if not read & {f"x{i}" for i in range(len(inputs))}:
        return model

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            feeds = [example_inputs([t.shape[1:] for t in inputs], inputs[0].shape[0], seed) for seed in range(batches)]
            self.data = iter([{f"x{i}": t.numpy() for i, t in enumerate(feed) if f"x{i}" in read} for feed in feeds])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.data, None)

    with tempfile.TemporaryDirectory() as folder:
        src, dst = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        src.write_bytes(model)
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
        return dst.read_bytes()


def ort_session(model: bytes, settings: Settings, disabled_optimizers: Sequence[str] = (),
                save_optimized: str | Path | None = None) -> Any:
    """An ONNX Runtime session with pinned thread counts on the settings' device (optionally without
    some graph optimizers, e.g. ``CommonSubexpressionElimination``; ``save_optimized``: the path its
    optimized graph is written to)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if save_optimized is not None:
        options.optimized_model_filepath = str(save_optimized)
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if settings.device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise SpecError("latency device: onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu)")
        providers.insert(0, "CUDAExecutionProvider")
    if disabled_optimizers:
        return ort.InferenceSession(model, options, providers=providers, disabled_optimizers=list(disabled_optimizers))
    return ort.InferenceSession(model, options, providers=providers)


def _torch_call(module: nn.Module, inputs: tuple[torch.Tensor, ...], settings: Settings,
                disabled_optimizers: Sequence[str] = ()) -> Callable[[], Any]:
    device = torch.device(settings.device)
    module = module.to(device).eval()
    inputs = tuple(t.to(device) for t in inputs)

    def call() -> Any:
        with torch.inference_mode():
            return module(*inputs)
    return call


def _ort_call(module: nn.Module, inputs: tuple[torch.Tensor, ...], settings: Settings,
              disabled_optimizers: Sequence[str] = ()) -> Callable[[], Any]:
    model = export_onnx(module, inputs)
    if settings.backend == "onnxruntime-int8":
        model = quantize_int8(model, inputs)
    session = ort_session(model, settings, disabled_optimizers)
    names = [i.name for i in session.get_inputs()]
    feed = {name: t.numpy() for name, t in zip(names, inputs)}
    return lambda: session.run(None, feed)


def prepare_call(module: nn.Module, input_shapes: Sequence[Sequence[int]], settings: Settings,
                 disabled_optimizers: Sequence[str] = ()) -> Callable[[], Any]:
    """A no-argument call running one forward pass of ``module`` on the settings' backend and device
    (``disabled_optimizers``: ONNX Runtime graph optimizers left out)."""
    inputs = example_inputs(input_shapes, settings.batch)
    make = _torch_call if settings.backend == "torch" else _ort_call
    return make(module, inputs, settings, disabled_optimizers)


def measure(module: nn.Module, input_shapes: Sequence[Sequence[int]], settings: Settings) -> Measurement:
    """Latency of one forward pass of ``module`` on inputs of ``(batch, *shape)`` per shape.

    Args:
        module: the network or block (set to eval mode here).
        input_shapes: one (C, H, W) per input of ``forward``.
        settings: backend, device, batch, threads and repeat policy.

    Returns:
        The summary of the timed runs.
    """
    return measure_many([(module, input_shapes)], settings)[0]


def measure_many(items: Sequence[tuple[nn.Module, Sequence[Sequence[int]]]], settings: Settings) -> list[Measurement]:
    """Latencies of several modules, timed in interleaved rounds (:func:`evaluators.timing.time_rounds`):
    fair to compare with each other on a machine whose speed drifts. Hold only as many modules as memory allows."""
    with pinned(settings.threads, settings.cpus):
        calls = [prepare_call(module, shapes, settings) for module, shapes in items]
        sync = torch.cuda.synchronize if settings.device == "cuda" else None
        return time_rounds(calls, settings, sync)


class LatencyCache:
    """Measurements by (key, settings, input shape), in memory and optionally in a JSON-lines file.

    Args:
        path: file appended to on every new measurement and read on creation (None: memory only).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.hits = self.misses = 0
        self._data: dict[str, dict[str, float]] = {}
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text().splitlines():
                with contextlib.suppress(ValueError, KeyError):
                    record = json.loads(line)
                    self._data[record["key"]] = record["measurement"]

    @staticmethod
    def key(name: str, settings: Settings, input_shapes: Sequence[Sequence[int]]) -> str:
        """(arch id or block key, backend, device, batch, threads, input shape) as one string."""
        shapes = ";".join("x".join(map(str, s)) for s in input_shapes)
        return f"{name}|{settings.key()}|{shapes}|torch{torch.__version__}"

    def get_or_measure(self, name: str, make: Callable[[], nn.Module], input_shapes: Sequence[Sequence[int]],
                       settings: Settings) -> Measurement:
        """The cached measurement, or a new one of ``make()`` (stored)."""
        key = self.key(name, settings, input_shapes)
        if key in self._data:
            self.hits += 1
            return Measurement(**self._data[key])
        self.misses += 1
        result = measure(make(), input_shapes, settings)
        self._data[key] = result.to_dict()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(json.dumps({"key": key, "measurement": result.to_dict()}) + "\n")
        return result

    def __len__(self) -> int:
        return len(self._data)
