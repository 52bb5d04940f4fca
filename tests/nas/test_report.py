"""``nas report`` on real runs (NB201 table, a short training run, a run in progress, only failures) and
``nas dashboard`` over HTTP. The report must read the ledger only."""

from __future__ import annotations

import base64
import hashlib
import io
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nas.controllers.history import PARENTS_ATTR
from tests.conftest import nb201_spec, run_nas, write_spec

VOID = {"meta", "img", "br", "hr", "input", "link", "area", "base", "col", "source", "wbr"}


class Page(HTMLParser):
    """Collects images, section ids and unbalanced tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict[str, str]] = []
        self.sections: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id", ""))
        if tag in ("script", "link", "iframe"):
            self.scripts += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert not page.errors and not page.stack, (page.errors, page.stack)
    return page


def decode_images(page: Page) -> list[tuple[int, int]]:
    """Every image is an embedded PNG that decodes; their sizes."""
    from PIL import Image

    sizes = []
    for image in page.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix), image["src"][:60]
        with Image.open(io.BytesIO(base64.b64decode(image["src"][len(prefix):], validate=True))) as png:
            png.load()
            assert png.format == "PNG" and png.width > 50 and png.height > 50
            sizes.append(png.size)
    return sizes


def folder_state(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its content hash."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def listening_on(port: int) -> list[str]:
    """IPv4 addresses with a listening TCP socket on ``port`` (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.append(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def points_of(page: Page, alt: str) -> list[int]:
    return [int(n) for n in next(i for i in page.images if i.get("alt") == alt)["data-points"].split(",")]


@pytest.fixture(scope="module")
def evolution_run(tmp_path_factory, nb201_table) -> Path:
    """A finished NB201 evolution run (report written at its end)."""
    folder = tmp_path_factory.mktemp("report") / "evo"
    spec = write_spec(folder.parent / "evo.toml", nb201_spec(
        nb201_table, run={"name": "evo", "budget": 40, "seed": 1},
        controller={"name": "evolution", "population": 8, "sample": 3, "candidates": 1}))
    proc = run_nas("search", str(spec), "--out", str(folder), check=True)
    assert f"report: {folder / 'report.html'}" in proc.stdout
    return folder


def test_search_writes_a_report_that_parses_with_every_trial_plotted(evolution_run):
    from nas.report.view import open_run

    summary = json.loads((evolution_run / "summary.json").read_text())
    assert summary["report"] == str(evolution_run / "report.html")
    page = parse(evolution_run / "report.html")
    assert page.scripts == 0
    html = (evolution_run / "report.html").read_text()
    assert '<span class="badge ok">finished</span>' in html
    import optuna
    assert f"torch {importlib.metadata.version('torch')}, optuna {optuna.__version__}" in html  # the run's own
    assert page.sections == ["run", "progress", "objectives", "top", "curves", "lineage", "failures", "outputs"]
    decode_images(page)
    run = open_run(evolution_run)
    assert len(run.evaluated) == 40
    assert points_of(page, "progress") == [40, 40]  # per axes: against evaluations and against time
    assert points_of(page, "objective against cost") == [40, 40]  # params and FLOPs
    pictures = [i for i in page.images if i["alt"].startswith("architecture of trial")]
    assert [i["alt"] for i in pictures] == [f"architecture of trial {r['number']}" for r in summary["top"]]


def test_lineage_of_the_best_ends_at_a_random_sample(evolution_run):
    from nas.report.view import chain, lineage, open_run

    run = open_run(evolution_run)
    best = json.loads((evolution_run / "summary.json").read_text())["best"]["number"]
    line = chain(lineage(run, best))
    assert len(line) >= 2, "the best of this seeded run is a child of evolution"
    by_number = {t.number: t for t in run.trials}
    for child, parent in zip(line, line[1:]):
        assert by_number[child.number].system_attrs[PARENTS_ATTR][0] == parent.arch_id
    root = by_number[line[-1].number]
    assert PARENTS_ATTR not in root.system_attrs and root.number < 8  # the random first population
    text = (evolution_run / "report.html").read_text()
    assert f"generations back to trial #{root.number}, sampled at random" in text


def test_report_reads_only_and_writes_only_its_file(evolution_run, tmp_path):
    before = folder_state(evolution_run)
    out = tmp_path / "elsewhere.html"
    proc = run_nas("report", str(evolution_run), "--out", str(out), check=True)
    assert str(out) in proc.stdout and out.stat().st_size > 10_000
    assert folder_state(evolution_run) == before
    os.unlink(evolution_run / "report.html")
    run_nas("report", str(evolution_run), check=True)
    after = folder_state(evolution_run)
    assert set(after) - set(before) == set() and after.pop("report.html")
    assert {k: v for k, v in before.items() if k != "report.html"} == after


def test_report_reuses_the_best_picture_only_while_it_is_current(evolution_run, tmp_path):
    import shutil

    from PIL import Image

    run = tmp_path / "copy"
    shutil.copytree(evolution_run, run)
    best = json.loads((run / "summary.json").read_text())["best"]["number"]
    picture, genotype = run / "best" / "architecture.png", run / "best" / "genotype.json"
    Image.new("RGB", (400, 300), (200, 30, 30)).save(picture)  # unlike anything the space draws

    def colours_of_the_best_picture(name: str) -> int:
        out = tmp_path / name
        run_nas("report", str(run), "--out", str(out), check=True)
        image = next(i for i in parse(out).images if i["alt"] == f"architecture of trial {best}")
        with Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1]))) as png:
            return len(png.convert("RGB").getcolors(1 << 16) or [])

    assert colours_of_the_best_picture("newer.html") == 1  # written after the genotype: reused as it is
    stamp = genotype.stat().st_mtime_ns - 10**9
    os.utime(picture, ns=(stamp, stamp))
    assert colours_of_the_best_picture("older.html") > 2  # older than the genotype: drawn again


