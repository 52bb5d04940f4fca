"""One-shot search, the torch side: the latency term's gradient, DARTS/DrNAS/GDAS on a tiny task,
resumable supernet training, inherited-weight evaluation, and the collapse guard."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

import evaluators.oneshot.spos as spos
from evaluators.oneshot.differentiable import search
from evaluators.oneshot.inherit import SupernetEvaluator
from evaluators.oneshot.strategies import Darts, Drnas, Gdas, expected_latency, latency_loss, straight_through
from evaluators.supernet_options import load_splits
from nas import registry
from nas.config import validate
from nas.evaluator import COMPLETE, NullReporter
from nas.oneshot import collapsed
from nas.oneshot.options import DIFFERENTIABLE, METHODS, SPOS
from nas.space import Task
from search_spaces.nb201.genotype import EDGES, OPS, NB201Genotype

SPACE_OPTIONS = {"preset": "proxy"}
SPACE = registry.make_space("nb201", SPACE_OPTIONS)
TASK = Task((1, 8, 8), 10)
DATA = {"data": "digits", "train_limit": 256, "valid_limit": 128, "threads": 1, "device": "cpu"}


def controller_options(method: str, **options) -> dict:
    return validate({**DATA, **options}, {**DIFFERENTIABLE, **METHODS[method]}, "controller")


def supernet_options(**options) -> dict:
    return validate({**DATA, "sampling": "fair", **options}, SPOS, "evaluator")


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / "epochs.jsonl").read_text().splitlines()]


def checkpoint(folder: Path) -> dict:
    return torch.load(Path(folder) / "checkpoint.pt", map_location="cpu", weights_only=False)


def valid_genotype(data: dict) -> NB201Genotype:
    genotype = SPACE.from_dict(data)
    assert SPACE.contains(genotype)
    assert len(SPACE.oneshot_path(genotype)) == len(EDGES)
    return genotype


# ----- the expected-latency term ------------------------------------------------------------------
def latency_inputs() -> tuple[tuple[torch.Tensor, ...], float, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    # magnitudes 0.2..1.5 with random signs: DrNAS' elu(x) + 1 is evaluated away from its joint at 0
    magnitude = 0.2 + 1.3 * torch.rand(len(EDGES), len(OPS), generator=gen, dtype=torch.float64)
    sign = torch.where(torch.rand(len(EDGES), len(OPS), generator=gen) < 0.5, -1.0, 1.0).double()
    logits = tuple((magnitude * sign)[e].clone().requires_grad_(True) for e in range(len(EDGES)))
    edge_ms = 0.1 + torch.rand(len(EDGES), len(OPS), generator=gen, dtype=torch.float64)
    edge_ms[:, OPS.index("none")] = 0.0
    return logits, 1.5, edge_ms


@pytest.mark.parametrize("strategy", [Darts, Drnas], ids=["darts", "drnas"])
@pytest.mark.parametrize("form", ["target", "reference"])
def test_latency_loss_gradient_matches_finite_differences(strategy, form):
    method = strategy.__name__.lower()
    probabilities = strategy(controller_options(method)).probabilities
    logits, fixed, edge_ms = latency_inputs()
    with torch.no_grad():
        expected = float(expected_latency(probabilities(list(logits)), fixed, edge_ms))
        uniform = float(expected_latency([torch.full((len(OPS),), 1 / len(OPS), dtype=torch.float64)] * len(EDGES),
                                         fixed, edge_ms))
    target, reference = (0.6 * expected, 1.0) if form == "target" else (0.0, uniform)

    def loss(*rows: torch.Tensor) -> torch.Tensor:
        return latency_loss(expected_latency(probabilities(list(rows)), fixed, edge_ms), 0.7, target, reference)

    value = loss(*logits)
    if form == "target":
        assert math.isclose(value.item(), 0.7 * (expected / target - 1.0), rel_tol=1e-12)  # the hinge is active
    else:
        assert math.isclose(value.item(), 0.7 * expected / uniform, rel_tol=1e-12)
    grads = torch.autograd.grad(value, logits)
    assert all(float(g.abs().max()) > 1e-4 for g in grads)  # every edge's logits feel the pressure
    assert torch.autograd.gradcheck(loss, logits, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_the_straight_through_latency_is_the_derived_cells_value_with_the_expectations_gradient():
    logits, fixed, edge_ms = latency_inputs()
    probabilities = Drnas(controller_options("drnas")).probabilities(list(logits))
    expected = expected_latency(probabilities, fixed, edge_ms)
    derived = fixed + sum(float(edge_ms[e, int(p.argmax())]) for e, p in enumerate(probabilities))
    mixed = straight_through(expected, derived)
    assert math.isclose(mixed.item(), derived, rel_tol=1e-12) and not math.isclose(derived, expected.item())
    ours = torch.autograd.grad(latency_loss(mixed, 0.7, 0.5 * derived, 1.0), logits)
    plain = torch.autograd.grad(0.7 / (0.5 * derived) * expected_latency(
        Drnas(controller_options("drnas")).probabilities(list(logits)), fixed, edge_ms), logits)
    assert all(torch.allclose(a, b, rtol=1e-12, atol=0) for a, b in zip(ours, plain))
    assert latency_loss(straight_through(expected, 0.4 * derived), 0.7, 0.5 * derived, 1.0).item() == 0.0


def test_latency_hinge_below_its_target_is_flat_and_expected_latency_of_one_hot_is_the_path_sum():
    logits, fixed, edge_ms = latency_inputs()
    probabilities = Darts(controller_options("darts")).probabilities(list(logits))
    expected = expected_latency(probabilities, fixed, edge_ms)
    flat = latency_loss(expected, 0.7, 2.0 * expected.item(), 1.0)
    assert flat.item() == 0.0
    assert all(float(g.abs().max()) == 0.0 for g in torch.autograd.grad(flat, logits))
    path = [random.Random(e).randrange(len(OPS)) for e in range(len(EDGES))]
    one_hot = [torch.nn.functional.one_hot(torch.tensor(k), len(OPS)).double() for k in path]
    assert math.isclose(float(expected_latency(one_hot, fixed, edge_ms)),
                        fixed + sum(float(edge_ms[e, k]) for e, k in enumerate(path)), rel_tol=1e-12)


# ----- differentiable search ----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["darts", "drnas"])
def test_a_few_epochs_lower_the_validation_loss_and_derive_a_valid_genotype(tmp_path, method):
    # checked on seeds 0, 1, 2: the trained loss is at most 0.76 of the untrained one (DrNAS, seed 1)
    seed, fast = 0, {"train_limit": 512, "valid_limit": 256, "lr": 0.1, "batch_size": 32}
    frozen = controller_options(method, **{**fast, "epochs": 1, "lr": 0.0, "arch_lr": 0.0})
    untrained = search(method, "nb201", SPACE_OPTIONS, frozen, seed, str(tmp_path / "lr0"))
    final = search(method, "nb201", SPACE_OPTIONS, controller_options(method, **fast, epochs=3), seed,
                   str(tmp_path / "run"))
    assert 2.0 < untrained["valid_loss"] < 2.6  # about ln(10): an untrained network guesses
    assert final["valid_loss"] < 0.85 * untrained["valid_loss"]
    assert final["valid_accuracy"] > untrained["valid_accuracy"] + 15
    epochs = records(tmp_path / "run")
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert epochs[-1]["valid_loss"] == final["valid_loss"] and epochs[-1]["genotype"] == final["genotype"]
    genotype = valid_genotype(final["genotype"])
    assert final["genotype_label"] == SPACE.label(genotype)
    assert all(math.isclose(sum(row), 1.0, abs_tol=1e-4) for row in final["probabilities"])
    assert epochs[0]["probabilities"] != epochs[-1]["probabilities"]  # the architecture was trained too
    assert checkpoint(tmp_path / "run")["epoch"] == 3


def test_gdas_choices_are_exactly_one_hot_with_gradients_to_every_logit(tmp_path):
    strategy = Gdas(controller_options("gdas"))
    torch.manual_seed(0)
    logits = [torch.randn(len(OPS), requires_grad=True) for _ in EDGES]
    for progress in (1.0, 0.5, 0.0):  # temperature 0.1 .. 10
        arch = strategy.choices(logits, progress)
        for index, weights in arch:
            assert isinstance(index, int) and int(weights.argmax()) == index
            assert torch.equal(weights.detach(), torch.nn.functional.one_hot(torch.tensor(index), len(OPS)).float())
    sum(weights[index] for index, weights in arch).backward()  # at temperature 10 (softmax far from saturated)
    assert all(bool((row.grad != 0).all()) for row in logits)  # straight-through: every op's logit learns

    torch.manual_seed(1)
    net = SPACE.build_supernet(TASK).eval()
    x = torch.randn(4, *TASK.input_shape)
    with torch.no_grad():  # a one-hot choice's output is exactly its single path's
        assert torch.equal(net(x, arch), net(x, [index for index, _ in arch]))

    final = search("gdas", "nb201", SPACE_OPTIONS, controller_options("gdas", epochs=1), 0, str(tmp_path))
    valid_genotype(final["genotype"])
    assert math.isfinite(final["valid_loss"]) and [r["epoch"] for r in records(tmp_path)] == [1]


# ----- single-path supernet training --------------------------------------------------------------
SEED = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A supernet trained straight for 2 epochs."""
    folder = tmp_path_factory.mktemp("supernet")
    summary = spos.train_supernet("nb201", SPACE_OPTIONS, supernet_options(epochs=2), SEED, str(folder))
    assert summary["epochs"] == 2 and summary["params"] > 0
    return folder


