"""Scaling genotype: the stage grammar, validation, the reference rounding rules and compound scaling."""

from __future__ import annotations

import itertools

import pytest

from search_spaces.scaling.compound import coefficient_grid, coefficients_of, compound_cost, scale
from search_spaces.scaling.genotype import (B0_STAGES, KNOWN, ScalingGenotype, Stage, format_stage,
                                            make_divisible, parse_stage, round_filters, round_repeats)

B0 = KNOWN["efficientnet-b0"]


# ----- stage grammar ---------------------------------------------------------------------------------
def test_stage_string_round_trip_and_canonical_order():
    stage = parse_stage("r2_k3_s2_e6_c24_se0.25")
    assert stage == Stage(repeats=2, kernel=3, stride=2, expansion=6, channels=24, se=0.25)
    assert format_stage(stage) == "r2_k3_s2_e6_c24_se0.25"
    assert format_stage(parse_stage("se0.25_c24_e6_s2_k3_r2")) == "r2_k3_s2_e6_c24_se0.25"
    for text in B0_STAGES:
        assert format_stage(parse_stage(text)) == text


def test_stage_without_se():
    assert parse_stage("r1_k5_s1_e3_c40").se == 0.0
    assert format_stage(parse_stage("r1_k5_s1_e3_c40_se0")) == "r1_k5_s1_e3_c40"


@pytest.mark.parametrize("text, message", [
    ("r2_k3_s2_e6", "missing c"),
    ("r2_k3_s2_e6_c24_x1", "bad token 'x1'"),
    ("r2_r3_k3_s2_e6_c24", "'r' given twice"),
    ("r2.5_k3_s2_e6_c24", "integer"),
    ("r0_k3_s2_e6_c24", "repeats"),
    ("r2_k4_s2_e6_c24", "odd"),
    ("r2_k3_s3_e6_c24", "stride"),
    ("r2_k3_s2_e0_c24", "expansion"),
    ("r2_k3_s2_e6_c24_se1.5", "se must be"),
    ("", "bad token"),
])
def test_bad_stage_strings_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_stage(text)


# ----- genotype ----------------------------------------------------------------------------------------
def test_genotype_normalizes_to_one_form():
    a = ScalingGenotype(("c16_e1_s1_k3_r1_se0.25",), width=1, resolution=224)
    b = ScalingGenotype(("r1_k3_s1_e1_c16_se0.25",), width=1.0)
    assert a == b and a.to_json() == b.to_json() and a.arch_id == b.arch_id
    assert isinstance(a.width, float)


@pytest.mark.parametrize("field, value, message", [
    ("stages", (), "stages"),
    ("stages", ["r1_k3_s1_e1_c16"], "stages"),
    ("stages", (16,), "each stage"),
    ("stages", ("r1_k3",), "missing"),
    ("width", 0.0, "width"),
    ("depth", -1.0, "depth"),
    ("depth", True, "depth"),
    ("resolution", 0, "resolution"),
    ("resolution", 224.0, "resolution"),
    ("dropout", 1.0, "dropout"),
    ("drop_connect", -0.1, "drop_connect"),
    ("stem", 0, "stem"),
    ("head", "1280", "head"),
])
def test_invalid_genotypes_raise_value_error_naming_the_field(field, value, message):
    data = {"stages": B0_STAGES, field: value}
    with pytest.raises(ValueError, match=message):
        ScalingGenotype(**data)


def test_json_round_trip_of_known():
    for genotype in KNOWN.values():
        assert ScalingGenotype.from_json(genotype.to_json()) == genotype
    assert len({g.arch_id for g in KNOWN.values()}) == len(KNOWN)


def test_known_b_series_table():
    table = {name: (g.width, g.depth, g.resolution, g.dropout) for name, g in KNOWN.items()}
    assert table == {
        "efficientnet-b0": (1.0, 1.0, 224, 0.2), "efficientnet-b1": (1.0, 1.1, 240, 0.2),
        "efficientnet-b2": (1.1, 1.2, 260, 0.3), "efficientnet-b3": (1.2, 1.4, 300, 0.3),
        "efficientnet-b4": (1.4, 1.8, 380, 0.4), "efficientnet-b5": (1.6, 2.2, 456, 0.4),
        "efficientnet-b6": (1.8, 2.6, 528, 0.5), "efficientnet-b7": (2.0, 3.1, 600, 0.5)}
    assert all(g.stages == B0_STAGES for g in KNOWN.values())


