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
