"""The input noise of skae._nn.noise: dynamic binarisation."""

import torch

from skae._nn.noise import binarize


def test_binarize_draws_fresh_bits_reproducibly():
    x = torch.full((2000, 10), 0.3)
    g = torch.Generator().manual_seed(0)
    first, second = binarize(x, g), binarize(x, g)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)
    assert abs(float(first.mean()) - 0.3) < 0.01
    again = binarize(x, torch.Generator().manual_seed(0))
    assert torch.equal(first, again)
