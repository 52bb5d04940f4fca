"""Benchmark: latency-aware DrNAS. Does a latency target 30% below the unconstrained result's
predicted latency give a cell that meets it, predicted and measured, for at most 1 point of accuracy?

For each seed: ``runs/drnas-nb201.toml`` with a latency table of this machine (torch, 1 thread,
batch 1; built once into ``--out``) and the found cell's latency measured after its brief training
(``latency_backend = "torch"``), first unconstrained, then with ``latency_target`` = 0.7 x the first
run's predicted latency and ``latency_weight``. Reported per seed: both cells, predicted and measured
ms, accuracy after the brief training.

    .venv/bin/python tests/bench/bench_oneshot_latency.py [--seeds 4,5,6] [--weight 5.0] [--out /tmp/oneshot-latency] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="4,5,6")
    parser.add_argument("--weight", type=float, default=5.0)
    parser.add_argument("--ratio", type=float, default=0.7)
    parser.add_argument("--out", default="/tmp/oneshot-latency")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [pair(Path(args.out), seed, args.weight, args.ratio) for seed in map(int, args.seeds.split(","))]
    print(json.dumps(rows, indent=2) if args.json else "\n".join(map(str, rows)))


def pair(out: Path, seed: int, weight: float, ratio: float) -> dict[str, Any]:
    free = search(out, f"free-{seed}", seed, {})
    target = ratio * free["latency_pred_ms"]
    aware = search(out, f"aware-{seed}", seed, {"latency_weight": weight, "latency_target": target})
    return {"seed": seed, "target_ms": round(target, 4), "free": free, "aware": aware,
            "meets_predicted": aware["latency_pred_ms"] <= target,
            "meets_measured": aware["latency_ms"] <= ratio * free["latency_ms"],
            "accuracy_loss": round(free["accuracy"] - aware["accuracy"], 2)}


def search(out: Path, name: str, seed: int, controller: dict[str, Any]) -> dict[str, Any]:
    """One run of the shipped spec with a latency table and measured latency; its found cell."""
    import tomli_w

    from nas.search.spec import read_toml

    data = read_toml(ROOT / "runs" / "drnas-nb201.toml")
    data["run"].update(name=name, seed=seed, budget=1)
    data["controller"].update(controller)
    data["evaluator"]["latency_backend"] = "torch"
    data["latency"] = {"lut": str(out / "nb201-proxy-14.lut.json"), "backend": "torch", "threads": 1, "batch": 1}
    out.mkdir(parents=True, exist_ok=True)
    spec = out / f"{name}.toml"
    spec.write_text(tomli_w.dumps(data))
    done = subprocess.run([sys.executable, "-m", "nas", "search", str(spec), "--out", str(out / name), "--overwrite",
                           "--json"], check=True, capture_output=True, text=True)
    best = json.loads(done.stdout)["best"]
    return {"cell": best["label"],
            "accuracy": round(best["metrics"]["accuracy"], 2),
            "latency_pred_ms": round(best["metrics"]["latency_pred_ms"], 4),
            "latency_ms": round(best["metrics"]["latency_ms"], 4)}


if __name__ == "__main__":
    main()
