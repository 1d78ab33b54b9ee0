"""OutlierDetector: anomaly detection by reconstruction on any autoencoder or PCA."""

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA, KernelPCA
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skae import AutoEncoder, OutlierDetector, VariationalAE


@pytest.fixture(scope="module")
def one_class():
    """Train on one digit (0); test on held-out zeros (inliers) and other digits (outliers)."""
    digits = load_digits()
    X, y = digits.data, digits.target
    zeros = np.flatnonzero(y == 0)
    train, held_out = zeros[:120], zeros[120:]
    others = np.flatnonzero(y != 0)[:300]
    scaler = StandardScaler().fit(X[train])
    X_train = scaler.transform(X[train])
    X_test = scaler.transform(X[np.concatenate([held_out, others])])
    is_outlier = np.r_[np.zeros(len(held_out)), np.ones(len(others))]
    return X_train, X_test, is_outlier


@pytest.mark.parametrize(
    "model",
    [
        AutoEncoder(n_components=4, max_iter=100),
        VariationalAE(n_components=4, max_iter=100),
        PCA(n_components=4),
    ],
    ids=["AutoEncoder", "VariationalAE", "PCA"],
)
def test_other_digits_score_lower(one_class, model):
    X_train, X_test, is_outlier = one_class
    det = OutlierDetector(model, random_state=0).fit(X_train)
    auc = roc_auc_score(is_outlier, -det.score_samples(X_test))
    assert auc > 0.9, auc  # chance is 0.5
    assert_array_equal(det.predict(X_test), np.where(det.decision_function(X_test) < 0, -1, 1))
    assert_allclose(det.decision_function(X_test), det.score_samples(X_test) - det.offset_)


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.2, 0.5])
def test_contamination_flags_that_share_of_the_training_rows(digits, contamination):
    X, *_ = digits
    det = OutlierDetector(PCA(n_components=8), contamination=contamination).fit(X)
    assert np.mean(det.predict(X) == -1) == pytest.approx(contamination, abs=1 / len(X))
    assert_array_equal(det.fit_predict(X), det.predict(X))


def test_auto_is_three_robust_standard_deviations_below_the_median(digits, rng):
    X, *_ = digits
    det = OutlierDetector(PCA(n_components=8)).fit(X)
    scores = det.score_samples(X)
    median = np.median(scores)
    mad = np.median(np.abs(scores - median))
    assert det.offset_ == pytest.approx(median - 3 * 1.4826 * mad)
    noise = rng.normal(scale=3, size=(50, X.shape[1]))
    assert np.mean(det.predict(noise) == -1) > 0.9
    assert np.mean(det.predict(X) == -1) < 0.1


def test_the_score_is_the_likelihood_or_the_reconstruction_error(digits):
    X, X_test, *_ = digits
    ae = AutoEncoder(n_components=4, max_iter=10, random_state=0).fit(X)
    det = OutlierDetector(ae).fit(X)
    assert_allclose(det.score_samples(X_test), ae.score_samples(X_test))
    pca = OutlierDetector(PCA(n_components=4)).fit(X)
    errors = pca.feature_errors(X_test)
    assert errors.shape == X_test.shape and (errors >= 0).all()
    assert_allclose(errors.sum(axis=1), -pca.score_samples(X_test))
    likelihood = OutlierDetector(PCA(n_components=4), score_by="likelihood").fit(X)
    assert_allclose(likelihood.score_samples(X_test), likelihood.autoencoder_.score_samples(X_test))
    # a squared-error autoencoder's likelihood score is minus its reconstruction error
    assert_allclose(det.feature_errors(X_test).sum(axis=1), -det.score_samples(X_test), rtol=1e-6)


def test_a_fitted_model_is_copied_and_an_unfitted_one_seeded(digits):
    X, X_test, *_ = digits
    ae = AutoEncoder(n_components=3, max_iter=5, random_state=0).fit(X)
    before = ae.transform(X_test)
    det = OutlierDetector(ae).fit(X[:500])
    assert det.autoencoder_ is not ae and det.autoencoder_.n_iter_ == ae.n_iter_ == 5
    assert_array_equal(ae.transform(X_test), before)
    unseeded = AutoEncoder(n_components=3, max_iter=5)
    a = OutlierDetector(unseeded, random_state=0).fit(X)
    b = OutlierDetector(unseeded, random_state=0).fit(X)
    assert unseeded.random_state is None and isinstance(a.autoencoder_.random_state, int)
    assert_array_equal(a.score_samples(X_test), b.score_samples(X_test))


def test_refit_on_inliers_helps_on_contaminated_training_data(one_class):
    # zeros contaminated with 20% other digits: the first model learns them too
    X_train, X_test, is_outlier = one_class
    outliers = X_test[is_outlier == 1]
    contaminated = np.vstack([X_train, outliers[:30]])
    test = np.vstack([X_test[is_outlier == 0], outliers[30:]])
    labels = np.r_[np.zeros((is_outlier == 0).sum()), np.ones(len(outliers) - 30)]
    aucs = {}
    for refit in (False, True):
        det = OutlierDetector(PCA(n_components=8), contamination=0.2, refit_inliers=refit)
        det.fit(contaminated)
        aucs[refit] = roc_auc_score(labels, -det.score_samples(test))
    assert det.n_inliers_ == len(contaminated) - round(0.2 * len(contaminated))
    assert aucs[True] > aucs[False], aucs


def test_pandas_in_pandas_out_and_pickling(digits):
    X, X_test, *_ = digits
    columns = [f"pixel{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X_test, columns=columns, index=np.arange(len(X_test)) + 1000)
    det = OutlierDetector(PCA(n_components=4)).fit(pd.DataFrame(X, columns=columns))
    errors = det.feature_errors(frame)
    assert list(errors.columns) == columns and errors.index[0] == 1000
    loaded = pickle.loads(pickle.dumps(det))
    assert_array_equal(loaded.score_samples(frame), det.score_samples(frame))


def test_bad_input_gets_clear_errors(digits):
    X, *_ = digits
    with pytest.raises(InvalidParameterError, match="'contamination' parameter"):
        OutlierDetector(contamination=0.6).fit(X)
    with pytest.raises(InvalidParameterError, match="'autoencoder' parameter"):
        OutlierDetector(Normalizer()).fit(X)  # no inverse_transform
    with pytest.raises(ValueError, match="X has 64 features, but the fitted autoencoder PCA"):
        OutlierDetector(PCA(n_components=4).fit(X[:, :10])).fit(X)
    with pytest.raises(ValueError, match="score_by='likelihood' uses the model's score_samples"):
        OutlierDetector(KernelPCA(4, fit_inverse_transform=True), score_by="likelihood").fit(X)
    kernel = OutlierDetector(KernelPCA(4, fit_inverse_transform=True)).fit(X[:300])
    assert kernel.score_samples(X[:5]).shape == (5,)
