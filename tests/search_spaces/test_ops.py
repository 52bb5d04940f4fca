"""Every op of the shared registry at stride 1 and 2, with and without a channel change."""

from __future__ import annotations

import pytest
import torch

from search_spaces.ops import OPS, make_op


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in, c_out", [(8, 8), (6, 10)])
@pytest.mark.parametrize("size", [8, 7])
def test_op_output_shape(name, stride, c_in, c_out, size):
    op = make_op(name, c_in, c_out, stride)
    out = op(torch.randn(2, c_in, size, size))
    expected = (size + stride - 1) // stride
    assert out.shape == (2, c_out, expected, expected)


def test_unknown_op_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: .*skip_connect"):
        make_op("conv_99x99", 4, 4, 1)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in, c_out", [(8, 8), (6, 16)])
def test_cost_without_torch_matches_the_module(name, stride, c_in, c_out):
    from evaluators.cost import count_macs, count_params
    from search_spaces.op_costs import Tally

    tally = Tally()
    h, w = tally.op(name, c_in, c_out, stride, 9, 9)
    op = make_op(name, c_in, c_out, stride)
    assert (h, w) == tuple(op(torch.randn(1, c_in, 9, 9)).shape[2:])
    assert tally.params == count_params(op)
    assert tally.macs == count_macs(op, (c_in, 9, 9))


def test_the_torch_free_op_list_matches_the_registry():
    from search_spaces.op_costs import OP_NAMES

    assert set(OP_NAMES) == set(OPS)
