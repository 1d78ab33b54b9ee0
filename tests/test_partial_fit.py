"""partial_fit: one pass per call over chunks of any source, continuing one model."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone

from skae import (
    AutoEncoder,
    ContractiveAE,
    DenoisingAE,
    EncoderClassifier,
    SparseAE,
    StackedAE,
    VariationalAE,
)

from .conftest import sse


def test_chunks_reach_the_quality_of_fit(digits):
    # 60 passes as 4 chunks each: 23.74 held-out SSE per image against fit's 23.92 (seed 0)
    X, X_test, *_ = digits
    whole = AutoEncoder(n_components=8, max_iter=60, random_state=0).fit(X)
    chunked = AutoEncoder(n_components=8, random_state=0)
    for _ in range(60):
        for chunk in np.array_split(X, 4):
            chunked.partial_fit(chunk)
    assert chunked.n_iter_ == 240
    error = sse(chunked.inverse_transform(chunked.transform(X_test)), X_test)
    reference = sse(whole.inverse_transform(whole.transform(X_test)), X_test)
    assert error < 1.1 * reference


@pytest.mark.parametrize(
    "Estimator", [AutoEncoder, DenoisingAE, ContractiveAE, SparseAE, StackedAE, VariationalAE]
)
def test_every_autoencoder_continues_one_pass_per_call(digits, Estimator):
    X, *_ = digits
    est = Estimator(n_components=3, random_state=0).partial_fit(X[:700])
    weights = {k: v.clone() for k, v in est.module_.state_dict().items()}
    assert est.n_iter_ == 1
    est.partial_fit(X[700:])
    assert est.n_iter_ == 2
    assert any(not np.array_equal(v, est.module_.state_dict()[k]) for k, v in weights.items())
    # the first call is a one-epoch fit: the same model
    one_epoch = clone(est).set_params(max_iter=1, early_stopping=False).fit(X[:700])
    assert_array_equal(
        Estimator(n_components=3, random_state=0).partial_fit(X[:700]).transform(X),
        one_epoch.transform(X),
    )


def test_a_bad_chunk_leaves_the_model_as_it_was(digits):
    X, X_test, *_ = digits
    ae = AutoEncoder(n_components=3, random_state=0).partial_fit(X)
    before = ae.transform(X_test)
    with pytest.raises(ValueError, match="X has 10 features, but AutoEncoder is expecting 64"):
        ae.partial_fit(X[:, :10])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        ae.partial_fit(np.full_like(X, np.nan))
    with pytest.raises(ValueError, match="too large to compute with in float32"):
        ae.partial_fit(X * 1e30)
    assert ae.n_iter_ == 1
    assert_array_equal(ae.transform(X_test), before)


def test_the_classifier_needs_its_classes_first(digits):
    X, X_test, y, y_test = digits
    clf = EncoderClassifier(
        AutoEncoder(n_components=8, max_iter=10, random_state=0), random_state=0
    )
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    for _ in range(10):
        for rows in np.array_split(np.arange(len(X)), 3):
            clf.partial_fit(X[rows], y[rows], classes=np.arange(10))
    assert clf.n_iter_ == 30
    assert_array_equal(clf.classes_, np.arange(10))
    assert clf.score(X_test, y_test) > 0.8
    before = clf.predict_proba(X_test)
    with pytest.raises(ValueError, match=r"labels \[10\] that the first fit did not see"):
        clf.partial_fit(X, np.where(y == 0, 10, y))
    assert_array_equal(clf.predict_proba(X_test), before)


def test_classes_may_hold_labels_the_first_chunk_lacks(digits):
    X, _, y, _ = digits
    first = y < 5
    clf = EncoderClassifier(AutoEncoder(n_components=4, max_iter=2, random_state=0), random_state=0)
    clf.partial_fit(X[first], y[first], classes=np.arange(10))
    clf.partial_fit(X[~first], y[~first])
    assert clf.predict_proba(X).shape == (len(X), 10)
    with pytest.raises(ValueError, match=r"labels \[3\] that are not in classes=\[0, 1, 2\]"):
        EncoderClassifier(random_state=0).partial_fit(X[:20], y[:20] % 4, classes=[0, 1, 2])


@pytest.mark.parametrize("schedule", ["cosine", "adaptive"])
def test_the_learning_rate_schedule_carries_on_across_calls(digits01, schedule):
    params = {"learning_rate": schedule, "max_iter": 4, "random_state": 0}
    whole = AutoEncoder(**params).fit(digits01)
    chunked = AutoEncoder(**params)
    for _ in range(4):
        chunked.partial_fit(digits01)
    assert chunked.history_[:, "learning_rate"] == whole.history_[:, "learning_rate"]
    if schedule == "cosine":  # while warm_start's fit starts a new cycle, as documented
        warm = AutoEncoder(**{**params, "max_iter": 2}, warm_start=True)
        rates = warm.fit(digits01).fit(digits01).history_[:, "learning_rate"]
        assert rates[0] == rates[2] > rates[1] == rates[3]