class Killed(Exception):
    pass


def test_interrupted_supernet_training_resumes_to_the_uninterrupted_state(tmp_path, trained, monkeypatch):
    save = spos.save_checkpoint

    def save_then_die(folder, state):
        save(folder, state)
        if state["epoch"] == 1:
            raise Killed

    torch.manual_seed(12345)  # another global random state than the straight run's: the seed alone counts
    monkeypatch.setattr(spos, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        spos.train_supernet("nb201", SPACE_OPTIONS, supernet_options(epochs=2), SEED, str(tmp_path))
    assert [r["epoch"] for r in records(tmp_path)] == [1] and checkpoint(tmp_path)["epoch"] == 1
    monkeypatch.setattr(spos, "save_checkpoint", save)
    torch.randn(100)
    spos.train_supernet("nb201", SPACE_OPTIONS, supernet_options(epochs=2), SEED, str(tmp_path))

    assert [r["epoch"] for r in records(tmp_path)] == [1, 2]  # continued at epoch 2, epoch 1 not repeated
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in records(tmp_path)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in records(trained)]
    resumed, straight = checkpoint(tmp_path), checkpoint(trained)
    assert resumed["epoch"] == straight["epoch"] == 2
    assert resumed["model"].keys() == straight["model"].keys()
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])
    for k, buffers in straight["optimizer"]["state"].items():
        assert torch.equal(resumed["optimizer"]["state"][k]["momentum_buffer"], buffers["momentum_buffer"])


