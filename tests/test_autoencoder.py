import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import datasets
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from skorch.callbacks import Callback

from skae import MLP, AutoEncoder, LinearAE, StackedAE, VariationalAE
from skae._engine.net import _cpu_has_bf16
from skae._nn.likelihoods import LIKELIHOODS

from .conftest import sse


@pytest.mark.parametrize("n_components", [2, 8])
def test_beats_pca_on_heldout_digits(digits, n_components):
    X_train, X_test, *_ = digits
    ae = AutoEncoder(n_components=n_components, random_state=0).fit(X_train)
    pca = PCA(n_components=n_components).fit(X_train)
    ae_error = sse(ae.inverse_transform(ae.transform(X_test)), X_test)
    pca_error = sse(pca.inverse_transform(pca.transform(X_test)), X_test)
    assert ae_error < 0.95 * pca_error


def test_shapes_and_fitted_attributes(digits):
    X, *_ = digits
    ae = AutoEncoder(
        n_components=3, hidden_layer_sizes=(16, 8), max_iter=7, early_stopping=False, random_state=0
    )
    Z = ae.fit_transform(X)
    assert Z.shape == (len(X), 3)
    assert ae.inverse_transform(Z).shape == X.shape
    assert ae.n_features_in_ == 64
    assert ae.n_iter_ == len(ae.loss_curve_) == 7
    assert ae.device_ in ("cpu", "cuda")
    assert isinstance(ae.module_, torch.nn.Module)
    stack = ae.module_.encoder.body  # the default network: PCA's linear map beside it
    assert [m.out_features for m in stack if hasattr(m, "out_features")] == [16, 8, 3]
    assert ae.module_.encoder.linear.out_features == 3
    assert not hasattr(ae, "validation_scores_")


def test_score_samples_is_minus_the_reconstruction_loss(digits, digits01):
    X, *_ = digits
    ae = AutoEncoder(n_components=4, max_iter=10, random_state=0).fit(X)
    expected = -((ae.inverse_transform(ae.transform(X)) - X) ** 2).sum(axis=1)
    assert_allclose(ae.score_samples(X), expected, rtol=1e-6)
    assert ae.score(X) == pytest.approx(expected.mean(), rel=1e-6)

    bern = AutoEncoder(n_components=4, loss="bce", max_iter=10, random_state=0).fit(digits01)
    recon = bern.inverse_transform(bern.transform(digits01))
    assert recon.min() > 0 and recon.max() < 1  # a Bernoulli mean
    p = np.clip(recon, 1e-12, 1 - 1e-12)
    loglik = (digits01 * np.log(p) + (1 - digits01) * np.log(1 - p)).sum(axis=1)
    assert_allclose(bern.score_samples(digits01), loglik, rtol=1e-5)


def test_score_samples_flags_anomalies(digits, rng):
    X_train, X_test, *_ = digits
    ae = AutoEncoder(n_components=8, max_iter=50, random_state=0).fit(X_train)
    noise = rng.normal(scale=X_test.std(), size=X_test.shape)
    assert np.median(ae.score_samples(noise)) < np.min(np.median(ae.score_samples(X_test)))


def test_pipeline_and_grid_search(digits):
    X, _, y, _ = digits
    pipe = make_pipeline(
        StandardScaler(), AutoEncoder(max_iter=30, random_state=0), LogisticRegression(max_iter=500)
    )
    search = GridSearchCV(pipe, {"autoencoder__n_components": [4, 8]}, cv=3).fit(X, y)
    assert search.best_params_ == {"autoencoder__n_components": 8}
    assert search.best_score_ > 0.6  # chance is 0.1


def test_grid_search_uses_score_without_a_scorer(digits):
    X, *_ = digits
    search = GridSearchCV(
        AutoEncoder(max_iter=30, random_state=0), {"n_components": [2, 16]}, cv=2
    ).fit(X)
    # A larger code reconstructs better, so it has the higher (less negative) score.
    assert search.best_params_ == {"n_components": 16}
    assert search.best_score_ < 0


@pytest.mark.parametrize("Estimator", [AutoEncoder, LinearAE])
def test_pickle_round_trip(digits, Estimator):
    X, X_test, *_ = digits
    est = Estimator(n_components=3, max_iter=5, random_state=0).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    assert_array_equal(loaded.transform(X_test), est.transform(X_test))
    assert_array_equal(
        loaded.inverse_transform(est.transform(X_test)),
        est.inverse_transform(est.transform(X_test)),
    )


