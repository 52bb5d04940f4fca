"""Benchmark: ``nas report`` wall time and file size (target: <= 10 s on the project's 2-core machine).

Without ``--run``, first makes a 1,000-trial NB201 run (regularized evolution on the tabular
CIFAR-10 table, a few seconds) in a temporary folder. Times ``nas report RUN --out X`` as a user
runs it (a fresh interpreter: imports, ledger, plots, pictures), ``--repeat`` times, then one
in-process pass per section for the breakdown. The report is single-threaded, so its CPU time
(user + system, median) is what the wall time comes to on an idle machine.

    .venv/bin/python tests/bench/bench_report.py [--run DIR] [--trials 1000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT.parent / "shared" / "data" / "nb201" / "cifar10.csv"
TARGET_S = 10.0


def make_run(folder: Path, trials: int) -> Path:
    """A finished NB201 evolution run of ``trials`` unique architectures (no report of its own)."""
    import tomli_w

    spec = folder / "nb201-1000.toml"
    spec.write_text(tomli_w.dumps({
        "run": {"name": "nb201-1000", "budget": trials, "seed": 0, "report": False},
        "space": {"name": "nb201"},
        "controller": {"name": "evolution", "population": 50, "sample": 10, "candidates": 1},
        "evaluator": {"name": "tabular", "table": str(TABLE)},
        "objectives": [{"metric": "test_acc", "direction": "maximize"}]}))
    run = folder / "run"
    subprocess.run([sys.executable, "-m", "nas", "search", str(spec), "--out", str(run)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run


def breakdown(run: Path) -> dict[str, float]:
    """CPU seconds of each step of one in-process report (the process's own time, so other load on the
    machine inflates it far less than wall time)."""
    from nas.report import view as report
    from nas.report import sections as s
    from nas.search.summary import summarize

    times, started = {}, time.process_time()
    view = report.open_run(run)
    times["open ledger"] = time.process_time() - started
    mark = time.process_time()
    summary = summarize(view.spec, view.study, str(view.path), report.TOP_K)
    times["summary"] = time.process_time() - mark
    for name, make in (("run", lambda: s.run_section(view, summary)),
                       ("progress", lambda: s.progress_section(view)),
                       ("objectives", lambda: s.objectives_section(view)),
                       ("top", lambda: s.top_section(view, summary)),
                       ("curves", lambda: s.curves_section(view, summary)),
                       ("lineage", lambda: s.lineage_section(view, summary)),
                       ("failures", lambda: s.failures_section(view)), ("outputs", lambda: s.outputs_section(view))):
        mark = time.process_time()
        make()
        times[name] = time.process_time() - mark
    return times


def measure(run: Path, repeat: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-report-")) / "report.html"
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nas", "report", str(run), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    from nas.report.view import open_run

    view = open_run(run)
    return {"run": str(run), "trials": len(view.trials), "evaluated": len(view.evaluated),
            "wall_s": walls, "median_s": statistics.median(walls), "best_s": min(walls), "target_s": TARGET_S,
            "cpu_s": statistics.median(cpus),
            "bytes": out.stat().st_size, "breakdown_s": breakdown(run)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="an existing run folder (default: make a 1,000-trial NB201 run)")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    run = Path(args.run) if args.run else make_run(Path(tempfile.mkdtemp(prefix="bench-report-run-")), args.trials)
    result = measure(run, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in result["breakdown_s"].items())
        print(f"nas report on {result['evaluated']} evaluated / {result['trials']} trials: median "
              f"{result['median_s']:.2f} s (best {result['best_s']:.2f} s, target <= {TARGET_S:g} s; CPU time "
              f"{result['cpu_s']:.2f} s), "
              f"{result['bytes'] / 1e6:.2f} MB\n  in-process breakdown (CPU s): {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