def test_more_epochs_continue_the_checkpoint_and_a_finished_one_is_not_retrained(tmp_path):
    spos.train_supernet("nb201", SPACE_OPTIONS, supernet_options(epochs=1), SEED, str(tmp_path))
    first = (tmp_path / "epochs.jsonl").read_text()
    spos.train_supernet("nb201", SPACE_OPTIONS, supernet_options(epochs=2), SEED, str(tmp_path))
    text = (tmp_path / "epochs.jsonl").read_text()
    assert text.startswith(first) and [r["epoch"] for r in records(tmp_path)] == [1, 2]
    assert checkpoint(tmp_path)["epoch"] == 2
    before = checkpoint(tmp_path)["model"]
    spos.train_supernet("nb201", SPACE_OPTIONS, supernet_options(epochs=2), SEED, str(tmp_path))
    assert (tmp_path / "epochs.jsonl").read_text() == text
    assert all(torch.equal(before[k], v) for k, v in checkpoint(tmp_path)["model"].items())


# ----- inherited-weight evaluation ----------------------------------------------------------------
def test_supernet_evaluator_scores_candidates_deterministically(trained):
    options = supernet_options(epochs=2, bn_batches=2)
    shared = (load_splits(options), (trained / "checkpoint.pt").read_bytes())
    evaluator = SupernetEvaluator(SPACE, options, shared=shared)
    assert evaluator.trained_epochs == 2
    conv = NB201Genotype(("nor_conv_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "avg_pool_3x3", "none"))
    pool = NB201Genotype(("avg_pool_3x3", "skip_connect", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1"))

    def score(genotype: NB201Genotype, seed: int = 0):
        result = evaluator.evaluate(genotype.to_json(), {"seed": seed}, NullReporter())
        assert result.state == COMPLETE, result.error
        assert 0.0 <= result.metrics["accuracy"] <= 100.0 and math.isfinite(result.metrics["loss"])
        assert result.info["inherited"] is True and result.info["supernet_epochs"] == 2
        return result.metrics["accuracy"], result.metrics["loss"]

    a, b = score(conv), score(pool)
    assert a != b  # the path matters
    assert score(conv) == a and score(pool) == b  # BatchNorm recalibration starts afresh, same batches


def test_a_supernet_path_is_the_standalone_network_with_the_inherited_weights(trained):
    torch.manual_seed(0)
    net = SPACE.build_supernet(TASK)
    net.load_state_dict(checkpoint(trained)["model"])
    net.eval()
    x = torch.randn(8, *TASK.input_shape)
    rng = random.Random(0)
    for _ in range(4):
        genotype = SPACE.sample(rng)
        standalone = SPACE.build(genotype, TASK)
        standalone.load_state_dict(net.standalone_state(genotype), strict=True)
        standalone.eval()
        with torch.no_grad():
            assert torch.equal(net(x, SPACE.oneshot_path(genotype)), standalone(x))


# ----- collapse ---------------------------------------------------------------------------------------
def test_collapse_is_detected_and_the_guard_keeps_the_strongest_convolution():
    skips = NB201Genotype(("skip_connect",) * len(EDGES))
    assert collapsed(SPACE, skips) == ["cell"]
    assert collapsed(SPACE, NB201Genotype(("skip_connect",) * 5 + ("nor_conv_1x1",))) == []
    assert collapsed(SPACE, NB201Genotype(("none", "avg_pool_3x3", "skip_connect", "none", "avg_pool_3x3",
                                           "skip_connect"))) == ["cell"]

    weights = [[0.05, 0.6, 0.1, 0.15, 0.1] for _ in EDGES]  # skip strongest everywhere
    weights[4] = [0.05, 0.5, 0.1, 0.3, 0.05]  # ... and the strongest convolution of all: 3x3 on edge 4
    assert SPACE.oneshot_derive(weights, prevent_collapse=False) == skips
    guarded = SPACE.oneshot_derive(weights, prevent_collapse=True)
    assert guarded.ops == ("skip_connect",) * 4 + ("nor_conv_3x3", "skip_connect")
    assert collapsed(SPACE, guarded) == []
    conv = SPACE.oneshot_derive([[0.1, 0.2, 0.5, 0.1, 0.1]] * len(EDGES), prevent_collapse=True)
    assert conv.ops == ("nor_conv_1x1",) * len(EDGES)  # nothing to guard: left as derived


def test_a_cell_over_its_latency_target_gives_up_the_choices_it_believes_least():
    from evaluators.oneshot.latency import path_ms, within_target

    space = registry.make_space("nb201", {"preset": "proxy"})
    conv = OPS.index("nor_conv_3x3")
    edge_ms = torch.tensor([[0.0 if op == "none" else (1.0 if op == "nor_conv_3x3" else 0.01) for op in OPS]
                            for _ in EDGES], dtype=torch.float64)
    margins = [0.30, 0.05, 0.20, 0.10, 0.25, 0.15]  # how much more each edge believes in its convolution
    rows = [[0.1] * len(OPS) for _ in EDGES]
    for e, margin in enumerate(margins):
        rows[e][conv] = 0.1 + margin
        rows[e][OPS.index("skip_connect")] = 0.1 + margin / 2
    free = space.oneshot_derive(rows)
    assert free.ops == ("nor_conv_3x3",) * 6 and path_ms(space, free, 0.5, edge_ms) == pytest.approx(6.5)
    found, moved = within_target(space, rows, 0.5, edge_ms, 3.6, prevent_collapse=True)
    assert path_ms(space, found, 0.5, edge_ms) <= 3.6 and moved == 3
    kept = [e for e, op in enumerate(found.ops) if op == "nor_conv_3x3"]
    assert kept == [0, 2, 4]  # the three largest margins keep their convolution
    assert all(found.ops[e] == "skip_connect" for e in (1, 3, 5))  # the runner-up of each edge
    unchanged, none_moved = within_target(space, rows, 0.5, edge_ms, 10.0, prevent_collapse=True)
    assert unchanged == free and none_moved == 0
