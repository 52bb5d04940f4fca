"""Detect a graph runtime's optimizer rules on this machine (``nas latency build-lut`` stores them).

Small probe networks are exported, optimized by the installed ONNX Runtime with the table's
settings (provider, threads; int8 probes quantized as int8 tables' blocks are), and the optimized
graph it saves is read back (``ort_session(save_optimized=...)``). What its nodes say becomes a
``nas.latency.rules.RuntimeRules``:

- ``block``: the smallest channel count at which a pool between two convolutions runs in the
  blocked (``com.microsoft.nchwc``) domain (0 when no convolution runs there at all);
- ``conv_multiple``: the smallest step above a block at which a convolution still runs blocked;
- ``fuse_bn`` / ``fuse_relu`` / ``fuse_add``: whether a batch norm, a ReLU, a sum after a
  convolution leave no node of their own;
- ``cse``: whether a ReLU and a pool read twice from one tensor are computed once.

With the rules, :func:`target` records where they hold: the runtime and its version, the provider,
the CPU's model and vector-instruction flags, the GPU, threads and batch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from evaluators.latency import export_onnx, ort_session, quantize_int8, quiet_logs
from evaluators.timing import Settings
from nas.latency.rules import RuntimeRules, Target, cpu_info
from nas.latency.table import versions

BLOCKED = "nchwc"  # ONNX Runtime's domain of blocked-layout kernels
PROBE_HW = 8  # probe tensors are C x 8 x 8
WIDTHS = (4, 8, 16, 32, 64)  # candidate blocks, smallest first


def target(settings: Settings) -> Target:
    """Where measurements with ``settings`` hold: runtime, provider, this CPU (and GPU), threads, batch."""
    cpu, isa = cpu_info()
    gpu = torch.cuda.get_device_name() if settings.device == "cuda" else ""
    if settings.backend == "torch":
        runtime, provider = f"torch {versions()['torch']}", ""
    else:
        runtime = f"onnxruntime {versions()['onnxruntime']}"
        provider = "CUDAExecutionProvider" if settings.device == "cuda" else "CPUExecutionProvider"
    return Target(runtime, provider, cpu, isa, gpu, settings.threads, settings.batch)


def optimized_nodes(module: nn.Module, input_shapes: Sequence[Sequence[int]], settings: Settings) -> list[tuple[str, str]]:
    """(op type, domain) of every node of the optimized graph the runtime runs for ``module``."""
    import onnx

    inputs = tuple(torch.randn(1, *s) for s in input_shapes)
    with quiet_logs(), torch.no_grad():
        model = export_onnx(module.eval(), inputs)
        if settings.backend == "onnxruntime-int8":
            model = quantize_int8(model, inputs)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "optimized.onnx"
            ort_session(model, settings, save_optimized=path)
            return [(n.op_type, n.domain) for n in onnx.load(str(path)).graph.node]


def optimized_node_counts(module: nn.Module, input_shape: Sequence[int],
                          settings: Settings | None = None) -> dict[str, int]:
    """How many nodes of each type the runtime's optimized graph of ``module`` runs (by default
    ONNX Runtime's CPU provider, 1 thread: fusions, common subexpressions, blocked-layout reorders)."""
    import collections

    nodes = optimized_nodes(module, [input_shape], settings or Settings(backend="onnxruntime"))
    return dict(collections.Counter(op for op, _ in nodes))


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class ConvSum(nn.Module):
    """A convolution's output summed with another's, read by a third."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b, self.c = _conv(c, c), _conv(c, c), _conv(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.c(self.b(y) + y)


class ReadTwice(nn.Module):
    """A ReLU or a pool of one tensor, written twice, read by two convolutions."""

    def __init__(self, c: int, op: str) -> None:
        super().__init__()
        self.a, self.b, self.c = _conv(c, c), _conv(c, c), _conv(c, c)
        self.op = op

    def _op(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) if self.op == "relu" else nn.functional.avg_pool2d(x, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c(x)
        return torch.cat([self.a(self._op(x)), self.b(self._op(x))], 1)


def _count(nodes: list[tuple[str, str]], *names: str) -> int:
    return sum(any(op == n or op == f"QLinear{n}" for n in names) for op, _ in nodes)


def _blocked(nodes: list[tuple[str, str]], op: str) -> bool:
    return any(o == op and d.endswith(BLOCKED) for o, d in nodes)


def detect(settings: Settings) -> RuntimeRules | None:
    """The optimizer rules of the runtime ``settings`` measure with (None for eager torch)."""
    if settings.backend == "torch":
        return None

    def probe(module: nn.Module, c: int) -> list[tuple[str, str]]:
        torch.manual_seed(0)
        return optimized_nodes(module, [(c, PROBE_HW, PROBE_HW)], settings)

    block = 0
    for c in WIDTHS:
        nodes = probe(nn.Sequential(_conv(c, c), nn.AvgPool2d(3, 1, 1), _conv(c, c)), c)
        if _blocked(nodes, "AveragePool"):
            block = c
            break
    multiple = block or 4
    for step in (1, 2, 4):
        c = block + step
        if block and _blocked(probe(nn.Sequential(_conv(c, c), _conv(c, c)), c), "Conv"):
            multiple = step
            break
    c = 2 * (block or 8)
    fuse_bn = _count(probe(nn.Sequential(_conv(c, c), nn.BatchNorm2d(c), _conv(c, c)), c), "BatchNormalization") == 0
    fuse_relu = _count(probe(nn.Sequential(_conv(c, c), nn.ReLU(), _conv(c, c)), c), "Relu") == 0
    fuse_add = _count(probe(ConvSum(c), c), "Add", "Sum") == 0
    relus = _count(probe(ReadTwice(c, "relu"), c), "Relu")
    pools = _count(probe(ReadTwice(c, "pool"), c), "AveragePool")
    cse = pools == 1 and relus <= 1  # a ReLU may also be absorbed by the convolution before it
    return RuntimeRules(block, multiple, fuse_bn, fuse_relu, fuse_add, cse)
