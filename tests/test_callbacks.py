"""scikit-learn's callback API (sklearn.callback, scikit-learn >= 1.9) on skae's estimators:
the task tree each fit reports, the estimator handed over at each epoch, stopping, and the
callbacks scikit-learn ships (ProgressBar, ScoringMonitor) inside searches."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, GradientNormClipping

from skae import (
    MLP,
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

try:
    import sklearn.callback as sk_callback
except ImportError:
    sk_callback = None

needs_callbacks = pytest.mark.skipif(
    sk_callback is None, reason="scikit-learn's callback API needs scikit-learn >= 1.9"
)

AUTOENCODERS = [AutoEncoder, DenoisingAE, ContractiveAE, SparseAE, StackedAE, VariationalAE]


class Recorder:
    """A callback that records every hook call: (event, estimator, task name, task id),
    and, at an epoch's end, the fitted estimator's score; it asks to stop after the epoch
    numbered ``stop_after`` (or the EM step)."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.events = []
        self.epoch_estimators = []
        self.merged = []

    def setup(self, estimator, context):
        self.events.append(("setup", type(estimator).__name__, None, None))

    def teardown(self, estimator, context):
        self.events.append(("teardown", type(estimator).__name__, None, None))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None):
        self.events.append(("begin", context.estimator_name, context.task_name, context.task_id))
        if context.source_task_name is not None:  # a sub-estimator's tree, merged
            self.merged.append((context.source_task_name, context.estimator_name))

    def on_fit_task_end(
        self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None
    ):
        self.events.append(("end", context.estimator_name, context.task_name, context.task_id))
        if context.task_name in ("epoch", "em step"):
            self.epoch_estimators.append((context.estimator_name, fitted_estimator, X))
            return self.stop_after is not None and context.task_id == self.stop_after
        return False

    def names(self, event="end"):
        return [(e, name) for kind, e, name, _ in self.events if kind == event]


class Propagated(Recorder):
    """The same, auto-propagated to the estimators a meta-estimator fits."""

    max_propagation_depth = None


@pytest.fixture
def X(digits01):
    return digits01[:300]


def test_old_scikit_learn_says_what_set_callbacks_needs():
    if sk_callback is not None:
        pytest.skip("scikit-learn >= 1.9 has the callback API")
    with pytest.raises(RuntimeError, match=r"set_callbacks needs scikit-learn >= 1\.9"):
        AutoEncoder().set_callbacks(object())


@needs_callbacks
@pytest.mark.parametrize("Estimator", AUTOENCODERS)
def test_every_epoch_is_a_subtask_of_the_fit(Estimator, X):
    recorder = Recorder()
    est = Estimator(n_components=2, max_iter=3, early_stopping=False, random_state=0)
    est.set_callbacks(recorder).fit(X)
    name = Estimator.__name__
    assert recorder.events[0] == ("setup", name, None, None)
    assert recorder.events[1] == ("begin", name, "fit", 0)
    assert recorder.events[-2] == ("end", name, "fit", 0)
    assert recorder.events[-1] == ("teardown", name, None, None)
    # the deep network's epochs (StackedAE's pretrained levels have epochs of their own)
    scored = [fitted for _, fitted, _ in recorder.epoch_estimators if fitted is not None]
    assert len(scored) == est.n_iter_ == 3
    begins = [e for e in recorder.events if e[0] == "begin"]
    ends = [e for e in recorder.events if e[0] == "end"]
    assert sorted(begins, key=str) == sorted([("begin", *e[1:]) for e in ends], key=str)


@needs_callbacks
def test_an_epochs_estimator_has_the_weights_of_that_epoch(X):
    recorder = Recorder()
    est = AutoEncoder(n_components=2, max_iter=4, early_stopping=False, random_state=0)
    est.set_callbacks(recorder).fit(X)
    fitted = [f for _, f, _ in recorder.epoch_estimators]
    scores = [f.score(X) for f in fitted]
    assert len(set(scores)) == 4  # four different states, not four views of one
    assert scores[-1] == pytest.approx(est.score(X), rel=1e-6)
    np.testing.assert_allclose(fitted[-1].transform(X), est.transform(X), rtol=1e-5, atol=1e-6)
    # each is a copy: training on did not change the first epoch's
    assert fitted[0].score(X) == scores[0]
    assert fitted[0].net_ is not est.net_


