"""Benchmark: is the quick start's ranking signal or noise?

Two measurements for a run spec (``runs/quickstart.toml`` by default):

* the evaluation noise: ``--archs`` architectures (seeded samples of the spec's space) each trained
  with ``--seeds`` training seeds under the spec's evaluator and per-trial budget; the noise is the
  largest spread (max - min accuracy) of one architecture over its seeds;
* with ``--run DIR`` (a finished search of that spec): the median of the random phase (trials
  without recorded parents), evolution's best, and the top five values with their validation losses
  (are they tied? ``nas show`` ranks equal values by the lower loss).

    .venv/bin/python tests/bench/bench_quickstart.py [--spec runs/quickstart.toml] [--run runs/quickstart]
        [--archs 2] [--seeds 3] [--compare OTHER.toml [--rounds 3]] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def noise(spec_path: str, archs: int, seeds: int) -> dict[str, Any]:
    """Accuracy of ``archs`` sampled architectures, each trained with ``seeds`` seeds."""
    from nas import registry
    from nas.evaluator import NullReporter
    from nas.search.spec import load_spec

    spec = load_spec(spec_path)
    evaluator_spec = spec.evaluator_spec()
    evaluator = evaluator_spec.make(evaluator_spec.load_shared())
    space = registry.make_space(spec.space["name"], spec.space_options())
    metric = spec.objectives[0]["metric"]
    out, started, cpu = [], time.perf_counter(), time.process_time()
    for index in range(archs):
        genotype = space.sample(random.Random(index))
        values, losses = [], []
        for seed in range(seeds):
            result = evaluator.evaluate(genotype.to_json(), {**spec.trial_budget, "seed": seed}, NullReporter())
            values.append(result.metrics.get(metric, float("nan")))
            losses.append(result.metrics.get("loss", float("nan")))
        out.append({"arch_id": genotype.arch_id, "values": values, "spread": max(values) - min(values),
                    "losses": losses, "loss_spread": max(losses) - min(losses)})
    return {"metric": metric, "archs": out, "noise": max(a["spread"] for a in out),
            "valid_images": len(evaluator.data.y_valid), "train_images": len(evaluator.data.y_train),
            "seconds": time.perf_counter() - started,
            "cpu_s_per_candidate": (time.process_time() - cpu) / max(1, archs * seeds)}


def cost_ratio(spec_path: str, other_path: str, rounds: int) -> dict[str, Any]:
    """Seconds of one candidate's evaluation under ``other_path`` over ``spec_path``, alternated."""
    from nas import registry
    from nas.evaluator import NullReporter
    from nas.search.spec import load_spec

    runs = []
    for path in (spec_path, other_path):
        spec = load_spec(path)
        evaluator_spec = spec.evaluator_spec()
        space = registry.make_space(spec.space["name"], spec.space_options())
        runs.append((evaluator_spec.make(evaluator_spec.load_shared()), space.sample(random.Random(0)).to_json(),
                     {**spec.trial_budget, "seed": 0}))
    times: list[list[float]] = [[], []]
    for _ in range(rounds):
        for index, (evaluator, genotype, budget) in enumerate(runs):
            started = time.perf_counter()
            evaluator.evaluate(genotype, budget, NullReporter())
            times[index].append(time.perf_counter() - started)
    base, other = statistics.median(times[0]), statistics.median(times[1])
    return {"spec_s": base, "other_s": other, "ratio": other / base, "rounds": rounds}


def run_figures(run_dir: str) -> dict[str, Any]:
    """Random-phase median, evolution's best and the top five of a finished run, ranked as ``nas show``
    ranks them (equal values by the lower validation loss), with their losses."""
    from nas.report.view import open_run
    from nas.search.summary import TIE_METRIC, ranked_trials

    run = open_run(run_dir)
    trials = ranked_trials([t for t in run.evaluated if t.values], run.spec.objectives[0]["direction"])
    random_phase = [t.values[0] for t in trials if "nas:parents" not in t.system_attrs]
    children = [t.values[0] for t in trials if "nas:parents" in t.system_attrs]
    top = trials[:5]
    values = [t.values[0] for t in top]
    return {"random_n": len(random_phase), "random_median": statistics.median(random_phase),
            "children_n": len(children), "evolution_best": max(children) if children else None,
            "best": values[0], "top5": values, "top5_distinct": len(set(values)),
            "top5_trials": [t.number for t in top],
            "top5_loss": [t.user_attrs.get("metrics", {}).get(TIE_METRIC) for t in top],
            "elapsed_s": run.study.user_attrs.get("nas:elapsed_s")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(Path(__file__).resolve().parents[2] / "runs" / "quickstart.toml"))
    parser.add_argument("--run", help="a finished run folder of that spec")
    parser.add_argument("--archs", type=int, default=2, help="architectures for the noise (0: skip)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--compare", help="another spec: cost of one evaluation under it / under --spec")
    parser.add_argument("--rounds", type=int, default=3, help="alternated evaluations for --compare")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"spec": args.spec}
    if args.compare:
        result["cost"] = cost_ratio(args.spec, args.compare, args.rounds)
    if args.archs:
        result["noise"] = noise(args.spec, args.archs, args.seeds)
    if args.run:
        result["run"] = run_figures(args.run)
        if "noise" in result and result["run"]["evolution_best"] is not None:
            gap = result["run"]["evolution_best"] - result["run"]["random_median"]
            result["gap_over_noise"] = gap / max(result["noise"]["noise"], 1e-9)
    print(json.dumps(result, indent=2) if args.json else json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
