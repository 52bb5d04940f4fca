"""Calibrating a latency table to the machine's speed: reference networks in validate, the speed
factor before a search, and the reference blocks that keep a long build's groups on one scale.

No test here times anything: whole networks are "measured" by :class:`Machine` (latencies from the
network's blocks and a slowdown the test sets) and blocks are timed on a :class:`FakeClock`, so each
test asserts the exact outcome of the calibration logic, whatever this machine's speed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import types

import pytest
from torch import nn

from evaluators import block_timing, lut
from evaluators.timing import Measurement, Settings
from nas import registry
from nas.latency.table import LatencyTable, speed_ratio
from nas.search.objectives import load_latency_table


def test_speed_ratio_references_and_speed_by_hand():
    assert speed_ratio([2.0, 3.0, 10.0], [1.0, 1.0, 5.0]) == 2.0  # median of 2, 3, 2
    assert speed_ratio([1.1, 0.9], [1.0, 1.0]) == pytest.approx(1.0)
    assert speed_ratio([], []) == 1.0 and speed_ratio([0.0], [1.0]) == 1.0
    table = LatencyTable("nb201", "proxy", {}, (1, 8, 8), 10, "torch", "cpu", 1, 1, {}, {"a@1x1x1": 2.0},
                         scale=1.5, offset=1.0, fit={"measured_ms": [5.0, 1.0, 3.0, 9.0, 7.0], "genotypes": [{}] * 5})
    assert table.references(3) == [0, 1, 3]  # the fastest, the median and the slowest of the fit networks
    assert table.references(9) == [0, 1, 2, 3, 4] and table.references(0) == []
    assert LatencyTable("x", "p", {}, (1, 1, 1), 1, "torch", "cpu", 1, 1, {}, {}).references(4) == []
    assert table.predict_keys(["a@1x1x1"]) == 4.0
    table.speed = 1.25
    assert table.predict_keys(["a@1x1x1"]) == 5.0


def test_network_groups_by_count_and_by_parameters(monkeypatch):
    sizes = {"a": 10, "b": 10, "c": 50, "d": 10, "e": 10}
    fake = types.SimpleNamespace(cost=lambda g, task: types.SimpleNamespace(params=sizes[g]),
                                 default_task=lambda: None)
    monkeypatch.setattr(lut, "NETWORK_GROUP", 3)
    monkeypatch.setattr(lut, "NETWORK_GROUP_PARAMS", 60)
    assert lut.network_groups(fake, list(sizes), None) == [[0, 1], [2, 3], [4]]  # b + c would hold 70
    assert lut.network_groups(fake, ["a", "b", "d", "e"], None) == [[0, 1, 2], [3]]  # three at most
    assert lut.network_groups(fake, ["a", "b", "d", "e"], None, reserve=1, reserve_params=5) == [[0, 1], [2, 3]]
    monkeypatch.setattr(lut, "NETWORK_GROUP_PARAMS", 5)
    assert lut.network_groups(fake, ["a", "b"], None) == [[0], [1]]  # a network over the budget goes alone


def test_a_small_space_keeps_half_its_networks_out_of_the_fit():
    class Tiny:  # six distinct networks
        def sample(self, rng):
            return types.SimpleNamespace(arch_id=str(rng.randrange(6)))

    assert len(lut.fit_genotypes(Tiny(), 100)) == 3 and len(lut.fit_genotypes(Tiny(), 2)) == 2
    assert lut.fit_genotypes(Tiny(), 0) == []
    fitted = lut.fit_genotypes(Tiny(), 3)
    assert fitted == lut.sample_unique(Tiny(), 6, lut.FIT_SEED)[:3]  # the first of the seed's samples


@pytest.fixture(scope="module")
def space():
    return registry.make_space("nb201", {"preset": "proxy"})


BLOCK_MS, CALL_MS = 0.01, 0.2  # the fake machine's time per block and per call of a whole network


class Machine:
    """Stands in for this machine when whole networks are measured: a network takes :data:`CALL_MS`
    plus :data:`BLOCK_MS` per block, times ``slowdown`` (how much slower it runs than at build time).
    ``groups`` records the arch ids of every set of networks measured together."""

    def __init__(self, space) -> None:
        self.space, self.slowdown, self.groups = space, 1.0, []

    def latency(self, genotype, slowdown: float = 1.0) -> float:
        return (CALL_MS + BLOCK_MS * len(self.space.latency_blocks(genotype))) * slowdown

    def measure_networks(self, space, genotypes, task, settings, grouped=True) -> list[Measurement]:
        self.groups.append([g.arch_id for g in genotypes])
        return [Measurement(*[self.latency(g, self.slowdown)] * 3, 0.0, 1, self.latency(g, self.slowdown))
                for g in genotypes]


@pytest.fixture(scope="module")
def table(space):
    """A table built on the fake machine (every block's entry :data:`BLOCK_MS`) with 4 fit networks:
    its correction fits the machine exactly, so its predictions are exact at build-time speed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lut, "measure_networks", Machine(space).measure_networks)
        patch.setattr(lut, "block_entries", lambda space_, keys, *args, **kw: {key: BLOCK_MS for key in keys})
        return lut.build_table(space, Settings(), None, fit=4)