@needs_callbacks
def test_partial_fit_is_one_epoch(X):
    recorder = Recorder()
    est = AutoEncoder(n_components=2, random_state=0).set_callbacks(recorder)
    est.partial_fit(X)
    est.partial_fit(X)
    assert (
        recorder.names("begin")
        == [
            ("AutoEncoder", "partial_fit"),
            ("AutoEncoder", "epoch"),
        ]
        * 2
    )


@needs_callbacks
def test_stacked_ae_reports_its_levels_then_the_fine_tuning(X):
    recorder = Recorder()
    est = StackedAE(
        n_components=2,
        hidden_layer_sizes=(16, 8),
        pretrain_iter=2,
        max_iter=3,
        early_stopping=False,
        random_state=0,
    )
    est.set_callbacks(recorder).fit(X)
    top = [
        (name, task_id)
        for kind, _, name, task_id in recorder.events
        if kind == "begin" and name != "epoch"
    ]
    assert top == [
        ("fit", 0),
        ("pretrain level", 0),
        ("pretrain level", 1),
        ("pretrain level", 2),
        ("fine-tune", 3),
    ]
    levels = [f for _, f, _ in recorder.epoch_estimators[:6]]
    assert levels == [None] * 6  # the deep network is not fitted while its levels train
    assert all(f is not None for _, f, _ in recorder.epoch_estimators[6:])
    assert len(recorder.epoch_estimators) == 6 + 3


@needs_callbacks
def test_linear_ae_reports_its_em_steps(X):
    recorder = Recorder()
    est = LinearAE(n_components=3, max_iter=50, random_state=0).set_callbacks(recorder).fit(X)
    steps = recorder.epoch_estimators
    assert len(steps) == est.n_iter_
    # the last step's estimator is the fitted subspace (up to the rotation _after_fit makes)
    last = steps[-1][1]
    np.testing.assert_allclose(
        last.inverse_transform(last.transform(X)),
        est.inverse_transform(est.transform(X)),
        atol=1e-4,
    )


@needs_callbacks
@pytest.mark.parametrize(
    "make",
    [
        lambda: AutoEncoder(n_components=2, max_iter=20, early_stopping=False, random_state=0),
        lambda: AutoEncoder(n_components=2, max_iter=20, early_stopping=True, random_state=0),
        lambda: StackedAE(n_components=2, max_iter=20, pretrain_iter=1, random_state=0),
        lambda: VariationalAE(n_components=2, max_iter=20, random_state=0),
        lambda: LinearAE(n_components=2, max_iter=20, tol=0.0, random_state=0),
    ],
)
def test_a_callback_stops_the_training_cleanly(make, X):
    est = make().set_callbacks(Recorder(stop_after=2))
    with warnings.catch_warnings():
        # stopped by a callback: neither "not converged" nor "interrupted"
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.filterwarnings("error", message=".*interrupted.*")
        est.fit(X)
    assert est.n_iter_ == 3
    assert np.isfinite(est.score(X))
    assert est.transform(X).shape == (len(X), 2)


@needs_callbacks
def test_encoder_classifier_nests_its_autoencoder(digits01):
    X, y = digits01[:300], load_digits().target[:300]
    recorder = Propagated()
    clf = EncoderClassifier(
        AutoEncoder(n_components=4, max_iter=2, early_stopping=False),
        max_iter=3,
        early_stopping=False,
        random_state=0,
    )
    clf.set_callbacks(recorder).fit(X, y)
    begins = recorder.names("begin")
    # the autoencoder's own tree, hung under the classifier's "fit autoencoder" task
    assert begins[:2] == [("EncoderClassifier", "fit"), ("AutoEncoder", "fit")]
    assert recorder.merged == [("fit autoencoder", "AutoEncoder")]
    assert begins.count(("AutoEncoder", "epoch")) == 2
    assert ("EncoderClassifier", "fine-tune") in begins
    assert begins.count(("EncoderClassifier", "epoch")) == 3
    # the fine-tuning's epochs hand over a classifier that predicts
    clf_epochs = [f for name, f, _ in recorder.epoch_estimators if name == "EncoderClassifier"]
    assert clf_epochs[-1].predict(X).shape == y.shape
    assert clf_epochs[-1].score(X, y) == pytest.approx(clf.score(X, y))