def test_ledger_is_opened_read_only(evolution_run):
    from nas.report.view import open_run

    run = open_run(evolution_run)
    size = (evolution_run / "study.journal").stat().st_size
    with pytest.raises(PermissionError, match="read-only"):
        run.study.set_user_attr("x", 1)
    with pytest.raises(PermissionError):
        run.study.ask()
    assert (evolution_run / "study.journal").stat().st_size == size


def test_report_of_a_short_training_run_has_curves_and_cells(tmp_path):
    spec = write_spec(tmp_path / "train.toml", {
        "run": {"name": "train", "budget": 3, "seed": 0},
        "space": {"name": "nasnet", "preset": "proxy"},
        "controller": {"name": "random"},
        "evaluator": {"name": "train", "data": "digits", "train_limit": 128, "valid_limit": 64,
                      "budget": {"epochs": 2}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    })
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), "--executor", "inline", check=True)
    page = parse(tmp_path / "run" / "report.html")
    decode_images(page)
    alts = [i["alt"] for i in page.images]
    assert "learning curves" in alts and sum(a.startswith("architecture of trial") for a in alts) == 3
    assert points_of(page, "progress") == [3, 3]


def test_report_draws_pruned_trials_curves_in_grey(tmp_path):
    from nas.report.view import open_run

    spec = write_spec(tmp_path / "p.toml", {
        "run": {"name": "p", "budget": 24}, "space": {"name": "nb201"}, "controller": {"name": "random"},
        "evaluator": {"name": "synthetic", "steps": 4}, "pruner": {"name": "median"}})
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), check=True)
    run = open_run(tmp_path / "run")
    pruned = sum(t.state.name == "PRUNED" for t in run.evaluated)
    assert pruned > 0
    text = (tmp_path / "run" / "report.html").read_text()
    assert f"top 5 trials; {pruned} pruned trials in grey" in text
    assert points_of(parse(tmp_path / "run" / "report.html"), "progress") == [24, 24]


def test_report_of_a_run_with_only_failures(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "f.toml", {
        "run": {"name": "f", "budget": 6, "max_failures": 4},
        "space": {"name": "nb201"}, "controller": {"name": "random"},
        "evaluator": {"name": "synthetic", "fail_rate": 1.0}})
    proc = run_nas("search", str(spec), "--out", str(tmp_path / "run"))
    assert proc.returncode == 1 and "failed in a row" in proc.stderr
    page = parse(tmp_path / "run" / "report.html")
    decode_images(page)
    assert points_of(page, "progress") == [4, 4]
    text = (tmp_path / "run" / "report.html").read_text()
    assert "synthetic failure" in text and '<td class="num">4</td>' in text
    assert "No completed trial yet." in text


def test_report_of_a_multi_objective_run_draws_the_pareto_front(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "mo.toml", nb201_spec(
        nb201_table, run={"name": "mo", "budget": 25}, controller={"name": "nsga2"},
        objectives=[{"metric": "test_acc", "direction": "maximize"}, {"metric": "params", "direction": "minimize"}]))
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), check=True)
    page = parse(tmp_path / "run" / "report.html")
    decode_images(page)
    assert points_of(page, "Pareto front") == [25]
    assert "Objectives (Pareto front)" in (tmp_path / "run" / "report.html").read_text()


def test_report_embeds_the_space_outputs_of_a_scaling_grid(tmp_path):
    spec = write_spec(tmp_path / "grid.toml", {
        "run": {"name": "grid", "budget": 10},
        "space": {"name": "scaling", "preset": "proxy", "search": "coefficients", "grid_step": 0.1,
                  "grid_tolerance": 0.02},
        "controller": {"name": "grid"}, "evaluator": {"name": "synthetic"}})
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), check=True)
    text = (tmp_path / "run" / "report.html").read_text()
    for name in ("grid.csv", "heatmap.png", "scaled.json"):
        assert f"<h3><code>{name}</code></h3>" in text
    page = parse(tmp_path / "run" / "report.html")
    assert "heatmap.png" in [i["alt"] for i in page.images]
    decode_images(page)


