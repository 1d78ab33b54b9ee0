"""Adam's learning-rate schedules (``learning_rate``), shared by every skae estimator."""

import math
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone

from skae import AutoEncoder, LinearAE, StackedAE, VariationalAE


def _lrs(estimator):
    return np.asarray(estimator.history_[:, "learning_rate"])


def test_constant_records_no_schedule(digits):
    X, *_ = digits
    ae = AutoEncoder(max_iter=3, random_state=0).fit(X)
    assert "learning_rate" not in ae.history_[-1]
    assert ae.net_.optimizer_.param_groups[0]["lr"] == 1e-3


def test_cosine_decays_along_half_a_cosine(digits):
    X, *_ = digits
    ae = AutoEncoder(
        max_iter=8, learning_rate="cosine", learning_rate_init=1e-2, random_state=0
    ).fit(X)
    expected = [1e-2 * 0.5 * (1 + math.cos(math.pi * e / 8)) for e in range(8)]
    assert_allclose(_lrs(ae), expected, rtol=1e-12)


def test_cosine_warm_start_runs_a_new_cycle(digits):
    X, *_ = digits
    ae = AutoEncoder(max_iter=4, learning_rate="cosine", warm_start=True, random_state=0).fit(X)
    ae.fit(X)
    lrs = _lrs(ae)
    assert_allclose(lrs[4:], lrs[:4], rtol=1e-12)
    assert lrs[4] == pytest.approx(1e-3)


def test_cosine_starts_as_constant_and_then_steps_smaller(digits):
    X, *_ = digits
    params = {"n_components": 4, "max_iter": 6, "learning_rate_init": 1e-2, "random_state": 0}
    constant = AutoEncoder(**params).fit(X)
    cosine = AutoEncoder(learning_rate="cosine", **params).fit(X)
    assert cosine.loss_curve_[0] == pytest.approx(constant.loss_curve_[0])
    assert cosine.loss_curve_[1:] != constant.loss_curve_[1:]
    assert cosine.net_.optimizer_.param_groups[0]["lr"] < 1e-2 * 0.1


def test_adaptive_divides_by_five_when_the_loss_stalls(digits):
    X, *_ = digits
    # tol=0.05 counts any epoch that improves the loss by less than 5% as a stall
    ae = AutoEncoder(
        max_iter=30, learning_rate="adaptive", tol=0.05, n_iter_no_change=30, random_state=0
    ).fit(X)
    lrs = _lrs(ae)
    assert np.all(np.diff(lrs) <= 0) and lrs[-1] < lrs[0]
    steps = np.log(lrs / 1e-3) / np.log(0.2)
    assert_allclose(steps, np.round(steps), atol=1e-9)  # only divisions by 5
    losses = np.asarray(ae.loss_curve_)
    # each division follows two epochs without a 5% improvement on the best loss
    for epoch in np.flatnonzero(np.diff(lrs)) + 1:
        best_before = losses[: epoch - 2].min()
        assert losses[epoch - 2 : epoch].min() > best_before * (1 - 0.05)


def test_adaptive_monitors_validation_loss_with_early_stopping(digits):
    X, *_ = digits
    ae = AutoEncoder(
        max_iter=20,
        learning_rate="adaptive",
        early_stopping=True,
        tol=0.05,
        n_iter_no_change=20,
        random_state=0,
    ).fit(X)
    schedule = dict(ae.net_.callbacks_)["lr_schedule"]
    assert schedule.monitor == "valid_loss"
    assert _lrs(ae)[-1] < 1e-3


def test_lbfgs_has_no_schedule(digits):
    X, *_ = digits
    lae = LinearAE(
        n_components=2, solver="lbfgs", max_iter=3, learning_rate="cosine", random_state=0
    ).fit(X)
    assert "lr_schedule" not in dict(lae.net_.callbacks_)


@pytest.mark.parametrize("learning_rate", ["cosine", "adaptive"])
def test_scheduled_estimators_pickle_and_clone(digits, learning_rate):
    X, X_test, *_ = digits
    ae = AutoEncoder(max_iter=3, learning_rate=learning_rate, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(ae))
    assert_allclose(restored.transform(X_test), ae.transform(X_test))
    again = clone(ae).fit(X)
    assert_allclose(again.transform(X_test), ae.transform(X_test))


def test_stacked_pretraining_and_vae_follow_the_schedule(digits, digits01):
    X, *_ = digits
    stacked = StackedAE(
        n_components=4,
        hidden_layer_sizes=(16,),
        pretrain_iter=3,
        max_iter=3,
        learning_rate="cosine",
        random_state=0,
    ).fit(X)
    assert_allclose(_lrs(stacked), [1e-3 * 0.5 * (1 + math.cos(math.pi * e / 3)) for e in range(3)])
    vae = VariationalAE(
        n_components=2, max_iter=3, learning_rate="cosine", loss="bce", random_state=0
    ).fit(digits01)
    assert _lrs(vae)[-1] < _lrs(vae)[0]


def test_zero_epochs_with_a_schedule(digits):
    X, *_ = digits
    ae = AutoEncoder(max_iter=0, learning_rate="cosine", random_state=0).fit(X)
    assert ae.n_iter_ == 0
