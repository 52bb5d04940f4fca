"""``nas compare``: FLOPs matching for every arm type, a tiny study end to end, resume, bad arms."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nas.compare.plan import plan
from nas.compare.spec import load_compare_spec
from tests.conftest import run_nas, write_spec

TOLERANCE = 0.05


def study(arms: list[dict], target: float = 5e6, seeds: int = 2, **compare) -> dict:
    return {"compare": {"seeds": seeds, "reference": arms[0]["name"], **compare,
                        "match": {"target": target, "tolerance": TOLERANCE}},
            "train": {"data": "digits", "epochs": 1, "train_limit": 300, "batch_size": 32, "lr": 0.05,
                      "warmup_epochs": 0.0},
            "executor": {"name": "inline"},
            "spaces": {"nasnet": {"preset": "proxy"}, "randwire": {"preset": "proxy"}},
            "arms": arms}


@pytest.fixture(scope="module")
def searched_run(tmp_path_factory) -> Path:
    """A small finished search (synthetic scores: no training) to take the best of."""
    folder = tmp_path_factory.mktemp("searched")
    spec = {"run": {"name": "s", "budget": 4, "seed": 0}, "space": {"name": "nasnet", "preset": "proxy"},
            "controller": {"name": "random"}, "evaluator": {"name": "synthetic"},
            "objectives": [{"metric": "score", "direction": "maximize"}], "executor": {"name": "inline"}}
    path = write_spec(folder / "s.toml", spec)
    run_nas("search", str(path), "--out", str(folder / "s"), check=True)
    return folder / "s"


EVERY_KIND = [
    {"name": "darts-v2", "arch": "darts-v2"},
    {"name": "nasnet-a", "arch": "nasnet-a", "space": "nasnet"},
    {"name": "ws-fixed", "arch": "ws-4-0.75"},
    {"name": "ws", "generator": "ws-4-0.75"},
    {"name": "er", "generator": "er(0.2)"},
    {"name": "ba", "generator": "ba(m=5)"},
    {"name": "cell", "sample": "nasnet", "options": {"vocabulary": "darts"}},
    {"name": "wiring", "sample": "randwire"},
    {"name": "resnet", "baseline": "resnet"},
    {"name": "vgg", "baseline": "vgg"},
]


@pytest.mark.parametrize("target", [5e6, 1.2e7])
def test_flops_are_matched_within_tolerance_for_every_arm_type(tmp_path, searched_run, target):
    arms = EVERY_KIND + [{"name": "searched", "run": str(searched_run), "top": 2}]
    spec = load_compare_spec(write_spec(tmp_path / "c.toml", study(arms, target=target, seeds=3)))
    before = _fingerprint(searched_run)
    trials, matched = plan(spec)
    assert _fingerprint(searched_run) == before  # the run folder is only read
    assert matched["value"] == target
    assert {t.arm for t in trials} == {a["name"] for a in arms} and len(trials) == 3 * len(arms)
    for t in trials:
        assert abs(t.flops / target - 1) <= TOLERANCE, (t.arm, t.index, t.width, t.flops)
        from nas import registry
        space = registry.make_space(t.space, t.options)
        assert space.cost(space.from_dict(t.genotype), _digits_task()).flops == t.flops  # the width is applied
    by_arm = {a: [t for t in trials if t.arm == a] for a in ("ws", "cell", "darts-v2", "searched")}
    assert len({t.arch_id for t in by_arm["ws"]}) == 3  # every seed a new graph
    assert len({t.arch_id for t in by_arm["cell"]}) == 3  # every seed a new sample
    assert len({t.arch_id for t in by_arm["darts-v2"]}) == 1
    assert {t.family for t in trials} == {"searched", "random wiring", "random cell", "hand-designed"}
    assert {t.family for t in trials if t.arm == "ws-fixed"} == {"random wiring"}
    assert by_arm["searched"][0].arch_id == by_arm["searched"][2].arch_id != by_arm["searched"][1].arch_id
    assert plan(spec)[0] == trials  # seeded: the same plan twice


def test_the_built_module_has_the_planned_flops(tmp_path):
    from evaluators.cost import count_macs
    from nas import registry

    spec = load_compare_spec(write_spec(tmp_path / "c.toml", study(EVERY_KIND[3:10:3], seeds=1)))
    for t in plan(spec)[0]:
        space = registry.make_space(t.space, t.options)
        assert count_macs(space.build(space.from_dict(t.genotype), _digits_task()), (1, 8, 8)) == t.flops


def _fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def _digits_task():
    from nas.space import Task

    return Task((1, 8, 8), 10)


def test_target_from_the_reference_arm(tmp_path):
    data = study([EVERY_KIND[0], {"name": "nasnet-a", "arch": "nasnet-a", "options": {"filters": 24}}])
    data["compare"]["match"] = {"arm": "nasnet-a"}
    trials, target = plan(load_compare_spec(write_spec(tmp_path / "c.toml", data)))
    assert target["value"] == next(t.flops for t in trials if t.arm == "nasnet-a")
    assert {t.width for t in trials if t.arm == "nasnet-a"} == {24}


@pytest.mark.parametrize("arm, message", [
    ({"name": "bad", "arch": "nasnet-b"}, "arms[1] (bad).arch: 'nasnet-b' is not a published architecture"),
    ({"name": "bad", "generator": "ws-3-0.5"}, "arms[1] (bad).generator:"),
    ({"name": "bad", "baseline": "alexnet"}, "arms[1] (bad).baseline: unknown baseline 'alexnet'"),
    ({"name": "bad", "sample": "nosuchspace"}, "arms[1] (bad).space: unknown space 'nosuchspace'"),
    ({"name": "bad", "run": "no/such/run"}, "arms[1] (bad).run:"),
    ({"name": "bad", "arch": "darts-v2", "generator": "er-0.2"}, "arms[1] (bad): give exactly one of"),
    ({"name": "bad", "arch": "darts-v2", "options": {"filters": "wide"}}, "arms[1] (bad).options: space.filters"),
])
def test_a_bad_arm_exits_2_with_one_line_naming_it(tmp_path, arm, message):
    path = write_spec(tmp_path / "c.toml", study([EVERY_KIND[0], arm]))
    proc = run_nas("compare", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"nas: error: {message}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_unreachable_target_exits_2_naming_the_arm(tmp_path):
    data = study([EVERY_KIND[0], {"name": "tiny", "generator": "er-0.2"}], target=1e12)
    data["compare"]["match"]["max_width"] = 64
    proc = run_nas("compare", str(write_spec(tmp_path / "c.toml", data)))
    assert proc.returncode == 2
    assert proc.stderr.startswith("nas: error: arms[0] (darts-v2): cannot match flops"), proc.stderr
    data["arms"] = [EVERY_KIND[0], {"name": "wide", "arch": "darts-v2", "width": 2000}]
    data["compare"]["match"]["target"] = 5e6
    data["compare"]["match"]["max_width"] = 8  # darts-v2 would need ~35
    proc = run_nas("compare", str(write_spec(tmp_path / "c.toml", data)))
    assert proc.returncode == 2 and "arms[0] (darts-v2): cannot match flops 5,000,000 within 5%" in proc.stderr


def test_bad_overrides_and_fields_exit_2(tmp_path):
    path = write_spec(tmp_path / "c.toml", study(EVERY_KIND[:2]))
    assert "--seeds: expected an integer >= 1" in run_nas("compare", str(path), "--seeds", "0").stderr
    data = study(EVERY_KIND[:2], reference="nope")
    proc = run_nas("compare", str(write_spec(tmp_path / "d.toml", data)))
    assert proc.returncode == 2 and "compare.reference: 'nope' is not an arm" in proc.stderr
    data = study(EVERY_KIND[:2], target=3e8)
    data["train"].update(data="cifar10", data_dir="no/such/folder")
    proc = run_nas("compare", str(write_spec(tmp_path / "e.toml", data)), "--out", str(tmp_path / "e"))
    assert proc.returncode == 2 and proc.stderr.startswith("nas: error: train.data: "), proc.stderr


def test_data_override_drops_the_specs_image_size(tmp_path):
    data = study(EVERY_KIND[:2])
    data["train"].update(data="fashion-mnist", size=14)
    path = write_spec(tmp_path / "c.toml", data)
    assert load_compare_spec(path).train["size"] == 14
    spec = load_compare_spec(path, {"data": "digits", "epochs": 2, "seeds": 4})
    assert (spec.train["data"], spec.train["size"], spec.train["epochs"], spec.seeds) == ("digits", -1, 2, 4)


class Interrupt(Exception):
    """Stands for Ctrl-C in the middle of a study."""


def test_tiny_study_end_to_end_and_resume_trains_only_the_missing_pairs(tmp_path):
    from nas.compare.study import open_study, run

    arms = [{"name": "darts-v2", "arch": "darts-v2"}, {"name": "ws", "generator": "ws-4-0.75"},
            {"name": "resnet", "baseline": "resnet"}]
    path = write_spec(tmp_path / "tiny.toml", study(arms))
    out = tmp_path / "tiny"
    lines: list[str] = []

    def stop_after_two(line: str) -> None:
        lines.append(line)
        if sum(text.startswith("[") for text in lines) == 2:
            raise Interrupt
    with pytest.raises(Interrupt):
        run(path, out, progress=stop_after_two)
    first = open_study(out, "tiny").get_trials()
    assert [t.state.name for t in first] == ["COMPLETE", "COMPLETE"]

    proc = run_nas("compare", str(path), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "2 done, 4 to train" in proc.stderr
    trials = open_study(out, "tiny").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6  # only the 4 missing pairs ran
    assert [t.user_attrs["key"] for t in trials[:2]] == [t.user_attrs["key"] for t in first]
    assert len({(t.user_attrs["arm"], t.user_attrs["index"]) for t in trials}) == 6

    summary = json.loads(proc.stdout)
    assert summary == json.loads((out / "comparison.json").read_text())
    assert summary["reference"] == "darts-v2" and summary["complete"]
    for name in ("darts-v2", "ws", "resnet"):
        arm = summary["arms"][name]
        assert arm["n"] == 2 and len(arm["values"]) == 2
        assert arm["ci95"][0] <= arm["mean"] <= arm["ci95"][1]
        assert abs(arm["flops"] / 5e6 - 1) <= TOLERANCE
        for key in ("std", "p_value", "p_holm", "hedges_g"):
            assert key in arm
    assert summary["arms"]["darts-v2"]["p_value"] is None
    assert len(summary["statements"]) >= 2
    rows = list(csv.DictReader((out / "comparison.csv").read_text().splitlines()))
    assert [r["arm"] for r in rows] == ["darts-v2", "ws", "resnet"]
    assert len(list(csv.DictReader((out / "trials.csv").read_text().splitlines()))) == 6
    md = (out / "comparison.md").read_text()
    assert "| resnet | hand-designed | 2/2 |" in md and "comparison.png" in md
    assert (out / "comparison.png").stat().st_size > 10_000
    assert (out / "trials" / "ws" / "seed-1" / "metrics.json").is_file()

    lines.clear()
    grown = run(path, out, {"seeds": 3}, progress=lines.append)  # growing a study trains only the new seeds
    assert "6 done, 3 to train" in lines[0] and len(open_study(out, "tiny").get_trials()) == 9
    assert all(arm["n"] == 3 for arm in grown["arms"].values())


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_executor_gives_the_inline_results(tmp_path, ray_session):
    from nas.compare.study import run

    arms = [{"name": "darts-v2", "arch": "darts-v2"}, {"name": "er", "generator": "er-0.2"}]
    path = write_spec(tmp_path / "r.toml", study(arms, seeds=1))
    inline = run(path, tmp_path / "inline")
    on_ray = run(path, tmp_path / "ray", {"executor.name": "ray", "executor.workers": 2})
    for name in ("darts-v2", "er"):
        assert on_ray["arms"][name]["values"] == inline["arms"][name]["values"]  # same seeds, same numbers


@pytest.mark.parametrize("target", [5e6, 1.2e7])
def test_a_vit_arm_is_matched_through_its_width_option(tmp_path, target):
    from evaluators.cost import count_macs
    from nas import registry

    arms = [EVERY_KIND[0], {"name": "vit-ti16", "arch": "vit-ti16", "space": "vit"},
            {"name": "mixer-s16", "arch": "mixer-s16", "space": "vit"}]
    data = study(arms, target=target, seeds=1)
    data["spaces"]["vit"] = {"preset": "proxy"}
    trials, _ = plan(load_compare_spec(write_spec(tmp_path / "c.toml", data)))
    for t in [t for t in trials if t.space == "vit"]:
        assert abs(t.flops / target - 1) <= TOLERANCE, (t.arm, t.width, t.flops)
        space = registry.make_space(t.space, t.options)
        assert t.options["width"] == t.width > 0 and space.options["preset"] == "proxy"
        assert count_macs(space.build(space.from_dict(t.genotype), _digits_task()), (1, 8, 8)) == t.flops
