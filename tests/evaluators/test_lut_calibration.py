"""Calibrating a latency table to the machine's speed: reference networks in validate, the speed
factor before a search, and the reference blocks that keep a long build's groups on one scale."""

from __future__ import annotations

import csv
import dataclasses
import json
import types

import pytest

from evaluators import lut
from evaluators.latency import Settings
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


@pytest.fixture(scope="module")
def table(space):
    return lut.build_table(space, Settings(), None, fit=4)


# The table is built once per module and measured again later, while other tests may load the machine
# differently (CI runs two test processes): the true speed ratio moves by tens of percent around 1, so a
# table "built" 4 times faster must come out between 2 and 8, where an undetected difference gives ~1.
FACTOR, LOW, HIGH = 4.0, 2.0, 8.0


def slower_build(table, factor):
    """The table as if built on a machine ``factor`` times faster than this one."""
    fit = {**table.fit, "measured_ms": [m / factor for m in table.fit["measured_ms"]]}
    return dataclasses.replace(table, blocks={k: v / factor for k, v in table.blocks.items()},
                               offset=table.offset / factor, floor_ms=table.floor_ms / factor, fit=fit)


def test_validate_measures_references_with_the_samples_and_reports_both(space, table, tmp_path):
    fast = slower_build(table, FACTOR)
    report = lut.validate_table(fast, space, 6, seed=3, out=tmp_path)
    assert LOW < report["drift"] < HIGH, report["calibration"]  # the machine runs 4x slower than "at build"
    assert report["calibration"]["references"] == 4 and set(report["uncalibrated"]) == {"within_10pct", "mape",
                                                                                          "kendall_tau"}
    rows = list(csv.DictReader((tmp_path / "samples.csv").open()))
    for row in rows:  # calibrated = uncalibrated x the group's ratio; uncalibrated = the table as built
        genotype = space.from_json(row["genotype"])
        assert float(row["uncalibrated_ms"]) == pytest.approx(fast.predict(space, genotype), rel=1e-4)
        assert float(row["predicted_ms"]) == pytest.approx(float(row["uncalibrated_ms"]) * report["drift"], rel=1e-3)
    fitted = {space.from_dict(d).arch_id for d in table.fit["genotypes"]}
    assert len(rows) == 6 and not fitted & {row["arch_id"] for row in rows}  # references never validate
    assert report["mape"] < report["uncalibrated"]["mape"]  # quartered predictions are off by ~75%
    plain = lut.validate_table(fast, space, 2, seed=3, calibrate=False)
    assert "uncalibrated" not in plain and "drift" not in plain


def test_groups_each_hold_the_references(space, table, monkeypatch):
    calls = []
    real = lut.measure_networks

    def spy(space_, genotypes, task, settings, grouped=True):
        calls.append([g.arch_id for g in genotypes])
        return real(space_, genotypes, task, settings, grouped)

    monkeypatch.setattr(lut, "measure_networks", spy)
    monkeypatch.setattr(lut, "NETWORK_GROUP", 6)
    genotypes = lut.sample_unique(space, 5, seed=11)
    quick = Settings(**{**lut.NETWORK_POLICY, "max_seconds": 0.2, "rounds": 5})
    times, ratios = lut.measure_with_references(table, space, genotypes, None, quick, 3)
    references = [space.from_dict(table.fit["genotypes"][i]).arch_id for i in table.references(3)]
    assert [c[:3] for c in calls] == [references] * 2 and [len(c) for c in calls] == [6, 5]
    assert len(times) == 5 and all(t > 0 for t in times) and len(set(ratios)) <= 2 and all(0.3 < r < 3 for r in ratios)


def test_calibrate_table_and_a_search_spec_that_asks_for_it(space, table, tmp_path):
    fast = slower_build(table, FACTOR)
    genotype = lut.sample_unique(space, 1, seed=5)[0]
    before = fast.predict(space, genotype)
    speed = lut.calibrate_table(fast, space)
    assert LOW < speed < HIGH and fast.predict(space, genotype) == pytest.approx(before * speed)
    path = tmp_path / "lut.json"
    slower_build(table, FACTOR).save(path)
    spec = types.SimpleNamespace(latency={"lut": str(path), "build": False, "backend": "torch", "calibrate": True})
    loaded = load_latency_table(spec, space, space.default_task())
    assert LOW < loaded.speed < HIGH
    assert json.loads(path.read_text())["speed"] == 1.0  # the file is left as built
    spec.latency["calibrate"] = False
    assert load_latency_table(spec, space, space.default_task()).speed == 1.0
    bare = dataclasses.replace(table, fit={})
    with pytest.raises(ValueError, match="no fit networks to calibrate with"):
        lut.calibrate_table(bare, space)


def test_later_block_groups_are_rescaled_by_their_reference_blocks(space, monkeypatch):
    keys = space.latency_universe()[:10]
    settings = Settings(**lut.BLOCK_POLICY)
    real = lut._time_blocks
    seen = []

    def slower_later(space_, group, settings_, stat):  # the machine "runs 2x slower" after the first group
        entries, many = real(space_, group, settings_, stat)
        if seen:
            entries, many = {k: 2 * v for k, v in entries.items()}, {k: 2 * v for k, v in many.items()}
        seen.append((list(group), entries))
        return entries, many

    monkeypatch.setattr(lut, "_time_blocks", slower_later)
    monkeypatch.setattr(lut, "BLOCK_GROUP", 4)
    drift: list[float] = []
    out = lut.measure_blocks(space, keys, settings, drift=drift)
    assert set(out) == set(keys) and len(seen) == 3 and len(drift) == 2
    assert all(1.6 < d < 2.5 for d in drift), drift
    assert all(len(group) > 4 for group, _ in seen[1:])  # the first group's reference blocks are timed again
    for (group, entries), d in zip(seen[1:], drift):
        for key in group:
            if key in keys[:4]:  # a reference block keeps the first group's entry
                assert out[key] == seen[0][1][key]
            else:  # brought back to the first group's speed
                assert out[key] == pytest.approx(entries[key] / d)


def test_the_kinds_form_recovers_per_kind_costs_and_predicts_with_them():
    from nas.latency.table import choose_correction, kind_of

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
