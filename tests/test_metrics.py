import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder
from skae.metrics import (
    SCORERS,
    knn_accuracy,
    linear_probe_accuracy,
    neg_reconstruction_error,
    reconstruction_error,
    trustworthiness,
)


@pytest.fixture(scope="module")
def pca(digits):
    return PCA(n_components=5).fit(digits[0])


def test_reconstruction_error_by_hand(digits, pca):
    _, X, *_ = digits
    residual = X - pca.inverse_transform(pca.transform(X))
    assert reconstruction_error(pca, X) == pytest.approx((residual**2).sum(1).mean())
    assert reconstruction_error(pca, X, per="feature") == pytest.approx((residual**2).mean())
    # as a scorer, higher is better: a search picks the PCA that reconstructs best
    search = GridSearchCV(PCA(), {"n_components": [2, 5, 10]}, scoring=neg_reconstruction_error)
    assert search.fit(X).best_params_ == {"n_components": 10}
    with pytest.raises(ValueError, match="per must be"):
        reconstruction_error(pca, X, per="pixel")


def test_trustworthiness_is_sklearns(digits, pca):
    _, X, *_ = digits
    assert trustworthiness(pca, X, n_neighbors=7) == pytest.approx(
        sk_trustworthiness(X, pca.transform(X), n_neighbors=7)
    )


def test_knn_accuracy_by_hand():
    # Codes on a line; labels chosen so the leave-one-out vote is known.
    class Identity:
        def transform(self, X):
            return X

    X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [13.5]])
    y = np.array([0, 0, 0, 1, 1, 1, 0])
    # 1-NN among the others: every point's nearest neighbour shares its label except 13.5,
    # whose nearest is 12 (label 1).
    assert knn_accuracy(Identity(), X, y, n_neighbors=1) == pytest.approx(6 / 7)
    # 3-NN: 0, 1, 2 vote 0 (two of 0, 1, 2 and 10); 10, 11, 12 vote 1; 13.5's are 12, 11, 10.
    assert knn_accuracy(Identity(), X, y, n_neighbors=3) == pytest.approx(6 / 7)
    # 6-NN: everyone sees all others; the majority label of the other six decides.
    assert knn_accuracy(Identity(), X, y, n_neighbors=6) == pytest.approx(
        np.mean([np.bincount(np.delete(y, i)).argmax() == y[i] for i in range(7)])
    )


def test_knn_accuracy_with_more_duplicates_than_neighbours():
    """Codes that coincide (a collapsed code, duplicated rows): a sample need not be among
    its own k+1 nearest neighbours; each one still votes with k others (found by the
    one-class MNIST benchmark, where the reshape failed)."""

    class Identity:
        def transform(self, X):
            return X

    X = np.r_[np.zeros((12, 2)), np.ones((3, 2)) * 5]
    y = np.r_[np.zeros(12, dtype=int), np.ones(3, dtype=int)]
    # every zero code's 5 others are zeros; each of the three 5s sees the other two, then zeros
    assert knn_accuracy(Identity(), X, y, n_neighbors=5) == pytest.approx(12 / 15)
    assert knn_accuracy(Identity(), X, y, n_neighbors=2) == 1.0


def test_knn_accuracy_excludes_the_sample_itself(digits, pca):
    _, X, _, y = digits

    class Identity:
        def transform(self, X):
            return X

    # With itself counted every 1-NN vote would be right.
    assert knn_accuracy(Identity(), X, y, n_neighbors=1) < 1.0
    assert 0.5 < knn_accuracy(pca, X, y) < 1.0


def test_linear_probe_by_hand(digits, pca):
    _, X, _, y = digits
    expected = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        pca.transform(X),
        y,
        cv=5,
    ).mean()
    assert linear_probe_accuracy(pca, X, y) == pytest.approx(expected)


def test_scorers_in_grid_search_over_a_pipeline(digits):
    X, _, y, _ = digits
    pipe = make_pipeline(StandardScaler(), PCA())
    search = GridSearchCV(
        pipe,
        {"pca__n_components": [2, 10]},
        scoring=SCORERS,
        refit="neg_reconstruction_error",
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"pca__n_components": 10}
    results = search.cv_results_
    for name in SCORERS:
        assert np.all(np.isfinite(results[f"mean_test_{name}"]))
    # More components keep neighbourhoods and classes better too.
    assert np.all(np.diff(results["mean_test_trustworthiness"]) > 0)
    assert np.all(np.diff(results["mean_test_knn_accuracy"]) > 0)


def test_metrics_work_on_an_autoencoder(digits):
    X, X_test, _, y_test = digits
    ae = AutoEncoder(n_components=8, max_iter=30, random_state=0).fit(X)
    assert_allclose(-neg_reconstruction_error(ae, X_test), -ae.score(X_test), rtol=1e-6)
    assert 0.5 < trustworthiness(ae, X_test) <= 1
    assert 0.5 < knn_accuracy(ae, X_test, y_test) <= 1