@pytest.fixture
def machine(space, monkeypatch):
    """The fake machine, measuring every network the calibration asks for (as fast as at build time
    until a test sets ``slowdown``)."""
    fake = Machine(space)
    monkeypatch.setattr(lut, "measure_networks", fake.measure_networks)
    return fake


def test_the_table_predicts_the_machine_it_was_built_on(space, table):
    for genotype in lut.sample_unique(space, 5, seed=3):
        assert table.predict(space, genotype) == pytest.approx(Machine(space).latency(genotype))


def test_validate_measures_references_with_the_samples_and_reports_both(space, table, machine, tmp_path):
    machine.slowdown = 4.0  # the machine runs 4x slower than when the table was built
    report = lut.validate_table(table, space, 6, seed=3, out=tmp_path)
    assert report["drift"] == pytest.approx(4.0) and report["calibration"]["group_ratios"] == [report["drift"]]
    assert report["calibration"]["references"] == 4 and set(report["uncalibrated"]) == {"within_10pct", "mape",
                                                                                          "kendall_tau"}
    rows = list(csv.DictReader((tmp_path / "samples.csv").open()))
    references = [space.from_dict(table.fit["genotypes"][i]).arch_id for i in table.references(lut.REFERENCES)]
    assert machine.groups == [references + [row["arch_id"] for row in rows]]  # one set of interleaved rounds
    for row in rows:  # calibrated = uncalibrated x the group's ratio; uncalibrated = the table as built
        genotype = space.from_json(row["genotype"])
        assert float(row["uncalibrated_ms"]) == pytest.approx(table.predict(space, genotype), rel=1e-4)
        assert float(row["predicted_ms"]) == pytest.approx(float(row["uncalibrated_ms"]) * 4.0, rel=1e-4)
        assert float(row["measured_ms"]) == pytest.approx(machine.latency(genotype, 4.0), rel=1e-4)
    fitted = {space.from_dict(d).arch_id for d in table.fit["genotypes"]}
    assert len(rows) == 6 and not fitted & {row["arch_id"] for row in rows}  # references never validate
    assert report["mape"] == pytest.approx(0.0, abs=1e-9) and report["within_10pct"] == 1.0
    assert report["uncalibrated"]["mape"] == pytest.approx(0.75)  # predictions for a 4x faster machine
    plain = lut.validate_table(table, space, 2, seed=3, calibrate=False)
    assert "uncalibrated" not in plain and "drift" not in plain
    assert plain["mape"] == pytest.approx(0.75) and machine.groups[-1] == [row["arch_id"] for row in rows[:2]]


