"""The CLI's public contract: describe, show and bench controllers' JSON fields, help, bad input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import nb201_spec, run_nas, write_spec

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.mark.parametrize("verb", [[], ["search"], ["resume"], ["show"], ["describe"], ["bench", "controllers"],
                                  ["report"], ["dashboard"]])
def test_every_verb_has_help(verb):
    proc = run_nas(*verb, "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout


def test_describe_json_contract_and_picture(tmp_path):
    png = tmp_path / "cell.png"
    proc = run_nas("describe", "--space", "nb201", "--arch", BEST, "--json", "--draw", str(png), check=True)
    info = json.loads(proc.stdout)
    assert {"space", "arch_id", "params", "flops", "input_shape", "num_classes"} <= set(info)
    assert (info["params"], info["flops"]) == (1_073_466, 153_272_960)
    assert info["input_shape"] == [3, 32, 32] and info["num_classes"] == 10 and info["string"] == BEST
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_describe_known_sample_and_file_agree(tmp_path):
    known = json.loads(run_nas("describe", "--space", "nb201", "--arch", "nb201-c10-best", "--json", check=True).stdout)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(known["genotype"]))
    again = json.loads(run_nas("describe", "--space", "nb201", "--arch-file", str(path), "--json", check=True).stdout)
    assert again["arch_id"] == known["arch_id"] and again["params"] == known["params"]
    a = run_nas("describe", "--space", "nb201", "--sample", "3", "--json", check=True).stdout
    assert a == run_nas("describe", "--space", "nb201", "--sample", "3", "--json", check=True).stdout
    proxy = json.loads(run_nas("describe", "--space", "nb201", "--sample", "3", "--preset", "proxy", "--json",
                               check=True).stdout)
    assert proxy["input_shape"] == [1, 8, 8] and proxy["params"] < json.loads(a)["params"]


@pytest.mark.parametrize("args, message", [
    (["--space", "nb999", "--sample", "1"], "--space: unknown space 'nb999'"),
    (["--space", "nb201"], "give exactly one of --arch, --arch-file, --sample"),
    (["--space", "nb201", "--arch", "resnet-99"], "--arch: 'resnet-99' is neither a known architecture"),
    (["--space", "nb201", "--arch-file", "/nonexistent.json"], "--arch-file: /nonexistent.json: no such file"),
    (["--space", "nb201", "--sample", "1", "--preset", "huge"], "space.preset: expected one of"),
    (["--space", "nasnet", "--arch", "nasnet-b"], "--arch: 'nasnet-b' is not a known nasnet architecture"),
    (["--space", "scaling", "--arch", "efficientnet-b9"], "--arch: 'efficientnet-b9' is not a known scaling"),
])
def test_describe_bad_input_exits_2(args, message):
    proc = run_nas("describe", *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_describe_rejects_an_invalid_genotype_file(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"space": "nb201", "ops": ["none"] * 5}))
    proc = run_nas("describe", "--space", "nb201", "--arch-file", str(path))
    assert proc.returncode == 2 and "expected 6 edge ops" in proc.stderr


def test_show_json_after_a_search(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "s.toml", nb201_spec(nb201_table, run={"name": "s", "budget": 12}))
    run_nas("search", str(spec), check=True)
    summary = json.loads(run_nas("show", str(tmp_path / "s"), "--json", check=True).stdout)
    assert summary["evaluated"] == 12 and summary["states"]["complete"] == 12
    assert summary["best"]["arch_id"] and "test_acc" in summary["best"]["values"]
    text = run_nas("show", str(tmp_path / "s"), check=True).stdout
    assert "evaluated 12/12" in text and summary["best"]["arch_id"] in text


def test_bench_controllers_json_contract(nb201_table):
    proc = run_nas("bench", "controllers", "--table", str(nb201_table), "--seeds", "2", "--budget", "60",
                   "--controllers", "random,local", "--json", timeout=600, check=True)
    result = json.loads(proc.stdout)
    assert result["optimum"] == pytest.approx(94.3733) and result["budget"] == 60 and result["seeds"] == 2
    for name in ("random", "local"):
        stats = result["controllers"][name]
        assert 1 <= stats["queries_to_optimum_median"] <= 61 and 0 <= stats["hit_rate"] <= 1
        assert set(stats["best_at"]) >= {"50", "100", "200", "300"}
        assert stats["best_at"]["50"] <= stats["best_at"]["100"] <= result["optimum"]


def test_bench_controllers_bad_input():
    proc = run_nas("bench", "controllers", "--table", "/nope.csv", "--seeds", "1", "--budget", "5")
    assert proc.returncode == 2 and "/nope.csv" in proc.stderr


def test_describe_names_the_genotype_file_when_it_does_not_fit_the_preset(tmp_path):
    one_stage = {"space": "randwire", "nodes": [4], "edges": [[[0, 1], [1, 2], [0, 3]]],
                 "generators": ["ws(k=2,p=0.5,n=4,seed=0)"]}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(one_stage))
    proc = run_nas("describe", "--space", "randwire", "--arch-file", str(path), "--preset", "small")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"--arch-file: {path}: randwire: the genotype has 1 stages" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds: expected an integer >= 1, got 0"),
    (["--budget", "0"], "--budget: expected an integer >= 1, got 0"),
    (["--controllers", ","], "--controllers: expected comma-separated controller names"),
])
def test_bench_controllers_bad_options_exit_2(nb201_table, args, message):
    proc = run_nas("bench", "controllers", "--table", str(nb201_table), *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bench_controllers_with_a_prescreen_counts_proxy_evaluations_beside_queries(nb201_table, tmp_path):
    scores = tmp_path / "scores.csv"  # a made-up proxy: how many 3x3 convolutions a cell has
    rows = [line.split(",")[0] for line in nb201_table.read_text().splitlines()[1:]]
    scores.write_text("arch,convs\n" + "".join(f"{a},{a.count('conv_3x3')}\n" for a in rows))
    proc = run_nas("bench", "controllers", "--table", str(nb201_table), "--seeds", "2", "--budget", "40",
                   "--controllers", "local", "--prescreen", "batch=4:keep=1", "--prior", "30",
                   "--proxy", "convs", "--proxy-scores", str(scores), "--json", timeout=600, check=True)
    result = json.loads(proc.stdout)
    assert result["prescreen"]["batch"] == 4 and result["prescreen"]["warmup"] == 30
    stats = result["controllers"]["local"]
    queries = stats["queries_to_optimum_median"]
    assert 1 <= queries <= 41
    # every trained query was screened in a batch of 4 (or came from the warm-up of 30)
    assert 30 <= stats["proxy_evaluations_to_optimum_median"] <= 30 + 4 * queries


def test_bench_controllers_bad_prescreen_exits_2(nb201_table):
    proc = run_nas("bench", "controllers", "--table", str(nb201_table), "--seeds", "1", "--budget", "5",
                   "--prescreen", "batch=2:keep=3")
    assert proc.returncode == 2 and "prescreen.keep" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
