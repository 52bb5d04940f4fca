"""Latency as an objective: predicted latency as a cheap metric with constraints checked before any
training, measured latency from the train evaluator, the MnasNet reward with latency."""

from __future__ import annotations

import pytest

from nas import registry
from nas.config import SpecError
from nas.latency.table import LatencyTable, versions
from nas.search.objectives import derived_metrics, mnas_reward
from nas.search.summary import evaluated_trials
from nas.search.spec import parse_spec
from tests.nas.test_search import run_in_memory, synthetic_spec

CONV_MS = 1.0  # every nor_conv_3x3 edge of the hand-made table; everything else 0.01 ms


def handmade_table(path, space_name="nb201", preset="proxy"):
    """A lookup table with chosen entries for every block of the space, so predictions are known."""
    space = registry.make_space(space_name, {"preset": preset})
    task = space.default_task()
    blocks = {key: CONV_MS if "nor_conv_3x3" in key else 0.01 for key in space.latency_universe()}
    table = LatencyTable(space.name, space.preset, dict(space.options), tuple(task.input_shape), task.num_classes,
                         "torch", "cpu", 1, 1, versions(), blocks)
    table.save(path)
    return path


def test_latency_constraint_rejects_before_training_and_records_the_reason(tmp_path):
    lut = handmade_table(tmp_path / "lut.json")
    data = synthetic_spec(run={"budget": 15, "seed": 1}, space={"preset": "proxy"}, latency={"lut": str(lut)},
                          constraints={"latency_pred_ms": {"max": 4.5}})  # at most one 3x3 conv edge (x3 stages)
    study, outcome = run_in_memory(data)
    space = registry.make_space("nb201", {"preset": "proxy"})
    infeasible = [t for t in study.trials if str(t.user_attrs["info"].get("error", "")).startswith("infeasible")]
    assert infeasible, "the constraint rejected nothing: the test proves nothing"
    for trial in infeasible:
        convs = space.from_dict(trial.user_attrs["genotype"]).ops.count("nor_conv_3x3")
        assert convs >= 2 and "latency_pred_ms" in trial.user_attrs["info"]["error"]
        assert trial.user_attrs["metrics"]["latency_pred_ms"] > 4.5
        assert "score" not in trial.user_attrs["metrics"]  # never reached the evaluator
        assert not trial.user_attrs["info"]["counted"]
    evaluated = evaluated_trials(study)
    assert len(evaluated) == 15 and outcome.reason == "budget"
    for trial in evaluated:
        assert trial.user_attrs["metrics"]["latency_pred_ms"] <= 4.5 and "score" in trial.user_attrs["metrics"]


def test_predicted_latency_as_an_objective_and_in_a_reward(tmp_path):
    lut = handmade_table(tmp_path / "lut.json")
    data = synthetic_spec(run={"budget": 8}, space={"preset": "proxy"}, latency={"lut": str(lut)},
                          objectives=[{"metric": "reward", "reward": {"accuracy": "score", "cost": "latency_pred_ms",
                                                                     "target": 3.0, "alpha": 0.0, "beta": -1.0}}])
    study, _ = run_in_memory(data)
    for trial in evaluated_trials(study):
        m = trial.user_attrs["metrics"]
        assert trial.values[0] == pytest.approx(mnas_reward(m["score"], m["latency_pred_ms"], 3.0, 0.0, -1.0))


def test_mnas_reward_soft_and_hard_by_hand():
    # soft: alpha = beta = -0.07 on both sides of the target
    assert mnas_reward(80.0, 160.0, 80.0, -0.07, -0.07) == pytest.approx(80.0 * 2 ** -0.07)
    assert mnas_reward(80.0, 40.0, 80.0, -0.07, -0.07) == pytest.approx(80.0 * 0.5 ** -0.07)
    # hard: no gain below the target, a steep penalty above it
    assert mnas_reward(80.0, 40.0, 80.0, 0.0, -1.0) == 80.0
    assert mnas_reward(80.0, 160.0, 80.0, 0.0, -1.0) == pytest.approx(40.0)
    objectives = [{"metric": "reward", "reward": {"accuracy": "accuracy", "cost": "latency_ms", "target": 10.0,
                                                  "alpha": 0.0, "beta": -1.0}}]
    assert derived_metrics(objectives, {"accuracy": 90.0, "latency_ms": 20.0}) == {"reward": pytest.approx(45.0)}


def test_latency_specs_are_checked(tmp_path):
    with pytest.raises(SpecError, match=r"constraints.latency_pred_ms: needs a lookup table"):
        parse_spec(synthetic_spec(constraints={"latency_pred_ms": {"max": 1.0}}), tmp_path)
    with pytest.raises(SpecError, match=r"objectives\[0\].metric: latency_pred_ms needs a lookup table"):
        parse_spec(synthetic_spec(objectives=[{"metric": "latency_pred_ms"}]), tmp_path)
    with pytest.raises(SpecError, match=r"latency.lut: .*not found"):
        parse_spec(synthetic_spec(latency={"lut": "missing.json", "build": False}), tmp_path)
    lut = handmade_table(tmp_path / "lut.json", preset="cifar10")
    with pytest.raises(SpecError, match=r"latency.lut: .*preset 'cifar10', not 'nb201' preset 'proxy'"):
        parse_spec(synthetic_spec(space={"preset": "proxy"}, latency={"lut": str(lut)}), tmp_path)
    spec = parse_spec(synthetic_spec(latency={"lut": "lut.json"}, space={"preset": "cifar10"}), tmp_path)
    assert spec.latency["lut"] == str(lut.resolve()) and "latency" in spec.to_dict()


