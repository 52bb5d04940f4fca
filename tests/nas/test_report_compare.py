"""``nas report`` of a ``nas compare`` folder, and a run's page with the comparisons that train its best."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_nas, write_spec
from tests.nas.test_report import browser_check, decode_images, folder_state, parse

ARMS = ("darts-v2", "resnet", "searched")


class Interrupt(Exception):
    """Stands for Ctrl-C after the first trained pair."""


def _spec(run: Path) -> dict:
    return {"compare": {"seeds": 2, "reference": "darts-v2", "match": {"target": 1e6, "tolerance": 0.05}},
            "train": {"data": "digits", "epochs": 1, "train_limit": 64, "batch_size": 32, "lr": 0.05,
                      "warmup_epochs": 0.0},
            "executor": {"name": "inline"}, "spaces": {"nasnet": {"preset": "proxy"}},
            "arms": [{"name": "darts-v2", "arch": "darts-v2"}, {"name": "resnet", "baseline": "resnet"},
                     {"name": "searched", "run": str(run), "top": 1}]}


@pytest.fixture(scope="module")
def studied(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A finished search (synthetic scores), a finished comparison beside it that trains its best,
    and a comparison interrupted after its first trial (no statistics yet)."""
    from nas.compare.study import run

    base = tmp_path_factory.mktemp("rc")
    search = write_spec(base / "s.toml", {
        "run": {"name": "s", "budget": 3, "seed": 0}, "space": {"name": "nasnet", "preset": "proxy"},
        "controller": {"name": "random"}, "evaluator": {"name": "synthetic"},
        "objectives": [{"metric": "score", "direction": "maximize"}], "executor": {"name": "inline"}})
    run_nas("search", str(search), "--out", str(base / "s"), check=True)
    spec = write_spec(base / "cmp.toml", _spec(base / "s"))
    run_nas("compare", str(spec), "--out", str(base / "cmp"), check=True)

    def stop(line: str) -> None:
        if line.startswith("[1/"):
            raise Interrupt
    with pytest.raises(Interrupt):
        run(spec, base / "half", progress=stop)
    return base / "s", base / "cmp", base / "half"


def _rows(text: str, section: str) -> list[list[str]]:
    """The cells of the first table of a section."""
    body = re.search(rf'<section id="{section}">(.*?)</section>', text, re.S).group(1)
    first = re.search(r"<tbody>(.*?)</tbody>", body, re.S).group(1)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", first)]


def test_report_of_a_comparison_folder_has_every_arm_the_plot_and_every_trial(studied):
    _, cmp, _ = studied
    before = folder_state(cmp)
    proc = run_nas("report", str(cmp), check=True)
    assert f"report: {cmp / 'report.html'}" in proc.stdout
    after = folder_state(cmp)
    assert after.pop("report.html") and after == before  # only the report file is written
    page = parse(cmp / "report.html")
    assert page.scripts == 0 and page.sections == ["comparison", "trials"]
    assert [i["alt"] for i in page.images] == ["comparison cmp"] and len(decode_images(page)) == 1
    text = (cmp / "report.html").read_text()
    rows = _rows(text, "comparison")
    table = [r for r in rows if len(r) > 10]
    assert [r[0] for r in table] == ["darts-v2 (ref)", "resnet", "searched"]
    assert all(r[2] == "2/2" for r in table)
    assert {r[1] for r in table} == {"searched", "hand-designed"}
    assert "significant at alpha = 0.05" in text or "not tested" in text
    trials = _rows(text, "trials")
    assert len(trials) == 6 and {r[6] for r in trials} == {"complete"}
    assert sorted((r[0], r[1]) for r in trials) == sorted((a, str(i)) for a in ARMS for i in range(2))


def test_report_of_a_comparison_still_missing_pairs(studied):
    _, _, half = studied
    assert not (half / "comparison.json").exists()
    run_nas("report", str(half), check=True)
    page = parse(half / "report.html")
    assert page.sections == ["comparison", "trials"] and page.images == []
    text = (half / "report.html").read_text()
    assert "No results yet: 6 arm x seed trials are planned" in text
    states = sorted(r[6] for r in _rows(text, "trials"))
    assert states == ["complete"] + ["not started"] * 5


def test_a_runs_report_shows_the_comparison_that_trains_its_best(studied, tmp_path):
    run, cmp, _ = studied
    before = folder_state(cmp)
    out = tmp_path / "run.html"
    run_nas("report", str(run), "--out", str(out), check=True)
    page = parse(out)
    assert page.sections[-1] == "comparisons" and "comparison cmp" in [i["alt"] for i in page.images]
    decode_images(page)
    text = out.read_text()
    assert "this run is arm searched" in text and f"nas report {cmp}" in text
    assert [r[0] for r in _rows(text, "comparisons") if len(r) > 10] == ["darts-v2 (ref)", "resnet", "searched"]
    assert folder_state(cmp) == before


def test_a_run_without_comparisons_has_no_such_section(tmp_path):
    spec = write_spec(tmp_path / "n.toml", {"run": {"name": "n", "budget": 2}, "space": {"name": "nb201"},
                                            "controller": {"name": "random"}, "evaluator": {"name": "synthetic"}})
    run_nas("search", str(spec), "--out", str(tmp_path / "n"), check=True)
    assert "comparisons" not in parse(tmp_path / "n" / "report.html").sections


def test_comparison_report_renders_in_chromium(studied, tmp_path):
    _, cmp, _ = studied
    page = tmp_path / "report.html"
    run_nas("report", str(cmp), "--out", str(page), check=True)
    result = browser_check(page)
    assert result["images"] == 1 and result["broken"] == [] and result["errors"] == []
