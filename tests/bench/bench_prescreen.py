"""Benchmark: does a zero-cost pre-screen make the quick start's evolution find good cells with fewer
trainings?

For each seed, the quick start (``runs/quickstart.toml``: its data, budget, controller and Ray
workers) runs twice, in turns: as shipped, and with a ``[prescreen]`` table added. The plain runs'
median best accuracy is the bar; for each pre-screened run the report gives the trained candidates
it needed to reach the bar (in the order trainings finished), its best, its wall time and its proxy
evaluations. The issue's target: the pre-screened median is at most half the budget.

    .venv/bin/python tests/bench/bench_prescreen.py [--seeds 1,2,3] [--proxy synflow] [--direction D] [--batch 4]
        [--keep 1] [--warmup 0] [--out /tmp/prescreen-bench] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "runs" / "quickstart.toml"


def screened_spec(folder: Path, proxy: list[str], direction: str, batch: int, keep: int, warmup: int) -> Path:
    """The quick start's spec with a ``[prescreen]`` table, written into ``folder``."""
    import tomli_w

    from nas.search.spec import read_toml

    data = read_toml(QUICKSTART)
    data["run"]["name"] = "quickstart-prescreen"
    data["evaluator"]["keep_weights"] = 0
    data["prescreen"] = {"proxy": proxy, "direction": direction, "batch": batch, "keep": keep, "warmup": warmup,
                         "threads": 1}
    path = folder / "quickstart-prescreen.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def run(spec: Path, seed: int, out: Path) -> dict[str, Any]:
    """One search; its trained values in the order they finished, wall time and proxy counts."""
    import optuna

    from nas.export.exporter import open_ledger
    from nas.search.summary import evaluated_trials

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nas", "search", str(spec), "--seed", str(seed), "--out", str(out),
                    "--overwrite"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    study = open_ledger(str(out)).study
    done = sorted(evaluated_trials(study), key=lambda t: (t.datetime_complete, t.number))
    scored = [t.user_attrs["prescreen"] for t in study.get_trials(deepcopy=False)
              if isinstance(t.user_attrs.get("prescreen"), dict) and not t.user_attrs["prescreen"].get("reused")]
    return {"seed": seed, "wall_s": round(wall, 1),
            "values": [t.values[0] if t.state == optuna.trial.TrialState.COMPLETE else float("nan") for t in done],
            "proxy_evaluations": len(scored), "proxy_s": round(sum(r.get("seconds", 0.0) for r in scored), 1)}


def to_reach(values: list[float], bar: float) -> int | None:
    """Trained candidates until the best so far reaches ``bar`` (None: never)."""
    return next((i + 1 for i, v in enumerate(values) if v >= bar - 1e-9), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--proxy", default="synflow", help="proxy, or comma-separated proxies that vote")
    parser.add_argument("--direction", default="maximize", choices=("maximize", "minimize"))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--keep", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--out", default="/tmp/prescreen-bench")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    screened = screened_spec(out, args.proxy.split(","), args.direction, args.batch, args.keep, args.warmup)
    plain, pre = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        plain.append(run(QUICKSTART, seed, out / f"plain-{seed}"))
        pre.append(run(screened, seed, out / f"prescreen-{seed}"))
    bar = statistics.median(max(r["values"]) for r in plain)
    for r in plain + pre:
        r["best"] = max(r["values"])
        r["to_reach_bar"] = to_reach(r["values"], bar)
    budget = len(plain[0]["values"])
    reach = [r["to_reach_bar"] if r["to_reach_bar"] is not None else budget + 1 for r in pre]
    result = {"bar_median_plain_best": bar, "budget": budget, "prescreen": vars(args),
              "plain": [{k: v for k, v in r.items() if k != "values"} for r in plain],
              "prescreened": [{k: v for k, v in r.items() if k != "values"} for r in pre],
              "prescreened_to_bar_median": statistics.median(reach),
              "target_met": statistics.median(reach) <= budget / 2,
              "wall_ratio": round(sum(r["wall_s"] for r in pre) / sum(r["wall_s"] for r in plain), 3)}
    print(json.dumps(result, indent=2 if args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