@needs_callbacks
def test_outlier_detector_nests_its_model_and_the_refit(X):
    recorder = Propagated()
    det = OutlierDetector(refit_inliers=True, random_state=0)
    det.set_callbacks(recorder).fit(X)
    begins = recorder.names("begin")
    assert begins[:2] == [("OutlierDetector", "fit"), ("Pipeline", "fit")]
    assert recorder.merged[0] == ("fit model", "Pipeline")
    assert ("refit on inliers", "Pipeline") in recorder.merged
    # the default model's pipeline and its autoencoder's epochs, under each
    assert begins.count(("Pipeline", "fit")) == 2
    assert begins.count(("AutoEncoder", "fit")) == 2
    n_epochs = det.autoencoder_[-1].n_iter_
    assert begins.count(("AutoEncoder", "epoch")) >= 2 * n_epochs - 1


@needs_callbacks
def test_scoring_monitor_records_a_score_per_epoch(X):
    monitor = sk_callback.ScoringMonitor(scoring={"score": lambda est, X, y: est.score(X)})
    est = AutoEncoder(n_components=2, max_iter=4, early_stopping=False, random_state=0)
    est.set_callbacks(monitor).fit(X)
    rows = [row for row in monitor.get_logs().data if row["task_name"] == "epoch"]
    assert [row["task_id"] for row in rows] == [0, 1, 2, 3]
    assert rows[-1]["score"] == pytest.approx(est.score(X), rel=1e-6)
    assert len({row["score"] for row in rows}) == 4


@needs_callbacks
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_callbacks_inside_a_grid_search(X, n_jobs, capsys):
    pytest.importorskip("rich")
    monitor = sk_callback.ScoringMonitor(scoring={"score": lambda est, X, y: est.score(X)})
    pipe = make_pipeline(
        StandardScaler(),
        AutoEncoder(max_iter=3, early_stopping=False, random_state=0).set_callbacks(monitor),
    )
    search = GridSearchCV(pipe, {"autoencoder__n_components": [2, 3]}, cv=2, n_jobs=n_jobs)
    search.set_callbacks(sk_callback.ProgressBar(max_propagation_depth=None))
    search.fit(X)
    out = capsys.readouterr().out
    assert "GridSearchCV - fit" in out
    assert "AutoEncoder - fit" in out
    # two candidates on two folds and the refit: five fits of three epochs, each scored,
    # in the workers too (one run: the search's)
    epochs = {}
    for row in monitor.get_logs().data:
        if row["task_name"] == "epoch":
            assert np.isfinite(row["score"])
            epochs.setdefault(row["parent_task_id_path"], []).append(row["task_id"])
    assert list(epochs.values()) == [[0, 1, 2]] * 5


@needs_callbacks
def test_progress_bar_shows_the_epochs_of_a_fit(X, capsys):
    pytest.importorskip("rich")
    StackedAE(n_components=2, max_iter=2, pretrain_iter=1, random_state=0).set_callbacks(
        sk_callback.ProgressBar()
    ).fit(X)
    out = capsys.readouterr().out
    assert "StackedAE - fit" in out
    assert "StackedAE - pretrain level #0" in out
    assert "StackedAE - fine-tune" in out


@needs_callbacks
def test_callbacks_survive_clone_and_pickle_but_are_not_the_model(X):
    recorder = Recorder()
    est = AutoEncoder(n_components=2, max_iter=2, random_state=0).set_callbacks(recorder)
    assert clone(est)._skl_callbacks == [recorder]
    est.fit(X)
    assert "_skl_callbacks" not in est.__getstate__()  # skops, skae.persistence
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.transform(X), est.transform(X))
    # a fitted net keeps no data and no context of the fit
    tasks = dict(est.net_.callbacks_)["fit_tasks"]
    assert tasks.task is None and tasks.epoch_ is None


@needs_callbacks
def test_skorch_callbacks_work_beside_scikit_learns(X):
    from skorch.callbacks import EpochScoring

    recorder = Recorder()
    est = AutoEncoder(
        n_components=2,
        max_iter=3,
        early_stopping=False,
        random_state=0,
        callbacks=[EpochScoring(lambda net, X, y: 1.0, name="one", on_train=True)],
    )
    est.set_callbacks(recorder).fit(X)
    assert list(est.history_[:, "one"]) == [1.0] * 3
    assert len(recorder.epoch_estimators) == 3