# ----- rounding rules (worked by hand: r = max(8, int(v + 4) // 8 * 8); r += 8 if r < 0.9 v) ---------------
@pytest.mark.parametrize("value, expected", [
    (35.2, 32),   # int(39.2)//8*8 = 32 >= 31.68
    (19.2, 24),   # 16 < 0.9 * 19.2 = 17.28: one more 8
    (18.0, 24),   # 16 < 16.2
    (12.0, 16),   # int(16)//8*8 = 16
    (20.0, 24),   # ties round up
    (3.0, 8),     # never below the divisor
    (123.2, 120),  # int(127.2)//8*8 = 120 >= 110.88
])
def test_make_divisible_hand_checked(value, expected):
    assert make_divisible(value) == expected


@pytest.mark.parametrize("channels, width, expected", [
    (32, 1.1, 32), (16, 1.2, 24), (24, 1.1, 24), (40, 1.1, 48), (112, 1.2, 136), (192, 1.2, 232),
    (320, 1.4, 448), (1280, 1.1, 1408), (16, 0.25, 8), (32, 2.0, 64),
])
def test_round_filters_hand_checked(channels, width, expected):
    assert round_filters(channels, width) == expected


@pytest.mark.parametrize("repeats, depth, expected", [
    (1, 1.0, 1), (1, 1.1, 2), (2, 1.1, 3), (3, 1.1, 4), (3, 1.2, 4), (2, 1.8, 4), (4, 3.1, 13), (5, 1.4, 7),
])
def test_round_repeats_is_ceil(repeats, depth, expected):
    assert round_repeats(repeats, depth) == expected


def test_scaled_tables_of_b3_and_b7():
    b3 = KNOWN["efficientnet-b3"].scaled_table()
    assert [s.channels for s in b3] == [24, 32, 48, 96, 136, 232, 384]
    assert [s.repeats for s in b3] == [2, 3, 3, 5, 5, 6, 2]
    assert sum(s.repeats for s in KNOWN["efficientnet-b7"].scaled_table()) == 55


# ----- compound scaling ----------------------------------------------------------------------------------
def test_grid_meets_the_constraint_and_holds_the_papers_point():
    grid = coefficient_grid(step=0.05, tolerance=0.1)
    assert (1.2, 1.1, 1.15) in grid
    assert all(abs(compound_cost(*t) - 2.0) <= 0.1 + 1e-9 for t in grid)
    assert all(min(t) >= 1.0 for t in grid) and len(set(grid)) == len(grid)
    assert (1.2, 1.1, 1.15) not in coefficient_grid(step=0.05, tolerance=0.05)  # its factor is 1.92


def test_grid_is_every_point_of_a_brute_force_enumeration():
    values = [round(1.0 + 0.1 * i, 10) for i in range(25)]
    brute = {t for t in itertools.product(values, repeat=3) if abs(compound_cost(*t) - 3.0) <= 0.2 + 1e-12}
    assert set(coefficient_grid(step=0.1, tolerance=0.2, target=3.0)) == brute
    assert coefficient_grid(step=0.5, tolerance=0.0) == [(2.0, 1.0, 1.0)]  # the only exact point on 1, 1.5, 2


def test_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="step"):
        coefficient_grid(step=0)
    with pytest.raises(ValueError, match="tolerance"):
        coefficient_grid(tolerance=-1)


@pytest.mark.parametrize("phi, expected", [
    (0.0, (1.0, 1.0, 224)), (1.0, (1.2, 1.1, 258)), (2.0, (1.44, 1.21, 296)), (3.0, (1.728, 1.331, 341)),
])
def test_scale_applies_coefficients_to_the_power_phi(phi, expected):
    scaled = scale(B0, 1.2, 1.1, 1.15, phi)
    assert (scaled.depth, scaled.width, scaled.resolution) == expected
    assert scaled.stages == B0.stages and scaled.dropout == B0.dropout
    assert scale(B0, 1.2, 1.1, 1.15, phi, dropout=0.4).dropout == 0.4


def test_coefficients_of_inverts_scale():
    for phi in (1.0, 2.0, 0.5):
        scaled = scale(B0, 1.25, 1.05, 1.1, phi)
        assert scale(B0, *coefficients_of(scaled, B0, phi), phi) == scaled
    with pytest.raises(ValueError, match="coefficients"):
        scale(B0, 0.0, 1.0, 1.0)
