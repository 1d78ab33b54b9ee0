"""Metadata routing (scikit-learn's ``enable_metadata_routing``): ``sample_weight`` reaches a
skae estimator inside ``Pipeline``, ``GridSearchCV`` and ``cross_validate`` when requested
with ``set_fit_request``, is refused when its request is unset, and is left out when it is
declined; and it reaches the autoencoder that ``EncoderClassifier`` and ``OutlierDetector``
fit inside them."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder, EncoderClassifier, OutlierDetector


@pytest.fixture(autouse=True)
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture
def data():
    digits = load_digits()
    X, y = digits.data[:300] / 16.0, digits.target[:300]
    weights = np.random.RandomState(0).choice([0.0, 1.0, 3.0], size=len(X))
    return X, y, weights


def autoencoder(**kwargs):
    return AutoEncoder(n_components=3, max_iter=3, early_stopping=False, random_state=0, **kwargs)


def assert_same_model(a, b, X):
    np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=1e-5, atol=1e-6)


def test_weights_reach_a_requested_autoencoder_in_a_pipeline(data):
    X, _, w = data
    pipe = make_pipeline(autoencoder().set_fit_request(sample_weight=True))
    pipe.fit(X, sample_weight=w)
    assert_same_model(pipe[-1], autoencoder().fit(X, sample_weight=w), X)
    # and they change the model: the weighted fit is not the unweighted one
    assert not np.allclose(pipe.transform(X), autoencoder().fit(X).transform(X))


def test_weights_are_refused_when_the_request_is_unset(data):
    X, _, w = data
    with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
        make_pipeline(autoencoder()).fit(X, sample_weight=w)


def test_declined_weights_are_left_out(data):
    X, _, w = data
    pipe = make_pipeline(
        StandardScaler().set_fit_request(sample_weight=True),
        autoencoder().set_fit_request(sample_weight=False),
    )
    pipe.fit(X, sample_weight=w)
    Xt = StandardScaler().fit(X, sample_weight=w).transform(X)
    assert_same_model(pipe[-1], autoencoder().fit(Xt), Xt)


def test_weights_reach_the_fits_of_a_grid_search(data):
    X, _, w = data
    search = GridSearchCV(
        autoencoder().set_fit_request(sample_weight=True),
        {"n_components": [2, 3]},
        cv=KFold(2),
    )
    search.fit(X, sample_weight=w)
    best = autoencoder().set_params(**search.best_params_).fit(X, sample_weight=w)
    assert_same_model(search.best_estimator_, best, X)


def test_weights_reach_each_fold_of_cross_validate(data):
    X, _, w = data
    result = cross_validate(
        autoencoder().set_fit_request(sample_weight=True),
        X,
        cv=KFold(2),
        params={"sample_weight": w},
        return_estimator=True,
    )
    for (train, _), fitted in zip(KFold(2).split(X), result["estimator"], strict=True):
        assert_same_model(fitted, autoencoder().fit(X[train], sample_weight=w[train]), X)


def test_weights_reach_the_classifiers_autoencoder(data):
    X, y, w = data
    clf = EncoderClassifier(autoencoder(), max_iter=2, random_state=0)
    pipe = make_pipeline(clf.set_fit_request(sample_weight=True))
    pipe.fit(X, y, sample_weight=w)
    assert_same_model(pipe[-1].autoencoder_, autoencoder().fit(X, sample_weight=w), X)
    # and its fine-tuning: the same classifier fitted directly with the weights
    direct = EncoderClassifier(autoencoder(), max_iter=2, random_state=0)
    direct.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(pipe.predict_proba(X), direct.predict_proba(X), rtol=1e-5)


def test_weights_reach_the_detectors_autoencoder(data):
    X, _, w = data
    det = OutlierDetector(autoencoder(), random_state=0).set_fit_request(sample_weight=True)
    search = GridSearchCV(
        det,
        {"contamination": [0.1, 0.2]},
        cv=KFold(2),
        scoring=lambda est, X, y=None: float(np.mean(est.score_samples(X))),
    )
    search.fit(X, sample_weight=w)
    assert_same_model(search.best_estimator_.autoencoder_, autoencoder().fit(X, sample_weight=w), X)
    with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
        make_pipeline(OutlierDetector(autoencoder())).fit(X, sample_weight=w)