def test_callbacks_that_listen_per_batch_or_per_gradient_still_run(digits01):
    counts = {"begin": 0, "end": 0}

    class Counter(Callback):
        def on_batch_begin(self, net, **kwargs):
            counts["begin"] += 1

        def on_batch_end(self, net, **kwargs):
            counts["end"] += 1

    ae = AutoEncoder(2, max_iter=2, batch_size=500, early_stopping=False, random_state=0)
    ae.fit(digits01)
    clip = GradientNormClipping(gradient_clip_value=1e-8)
    ae.net_.callbacks_ += [("counter", Counter()), ("clip", clip)]
    before = [p.detach().clone() for p in ae.module_.parameters()]
    ae.set_params(warm_start=True, max_iter=1).fit(digits01)
    assert counts == {"begin": 4, "end": 4}  # 4 batches of 500 rows
    # clipped to a norm of 1e-8, Adam's normalised step still moves; the hook ran if the
    # gradients seen by the optimizer have that norm
    grads = [p.grad for p in ae.module_.parameters() if p.grad is not None]
    total = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    assert total <= 1.01e-8
    assert any(not torch.equal(a, p) for a, p in zip(before, ae.module_.parameters(), strict=True))


def test_callbacks_run_beside_skaes_own_and_are_copied_per_fit(digits01):
    from skorch.callbacks import EarlyStopping

    seen = []

    class Recorder(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(len(net.history))

    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)  # stops at once
    recorder = Recorder()
    ae = AutoEncoder(
        2, module=MLP(), max_iter=20, random_state=0, callbacks=[recorder, ("halt", stop)]
    )
    ae.fit(digits01)
    names = [name for name, _ in ae.net_.callbacks_]
    assert {"stopper", "Recorder", "halt"} <= set(names)
    assert ae.n_iter_ < 20 and seen == list(range(1, ae.n_iter_ + 1))
    # the estimator's own objects are never the ones that ran
    fitted = dict(ae.net_.callbacks_)
    assert fitted["halt"] is not stop and fitted["halt"].misses_ >= 1 and stop.misses_ == 0
    clone_ = clone(ae)
    assert clone_.callbacks[0] is not recorder
    with pytest.raises(ValueError, match="'stopper' is taken"):
        AutoEncoder(max_iter=1, callbacks=[("stopper", Recorder())]).fit(digits01)
    with pytest.raises(TypeError, match="skorch callbacks"):
        AutoEncoder(max_iter=1, callbacks=[print]).fit(digits01)


def test_checkpoint_and_resume_through_skorch(tmp_path, digits01):
    from skorch.callbacks import Checkpoint

    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path), f_history=None)
    kw = {"n_components": 2, "module": MLP(), "random_state": 0}
    first = AutoEncoder(max_iter=3, callbacks=[checkpoint], **kw).fit(digits01)
    assert (tmp_path / "params.pt").is_file() and (tmp_path / "optimizer.pt").is_file()
    # a new estimator started from the saved weights and optimizer state goes on from them
    resumed = AutoEncoder(max_iter=0, **kw).fit(digits01)
    resumed.net_.load_params(
        f_params=str(tmp_path / "params.pt"), f_optimizer=str(tmp_path / "optimizer.pt")
    )
    assert_allclose(resumed.transform(digits01), first.transform(digits01), rtol=1e-6)


def test_history_flags_best_epochs_for_skorch_checkpoints(tmp_path, digits01):
    """skorch's ``<prefix>_loss_best`` keys, which ``Checkpoint`` monitors, are recorded, so
    the documented checkpoint-and-resume recipe works with skorch's defaults."""
    from skorch.callbacks import Checkpoint, LoadInitState

    kw = {"n_components": 2, "random_state": 0}
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor="train_loss_best")
    first = AutoEncoder(max_iter=6, callbacks=[checkpoint], **kw).fit(digits01)
    losses = first.history_[:, "train_loss"]
    flags = first.history_[:, "train_loss_best"]
    assert flags == [loss < min(losses[:i], default=np.inf) for i, loss in enumerate(losses)]
    best_epoch = max(i for i, flag in enumerate(flags) if flag) + 1
    resumed = AutoEncoder(max_iter=2, callbacks=[checkpoint, LoadInitState(checkpoint)], **kw).fit(
        digits01
    )
    assert resumed.n_iter_ == best_epoch + 2
    # with early stopping, Checkpoint's default monitor (valid_loss_best) works too
    stopped = AutoEncoder(
        max_iter=3, early_stopping=True, callbacks=[Checkpoint(dirname=str(tmp_path / "v"))], **kw
    ).fit(digits01)
    assert "valid_loss_best" in stopped.history_[-1]
    assert (tmp_path / "v" / "params.pt").is_file()