def test_groups_each_hold_the_references(space, table, machine, monkeypatch):
    measure = machine.measure_networks

    def drifting(*args, **kwargs):  # the machine runs 1.5x slower during the first group, 2.5x during the second
        machine.slowdown = (1.5, 2.5)[len(machine.groups)]
        return measure(*args, **kwargs)

    monkeypatch.setattr(lut, "measure_networks", drifting)
    monkeypatch.setattr(lut, "NETWORK_GROUP", 6)
    genotypes = lut.sample_unique(space, 5, seed=11)
    times, ratios = lut.measure_with_references(table, space, genotypes, None, Settings(), 3)
    references = [space.from_dict(table.fit["genotypes"][i]).arch_id for i in table.references(3)]
    assert [c[:3] for c in machine.groups] == [references] * 2 and [len(c) for c in machine.groups] == [6, 5]
    assert ratios == pytest.approx([1.5] * 3 + [2.5] * 2)  # each network gets its own group's ratio
    assert times == pytest.approx([machine.latency(g, s) for g, s in zip(genotypes, [1.5] * 3 + [2.5] * 2)])


def test_calibrate_table_and_a_search_spec_that_asks_for_it(space, table, machine, tmp_path, caplog):
    machine.slowdown = 4.0
    built = dataclasses.replace(table)  # calibrate_table sets the speed of the table it is given
    genotype = lut.sample_unique(space, 1, seed=5)[0]
    before = built.predict(space, genotype)
    speed = lut.calibrate_table(built, space)
    assert speed == pytest.approx(4.0) and built.predict(space, genotype) == pytest.approx(before * speed)
    assert machine.groups == [[space.from_dict(d).arch_id for d in table.fit["genotypes"]]]  # all 4 fit networks
    path = tmp_path / "lut.json"
    table.save(path)
    spec = types.SimpleNamespace(latency={"lut": str(path), "build": False, "backend": "torch", "calibrate": True})
    loaded = load_latency_table(spec, space, space.default_task())
    assert loaded.speed == pytest.approx(4.0)
    assert json.loads(path.read_text())["speed"] == 1.0  # the file is left as built
    spec.latency["calibrate"] = False
    assert load_latency_table(spec, space, space.default_task()).speed == 1.0
    spec.latency["calibrate"] = "auto"  # the default: calibrated on the machine the table was built on (this one)
    assert load_latency_table(spec, space, space.default_task()).speed == pytest.approx(4.0)
    dataclasses.replace(table, target={**table.target, "cpu": "Another CPU"}).save(path)
    with caplog.at_level("WARNING"):
        assert load_latency_table(spec, space, space.default_task()).speed == 1.0  # elsewhere: as built
    assert "predictions are its build-time figures" in caplog.text and "Another CPU" in caplog.text
    bare = dataclasses.replace(table, fit={})
    with pytest.raises(ValueError, match="no fit networks to calibrate with"):
        lut.calibrate_table(bare, space)


class FakeClock:
    """Seconds that pass only when the fake machine works: a block's run takes its time, and every
    reading of the clock a call's cost apart from its blocks (so every timed run includes one),
    both times ``slowdown``."""

    def __init__(self, per_call_ms: float) -> None:
        self.now, self.slowdown, self.per_call_ms = 0.0, 1.0, per_call_ms

    def __call__(self) -> float:
        self.now += self.per_call_ms * self.slowdown / 1e3
        return self.now

    def __deepcopy__(self, memo) -> FakeClock:
        return self  # the copies of a repeated block run on the one clock

    def work(self, ms: float) -> None:
        self.now += ms * self.slowdown / 1e3


class Sleeper(nn.Module):
    """A block that computes nothing and takes ``ms`` on the fake clock."""

    def __init__(self, clock: FakeClock, ms: float) -> None:
        super().__init__()
        self.clock, self.ms = clock, ms

    def forward(self, x, *others):
        self.clock.work(self.ms)
        return x