def test_random_state_gives_bit_identical_results_on_cpu(digits):
    X, X_test, *_ = digits
    params = {"n_components": 3, "max_iter": 10, "device": "cpu"}
    a = AutoEncoder(random_state=0, **params).fit(X).transform(X_test)
    b = AutoEncoder(random_state=0, **params).fit(X).transform(X_test)
    c = AutoEncoder(random_state=1, **params).fit(X).transform(X_test)
    assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_global_rng_untouched(digits):
    X, *_ = digits
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    AutoEncoder(max_iter=2, random_state=0).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert_array_equal(np.random.get_state()[1], np_state)


@pytest.mark.parametrize(
    "dtype, out_dtype",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
    ],
)
def test_output_dtype_follows_input(digits, dtype, out_dtype):
    X = (digits[0] * 4).astype(dtype)
    ae = AutoEncoder(n_components=2, max_iter=3, random_state=0).fit(X)
    assert ae.transform(X).dtype == out_dtype
    assert ae.inverse_transform(ae.transform(X)).dtype == out_dtype
    assert ae.score_samples(X).dtype == out_dtype


def test_lists_and_dataframes(digits):
    X, *_ = digits
    df = pd.DataFrame(X[:, :5], columns=[f"px{i}" for i in range(5)])
    ae = AutoEncoder(n_components=2, max_iter=3, random_state=0).fit(df)
    assert_array_equal(ae.feature_names_in_, df.columns)
    assert_array_equal(ae.get_feature_names_out(), ["autoencoder0", "autoencoder1"])
    out = ae.set_output(transform="pandas").transform(df)
    assert list(out.columns) == ["autoencoder0", "autoencoder1"]
    assert_allclose(
        AutoEncoder(n_components=2, max_iter=3, random_state=0)
        .fit(X[:, :5].tolist())
        .transform(X[:, :5]),
        out.to_numpy(),
    )


def test_early_stopping_restores_best_weights(digits):
    X, *_ = digits
    # A large learning rate makes the validation loss noisy, so the last epoch is not the best.
    ae = AutoEncoder(
        n_components=4,
        early_stopping=True,
        learning_rate_init=3e-2,
        n_iter_no_change=3,
        max_iter=100,
        random_state=0,
    ).fit(X)
    valid_losses = np.asarray(ae.history_[:, "valid_loss"])
    assert ae.n_iter_ < 100
    assert valid_losses[-1] > valid_losses.min()
    assert_allclose(ae.validation_scores_, -valid_losses)
    assert ae.best_validation_score_ == pytest.approx(-valid_losses.min())
    # The restored module scores the best epoch's loss on the held-out split.
    _, valid = ae.net_.get_split_datasets(X.astype(np.float32))
    X_valid = valid.dataset.X[torch.as_tensor(valid.indices)]
    with torch.no_grad():
        restored = LIKELIHOODS["mse"].loss(ae.module_(X_valid), X_valid).mean().item()
    assert restored == pytest.approx(valid_losses.min(), rel=1e-4)


def test_stops_when_training_loss_stalls(digits):
    X, *_ = digits
    ae = AutoEncoder(n_components=2, tol=0.5, n_iter_no_change=2, max_iter=100, random_state=0).fit(
        X
    )
    assert ae.n_iter_ < 10


def test_warm_start_continues_training(digits):
    X, *_ = digits
    # from random weights (not the PCA start), where five epochs make a visible difference
    ae = AutoEncoder(n_components=2, module=MLP(), max_iter=5, warm_start=True, random_state=0).fit(
        X
    )
    first = list(ae.loss_curve_)
    ae.fit(X)
    assert ae.n_iter_ == 10 and ae.loss_curve_[:5] == first
    assert ae.loss_curve_[5] < first[0] * 0.9  # continued from trained weights, not from scratch
    cold = clone(ae).set_params(warm_start=False).fit(X).fit(X)
    assert cold.n_iter_ == 5


