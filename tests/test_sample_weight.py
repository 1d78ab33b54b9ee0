"""``sample_weight`` in ``fit`` and ``partial_fit``: a weighted loss for every estimator.

A row of weight 0 is removed; an integer weight acts as that many copies of the row (exactly
for LinearAE's EM solver, which works on weighted moments; within a tolerance for mini-batch
training, whose batches differ); weights move the fit towards the rows that weigh most; bad
weights get clear errors.
"""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler

from skae import (
    AutoEncoder,
    ContractiveAE,
    DenoisingAE,
    EncoderClassifier,
    LinearAE,
    OutlierDetector,
    SparseAE,
    StackedAE,
    VariationalAE,
)
from skae._nn.likelihoods import LIKELIHOODS
from skae._nn.modules import mlp_autoencoder, row_moments
from skae._nn.objectives import ELBO, CrossEntropy, Reconstruction, Sparse
from skae.metrics import reconstruction_error
from skae.outliers import weighted_percentile


@pytest.fixture(scope="module")
def digits01():
    X, y = load_digits(return_X_y=True)
    return MinMaxScaler().fit_transform(X).astype(np.float32), y


SMALL = {"hidden_layer_sizes": (32,), "max_iter": 15, "random_state": 0}
TRANSFORMERS = [
    AutoEncoder(8, **SMALL),
    DenoisingAE(8, noise="masking", noise_level=0.2, **SMALL),
    ContractiveAE(8, **SMALL),
    SparseAE(8, sparsity="l1", **SMALL),
    VariationalAE(8, loss="bce", **SMALL),
    StackedAE(8, pretrain_iter=3, **SMALL),
    LinearAE(8, random_state=0),
    LinearAE(8, solver="lbfgs", max_iter=30, random_state=0),
]


