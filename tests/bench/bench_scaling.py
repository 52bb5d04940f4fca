"""Benchmark: EfficientNet-B0..B7 at the imagenet preset, cost from the genotype and module construction.

Times (a) ``ScalingSpace.cost`` of all eight genotypes (no module, no tensor) and (b) building all
eight modules (no forward pass). The target covers both together: (a) + (b) <= 2 s. One-time
torch start-up (import, first module) is paid by a warm-up build of B0 before timing.

    .venv/bin/python tests/bench/bench_scaling.py [--repeat 3] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

TARGET_S = 2.0


def measure(repeat: int) -> dict:
    """Best-of-``repeat`` seconds for the cost pass and the build pass, with per-model build times."""
    from evaluators.cost import count_params
    from search_spaces.scaling.space import ScalingSpace

    space = ScalingSpace(preset="imagenet")
    known = space.known()
    space.build(known["efficientnet-b0"])  # warm-up: torch's one-time initialization
    best_cost, best_build, per_model, costs, first = float("inf"), float("inf"), {}, {}, None
    for _ in range(repeat):
        start = time.perf_counter()
        costs = {name: space.cost(genotype) for name, genotype in known.items()}
        best_cost = min(best_cost, time.perf_counter() - start)
        times = {}
        for name, genotype in known.items():
            t0 = time.perf_counter()
            model = space.build(genotype)
            times[name] = time.perf_counter() - t0
            assert count_params(model) == costs[name].params, name  # outside the timed region
            del model
        if first is None:
            first = best_cost + sum(times.values())
        if sum(times.values()) < best_build:
            best_build, per_model = sum(times.values()), times
    return {"cost_s": best_cost, "build_s": best_build, "total_s": best_cost + best_build, "first_pass_total_s": first,
            "target_s": TARGET_S, "per_model_build_s": per_model,
            "params": {name: cost.params for name, cost in costs.items()},
            "flops": {name: cost.flops for name, cost in costs.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best one is reported")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure(args.repeat)
    result["threads"] = torch.get_num_threads()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, seconds in result["per_model_build_s"].items():
            print(f"  build {name}: {seconds:6.3f} s   params {result['params'][name]:>11,}   "
                  f"MACs {result['flops'][name]:>15,}")
        print(f"(a) cost of B0-B7 from the genotype: {result['cost_s'] * 1000:.2f} ms")
        print(f"(b) build of B0-B7:                  {result['build_s']:.3f} s")
        print(f"(a)+(b): {result['total_s']:.3f} s best of {args.repeat}, {result['first_pass_total_s']:.3f} s first "
              f"pass  (target <= {TARGET_S} s, {result['threads']} torch threads)")
    return 0 if result["total_s"] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