def test_an_objective_on_latency_ms_makes_the_train_evaluator_measure_it():
    data = {"run": {"name": "lat", "budget": 2, "seed": 0}, "space": {"name": "nb201", "preset": "proxy"},
            "controller": {"name": "nsga2", "population_size": 2},
            "evaluator": {"name": "train", "data": "digits", "batch_size": 32, "budget": {"steps": 2}},
            "objectives": [{"metric": "accuracy", "direction": "maximize"},
                           {"metric": "latency_ms", "direction": "minimize"}]}
    spec = parse_spec(data, __import__("pathlib").Path("."))
    assert spec.evaluator["latency_backend"] == "torch" and "latency_ms" in spec.metrics
    study, _ = run_in_memory(data)
    trials = evaluated_trials(study)
    assert len(trials) == 2
    for trial in trials:
        assert trial.state.name == "COMPLETE", trial.user_attrs["info"]
        latency = trial.user_attrs["metrics"]["latency_ms"]
        assert 0 < latency < 1000 and trial.values[1] == latency
        assert trial.user_attrs["info"]["latency"]["threads"] == 1


def test_block_listing_and_prediction_never_import_torch(tmp_path):
    import subprocess
    import sys

    lut = handmade_table(tmp_path / "lut.json")
    code = ("import sys, random\n"
            "import nas.latency.table, nas.cli.latency, nas.search.objectives\n"
            "from nas import registry\n"
            "for name in ('nasnet', 'nb201', 'scaling', 'randwire'):\n"
            "    __import__(f'search_spaces.{name}.latency')\n"
            "    space = registry.make_space(name, {'preset': 'proxy'})\n"
            "    space.latency_universe(); space.latency_blocks(space.sample(random.Random(0)))\n"
            f"table = nas.latency.table.LatencyTable.load({str(lut)!r})\n"
            "space = registry.make_space('nb201', {'preset': 'proxy'})\n"
            "print(table.predict(space, space.sample(random.Random(0))))\n"
            "loaded = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
            "print('TORCH' if loaded else 'CLEAN')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "CLEAN" and float(out.stdout.split()[0]) > 0


def test_a_missing_table_is_built_on_this_machine_at_the_start(tmp_path):
    lut = tmp_path / "built.lut.json"
    data = synthetic_spec(run={"budget": 4}, space={"preset": "proxy"}, latency={"lut": str(lut), "fit": 2},
                          constraints={"latency_pred_ms": {"max": 1e6}})
    study, _ = run_in_memory(data)
    table = LatencyTable.load(lut)
    assert table.space == "nb201" and table.fit["networks"] == 2 and all(v > 0 for v in table.blocks.values())
    assert all(t.user_attrs["metrics"]["latency_pred_ms"] > 0 for t in evaluated_trials(study))
    # the table now exists: a run asking for another backend is refused at validation
    with pytest.raises(SpecError, match="latency.lut: .*backend 'torch', not 'onnxruntime'"):
        parse_spec(synthetic_spec(space={"preset": "proxy"}, latency={"lut": str(lut), "backend": "onnxruntime"}),
                   tmp_path)
    with pytest.raises(SpecError, match="latency.lut: .*not found"):
        parse_spec(synthetic_spec(space={"preset": "proxy"}, latency={"lut": "nope.json", "build": False}), tmp_path)


def test_a_candidate_the_table_cannot_predict_is_infeasible_not_a_crash(tmp_path):
    from nas.search.objectives import cheap_metrics

    lut = handmade_table(tmp_path / "lut.json")
    table = LatencyTable.load(lut)
    table.blocks = {k: v for k, v in table.blocks.items() if "nor_conv_1x1" not in k}
    space = registry.make_space("nb201", {"preset": "proxy"})
    genotype = space.parse("|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|none~2|")
    metrics = cheap_metrics(space, genotype, space.default_task(), table)
    assert metrics["latency_pred_ms"] != metrics["latency_pred_ms"]  # NaN: outside any [min, max]
    assert not (float("-inf") <= metrics["latency_pred_ms"] <= 10.0)


class _Measured:
    """A whole-network measurement of the fake machine: every network takes 0.1 ms now."""

    def stat(self, name: str) -> float:
        return 0.1


def test_a_search_can_calibrate_its_table_to_the_machine_at_the_start(tmp_path, monkeypatch):
    import random

    import evaluators.lut

    monkeypatch.setattr(evaluators.lut, "measure_networks", lambda space, genotypes, *a, **k: [_Measured() for _ in genotypes])
    lut = handmade_table(tmp_path / "lut.json")
    table = LatencyTable.load(lut)
    space = registry.make_space("nb201", {"preset": "proxy"})
    references = [space.sample(random.Random(i)) for i in range(2)]
    # as if built on a machine 1000x faster than any: the calibration must scale predictions up
    table.fit = {"networks": 2, "genotypes": [g.to_dict() for g in references], "measured_ms": [1e-4, 1e-4],
                 "blocks": [1, 1]}
    table.save(lut)
    data = synthetic_spec(run={"budget": 4}, space={"preset": "proxy"}, latency={"lut": str(lut), "calibrate": True},
                          constraints={"latency_pred_ms": {"max": 1e9}})
    study, _ = run_in_memory(data)
    ratios = {round(t.user_attrs["metrics"]["latency_pred_ms"] / table.predict(space, space.from_dict(
        t.user_attrs["genotype"])), 6) for t in evaluated_trials(study)}
    assert ratios == {1000.0}  # one speed factor for the whole search, measured at its start: 0.1 ms / 1e-4 ms
    assert LatencyTable.load(lut).speed == 1.0
