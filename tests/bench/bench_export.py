"""Export benchmarks: ONNX parity and export time for every published architecture of every space at
its proxy preset; ONNX Runtime vs eager PyTorch inference (CPU, 1 thread, batch 1) for one arch file.

Run: ``.venv/bin/python tests/bench/bench_export.py [ARCH_JSON]``. Weights: the built model's
initialisation with every tensor perturbed by N(0, 0.05) (seed 0), then BatchNorm statistics
calibrated on 64 random inputs, so that outputs depend on every tensor and stay of order one. Exits 1 if a parity check misses 1e-4.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

TOLERANCE = 1e-4


def scramble(model, input_shape, seed: int = 0) -> None:
    """Every tensor perturbed by N(0, 0.05), then BN statistics calibrated on random inputs (as after
    training, deep networks keep outputs of order one), so that outputs depend on every tensor."""
    import torch

    from evaluators.soup import recompute_bn

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator))
    recompute_bn(model, torch.randn(64, *input_shape, generator=generator), batch=32)


def parity_table() -> list[dict]:
    """Per space (nasnet per vocabulary) and published architecture: ONNX and pt2 checks."""
    import torch

    from evaluators.export import export_onnx, export_pt2, parity_inputs
    from nas import registry

    rows = []
    cases = [("nasnet", {"vocabulary": v}) for v in ("nasnet", "amoebanet", "darts")]
    cases += [("randwire", {}), ("scaling", {}), ("nb201", {})]
    for name, options in cases:
        space = registry.make_space(name, {"preset": "proxy", **options})
        task = space.default_task()
        for arch_name, genotype in sorted(space.known().items()):
            model = space.build(genotype, task)
            scramble(model, task.input_shape)
            model.eval()
            x = parity_inputs(task.input_shape)
            with torch.no_grad():
                expected = model(x)
            with tempfile.TemporaryDirectory() as folder:
                onnx = export_onnx(model, x, expected, Path(folder))
                pt2 = export_pt2(model, x, expected, Path(folder))
            rows.append({"space": name + (f"/{options['vocabulary']}" if options else ""), "arch": arch_name,
                         "onnx_max_abs": onnx["max_abs"], "onnx_s": onnx["seconds"], "pt2_max_abs": pt2["max_abs"],
                         "pt2_s": pt2["seconds"], "output_scale": onnx["output_scale"]})
            print(row_text(rows[-1]), flush=True)
    return rows


def row_text(r: dict) -> str:
    return (f"| {r['space']} | {r['arch']} | {r['onnx_max_abs']:.2e} | {r['onnx_s']:.2f} | {r['pt2_max_abs']:.2e} "
            f"| {r['pt2_s']:.2f} | {r['output_scale']:.3g} |")


def inference_ratio(arch_json: str, repeats: int = 300) -> dict:
    """Median batch-1 latency of ONNX Runtime and eager PyTorch on CPU with one thread, side by side."""
    import onnxruntime as ort
    import torch

    import nas
    from evaluators.export import OPSET, parity_inputs

    torch.set_num_threads(1)
    model = nas.load(arch_json)
    shape = tuple(json.loads(Path(arch_json).read_text())["task"]["input_shape"])
    x = parity_inputs(shape, batch=1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=OPSET, input_names=["input"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"input": x.numpy()}
    eager, onnx = [], []
    with torch.inference_mode():
        for _ in range(20):  # warm-up
            model(x)
            session.run(None, feed)
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            start = time.perf_counter()
            model(x)
            eager.append(time.perf_counter() - start)
            start = time.perf_counter()
            session.run(None, feed)
            onnx.append(time.perf_counter() - start)
    e, o = statistics.median(eager), statistics.median(onnx)
    return {"eager_ms": 1e3 * e, "onnxruntime_ms": 1e3 * o, "speedup": e / o, "repeats": repeats}


def main() -> int:
    print("| space | architecture | ONNX max abs | ONNX export s | pt2 max abs | pt2 export s | output scale |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    rows = parity_table()
    worst = max(max(r["onnx_max_abs"], r["pt2_max_abs"]) for r in rows)
    print(f"worst max abs difference: {worst:.2e} (tolerance {TOLERANCE:g})")
    if len(sys.argv) > 1:
        ratio = inference_ratio(sys.argv[1])
        print(f"batch-1 CPU inference, 1 thread, median of {ratio['repeats']}: eager {ratio['eager_ms']:.3f} ms, "
              f"ONNX Runtime {ratio['onnxruntime_ms']:.3f} ms, ONNX Runtime {ratio['speedup']:.2f}x faster")
    ok = worst <= TOLERANCE
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
