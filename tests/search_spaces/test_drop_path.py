"""Drop-path in the cell (nasnet, nb201) and graph (randwire) spaces: training only, export-safe."""

from __future__ import annotations

import pytest
import torch

from nas import registry
from nas.space import Task

SPACES = {  # space options, a genotype with droppable paths
    "nasnet": ({"preset": "proxy"}, "darts-v2"),
    "nb201": ({"preset": "proxy"}, "nb201-c10-best"),
    "randwire": ({"preset": "proxy"}, "ws-4-0.75"),
}
TASK = Task((1, 8, 8), 10)  # small images keep these checks fast


def pair(name: str, rate: float):
    """The same network built without drop-path and with ``rate``, sharing weights; and an input batch."""
    options, arch = SPACES[name]
    plain_space = registry.make_space(name, options)
    drop_space = registry.make_space(name, {**options, "drop_path": rate})
    genotype = plain_space.get_known(arch)
    torch.manual_seed(0)
    plain = plain_space.build(genotype, TASK)
    drop = drop_space.build(genotype, TASK)
    drop.load_state_dict(plain.state_dict())
    assert drop.drop_path_max == rate and plain.drop_path_max == 0.0
    x = torch.randn(16, *TASK.input_shape, generator=torch.Generator().manual_seed(1))
    return plain, drop, x


@pytest.mark.parametrize("name", sorted(SPACES))
def test_rate_zero_changes_nothing_in_training(name):
    plain, drop, x = pair(name, 0.5)
    plain.train(), drop.train()
    drop.drop_path_prob = 0.0
    assert torch.equal(plain(x), drop(x))


@pytest.mark.parametrize("name", sorted(SPACES))
def test_training_drops_paths_per_example(name):
    plain, drop, x = pair(name, 0.5)
    plain.train(), drop.train()
    drop.drop_path_prob = 0.5
    torch.manual_seed(2)
    first = drop(x)
    torch.manual_seed(3)
    second = drop(x)
    reference = plain(x)
    # some examples' outputs move (paths dropped), and the pattern follows the random stream
    assert not torch.allclose(first, reference) and not torch.allclose(first, second)
    torch.manual_seed(2)
    assert torch.equal(drop(x), first)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_eval_output_does_not_depend_on_the_rate(name):
    plain, drop, x = pair(name, 0.5)
    plain.eval(), drop.eval()
    drop.drop_path_prob = 0.5
    torch.manual_seed(4)
    assert torch.equal(plain(x), drop(x))


def torch_calls(model, x) -> list[str]:
    """The torch functions and tensor methods one forward pass calls, in order (what export traces)."""
    from torch.overrides import TorchFunctionMode

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            ops.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    ops: list[str] = []
    with torch.no_grad(), Record():
        model(x)
    return ops


@pytest.mark.parametrize("name", sorted(SPACES))
def test_eval_mode_runs_the_plain_network(name):
    """In eval mode the network with drop-path runs exactly the plain network's ops (export traces
    those; tests/nas/test_export.py also exports the spaces to .pt2 with drop-path on)."""
    plain, drop, x = pair(name, 0.5)
    drop.drop_path_prob = 0.5
    plain_ops, drop_ops = torch_calls(plain.eval(), x), torch_calls(drop.eval(), x)
    assert plain_ops == drop_ops and not any("bernoulli" in op for op in drop_ops)
    assert any("bernoulli" in op for op in torch_calls(drop.train(), x))  # the check can fail


def test_full_training_switches_drop_path_on_for_cell_and_graph_spaces():
    from evaluators.fulltrain import build_for_training
    from nas.export import archfile

    for name in ("nb201", "randwire"):
        options, arch = SPACES[name]
        space = registry.make_space(name, options)
        data = archfile.make(space, space.get_known(arch), space.default_task(), normalization=None, data_name="digits",
                             size=0, metrics={}, source={}, training={})
        model = build_for_training(archfile.parse(data, None), {"drop_path": 0.3, "aux_weight": 0.0})
        assert model.drop_path_max == 0.3, name
