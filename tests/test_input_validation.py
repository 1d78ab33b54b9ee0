"""Every bad input gets a clear error naming the problem (scikit-learn's messages)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skae import AutoEncoder, LinearAE


@pytest.fixture(scope="module")
def fitted(digits):
    return AutoEncoder(n_components=2, max_iter=2, random_state=0).fit(digits[0])


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.nan, "Input X contains NaN"),
        (np.inf, "Input X contains infinity"),
    ],
)
def test_non_finite_input(digits, fitted, bad, match):
    X = digits[0].copy()
    X[3, 4] = bad
    with pytest.raises(ValueError, match=match):
        AutoEncoder().fit(X)
    with pytest.raises(ValueError, match=match):
        fitted.transform(X)


def test_wrong_number_of_features(fitted):
    with pytest.raises(ValueError, match="X has 3 features, but AutoEncoder is expecting 64"):
        fitted.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="expecting 2 features \\(the n_components"):
        fitted.inverse_transform(np.zeros((2, 5)))


def test_empty_and_one_dimensional_input():
    with pytest.raises(ValueError, match="0 sample"):
        AutoEncoder().fit(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="Expected 2D array"):
        AutoEncoder().fit(np.zeros(4))


def test_sparse_input_is_refused():
    with pytest.raises(TypeError, match="Sparse data was passed"):
        AutoEncoder().fit(sp.random(10, 5, density=0.5, format="csr"))


def test_bce_needs_data_in_unit_interval(digits, digits01):
    with pytest.raises(ValueError, match=r"loss='bce' .* needs values in \[0, 1\]"):
        AutoEncoder(loss="bce").fit(digits[0])
    fitted = AutoEncoder(loss="bce", max_iter=1, random_state=0).fit(digits01)
    with pytest.raises(ValueError, match="loss='bce'"):
        fitted.score(digits01 * 2)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        AutoEncoder().transform(np.zeros((2, 2)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"activation": "swish"}, "'activation' parameter"),
        ({"loss": "l1"}, "'loss' parameter"),
        ({"n_components": 0}, "'n_components' parameter"),
        ({"learning_rate_init": -1.0}, "'learning_rate_init' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"solver": "sgd2"}, "'solver' parameter"),
    ],
)
def test_invalid_parameters(digits, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        AutoEncoder(**params).fit(digits[0])


def test_hidden_layer_sizes_must_be_positive(digits):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a sequence of positive"):
        AutoEncoder(hidden_layer_sizes=(8, 0)).fit(digits[0])


def test_bad_device(digits):
    with pytest.raises(ValueError, match="device='banana' is not a torch device"):
        AutoEncoder(device="banana").fit(digits[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_requested_without_cuda(digits):
    with pytest.raises(ValueError, match="CUDA is not available"):
        AutoEncoder(device="cuda").fit(digits[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_auto_device_falls_back_to_cpu(digits):
    assert AutoEncoder(max_iter=1).fit(digits[0]).device_ == "cpu"


def test_batch_size_larger_than_data_is_clipped_with_a_warning():
    with pytest.warns(UserWarning, match="batch_size=50 is larger than the 10 samples"):
        AutoEncoder(batch_size=50, max_iter=1).fit(np.random.rand(10, 3))


def test_linear_ae_rejects_too_many_components():
    with pytest.raises(ValueError, match="n_components=4 must be at most n_features=3"):
        LinearAE(n_components=4).fit(np.random.rand(10, 3))


def test_values_too_large_for_the_precision_are_refused():
    """Found by the fuzzing suite: finite values whose squares overflow came back as
    infinite scores. A fit refuses them in the training precision (float32), a method in
    the output's (float64 input is evaluated in float64)."""
    X = np.random.default_rng(0).random((20, 5))
    ae = AutoEncoder(2, max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="too large to compute with in float32"):
        AutoEncoder(2, max_iter=1).fit(X * 1e30)
    with pytest.raises(ValueError, match="too large to compute with in float32"):
        ae.score_samples((X * 1e30).astype(np.float32))
    assert np.isfinite(ae.score_samples(X * 1e30)).all()  # float64: within range
    with pytest.raises(ValueError, match="in float64"):
        ae.score_samples(X * 1e300)