def test_verbose_prints_epochs_and_silent_otherwise(digits, capsys):
    X, *_ = digits
    AutoEncoder(max_iter=2, random_state=0).fit(X)
    assert capsys.readouterr().out == ""
    AutoEncoder(max_iter=2, verbose=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "train_loss" in out and out.count("\n") >= 4


def test_divergence_stops_with_a_clear_error(digits):
    X, *_ = digits
    ae = AutoEncoder(max_iter=3, learning_rate_init=1e12, random_state=0)  # steps of 1e12
    with pytest.raises(FloatingPointError, match="Training diverged"):
        ae.fit(X * 1e8)
    assert not hasattr(ae, "net_")  # no half-trained model is left behind


def test_divergence_in_warm_start_keeps_the_previous_model(digits):
    X, X_test, *_ = digits
    ae = AutoEncoder(max_iter=3, warm_start=True, random_state=0).fit(X)
    before = ae.transform(X_test)
    for group in ae.net_.optimizer_.param_groups:  # a continuation that blows up
        group["lr"] = 1e30
    with pytest.raises(FloatingPointError, match="Training diverged"):
        ae.fit(X)
    assert_array_equal(ae.transform(X_test), before)
    assert ae.n_iter_ == 3


@settings(max_examples=10, deadline=None)
@given(
    n_samples=st.integers(2, 40),
    n_features=st.integers(1, 6),
    n_components=st.integers(1, 3),
    float32=st.booleans(),
)
def test_any_small_table_round_trips(n_samples, n_features, n_components, float32):
    X = np.random.RandomState(n_samples).normal(size=(n_samples, n_features))
    X = X.astype(np.float32 if float32 else np.float64)
    ae = AutoEncoder(
        n_components=n_components, hidden_layer_sizes=(4,), max_iter=2, random_state=0
    ).fit(X)
    Z = ae.transform(X)
    assert Z.shape == (n_samples, n_components) and Z.dtype == X.dtype
    assert np.isfinite(ae.inverse_transform(Z)).all()


def test_reversed_and_non_contiguous_arrays(digits):
    X, *_ = digits
    ae = AutoEncoder(n_components=2, max_iter=2, random_state=0).fit(X[::-1])
    assert_allclose(ae.transform(X[::-1]), ae.transform(np.ascontiguousarray(X[::-1])))
    assert_allclose(
        ae.transform(X[:, ::2].repeat(2, axis=1)),
        ae.transform(np.ascontiguousarray(X[:, ::2].repeat(2, axis=1))),
    )


class _FirstBatches(Callback):
    """Records the first training batch of every epoch (in a dict shared by its copies)."""

    def __init__(self, seen):
        self.seen = seen

    def __deepcopy__(self, memo):  # estimators run copies of callbacks: share the record
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.seen.setdefault(len(net.history), batch[0].clone())


def test_warm_start_does_not_replay_the_data_order(digits):
    """A continuation draws the order an uninterrupted fit draws at that epoch, never the
    first epoch's again."""
    X, *_ = digits
    continued, whole = {}, {}
    params = {"n_components": 2, "random_state": 0}
    ae = AutoEncoder(max_iter=1, warm_start=True, callbacks=[_FirstBatches(continued)], **params)
    ae.fit(X)
    ae.fit(X)  # the second epoch, by a warm start
    AutoEncoder(max_iter=2, callbacks=[_FirstBatches(whole)], **params).fit(X)
    assert not torch.equal(continued[1], continued[2])
    assert torch.equal(continued[1], whole[1]) and torch.equal(continued[2], whole[2])


def test_early_stopping_auto_holds_out_for_in_memory_fits_on_small_tables(digits):
    X, *_ = digits
    ae = AutoEncoder(2, max_iter=3, random_state=0).fit(X)
    assert ae.early_stopping_ and len(ae.validation_scores_) == ae.n_iter_ == 3
    # too few rows to spare a tenth; a chunk of partial_fit is not a data set
    assert not AutoEncoder(2, max_iter=1, random_state=0).fit(X[:40]).early_stopping_
    chunked = AutoEncoder(2, random_state=0).partial_fit(X)
    assert not chunked.early_stopping_ and not hasattr(chunked, "validation_scores_")
    # more than 10,000 rows: every row is trained on
    many = AutoEncoder(2, max_iter=1, random_state=0).fit(np.tile(X, (8, 1))[:10_001])
    assert not many.early_stopping_
    # an explicit choice is kept
    assert AutoEncoder(2, max_iter=1, early_stopping=True).fit(X[:40]).early_stopping_
    assert not AutoEncoder(2, max_iter=1, early_stopping=False).fit(X).early_stopping_
    with pytest.raises(ValueError, match="early_stopping"):
        AutoEncoder(early_stopping="sometimes").fit(X)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
@pytest.mark.parametrize("Scaler", [StandardScaler, MinMaxScaler])
def test_defaults_stay_within_2_percent_of_pca_on_small_tables(name, Scaler, global_random_seed):
    # Measured over splits 0-4 (python -m benchmarks, defaults table): at most 1.006x PCA's
    # held-out error; without early_stopping="auto" up to 1.55x on iris.
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    for seed in range(5 * global_random_seed, 5 * global_random_seed + 5):
        X_train, X_test = train_test_split(X, test_size=0.3, random_state=seed, stratify=y)
        scaler = Scaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        ae = AutoEncoder(n_components=2, random_state=seed).fit(X_train)
        pca = PCA(2).fit(X_train)
        ae_error = sse(ae.inverse_transform(ae.transform(X_test)), X_test)
        pca_error = sse(pca.inverse_transform(pca.transform(X_test)), X_test)
        assert ae_error <= 1.02 * pca_error, (seed, ae_error / pca_error)


@pytest.mark.parametrize("Estimator", [AutoEncoder, LinearAE, VariationalAE])
def test_set_output_polars(Estimator, digits01):
    pl = pytest.importorskip("polars")
    est = Estimator(n_components=2, max_iter=2, random_state=0).set_output(transform="polars")
    codes = est.fit(digits01).transform(digits01)
    assert isinstance(codes, pl.DataFrame)
    prefix = Estimator.__name__.lower()
    assert codes.columns == [f"{prefix}0", f"{prefix}1"]
    assert_allclose(codes.to_numpy(), est.set_output(transform="default").transform(digits01))


bf16 = pytest.mark.skipif(not _cpu_has_bf16(), reason="this CPU lacks bfloat16 instructions")


@bf16
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: AutoEncoder(4, max_iter=10, **kw),
        lambda **kw: VariationalAE(4, loss="bce", max_iter=10, **kw),
        lambda **kw: StackedAE(4, max_iter=5, pretrain_iter=2, **kw),
        lambda **kw: LinearAE(4, solver="adam", max_iter=10, **kw),
    ],
    ids=["AutoEncoder", "VariationalAE", "StackedAE", "LinearAE-adam"],
)
def test_bf16_mixed_precision_trains_on_the_cpu_as_float32_does(make, digits01):
    full = make(random_state=0).fit(digits01)
    mixed = make(random_state=0, precision="bf16-mixed").fit(digits01)
    assert mixed.net_.precision == "bf16-mixed"
    # LinearAE trains in float64, which autocast leaves alone
    if mixed._torch_dtype == torch.float32:
        assert mixed.loss_curve_ != full.loss_curve_
    np.testing.assert_allclose(mixed.loss_curve_, full.loss_curve_, rtol=0.05)
    for X in (digits01, digits01.astype(np.float32)):
        assert mixed.transform(X).dtype == X.dtype  # outputs in the input's precision