def test_later_block_groups_are_rescaled_by_their_reference_blocks(space, monkeypatch):
    keys = space.latency_universe()[:10]
    block_ms = {key: 0.1 * (i + 1) for i, key in enumerate(keys)}
    clock = FakeClock(per_call_ms=0.05)
    blocks = types.SimpleNamespace(latency_module=lambda key: Sleeper(clock, block_ms[key]))
    timed = []
    real = block_timing._time_group

    def spy(space_, group, *args):
        timed.append(list(group))
        return real(space_, group, *args)

    def slower_later(done: int, total: int) -> None:  # the machine runs 2x, then 3x slower after each group
        clock.slowdown = {4: 2.0, 8: 3.0}.get(done, clock.slowdown)

    monkeypatch.setattr(block_timing, "_time_group", spy)
    monkeypatch.setattr(block_timing, "BLOCK_GROUP", 4)
    drift: list[float] = []
    out = block_timing.block_entries(blocks, keys, Settings(**block_timing.BLOCK_POLICY), progress=slower_later,
                                     drift=drift, clock=clock)
    assert drift == pytest.approx([2.0, 3.0])  # the reference blocks' speed ratios
    # the first group's 3 slowest blocks (the fastest quarter is left out) are timed again with each later group
    assert timed == [keys[:4], keys[4:8] + keys[1:4], keys[8:] + keys[1:4]]
    # each entry is (4 copies - 1 copy) / 3: the block's own time, without the call's, at the first group's speed
    assert out == pytest.approx(block_ms)


def test_the_kinds_form_recovers_per_kind_costs_and_predicts_with_them():
    from nas.block_keys import kind_of
    from nas.latency.fit import choose_correction

    assert kind_of("~op:sep_conv_3x3:1@16x8x8") == "op:sep_conv_3x3" and kind_of("sum:2@16x8x8;16x8x8") == "sum"
    # measured = 1.2 x sum + 0.5 ms per 'sum' block + 0.1 ms per skip + 2 ms; the other forms cannot say that
    raw = [3.0, 5.0, 4.0, 6.0, 2.0, 7.0, 5.5, 3.5]
    kinds = [{"sum": s, "op:skip": k, "stem": 1} for s, k in [(2, 1), (4, 0), (1, 3), (5, 2), (3, 3), (2, 0), (6, 1), (0, 4)]]
    measured = [1.2 * r + 0.5 * c["sum"] + 0.1 * c["op:skip"] + 2.0 for r, c in zip(raw, kinds)]
    best = choose_correction(raw, measured, [sum(c.values()) for c in kinds], kinds)
    assert best.form.startswith("kinds") and best.scale == pytest.approx(1.2, rel=0.05)
    assert best.kind_ms["sum"] == pytest.approx(0.5, rel=0.1) and "stem" not in best.kind_ms  # constant: the offset's
    assert set(best.loo) >= {"offset", "scale", "per-block", best.form} and best.loo[best.form] == min(best.loo.values())
    table = LatencyTable("x", "p", {}, (1, 1, 1), 1, "torch", "cpu", 1, 1, {}, {"sum:2@1x1x1": 1.0, "stem:3@3x1x1": 2.0},
                         scale=best.scale, offset=best.offset, kind_ms=best.kind_ms)
    assert table.predict_keys(["stem:3@3x1x1", "sum:2@1x1x1"]) == pytest.approx(
        best.scale * 3.0 + best.kind_ms["sum"] + best.offset)
    assert table.parts(["stem:3@3x1x1", "sum:2@1x1x1"]) == (3.0, 2)  # the correction's inputs stay the plain sum


