"""The torch side of export: rebuild a module from ``arch.json``, load weights safely, write ONNX
(checked with ONNX Runtime) and ``torch.export`` programs (checked after ``torch.export.load``).

Weights are read only through safetensors; nothing named in an arch file is imported or executed.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.export import archfile
from nas.config import SpecError

log = logging.getLogger(__name__)

OPSET = 17
TOLERANCE = 1e-4  # max abs difference allowed between ONNX Runtime / torch.export and eager PyTorch
PARITY_BATCH = 4
AUX_PREFIX = "aux."  # the auxiliary head trains only; its weights are never required


def load_module(path: str | Path, weights: bool = True) -> nn.Module:
    """The ``nn.Module`` described by an arch file, in eval mode, with ``weights.safetensors`` from
    beside it when present (and ``weights`` is True)."""
    arch = archfile.read(path)
    model = arch.space.build(arch.genotype, arch.task)
    file = Path(path).parent / "weights.safetensors"
    if weights and file.is_file():
        load_weights(model, file)
    model.eval()
    return model


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a safetensors state dict into ``model``; ``ValueError`` names a missing, extra or misshapen key."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise SpecError(f"{path}: not a readable safetensors file ({err})") from None
    own = model.state_dict()
    extra = sorted(set(state) - set(own))
    missing = sorted(k for k in set(own) - set(state) if not k.startswith(AUX_PREFIX))
    if extra or missing:
        key = (extra or missing)[0]
        raise SpecError(f"{path}: {'unexpected' if extra else 'missing'} tensor {key!r} for this architecture")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise SpecError(f"{path}: tensor {key!r} has shape {tuple(tensor.shape)}, "
                             f"expected {tuple(own[key].shape)}")
    model.load_state_dict(state, strict=False)


def state_bytes(model: nn.Module) -> bytes:
    """The model's state dict as safetensors bytes (auxiliary head left out)."""
    from safetensors.torch import save

    return save(state_tensors(model))


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the state dict (no shared storage; auxiliary head left out)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()
            if not k.startswith(AUX_PREFIX)}


def parity_inputs(input_shape: tuple[int, ...], batch: int = PARITY_BATCH, seed: int = 0) -> torch.Tensor:
    """Seeded random inputs, normalised-data-like (standard normal)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *input_shape, generator=generator)


def export_formats(arch_path: Path, folder: Path, formats: list[str]) -> dict[str, Any]:
    """Write ``model.onnx``/``model.pt2`` for an arch file; return each one's check figures."""
    model = load_module(arch_path)
    x = parity_inputs(tuple(archfile.read(arch_path).task.input_shape))
    with torch.no_grad():
        expected = model(x)
    writers = {"onnx": export_onnx, "pt2": export_pt2}
    return {name: writers[name](model, x, expected, folder) for name in formats}


def export_onnx(model: nn.Module, x: torch.Tensor, expected: torch.Tensor, folder: Path) -> dict[str, Any]:
    """``model.onnx`` (TorchScript exporter, dynamic batch) and its max abs difference in ONNX Runtime."""
    import onnxruntime as ort

    path = folder / "model.onnx"
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=OPSET, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    seconds = time.perf_counter() - started
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    return _check("model.onnx", got, expected, seconds, opset=OPSET, runtime=f"onnxruntime {ort.__version__}")


def export_pt2(model: nn.Module, x: torch.Tensor, expected: torch.Tensor, folder: Path) -> dict[str, Any]:
    """``model.pt2`` from ``torch.export`` (dynamic batch where the model allows), reloaded and run."""
    path = folder / "model.pt2"
    started = time.perf_counter()
    batch = torch.export.Dim("batch", min=2, max=4096)
    dynamic = True
    try:
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    except Exception as err:  # some models specialise on the batch size; a fixed one still exports
        log.info("torch.export with a dynamic batch failed (%s); exporting batch %d", err, len(x))
        program, dynamic = torch.export.export(model, (x,)), False
    torch.export.save(program, str(path))
    seconds = time.perf_counter() - started
    loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        got = loaded(x)
    return _check("model.pt2", got, expected, seconds, dynamic_batch=dynamic)


def _check(file: str, got: torch.Tensor, expected: torch.Tensor, seconds: float, **extra: Any) -> dict[str, Any]:
    diff = float((got.float() - expected.float()).abs().max())
    return {"file": file, "max_abs": diff, "tolerance": TOLERANCE, "passed": diff <= TOLERANCE,
            "output_scale": float(expected.abs().max()), "batch": int(expected.shape[0]),
            "seconds": seconds, **extra}