def test_a_precision_the_solver_cannot_train_in_is_refused_before_training(digits01):
    with pytest.raises(ValueError, match="precision='bf16-mixed' is for Adam's mini-batch"):
        LinearAE(2, precision="bf16-mixed").fit(digits01)  # EM
    with pytest.raises(ValueError, match="needs a CUDA device"):
        AutoEncoder(2, precision="16-mixed", device="cpu").fit(digits01)
    with pytest.raises(ValueError, match="precision"):
        AutoEncoder(2, precision="fp8").fit(digits01)


def test_the_run_outcome_is_read_from_the_history(digits01):
    """Early stopping's patience running out is recorded in the history
    (``stopped_early``), which decides the ConvergenceWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped = AutoEncoder(2, module=MLP(), tol=10.0, n_iter_no_change=2, max_iter=50).fit(
            digits01
        )
    assert stopped.n_iter_ < 50 and stopped.history_[-1, "stopped_early"]
    assert not any(stopped.history_[:-1, "stopped_early"])
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        ran_out = AutoEncoder(2, module=MLP(), tol=0.0, max_iter=3).fit(digits01)
    assert not any(ran_out.history_[:, "stopped_early"])


def test_adam_is_torchs_fused_kernel_on_the_cpu(digits01, monkeypatch):
    """torch's default Adam on the CPU is a loop of elementwise passes that took most of a
    long fit's time (see skae._engine.training.FUSED_ADAM_DEVICES); skae asks for the fused
    kernel, and its fit matches the unfused one's to float tolerance."""
    import skae._engine.training as training

    X = digits01[:300]
    fused = AutoEncoder(n_components=4, max_iter=3, random_state=0).fit(X)
    assert fused.net_.optimizer_.defaults["fused"] is True
    settings = training.optimizer
    monkeypatch.setattr(
        training,
        "optimizer",
        lambda *args: {**settings(*args), "optimizer__fused": None},
    )
    plain = AutoEncoder(n_components=4, max_iter=3, random_state=0).fit(X)
    assert not plain.net_.optimizer_.defaults["fused"]
    np.testing.assert_allclose(fused.transform(X), plain.transform(X), rtol=1e-4, atol=1e-5)