def test_leave_one_out_errors_are_those_of_refitting_without_each_network():
    from nas.latency.fit import ridge_fit

    raw = [3.0, 5.0, 4.0, 6.0, 2.0, 7.0, 5.5, 3.5]
    counts = [2.0, 4.0, 1.0, 5.0, 3.0, 2.0, 6.0, 0.0]
    measured = [1.1 * r + 0.4 * c + 1.0 + 0.05 * (-1) ** i for i, (r, c) in enumerate(zip(raw, counts))]
    columns, penalty = [raw, counts, [1.0] * len(raw)], [0.0, 0.3, 0.0]
    coef, loo = ridge_fit(columns, measured, penalty)
    errors = []
    for i in range(len(raw)):  # the slow way: fit without network i, predict it
        keep = [j for j in range(len(raw)) if j != i]
        c, _ = ridge_fit([[col[j] for j in keep] for col in columns], [measured[j] for j in keep], penalty)
        errors.append((sum(a * col[i] for a, col in zip(c, columns)) - measured[i]) / measured[i])
    assert loo == pytest.approx((sum(e * e for e in errors) / len(errors)) ** 0.5, rel=1e-6)
    assert coef[0] == pytest.approx(1.1, abs=0.1) and 0.2 < coef[1] < 0.45


def test_the_blocks_form_learns_what_one_block_key_costs_beyond_its_entry():
    import random

    from nas.latency.fit import choose_correction

    # measured = sum + 0.8 ms per 'op:a' block at 8x8 (its entry is that far off) + 1 ms; the other entries are right
    entries = {"op:a:1@8x8x8": 1.0, "op:a:1@8x4x4": 0.5, "op:a:1@8x2x2": 0.2, "op:b:1@8x8x8": 2.0, "op:b:1@8x4x4": 0.7}
    table = LatencyTable("x", "p", {}, (1, 1, 1), 1, "torch", "cpu", 1, 1, {}, entries)
    assert table.term_counts(["~op:a:1@8x8x8", "op:a:1@8x8x8", "op:b:1@8x4x4"]) == {
        "op:a": 2, "op:a:1@8x8x8": 2, "op:b": 1, "op:b:1@8x4x4": 1}  # eager torch computes dead blocks too
    rng = random.Random(0)
    networks = [[k for k in entries for _ in range(rng.randint(0, 4))] for _ in range(30)]
    raw = [table.parts(n)[0] for n in networks]
    measured = [r + 0.8 * n.count("op:a:1@8x8x8") + 1.0 for r, n in zip(raw, networks)]
    best = choose_correction(raw, measured, [len(n) for n in networks], [table.term_counts(n) for n in networks])
    assert "blocks" in best.form and min(best.loo.values()) < 0.02
    assert min(v for k, v in best.loo.items() if not k.startswith("blocks")) > 0.05  # no other form can say it
    fitted = dataclasses.replace(table, scale=best.scale, offset=best.offset, kind_ms=best.kind_ms)
    for network, m in zip(networks, measured):
        assert fitted.predict_keys(network) == pytest.approx(m, rel=0.05)


def test_candidates_about_as_good_are_averaged():
    from nas.latency.fit import Correction, average, choose_correction

    mean = average([Correction(1.0, 0.0, 2.0, {"k": 1.0}), Correction(2.0, 0.5, 0.0, {"j": 2.0})])
    assert (mean.scale, mean.per_block, mean.offset, mean.kind_ms) == (1.5, 0.25, 1.0, {"k": 0.5, "j": 1.0})
    raw = [3.0, 5.0, 4.0, 6.0, 2.0, 7.0, 5.5, 3.5]
    noisy = [r + 1.0 + 0.2 * s for r, s in zip(raw, [1, 1, -1, -1, 1, 1, -1, -1])]  # offset and scale alike good
    best = choose_correction(raw, noisy)
    assert best.form == "average of 2 (best: offset)" and best.loo["scale"] < 1.1 * best.loo["offset"]
    offset_only = sum(m - r for m, r in zip(noisy, raw)) / len(raw)  # the offset form's fit (scale 1)
    assert 0.9 < best.scale < 1.0 and offset_only < best.offset  # halfway to the scale form's