def test_report_of_a_run_in_progress(tmp_path):
    spec = write_spec(tmp_path / "slow.toml", {
        "run": {"name": "slow", "budget": 200},
        "space": {"name": "nb201"}, "controller": {"name": "evolution", "population": 4, "sample": 2},
        "evaluator": {"name": "synthetic", "seconds": 0.2}})
    folder = tmp_path / "run"
    search = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--out", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        journal, deadline = folder / "study.journal", time.time() + 120
        while time.time() < deadline and (not journal.exists() or journal.stat().st_size < 20_000):
            time.sleep(0.5)
        run_nas("report", str(folder), check=True)
        text = (folder / "report.html").read_text()
        assert '<span class="badge run">running</span>' in text
        page = parse(folder / "report.html")
        decode_images(page)
        assert 0 < points_of(page, "progress")[0] < 200
    finally:
        search.send_signal(signal.SIGTERM)
        search.wait(timeout=60)


def test_report_modules_leave_matplotlib_and_torch_unloaded():
    code = ("import sys, nas.report.view, nas.report.sections, nas.cli.report\n"
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_report_bad_input_exits_2(tmp_path):
    proc = run_nas("report", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no such run folder" in proc.stderr


def test_dashboard_binds_to_localhost_and_serves_the_study(evolution_run):
    before = folder_state(evolution_run)
    server = subprocess.Popen([sys.executable, "-m", "nas", "dashboard", str(evolution_run), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("dashboard: http://127.0.0.1:"), line + server.stderr.read()
        url = line.split()[1]
        base = url.removesuffix("/dashboard/")
        with urllib.request.urlopen(base + "/api/studies", timeout=120) as response:
            studies = json.loads(response.read())["study_summaries"]
        assert [s["study_name"] for s in studies] == ["evo"]
        with urllib.request.urlopen(f"{base}/api/studies/{studies[0]['study_id']}", timeout=120) as response:
            assert len(json.loads(response.read())["trials"]) == 40
        delete = urllib.request.Request(f"{base}/api/studies/{studies[0]['study_id']}", method="DELETE")
        with pytest.raises(urllib.error.HTTPError):  # the dashboard cannot delete the run's study
            urllib.request.urlopen(delete, timeout=120)
        with urllib.request.urlopen(url, timeout=120) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        port = int(base.rsplit(":", 1)[1])
        assert listening_on(port) == ["127.0.0.1"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert folder_state(evolution_run) == before


# ----- in a real browser ---------------------------------------------------------------------------
CHECKER = """<script>
window.nasErrors = [];
window.addEventListener("error", e => window.nasErrors.push(String(e.message || e.type)), true);
window.addEventListener("unhandledrejection", e => window.nasErrors.push("rejection: " + e.reason));
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt);
  const out = document.createElement("pre");
  out.id = "nas-check";
  out.textContent = JSON.stringify({images: images.length, broken: broken, errors: window.nasErrors});
  document.body.appendChild(out);
});
</script>"""


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Headless Debian chromium with a fresh profile, no network chatter."""
    import shutil
    import tempfile

    binary = shutil.which("chromium")
    from tests.conftest import need

    need(binary is not None, "Debian's chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                               "--no-first-run", "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def browser_check(page: Path) -> dict:
    """Load ``page`` with the checker injected first; what it found (images, broken ones, JS errors)."""
    import html
    import re

    checked = page.with_name("checked-" + page.name)
    checked.write_text(page.read_text().replace("<head>", "<head>" + CHECKER, 1))
    proc = chromium("--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    found = re.search(r'<pre id="nas-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"checker did not run: rc {proc.returncode}\n{proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_report_renders_in_chromium_without_broken_images_or_errors(evolution_run, tmp_path):
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text((evolution_run / "report.html").read_text())
    result = browser_check(page)
    assert result["images"] == len(parse(page).images) > 5
    assert result["broken"] == [] and result["errors"] == []
    shot = tmp_path / "shot.png"
    chromium("--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri())
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        assert len(image.convert("L").getcolors(65536) or []) > 20  # something was drawn, not a blank page


def test_browser_check_catches_a_broken_image_and_a_script_error(evolution_run, tmp_path):
    text = (evolution_run / "report.html").read_text()
    broken = tmp_path / "broken.html"
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    text = text[:start] + "AAAA" + text[start + 4:]  # the first image's PNG signature destroyed
    broken.write_text(text.replace("</body>", "<script>notDefined();</script></body>"))
    result = browser_check(broken)
    assert result["broken"] == ["progress"] and any("notDefined" in e for e in result["errors"])
