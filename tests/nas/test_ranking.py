"""Equal scores rank by the lower validation loss, then by trial number: ``nas show``, the run's
``summary.json`` and ``best/``, the report's top table, ``nas export --trial top:K`` and the kept weights
all name the same order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import create_trial

from nas.search.summary import ranked_trials
from tests.conftest import run_nas, write_spec


def test_equal_values_rank_by_lower_loss_then_by_number():
    study = optuna.create_study(direction="maximize")
    for value, loss in [(97.9, 0.08), (98.0, 0.2), (97.9, 0.06), (97.9, None), (97.9, 0.06), (97.9, float("nan"))]:
        study.add_trial(create_trial(value=value, user_attrs={"metrics": {} if loss is None else {"loss": loss}}))
    assert [t.number for t in ranked_trials(study.trials, "maximize")] == [1, 2, 4, 0, 3, 5]
    assert [t.number for t in ranked_trials(study.trials, "minimize")] == [2, 4, 0, 3, 5, 1]


@pytest.fixture(scope="module")
def tied_run(tmp_path_factory) -> Path:
    """A real training run whose 8 validation images make ties (accuracy in steps of 12.5 points)."""
    folder = tmp_path_factory.mktemp("ties")
    spec = write_spec(folder / "ties.toml", {
        "run": {"name": "ties", "budget": 6, "seed": 0},
        "space": {"name": "nasnet", "preset": "proxy"},
        "controller": {"name": "random"},
        "evaluator": {"name": "train", "data": "digits", "train_limit": 64, "valid_limit": 8, "keep_weights": 2,
                      "budget": {"epochs": 1}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "executor": {"name": "inline"},
    })
    run_nas("search", str(spec), "--out", str(folder / "run"), check=True, timeout=600)
    return folder / "run"


def expected_order(run: Path) -> list[int]:
    from nas.export.exporter import open_ledger

    trials = [t for t in open_ledger(run).study.trials if t.state.name == "COMPLETE"]
    order = [t.number for t in sorted(trials, key=lambda t: (-t.values[0], t.user_attrs["metrics"]["loss"],
                                                             t.number))]
    naive = [t.number for t in sorted(trials, key=lambda t: (-t.values[0], t.number))]
    assert order[:2] != naive[:2], f"the seeded run should tie with losses against trial order: {naive}"
    return order


def test_show_report_export_and_kept_weights_agree_on_ties(tied_run, tmp_path):
    order = expected_order(tied_run)
    summary = json.loads(run_nas("show", str(tied_run), "--json", check=True).stdout)
    assert [r["number"] for r in summary["top"]] == order[:5] and summary["best"]["number"] == order[0]
    saved = json.loads((tied_run / "summary.json").read_text())
    assert [r["number"] for r in saved["top"]] == order[:5]
    assert json.loads((tied_run / "best" / "genotype.json").read_text()) == saved["best"]["genotype"]
    text = run_nas("show", str(tied_run), check=True).stdout
    assert "top (equal accuracy: lower validation loss first):" in text and re.search(r"accuracy\s+loss\s", text)
    html = (tied_run / "report.html").read_text()
    table = html[html.index('<table class="top">'):]
    table = table[:table.index("</table>")]
    assert [int(n) for n in re.findall(r"<td class=\"\">#(\d+)</td>", table)] == order[:5]
    assert "<th>loss</th>" in table and "ranked by the lower validation loss" in html
    exported = json.loads(run_nas("export", str(tied_run), "--trial", "top:3", "--out", str(tmp_path / "e"),
                                  "--json", check=True).stdout)
    assert [e["trial"] for e in exported] == order[:3]
    from nas.export.exporter import open_ledger

    weights = open_ledger(tied_run).study.user_attrs["nas:weights"]
    assert sorted(map(int, weights)) == sorted(order[:2]), (weights, order)
