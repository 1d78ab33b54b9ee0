import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

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
        pca.inverse_transform(pca.transform(X_test)), X_test)

    angles = np.degrees(subspace_angles(lae.components_.T, pca.components_.T))
    assert angles.max() < 2.0

    assert_allclose(lae.components_ @ lae.components_.T, np.eye(n_components), atol=1e-6)
    assert np.all(np.diff(lae.explained_variance_) <= 0)
    assert_allclose(lae.explained_variance_, pca.explained_variance_, rtol=1e-2)
    assert_allclose(lae.explained_variance_ratio_, pca.explained_variance_ratio_, rtol=1e-2)
    assert_allclose(lae.mean_, pca.mean_)
    # Same directions up to sign, so the codes are PCA's up to sign.
    assert_allclose(np.abs(np.sum(lae.components_ * pca.components_, axis=1)), 1, atol=1e-3)


def test_transform_is_projection_on_components(digits):
    X, X_test, *_ = digits
    lae = LinearAE(n_components=3, max_iter=10, random_state=0).fit(X)
    assert_allclose(lae.transform(X_test), (X_test - lae.mean_) @ lae.components_.T, atol=1e-8)
    assert_allclose(lae.inverse_transform(lae.transform(X_test)),
                    (X_test - lae.mean_) @ lae.components_.T @ lae.components_ + lae.mean_,
                    atol=1e-8)


def test_adam_solver_trains_too(digits):
    X, *_ = digits
    lae = LinearAE(n_components=2, solver="adam", batch_size=len(X), learning_rate_init=3e-2,
                   max_iter=300, random_state=0).fit(X)
    pca = PCA(n_components=2).fit(X)
    assert sse(lae.inverse_transform(lae.transform(X)), X) <= 1.01 * sse(
        pca.inverse_transform(pca.transform(X)), X)


def test_too_many_components_is_an_error(digits):
    X, *_ = digits
    with pytest.raises(ValueError, match="n_components=65 must be at most n_features=64"):
        LinearAE(n_components=65).fit(X)
