import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import LinearAE

from .conftest import sse


@pytest.mark.parametrize("n_components", [2, 5])
def test_linear_ae_is_pca(digits, n_components):
    X, X_test, *_ = digits
    lae = LinearAE(n_components=n_components, random_state=0).fit(X)
    pca = PCA(n_components=n_components).fit(X)

    lae_error = sse(lae.inverse_transform(lae.transform(X)), X)
    pca_error = sse(pca.inverse_transform(pca.transform(X)), X)
    assert lae_error <= 1.01 * pca_error
    assert sse(lae.inverse_transform(lae.transform(X_test)), X_test) <= 1.01 * sse(
        pca.inverse_transform(pca.transform(X_test)), X_test
    )

    angles = np.degrees(subspace_angles(lae.components_.T, pca.components_.T))
    assert angles.max() < 2.0

    assert_allclose(lae.components_ @ lae.components_.T, np.eye(n_components), atol=1e-6)
    assert np.all(np.diff(lae.explained_variance_) <= 0)
    assert_allclose(lae.explained_variance_, pca.explained_variance_, rtol=1e-2)
    assert_allclose(lae.explained_variance_ratio_, pca.explained_variance_ratio_, rtol=1e-2)
    assert_allclose(lae.mean_, pca.mean_, atol=1e-12)
    # Same directions up to sign, so the codes are PCA's up to sign.
    assert_allclose(np.abs(np.sum(lae.components_ * pca.components_, axis=1)), 1, atol=1e-3)


def test_transform_is_projection_on_components(digits):
    X, X_test, *_ = digits
    lae = LinearAE(n_components=3, max_iter=10, random_state=0).fit(X)
    assert_allclose(lae.transform(X_test), (X_test - lae.mean_) @ lae.components_.T, atol=1e-8)
    assert_allclose(
        lae.inverse_transform(lae.transform(X_test)),
        (X_test - lae.mean_) @ lae.components_.T @ lae.components_ + lae.mean_,
        atol=1e-8,
    )


def test_adam_solver_trains_too(digits):
    X, *_ = digits
    lae = LinearAE(
        n_components=2,
        solver="adam",
        batch_size=len(X),
        learning_rate_init=3e-2,
        max_iter=300,
        random_state=0,
    ).fit(X)
    pca = PCA(n_components=2).fit(X)
    assert sse(lae.inverse_transform(lae.transform(X)), X) <= 1.01 * sse(
        pca.inverse_transform(pca.transform(X)), X
    )


def test_too_many_components_is_an_error(digits):
    X, *_ = digits
    with pytest.raises(ValueError, match="n_components=65 must be at most n_features=64"):
        LinearAE(n_components=65).fit(X)


def test_lbfgs_trains_on_rows_with_the_data_mean_and_covariance(digits):
    X, *_ = digits
    lae = LinearAE(n_components=3, solver="lbfgs")
    rows, weights = lae._training_rows(X)
    assert weights is None
    assert len(rows) <= 2 * X.shape[1] < len(X)
    assert_allclose(rows.mean(axis=0), X.mean(axis=0), atol=1e-12)
    assert_allclose(np.cov(rows.T, bias=True), np.cov(X.T, bias=True), atol=1e-10)
    # rows that would cost more than X, or that early stopping must split, are X itself
    assert LinearAE(solver="lbfgs", early_stopping=True)._training_rows(X)[0] is X
    assert LinearAE(solver="adam")._training_rows(X)[0] is X
    assert LinearAE(solver="em")._training_rows(X)[0] is X
    few = X[:100].astype(np.float32)
    assert LinearAE(solver="lbfgs")._training_rows(few)[0] is few


def test_lbfgs_on_moment_rows_follows_the_full_data_path(digits, monkeypatch):
    X, *_ = digits
    fast = LinearAE(n_components=4, solver="lbfgs", max_iter=8, random_state=0).fit(X)
    monkeypatch.setattr(LinearAE, "_training_rows", lambda self, X, w=None: (X, w))
    full = LinearAE(n_components=4, solver="lbfgs", max_iter=8, random_state=0).fit(X)
    # the same loss at every step (the history is the loss on X, not on the rows)
    assert_allclose(fast.loss_curve_, full.loss_curve_, rtol=1e-8)
    assert_allclose(fast.components_, full.components_, atol=1e-5)
    assert_allclose(fast.mean_, full.mean_, atol=1e-12)
    assert_allclose(-fast.score(X), full.loss_curve_[-1], rtol=1e-2)


