"""nasforge from Python (a notebook in VS Code's or Jupytext's ``# %%`` cells): search, look at the
trials, export the best architecture, write the report, open the run again later.

    python examples/notebook_api.py                    # about ten seconds: brief training on digits
    python examples/notebook_api.py --executor ray     # the same trials on Ray workers
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nas

# %% A spec is a TOML file's path or a dict with its tables; keyword arguments are nas search's options.
SPEC = {
    "run": {"name": "notebook", "budget": 4, "seed": 0},
    "space": {"name": "nb201", "preset": "proxy"},  # tiny cells for scikit-learn's 8x8 digits
    "controller": {"name": "evolution"},
    "evaluator": {"name": "train", "data": "digits", "budget": {"epochs": 1}},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
}


def main(executor: str = "inline", out: str = "runs/notebook") -> nas.Run:
    """The tour; returns the run."""
    run = nas.search(SPEC, out=out, executor=executor, overwrite=True)  # blocks until the budget is spent
    print(f"stopped: {run.outcome.reason}; {run}")

    # %% The best trial and every trial, as plain dicts (the study itself is run.study, read-only).
    best = run.best
    print(f"best: trial #{best['number']} {best['label']}  accuracy {best['metrics']['accuracy']:.1f}%")
    for trial in run.trials():
        print(f"  #{trial['number']} {trial['state']:9} {trial['metrics'].get('accuracy', float('nan')):5.1f}  "
              f"{trial['arch_id']}")
    print(f"study: {run.study.study_name!r}, {len(run.study.trials)} trials")

    # %% Export the best architecture (arch.json + model card, outside the run) and rebuild it.
    exported = run.export(Path(out).parent / f"{Path(out).name}-best", trial="best", formats="json")
    model = nas.load(str(Path(exported[0]["dir"]) / "arch.json"))
    print(f"exported to {exported[0]['dir']}: {type(model).__name__}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    # %% The HTML report (the run's report.html unless a path is given).
    print(f"report: {run.report()}")

    # %% Later, in another session: open the run read-only.
    again = nas.open(out)
    print(f"opened {again}: best trial #{again.best['number']}, {len(again.trials())} trials")
    return run


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--executor", choices=("inline", "ray"), default="inline")
    parser.add_argument("--out", default="runs/notebook", help="run folder (replaced)")
    arguments = parser.parse_args()
    main(arguments.executor, arguments.out)
