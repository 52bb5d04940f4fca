"""The nb201 supernet: a single path is the network build() makes (exactly), mixtures train the logits."""

from __future__ import annotations

import random

import pytest
import torch

from nas import registry
from nas.space import Task
from search_spaces.nb201.genotype import OPS, NB201Genotype

TASK = Task((1, 8, 8), 10)


@pytest.fixture(scope="module")
def space():
    return registry.make_space("nb201", {"preset": "proxy", "cells": 2})


def _genotypes(space):
    rng = random.Random(11)
    return [space.sample(rng) for _ in range(12)] + list(space.known().values()) + [
        NB201Genotype(("none",) * 6), NB201Genotype(("skip_connect",) * 6)]


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_single_path_equals_the_built_network(space, mode):
    torch.manual_seed(0)
    supernet = space.build_supernet(TASK)
    with torch.no_grad():  # move BatchNorm statistics off their defaults, so that copying them matters
        for m in supernet.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(6, 1, 8, 8)
    for genotype in _genotypes(space):
        net = space.build(genotype, TASK)
        net.load_state_dict(supernet.standalone_state(genotype), strict=True)
        getattr(net, mode)()
        getattr(supernet, mode)()
        with torch.no_grad():
            assert torch.equal(net(x), supernet(x, space.oneshot_path(genotype))), space.label(genotype)


def test_paths_round_trip_and_derive_is_the_argmax(space):
    for genotype in _genotypes(space):
        assert space.oneshot_from_path(space.oneshot_path(genotype)) == genotype
    weights = [[0.1, 0.2, 0.4, 0.2, 0.1]] * 6
    assert space.oneshot_derive(weights).ops == ("nor_conv_1x1",) * 6


def test_derive_guards_against_collapse(space):
    weights = [[0.05, 0.6, 0.1, 0.05, 0.2]] * 5 + [[0.05, 0.5, 0.1, 0.3, 0.05]]
    assert space.oneshot_derive(weights, prevent_collapse=False).ops == ("skip_connect",) * 6
    guarded = space.oneshot_derive(weights)
    assert guarded.ops == ("skip_connect",) * 5 + ("nor_conv_3x3",)


def test_fair_groups_use_every_op_of_every_edge_once(space):
    group = space.oneshot_fair(random.Random(3))
    assert len(group) == len(OPS)
    for edge in range(6):
        assert sorted(g.ops[edge] for g in group) == sorted(OPS)


def test_a_mixture_backpropagates_to_every_edge(space):
    supernet = space.build_supernet(TASK)
    logits = [torch.zeros(len(OPS), requires_grad=True) for _ in range(6)]
    out = supernet(torch.randn(4, 1, 8, 8), [torch.softmax(row, -1) for row in logits])
    out.square().mean().backward()
    assert all(row.grad is not None and row.grad.abs().sum() > 0 for row in logits)