@pytest.mark.parametrize("solver", ["lbfgs", "em"])
def test_both_solvers_reach_pca(digits, solver):
    X, *_ = digits
    lae = LinearAE(n_components=4, solver=solver, random_state=0).fit(X)
    pca = PCA(n_components=4).fit(X)
    assert np.degrees(subspace_angles(lae.components_.T, pca.components_.T)).max() < 2.0


def test_em_never_increases_the_loss_and_stops_when_the_subspace_stops(digits):
    X, *_ = digits
    lae = LinearAE(n_components=6, random_state=0).fit(X)
    curve = np.array(lae.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-9 * curve[0])
    assert lae.n_iter_ < lae.max_iter  # converged: tol on the subspace's move
    pca = PCA(n_components=6).fit(X)
    # the last loss is PCA's training error (the covariance with 1/n)
    residual = ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum(axis=1).mean()
    assert_allclose(curve[-1], residual, rtol=1e-6)
    with pytest.warns(ConvergenceWarning, match="subspace still moves"):
        LinearAE(n_components=6, max_iter=2, random_state=0).fit(X)


def test_em_partial_fit_is_the_pca_of_every_row_seen(digits):
    X, *_ = digits
    lae = LinearAE(n_components=5, random_state=0)
    for chunk in np.array_split(X, 7):
        lae.partial_fit(chunk)
    pca = PCA(n_components=5).fit(X)
    assert lae.n_samples_seen_ == len(X)
    assert_allclose(lae.mean_, pca.mean_, atol=1e-10)
    assert np.degrees(subspace_angles(lae.components_.T, pca.components_.T)).max() < 0.1
    assert_allclose(lae.explained_variance_, pca.explained_variance_, rtol=1e-6)


def test_em_on_rank_deficient_and_float32_data(rng):
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10))  # rank 3 in 10 dimensions
    lae = LinearAE(n_components=5, random_state=0).fit(X.astype(np.float32))
    assert lae.components_.dtype == np.float32
    assert np.all(np.isfinite(lae.components_))
    pca = PCA(n_components=3).fit(X)
    assert np.degrees(subspace_angles(lae.components_[:3].T, pca.components_.T)).max() < 0.1
    with pytest.raises(ValueError, match="solver='em'"):
        LinearAE(early_stopping=True).fit(X)


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 10, 30])
def test_em_matches_pca_on_mnist_fast(k):
    import time

    from skae.datasets import load_mnist

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
    if not path.is_file():
        pytest.skip("MNIST is not at ../shared/data/mnist.npz")
    X = load_mnist(path).X_train[:10000]
    start = time.perf_counter()
    lae = LinearAE(n_components=k, random_state=0).fit(X)
    seconds = time.perf_counter() - start
    pca = PCA(n_components=k).fit(X)
    assert np.degrees(subspace_angles(lae.components_.T, pca.components_.T)).max() < 2.0
    errors = [((X - m.inverse_transform(m.transform(X))) ** 2).sum(1).mean() for m in (lae, pca)]
    assert errors[0] <= 1.01 * errors[1]
    assert seconds <= 20, seconds


@pytest.mark.parametrize("solver", ["em", "adam", "lbfgs"])
def test_every_solver_records_its_steps_where_every_estimator_does(solver, digits01):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae = LinearAE(2, solver=solver, max_iter=4, random_state=0).fit(digits01)
    assert ae.n_iter_ == len(ae.history_) == len(ae.loss_curve_) <= 4
    assert ae.loss_curve_ == list(ae.history_[:, "train_loss"])
    assert ae.best_loss_ == min(ae.loss_curve_)
    with pytest.warns(ConvergenceWarning, match=r"LinearAE: maximum iterations \(max_iter=1\)"):
        LinearAE(2, solver=solver, max_iter=1, random_state=0).fit(digits01)
