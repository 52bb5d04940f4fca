"""The Pareto picture of a multi-objective run: ``pareto.png`` in the run folder.

Every completed, counted trial is a grey point over the first two objectives; the non-dominated
ones are highlighted, joined by the front's staircase and labelled with their trial numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from nas.controllers.pareto import pareto_front


def write_pareto_png(spec: Any, study: Any, path: str | Path) -> bool:
    """Plot the first two objectives of a multi-objective run; False when there is nothing to plot."""
    if len(spec.objectives) < 2:
        return False
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state == TrialState.COMPLETE and t.values and t.user_attrs.get("info", {}).get("counted")]
    if not trials:
        return False
    signs = [1.0 if o["direction"] == "maximize" else -1.0 for o in spec.objectives]
    front = [trials[i] for i in pareto_front([[s * v for s, v in zip(signs, t.values)] for t in trials])]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [o["metric"] for o in spec.objectives[:2]]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([t.values[0] for t in trials], [t.values[1] for t in trials], s=14, color="#bbbbbb",
               label=f"evaluated ({len(trials)})")
    ordered = sorted(front, key=lambda t: t.values[0])
    ax.step([t.values[0] for t in ordered], [t.values[1] for t in ordered], where="post", color="#d62728", lw=1)
    ax.scatter([t.values[0] for t in ordered], [t.values[1] for t in ordered], s=30, color="#d62728",
               label=f"Pareto set ({len(front)})", zorder=3)
    for t in ordered:
        ax.annotate(f"#{t.number}", (t.values[0], t.values[1]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(f"{names[0]} ({spec.objectives[0]['direction']})")
    ax.set_ylabel(f"{names[1]} ({spec.objectives[1]['direction']})")
    ax.set_title(f"{spec.name}: {spec.space['name']} / {spec.controller['name']}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