@pytest.mark.parametrize("estimator", TRANSFORMERS, ids=lambda e: repr(e)[:40])
def test_zero_weight_is_a_removed_row(estimator, digits01):
    X, _ = digits01
    weights = np.ones(len(X))
    weights[::3] = 0
    weighted = estimator.__class__(**estimator.get_params()).fit(X, sample_weight=weights)
    removed = estimator.__class__(**estimator.get_params()).fit(X[weights > 0])
    assert_allclose(weighted.transform(X[:50]), removed.transform(X[:50]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("estimator", TRANSFORMERS, ids=lambda e: repr(e)[:40])
def test_equal_weights_are_no_weights(estimator, digits01):
    X, _ = digits01
    weighted = estimator.__class__(**estimator.get_params()).fit(
        X, sample_weight=np.full(len(X), 3)
    )
    plain = estimator.__class__(**estimator.get_params()).fit(X)
    assert_array_equal(weighted.transform(X[:50]), plain.transform(X[:50]))


def test_linear_em_integer_weights_are_repeated_rows(digits01):
    X, _ = digits01
    weights = np.random.default_rng(0).integers(1, 4, len(X))
    weighted = LinearAE(5, random_state=0).fit(X, sample_weight=weights)
    repeated = LinearAE(5, random_state=0).fit(np.repeat(X, weights, axis=0))
    assert_allclose(weighted.components_, repeated.components_, atol=1e-5)
    assert_allclose(weighted.mean_, repeated.mean_, atol=1e-6)
    assert_allclose(weighted.explained_variance_ratio_, repeated.explained_variance_ratio_, 1e-5)
    # and the subspace is the weighted PCA's: that of the repeated rows
    pca = PCA(5).fit(np.repeat(X, weights, axis=0))
    assert_allclose(np.abs(weighted.components_), np.abs(pca.components_), atol=1e-3)


def test_linear_lbfgs_weighted_is_the_weighted_pca(digits01):
    X, _ = digits01
    weights = np.random.default_rng(1).integers(1, 4, len(X))
    lae = LinearAE(3, solver="lbfgs", max_iter=200, tol=1e-12, random_state=0)
    lae.fit(X, sample_weight=weights)
    pca = PCA(3).fit(np.repeat(X, weights, axis=0))
    assert_allclose(np.abs(lae.components_), np.abs(pca.components_), atol=2e-2)


@pytest.mark.parametrize("cls", [AutoEncoder, VariationalAE])
def test_integer_weights_fit_as_repeated_rows_within_tolerance(cls, digits01):
    """Weight 4 on half of the rows, or four copies of them: the same expected gradient,
    different batches. With the same number of steps (the repeated data have 2.5 times the
    rows, so 2.5 times the steps per epoch), both fits reach the same held-out error within
    5%."""
    X, _ = digits01
    train, test = X[:1400], X[1400:]
    weights = np.where(np.arange(len(train)) % 2 == 0, 4, 1)
    params = {"n_components": 8, "loss": "bce", "hidden_layer_sizes": (32,), "random_state": 0}
    params["batch_size"] = 200  # the same batches for both (not "auto", which grows with n)
    weighted = cls(**params, max_iter=100).fit(train, sample_weight=weights)
    repeated = cls(**params, max_iter=40).fit(np.repeat(train, weights, axis=0))
    error_w = reconstruction_error(weighted, test)
    error_r = reconstruction_error(repeated, test)
    assert abs(error_w - error_r) / error_r < 0.05, (error_w, error_r)


def test_weights_favour_the_rows_that_weigh_most(digits01, global_random_seed):
    """An autoencoder with the zeros weighted 20 times reconstructs held-out zeros better, and
    the other digits worse, than one fitted without weights."""
    X, y = digits01
    train, test = np.arange(1400), np.arange(1400, len(X))
    weights = np.where(y[train] == 0, 20.0, 1.0)
    params = {"hidden_layer_sizes": (32,), "max_iter": 60, "random_state": global_random_seed}
    weighted = AutoEncoder(4, **params).fit(X[train], sample_weight=weights)
    plain = AutoEncoder(4, **params).fit(X[train])
    zeros, others = test[y[test] == 0], test[y[test] != 0]
    assert reconstruction_error(weighted, X[zeros]) < 0.8 * reconstruction_error(plain, X[zeros])
    assert reconstruction_error(weighted, X[others]) > reconstruction_error(plain, X[others])


def test_partial_fit_takes_weights(digits01):
    X, _ = digits01
    weights = np.ones(len(X))
    weights[::2] = 0
    ae = AutoEncoder(4, hidden_layer_sizes=(16,), random_state=0)
    ae.partial_fit(X, sample_weight=weights)
    removed = AutoEncoder(4, hidden_layer_sizes=(16,), random_state=0).partial_fit(X[1::2])
    assert_allclose(ae.transform(X[:20]), removed.transform(X[:20]), rtol=1e-5, atol=1e-6)
    lae = LinearAE(3, random_state=0)
    for chunk in (slice(0, 900), slice(900, None)):
        lae.partial_fit(X[chunk], sample_weight=np.arange(len(X))[chunk] % 3)
    full = LinearAE(3, random_state=0).fit(X, sample_weight=np.arange(len(X)) % 3)
    assert_allclose(np.abs(lae.components_), np.abs(full.components_), atol=1e-4)


def test_classifier_weights_its_cross_entropy(digits01):
    X, y = digits01
    ae = AutoEncoder(16, hidden_layer_sizes=(32,), max_iter=10, random_state=0).fit(X)
    weights = np.where(y == 3, 0.0, 1.0)
    clf = EncoderClassifier(ae, max_iter=20, random_state=0).fit(X, y, sample_weight=weights)
    # a class only zero-weight rows carry is still a class, but never learned
    assert 3 in clf.classes_
    assert (clf.predict(X[y == 3]) != 3).mean() > 0.9
    removed = EncoderClassifier(ae, max_iter=20, random_state=0).fit(
        X[y != 3], y[y != 3], sample_weight=None
    )
    assert 3 not in removed.classes_


def test_outlier_offset_is_a_weighted_quantile(digits01):
    X, _ = digits01
    weights = np.random.default_rng(0).integers(1, 4, len(X))
    detector = OutlierDetector(
        AutoEncoder(4, hidden_layer_sizes=(16,), max_iter=10), contamination=0.1, random_state=0
    ).fit(X, sample_weight=weights)
    scores = detector.score_samples(X)
    repeated = np.repeat(scores, weights)
    assert detector.offset_ == pytest.approx(np.percentile(repeated, 10, method="inverted_cdf"))
    with pytest.raises(ValueError, match="PCA.fit takes no sample_weight"):
        OutlierDetector(PCA(2)).fit(X, sample_weight=weights)


def test_weighted_percentile_is_numpys_inverted_cdf_on_repeats():
    rng = np.random.default_rng(0)
    values, weights = rng.normal(size=50), rng.integers(1, 5, 50)
    for q in (0, 3, 10, 50, 97, 100):
        expected = np.percentile(np.repeat(values, weights), q, method="inverted_cdf")
        assert weighted_percentile(values, weights, q) == expected


def test_weighted_row_moments_are_those_of_repeated_rows():
    rng = np.random.default_rng(0)
    X, weights = rng.normal(size=(300, 5)), rng.integers(0, 4, 300)
    count, mean, scatter = row_moments(X, chunk=64, weights=weights)
    repeated = np.repeat(X, weights, axis=0)
    assert count == len(repeated)
    assert_allclose(mean, repeated.mean(axis=0))
    centred = repeated - repeated.mean(axis=0)
    assert_allclose(scatter, centred.T @ centred)


def test_objectives_weigh_each_row():
    torch.manual_seed(0)
    module = mlp_autoencoder(6, [5], 2, "relu")
    x = torch.rand(8, 6)
    w = torch.tensor([0.0, 2.0, 1.0, 1.0, 0.5, 1.5, 1.0, 1.0])
    per_row = LIKELIHOODS["bce"].loss(module.decode(module.encode(x)), x)
    assert torch.allclose(
        Reconstruction(LIKELIHOODS["bce"])(module, x, x, weight=w), (per_row * w).mean()
    )
    # a row of weight 0 moves nothing
    assert torch.allclose(
        Reconstruction(LIKELIHOODS["mse"])(module, x, x, weight=w),
        Reconstruction(LIKELIHOODS["mse"])(module, x[1:], x[1:], weight=w[1:]) * 7 / 8,
    )
    sparse = Sparse(LIKELIHOODS["mse"], "l1", weight=0.3)
    assert torch.allclose(
        sparse(module, x, x, weight=torch.ones(8)), sparse(module, x, x), atol=1e-6
    )
    elbo = ELBO(LIKELIHOODS["bce"])
    elbo.generator = torch.Generator().manual_seed(0)
    assert torch.isfinite(elbo(_vae(), x, x, weight=w))
    logits_module = torch.nn.Linear(6, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    each = torch.nn.functional.cross_entropy(logits_module(x), labels, reduction="none")
    assert torch.allclose(CrossEntropy()(logits_module, x, labels, weight=w), (each * w).mean())


def _vae():
    from skae._nn.modules import mlp_vae

    return mlp_vae(6, [5], 2, "tanh")


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.ones(10), "sample_weight.shape == \\(10,\\), expected \\(20,\\)"),
        (-np.ones(20), "Negative values in data passed to `sample_weight`"),
        (np.zeros(20), "non-zero|sums to zero"),
        (np.r_[np.nan, np.ones(19)], "NaN"),
    ],
)
def test_bad_weights_get_clear_errors(weights, message):
    X = np.random.default_rng(0).random((20, 4))
    for estimator in (AutoEncoder(2, max_iter=1), LinearAE(2), OutlierDetector()):
        with pytest.raises(ValueError, match=message):
            estimator.fit(X, sample_weight=weights)


def test_memory_mapped_rows_keep_zero_weights(tmp_path, digits01):
    """A memmap is not copied to drop rows: its zero-weight rows stay, weighing nothing."""
    X, _ = digits01
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_map = np.load(path, mmap_mode="r")
    weights = np.ones(len(X))
    weights[::2] = 0
    lae = LinearAE(4, random_state=0).fit(X_map, sample_weight=weights)
    removed = LinearAE(4, random_state=0).fit(X[1::2])
    assert_allclose(np.abs(lae.components_), np.abs(removed.components_), atol=1e-5)
    ae = AutoEncoder(4, hidden_layer_sizes=(16,), max_iter=2, random_state=0)
    ae.fit(X_map, sample_weight=weights)
    assert ae.data_path_ == "streamed"
