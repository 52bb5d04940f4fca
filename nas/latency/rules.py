"""A graph runtime's optimizer rules, as detected on the target device and stored in its table (torch-free).

A per-block table prices blocks timed alone; a graph runtime runs other kernels than those blocks
(``search_spaces.graph_kernels`` walks them). Which kernels depends on the runtime's version, its
execution provider and the CPU it runs on: ONNX Runtime's CPU provider runs convolutions in a
blocked layout of 16 channels on AVX-512 and 8 on AVX2, none on ARM; its int8 QDQ graphs run
QLinear kernels that absorb no sum; the CUDA provider has no blocked layout at all. So the rules
are not read from the machine that predicts: ``nas latency build-lut`` detects them on the target
with small probe graphs (``evaluators.runtime_probe``) and stores them in the table with the
runtime and the machine they hold for (:class:`Target`); every prediction walks with the table's
rules, wherever it runs.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

RULES_VERSION = 1  # the probe set; a table with other rules was detected by other probes
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile",
             "asimd", "asimddp", "sve", "i8mm")  # the CPU features that change which kernels a runtime runs


@dataclass(frozen=True)
class RuntimeRules:
    """What a graph runtime's optimizer does, learnt from its optimized probe graphs.

    Attributes:
        block: channels of the blocked (NCHWc) layout; 0 when convolutions run without one.
        conv_multiple: a convolution with at least ``block`` input channels runs blocked only when
            they are a multiple of this (below a block it runs blocked, reading the plain layout).
        fuse_bn: a convolution absorbs the batch norm after it.
        fuse_relu: a convolution absorbs a ReLU that alone reads it.
        fuse_add: a convolution absorbs a sum that alone reads it (the other addend in its layout).
        cse: weightless ops (ReLU, pool, sum) of the same input are computed once for all readers.
    """

    block: int = 0
    conv_multiple: int = 4
    fuse_bn: bool = True
    fuse_relu: bool = True
    fuse_add: bool = True
    cse: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"version": RULES_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeRules:
        """Rules stored by :meth:`to_dict`; ``ValueError`` for another probe set or unknown fields."""
        if data.get("version") != RULES_VERSION:
            raise ValueError(f"runtime rules of probe set {data.get('version')!r}, this code reads {RULES_VERSION}")
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known - {"version"})
        if extra:
            raise ValueError(f"runtime rules: unknown field {extra[0]!r}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe(self) -> str:
        layout = f"blocked layout of {self.block} channels (x{self.conv_multiple})" if self.block else "no blocked layout"
        fused = [name for name, on in (("bn", self.fuse_bn), ("relu", self.fuse_relu), ("add", self.fuse_add)) if on]
        return f"{layout}, conv absorbs {'+'.join(fused) or 'nothing'}, {'shared' if self.cse else 'no shared'} weightless ops"


@dataclass
class Target:
    """Where a table's times and rules hold: the runtime and the machine that measured them."""

    runtime: str = ""  # "onnxruntime 1.32.0", "torch 2.13.0"
    provider: str = ""  # CPUExecutionProvider, CUDAExecutionProvider ('' for eager torch)
    cpu: str = ""  # the CPU's model name
    isa: list[str] = field(default_factory=list)  # the vector-instruction flags that change kernels
    gpu: str = ""
    threads: int = 1
    batch: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def machine(self) -> tuple[str, tuple[str, ...], str]:
        """What makes two machines the same for this table's times: CPU model, ISA flags, GPU."""
        return self.cpu, tuple(self.isa), self.gpu

    def describe(self) -> str:
        isa = "/".join(self.isa) or "no vector flags"
        where = self.gpu or f"{self.cpu or 'unknown CPU'} ({isa})"
        return f"{self.runtime}{' ' + self.provider if self.provider else ''} on {where}"


def cpu_info(cpuinfo: str | None = None) -> tuple[str, list[str]]:
    """(model name, ISA flags of :data:`ISA_FLAGS` present) of this CPU, or of a ``/proc/cpuinfo`` text."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.processor() or platform.machine(), []
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return model or platform.machine(), [f for f in ISA_FLAGS if f in flags]


def same_machine(where: Target | dict[str, Any]) -> bool:
    """Whether this machine is the one a table's ``target`` describes (CPU model, ISA flags, GPU)."""
    stored = where if isinstance(where, Target) else Target.from_dict(where)
    cpu, isa = cpu_info()
    gpu = ""
    if stored.gpu:
        import torch  # only a GPU table asks

        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return stored.machine() == (cpu, tuple(isa), gpu)
