"""Properties of skae's pure functions, on inputs Hypothesis generates."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from skae import LinearAE
from skae._nn.estimates import keyed_standard_normal, row_keys
from skae._nn.noise import NOISES, Corruption

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True)
FINITE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def tables(draw, min_rows=1, max_rows=60, max_features=6):
    n_features = draw(st.integers(1, max_features))
    n_rows = draw(st.integers(min_rows, max_rows))
    return draw(arrays(np.float64, (n_rows, n_features), elements=FINITE))


@PROPERTY
@given(X=tables(min_rows=13))
def test_moment_rows_keep_the_mean_and_covariance_of_any_data(X):
    # more rows than 2 * n_features: L-BFGS trains on at most that many moment rows
    rows, weights = LinearAE(solver="lbfgs")._training_rows(X)
    assert weights is None and len(rows) < len(X)
    scale = max(1.0, float(np.abs(X).max())) ** 2
    assert_allclose(rows.mean(axis=0), X.mean(axis=0), atol=1e-9 * scale**0.5)
    assert_allclose(np.cov(rows.T, bias=True), np.cov(X.T, bias=True), atol=1e-9 * scale)


@PROPERTY
@given(X=tables(), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_keyed_draws_follow_the_rows_not_their_order(X, seed, data):
    # a VAE's scoring draws are keyed by each row's values: reordering the rows reorders
    # their draws, and a row gets the same draws in any batch
    order = data.draw(st.permutations(range(len(X))))
    x = torch.as_tensor(X, dtype=torch.float32)
    keys, shuffled = row_keys(x, seed), row_keys(x[list(order)], seed)
    assert_array_equal(shuffled.numpy(), keys[list(order)].numpy())
    draws = keyed_standard_normal(keys, 0, 3, 2)
    assert_array_equal(keyed_standard_normal(shuffled, 0, 3, 2).numpy(), draws[:, order].numpy())
    assert torch.isfinite(draws).all()


@PROPERTY
@given(X=tables(), noise=st.sampled_from(NOISES), seed=st.integers(0, 2**31 - 1))
def test_corruption_at_level_zero_is_the_identity(X, noise, seed):
    x = torch.as_tensor(X)
    out = Corruption(noise, 0.0)(x, torch.Generator().manual_seed(seed))
    assert_array_equal(out.numpy(), X)


@PROPERTY
@given(X=tables(), noise=st.sampled_from(NOISES), level=st.floats(0.01, 0.99))
def test_corruption_keeps_shape_and_finiteness(X, noise, level):
    x = torch.as_tensor(X)
    out = Corruption(noise, level)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()
