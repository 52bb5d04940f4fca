"""Benchmark: differentiable one-shot search on Fashion-MNIST, the found nb201 cell looked up in the
NAS-Bench-201 CIFAR-10 table (``../shared/data/nb201/cifar10.csv``).

For each method and seed, ``evaluators.oneshot.differentiable.search`` runs as a ``darts``/``gdas``/
``drnas`` controller would (same options), on Fashion-MNIST at 14x14. Reported per run: the final cell
(with the collapse guard on), the cell the plain argmax would have given, whether that one
collapsed (no convolution), both cells' CIFAR-10 test accuracy from the table, and the seconds.
The target: the median over seeds of each method's found cell is >= 93.0 (the table's top 8%).

    .venv/bin/python tests/bench/bench_oneshot_transfer.py [--methods darts,darts-beta,gdas,drnas] [--seeds 1,2,3]
        [--epochs 10] [--train-limit 4000] [--out /tmp/oneshot-transfer] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT.parent / "shared" / "data" / "nb201" / "cifar10.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="darts,darts-beta,gdas,drnas")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-limit", type=int, default=4000)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--option", action="append", default=[], help="METHOD.KEY=VALUE extra controller option")
    parser.add_argument("--out", default="/tmp/oneshot-transfer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else _table(result))


def run(args: Any) -> dict[str, Any]:
    from evaluators.oneshot.differentiable import search
    from nas.config import validate
    from nas.oneshot.options import DIFFERENTIABLE, METHODS

    table = {row["arch"]: float(row["test_acc"]) for row in csv.DictReader(TABLE.open())}
    space_options = {"preset": "proxy", "channels": args.channels, "cells": args.cells}
    extra: dict[str, dict[str, Any]] = {}
    for item in args.option:
        key, _, value = item.partition("=")
        method, _, name = key.partition(".")
        extra.setdefault(method, {})[name] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    out: dict[str, Any] = {"epochs": args.epochs, "train_limit": args.train_limit, "space": space_options,
                           "table_median": round(statistics.median(table.values()), 2), "runs": []}
    for label in args.methods.split(","):
        method, _, variant = label.partition("-")  # darts-beta: darts with Beta-DARTS' regularisation
        options = validate({"data": "fashion-mnist", "size": 14, "train_limit": args.train_limit, "valid_limit": 2000,
                            "epochs": args.epochs, **({"regularization": variant} if variant else {}),
                            **extra.get(label, {})},
                           {**DIFFERENTIABLE, **METHODS[method]}, "controller")
        for seed in map(int, args.seeds.split(",")):
            began = time.perf_counter()
            final = search(method, "nb201", space_options, options, seed, str(Path(args.out) / f"{label}-{seed}"))
            raw = _argmax_label(final["probabilities"])
            out["runs"].append({"method": label, "seed": seed, "cell": final["genotype_label"],
                                "test_acc": table[final["genotype_label"]], "argmax_cell": raw,
                                "argmax_test_acc": table[raw], "collapsed": final["collapsed"],
                                "seconds": round(time.perf_counter() - began, 1)})
    out["median"] = {m: statistics.median(r["test_acc"] for r in out["runs"] if r["method"] == m)
                     for m in args.methods.split(",")}
    return out


def _argmax_label(rows: list[list[float]]) -> str:
    from nas import registry

    space = registry.make_space("nb201", {})
    return space.label(space.oneshot_derive(rows, prevent_collapse=False))


def _table(r: dict[str, Any]) -> str:
    lines = ["method  seed  test_acc  argmax  collapsed  seconds  cell"]
    for x in r["runs"]:
        lines.append(f"{x['method']:7} {x['seed']:<5} {x['test_acc']:<9} {x['argmax_test_acc']:<7} "
                     f"{','.join(x['collapsed']) or '-':10} {x['seconds']:<8} {x['cell']}")
    lines.append("median: " + ", ".join(f"{m} {v}" for m, v in r["median"].items()) + f" (table median {r['table_median']})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
