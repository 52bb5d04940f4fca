"""Benchmark: does a supernet's inherited-weight accuracy rank nb201 networks as brief training does?

The fidelity benchmark's protocol (BENCHMARKS.md, "Proxy fidelity"): Fashion-MNIST at 14x14, 4,000
training and 5,000 validation images of the seeded split. One supernet per sampling rule (uniform
SPOS, fair FairNAS) is trained for ``--epochs``; ``--archs`` networks sampled with ``--seed`` (a seed
no design step used) are scored with inherited weights, and each is trained standalone for
``--train-epochs`` with the ``train`` evaluator. Reported: the Kendall tau of each rule's ranking
with the standalone one (target >= 0.5), side by side, and the seconds each part took.

    .venv/bin/python tests/bench/bench_oneshot.py [--archs 40] [--epochs 10] [--train-epochs 2] [--seed 2031]
        [--channels 8] [--cells 1] [--out /tmp/oneshot-bench] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

DATA = {"data": "fashion-mnist", "size": 14, "train_limit": 4000, "valid_limit": 5000, "valid_fraction": 0.2,
        "batch_size": 64, "threads": 0, "device": "auto"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10, help="supernet epochs")
    parser.add_argument("--train-epochs", type=float, default=2.0, help="standalone brief training epochs")
    parser.add_argument("--seed", type=int, default=2031)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--sampling", default="uniform,fair")
    parser.add_argument("--out", default="/tmp/oneshot-bench")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else _table(result))


def run(args: Any) -> dict[str, Any]:
    from evaluators.oneshot.inherit import SupernetEvaluator
    from evaluators.oneshot.spos import train_supernet
    from evaluators.supernet_options import load_splits
    from evaluators.train import TrainEvaluator
    from nas import registry
    from nas.config import validate
    from nas.evaluator import NullReporter
    from nas.latency.table import kendall_tau
    from nas.oneshot.options import SPOS

    space_options = {"preset": "proxy", "channels": args.channels, "cells": args.cells}
    space = registry.make_space("nb201", space_options)
    rng = random.Random(f"bench-oneshot:{args.seed}")
    genotypes = list({g.arch_id: g for g in (space.sample(rng) for _ in range(args.archs * 2))}.values())[:args.archs]
    started = time.perf_counter()
    cache = Path(args.out) / f"standalone-{args.seed}-{len(genotypes)}-{args.train_epochs}-{args.channels}-{args.cells}.json"
    if cache.is_file():  # the standalone trainings of an earlier call with the same networks
        standalone, seconds = json.loads(cache.read_text())
    else:
        trainer = TrainEvaluator(space, {**DATA, "lr": 0.05})
        standalone = [trainer.evaluate(g.to_json(), {"epochs": args.train_epochs, "seed": args.seed},
                                       NullReporter()).metrics.get("accuracy", float("nan")) for g in genotypes]
        seconds = round(time.perf_counter() - started, 1)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps([standalone, seconds]))
    out: dict[str, Any] = {"archs": len(genotypes), "seed": args.seed, "supernet_epochs": args.epochs,
                           "train_epochs": args.train_epochs, "space": space_options, "data": DATA,
                           "standalone_seconds": seconds, "rules": {}}
    splits = load_splits(validate(DATA, SPOS, "evaluator"))
    for rule in args.sampling.split(","):
        folder = Path(args.out) / f"{rule}-{args.epochs}"
        options = validate({**DATA, "epochs": args.epochs, "sampling": rule}, SPOS, "evaluator")
        began = time.perf_counter()
        train_supernet("nb201", space_options, options, args.seed, str(folder))
        trained = time.perf_counter() - began
        evaluator = SupernetEvaluator(space, options, shared=(splits, (folder / "checkpoint.pt").read_bytes()))
        began = time.perf_counter()
        inherited = [evaluator.evaluate(g.to_json(), {"seed": args.seed}, NullReporter()).metrics["accuracy"]
                     for g in genotypes]
        out["rules"][rule] = {"kendall_tau": round(kendall_tau(inherited, standalone), 3),
                              "train_seconds": round(trained, 1),
                              "eval_seconds_per_network": round((time.perf_counter() - began) / len(genotypes), 3),
                              "inherited": [round(a, 2) for a in inherited]}
    out["standalone"] = [round(a, 2) for a in standalone]
    out["arch_ids"] = [g.arch_id for g in genotypes]
    return out


def _table(r: dict[str, Any]) -> str:
    lines = [f"{r['archs']} nb201 networks (seed {r['seed']}), standalone {r['train_epochs']} epochs "
             f"({r['standalone_seconds']} s in all)", "rule     tau    supernet s  s/network"]
    for rule, v in r["rules"].items():
        lines.append(f"{rule:8} {v['kendall_tau']:<6} {v['train_seconds']:<11} {v['eval_seconds_per_network']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
