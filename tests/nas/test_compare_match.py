"""``nas compare``'s matching beyond width: predicted latency from lookup tables, and the depth fallback."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from nas.compare.study import summarize
from nas.compare.plan import plan
from nas.compare.spec import load_compare_spec
from tests.conftest import run_nas, write_spec
from tests.nas.test_compare import _digits_task, study

WIDTHS = (8, 10, 12, 14)


def _block_ms(key: str) -> float:
    """What the tables hold for a block instead of this machine's timing: 10 us plus 30 ns per input
    value (a width step then changes a network's latency by about 13%)."""
    from nas.block_keys import parse_key

    return 0.01 + 3e-5 * sum(math.prod(shape) for shape in parse_key(key)[2])


@pytest.fixture(scope="module")
def luts(tmp_path_factory) -> Path:
    """Randwire tables (torch, the digits input 1x8x8) whose entries are :func:`_block_ms` (nothing is
    timed: the matching, not this machine's speed, is under test), one per width: luts/rw-w{width}.json;
    and one whose header says it was built for another preset."""
    from evaluators import lut
    from evaluators.timing import Settings
    from nas import registry

    folder = tmp_path_factory.mktemp("luts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lut, "block_entries", lambda space, keys, *args, **kw: {key: _block_ms(key) for key in keys})
        for width in WIDTHS:
            space = registry.make_space("randwire", {"preset": "proxy", "channels": width})
            table = lut.build_table(space, Settings("torch", "cpu", 1, 1), _digits_task(), fit=0)
            table.save(folder / f"rw-w{width}.json")
    other = json.loads((folder / "rw-w10.json").read_text())
    other["preset"] = "small"
    (folder / "other-preset.json").write_text(json.dumps(other))
    return folder


def _latency_study(luts: Path, lut, arms: list[dict] | None = None, tolerance: float = 0.05) -> dict:
    data = study(arms or [{"name": "er", "generator": "er-0.2"}, {"name": "ws", "generator": "ws-4-0.75"}])
    data["compare"]["match"] = {"metric": "latency", "lut": lut, "tolerance": tolerance}  # target: er's own
    data["spaces"]["randwire"]["channels"] = 10
    return data


def test_latency_matching_chooses_widths_from_the_tables_and_shows_them(tmp_path, luts):
    from nas import registry
    from nas.compare.outputs import markdown
    from nas.latency.table import LatencyTable

    # a width step moves a network's latency by ~13% (_block_ms): 25% leaves every seed of either generator a width
    data = _latency_study(luts, str(luts / "rw-w{width}.json"), tolerance=0.25)
    spec = load_compare_spec(write_spec(tmp_path / "c.toml", data))
    trials, target = plan(spec)
    er = registry.make_space("randwire", {"preset": "proxy", "channels": 10})
    reference = er.draw_graphs("er-0.2", random.Random("er/0"))
    assert target["metric"] == "latency" and target["unit"] == "ms"
    assert target["value"] == LatencyTable.load(luts / "rw-w10.json").predict(er, reference, _digits_task())
    for t in trials:
        assert t.width in WIDTHS and t.latency_ms is not None
        assert abs(t.latency_ms / target["value"] - 1) <= 0.25, (t.arm, t.width, t.latency_ms)
        space = registry.make_space(t.space, t.options)
        table = LatencyTable.load(luts / f"rw-w{t.width}.json")
        assert table.predict(space, space.from_dict(t.genotype), _digits_task()) == t.latency_ms
        others = [LatencyTable.load(luts / f"rw-w{w}.json").predict(
            registry.make_space(t.space, {**t.options, "channels": w}), space.from_dict(t.genotype), _digits_task())
            for w in WIDTHS]
        assert abs(t.latency_ms - target["value"]) == min(abs(v - target["value"]) for v in others)  # the closest
    rows = [{**t.to_dict(), "state": "missing"} for t in trials]
    summary = summarize(spec, rows, target)
    er_values = [t.latency_ms for t in trials if t.arm == "er"]
    assert er_values[0] == target["value"]  # seed 0 is the reference network at its own width
    assert summary["arms"]["er"]["latency_ms"] == pytest.approx(sum(er_values) / len(er_values))
    text = markdown(summary, plotted=False)
    assert "latency matched to" in text and "| latency ms |" in text
    ws = summary["arms"]["ws"]
    assert f"| {ws['latency_ms']:.3f} | {ws['width'][0]}" in text


def test_latency_tables_per_space_or_arm(tmp_path, luts):
    arms = [{"name": "er", "generator": "er-0.2"}, {"name": "darts-v2", "arch": "darts-v2"}]
    # every arm's table is checked before any arm is matched: a tolerance no graph can meet must not
    # hide the missing table of arms[1]
    data = _latency_study(luts, {"randwire": str(luts / "rw-w{width}.json")}, arms, tolerance=0.0001)
    proc = run_nas("compare", str(write_spec(tmp_path / "c.toml", data)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("nas: error: compare.match.lut: no latency table for arms[1] (darts-v2) "
                                  "(space 'nasnet')"), proc.stderr
    data["compare"]["match"]["lut"] = {"randwire": str(luts / "rw-w{width}.json"),
                                       "darts-v2": str(luts / "rw-w{width}.json")}
    proc = run_nas("compare", str(write_spec(tmp_path / "d.toml", data)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert ("nas: error: compare.match.lut.darts-v2 for arms[1] (darts-v2): latency table (randwire/proxy"
            in proc.stderr and "was built for space 'randwire' preset 'proxy', not 'nasnet' preset 'proxy'"
            in proc.stderr), proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_table_of_another_preset_or_a_missing_one_is_refused_in_one_line(tmp_path, luts):
    for lut, message in [(str(luts / "other-preset.json"), "was built for space 'randwire' preset 'small', not "
                                                            "'randwire' preset 'proxy'"),
                         (str(luts / "none-w{width}.json"), "compare.match.lut: no latency table matches"),
                         (str(luts / "absent.json"), "compare.match.lut: " + str(luts / "absent.json"))]:
        proc = run_nas("compare", str(write_spec(tmp_path / "c.toml", _latency_study(luts, lut))))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert message in proc.stderr, proc.stderr
    data = study([{"name": "er", "generator": "er-0.2"}, {"name": "ws", "generator": "ws-4-0.75"}])
    data["compare"]["match"] = {"metric": "latency", "target": 1.0}
    proc = run_nas("compare", str(write_spec(tmp_path / "d.toml", data)))
    assert proc.returncode == 2 and proc.stderr.startswith("nas: error: compare.match.lut: metric = \"latency\"")


def test_a_latency_target_out_of_the_tables_reach_names_the_arm_and_the_range(tmp_path, luts):
    data = _latency_study(luts, str(luts / "rw-w{width}.json"))
    data["compare"]["match"]["target"] = 100.0
    proc = run_nas("compare", str(write_spec(tmp_path / "c.toml", data)))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("nas: error: arms[0] (er): cannot match latency 100.000 ms within 5% (seed 0: "
                                  "reachable "), proc.stderr
    assert "at widths 8-14" in proc.stderr


# ----- depth: when no width will do --------------------------------------------------------------------
def test_depth_fallback_adds_cells_when_the_widest_width_falls_short(tmp_path):
    from evaluators.cost import count_macs
    from nas import registry
    from nas.compare.outputs import markdown

    arms = [{"name": "darts-v2", "arch": "darts-v2"}, {"name": "resnet", "baseline": "resnet"},
            {"name": "cell", "sample": "nasnet", "options": {"vocabulary": "darts"}}]
    data = study(arms, target=3e6, seeds=2)
    data["compare"]["match"]["max_width"] = 16  # at 1 cell per stack the widest reaches ~1.1M
    spec = load_compare_spec(write_spec(tmp_path / "c.toml", data))
    trials, target = plan(spec)
    for t in trials:
        assert abs(t.flops / 3e6 - 1) <= 0.05 and t.width <= 16 and t.depth > 1, (t.arm, t.width, t.depth)
        assert t.options["cells"] == t.depth
        space = registry.make_space(t.space, t.options)
        assert count_macs(space.build(space.from_dict(t.genotype), _digits_task()), (1, 8, 8)) == t.flops
    data["compare"]["match"]["depth"] = False
    proc = run_nas("compare", str(write_spec(tmp_path / "d.toml", data)))
    assert proc.returncode == 2 and "compare.match.depth is off" in proc.stderr
    summary = summarize(spec, [{**t.to_dict(), "state": "missing"} for t in trials], target)
    assert "| depth |" in markdown(summary, plotted=False)
    assert summary["arms"]["darts-v2"]["depth"][0] > 1


def test_depth_leaves_a_reachable_width_alone(tmp_path):
    trials, _ = plan(load_compare_spec(write_spec(tmp_path / "c.toml", study([{"name": "d", "arch": "darts-v2"},
                                                                              {"name": "n", "arch": "nasnet-a"}]))))
    assert {t.depth for t in trials} == {1} and all(t.options["cells"] == 0 for t in trials)


@pytest.mark.parametrize("target, arm, message", [
    (1e3, {"name": "er", "generator": "er-0.2"}, "randwire has no depth option"),
    (1e10, {"name": "er", "generator": "er-0.2"}, "randwire has no depth option"),
    (1e3, {"name": "d", "arch": "darts-v2"}, "nor at another cells = 1..8 (compare.match.max_depth), which "
                                             "together reach 17,328 to"),
    (1e10, {"name": "d", "arch": "darts-v2"}, "nor at another cells = 1..8"),
])
def test_an_unreachable_target_names_the_arm_and_what_is_reachable(tmp_path, target, arm, message):
    data = study([arm, {"name": "other", "arch": "nasnet-a", "width": 16}], target=target, seeds=1)
    data["compare"]["match"]["max_width"] = 64
    proc = run_nas("compare", str(write_spec(tmp_path / "c.toml", data)))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"nas: error: arms[0] ({arm['name']}): cannot match flops {target:,.0f} within 5% "
                                  "(seed 0: reachable "), proc.stderr
    assert " at widths " in proc.stderr and message in proc.stderr, proc.stderr
