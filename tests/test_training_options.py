"""The training options of issue 10: alpha, dropout, dynamic binarisation, the VAE's output
bias, the random-projection Jacobian estimate, and the lean training step."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from skorch.callbacks import Callback, GradientNormClipping

from skae import MLP, AutoEncoder, ContractiveAE, EncoderClassifier, LinearAE, VariationalAE
from skae._nn.modules import add_dropout, dropout_hooks, mlp_autoencoder
from skae._nn.noise import binarize
from skae._nn.objectives import jacobian_sq_norm_autograd, jacobian_sq_norm_projection

FAST = {"max_iter": 15, "random_state": 0}


def test_dropout_acts_in_training_and_not_in_eval():
    torch.manual_seed(0)
    module = add_dropout(mlp_autoencoder(20, (16,), 3, "relu"), dropout=0.5, input_dropout=0.2)
    assert [h.p for h in dropout_hooks(module)] == [0.2, 0.5, 0.5, 0.5]
    x = torch.randn(64, 20)
    module.eval()
    assert torch.equal(module(x), module(x))
    module.train()
    first, second = module(x), module(x)
    assert not torch.equal(first, second)
    # inverted dropout keeps the mean activation of the input
    hook = dropout_hooks(module)[0]
    (dropped,) = hook(module.encoder[0], (torch.ones(20000, 20),))
    assert abs(float(dropped.mean()) - 1.0) < 0.02
    assert abs(float((dropped == 0).float().mean()) - 0.2) < 0.01


def test_classifier_dropout_is_seeded_and_changes_training(digits01):
    y = np.arange(len(digits01)) % 10
    kw = {"max_iter": 5, "random_state": 0}
    a = EncoderClassifier(dropout=0.5, input_dropout=0.2, **kw).fit(digits01, y)
    b = EncoderClassifier(dropout=0.5, input_dropout=0.2, **kw).fit(digits01, y)
    none = EncoderClassifier(**kw).fit(digits01, y)
    assert_array_equal(a.predict_proba(digits01), b.predict_proba(digits01))
    assert not np.allclose(a.predict_proba(digits01), none.predict_proba(digits01))
    assert all(h.generator is None for h in dropout_hooks(a.module_))  # nothing lent is kept
    restored = pickle.loads(pickle.dumps(a))
    assert_array_equal(restored.predict_proba(digits01), a.predict_proba(digits01))


def test_binarize_draws_fresh_bits_reproducibly():
    x = torch.full((2000, 10), 0.3)
    g = torch.Generator().manual_seed(0)
    first, second = binarize(x, g), binarize(x, g)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)
    assert abs(float(first.mean()) - 0.3) < 0.01
    again = binarize(x, torch.Generator().manual_seed(0))
    assert torch.equal(first, again)


def test_vae_binarize_trains_on_bits_and_repeats(digits01):
    kw = {"n_components": 4, "loss": "bce", "max_iter": 3, "random_state": 0}
    seen = []

    class Spy(Callback):
        def on_batch_begin(self, net, batch=None, training=None, **kwargs):
            if training:
                seen.append(batch[0].clone())

    a = VariationalAE(binarize=True, **kw).fit(digits01)
    b = VariationalAE(binarize=True, **kw).fit(digits01)
    assert_array_equal(a.transform(digits01), b.transform(digits01))
    a.net_.callbacks_.append(("spy", Spy()))
    a.set_params(warm_start=True, max_iter=2).fit(digits01)
    epoch = len(seen) // 2
    assert set(torch.cat(seen).unique().tolist()) <= {0.0, 1.0}
    # the same rows (one batch of the sorted data sums) differ between the two epochs
    sums = [torch.cat(seen[i * epoch : (i + 1) * epoch]).sum(dim=0) for i in range(2)]
    assert not torch.equal(sums[0], sums[1])
    with pytest.raises(ValueError, match="loss='bce'"):
        VariationalAE(binarize=True, loss="mse", max_iter=1).fit(digits01)


def test_vae_output_bias_starts_at_the_data_mean(digits01):
    vae = VariationalAE(4, loss="bce", max_iter=0, random_state=0).fit(digits01)
    mean = np.clip(digits01.mean(axis=0), 1e-3, 1 - 1e-3)
    bias = vae.module_.decoder[-2].bias.detach().numpy()
    assert_allclose(1 / (1 + np.exp(-bias)), mean, rtol=1e-4, atol=1e-6)
    gaussian = VariationalAE(4, max_iter=0, random_state=0).fit(digits01)
    assert_allclose(gaussian.module_.decoder[-2].bias.detach().numpy(), digits01.mean(0), 1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_projection_estimate_is_unbiased(activation):
    torch.manual_seed(0)
    module = mlp_autoencoder(12, (9, 7), 4, activation)
    x = torch.randn(16, 12)
    exact = jacobian_sq_norm_autograd(module, x).detach()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        draws = torch.stack([jacobian_sq_norm_projection(module, x, 1, g) for _ in range(4000)])
    mean, se = draws.mean(0), draws.std(0) / np.sqrt(len(draws))
    # every sample's estimate within 4 standard errors of the exact value
    assert torch.all((mean - exact).abs() < 4 * se + 1e-6), (mean, exact, se)
    assert float(draws.var(0).mean()) > 0  # a real estimate, not the exact value


def test_projection_estimate_trains_through_the_penalty():
    torch.manual_seed(0)
    module = mlp_autoencoder(12, (9, 7), 4, "tanh")
    x = torch.randn(16, 12)
    g = torch.Generator().manual_seed(0)
    jacobian_sq_norm_projection(module, x, 3, g).mean().backward()
    grads = [p.grad for p in module.encoder.parameters() if p.ndim > 1]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(float(gr.abs().sum()) > 0 for gr in grads)


def test_contractive_jacobian_options(digits01):
    # a random start (the PCA start barely moves in FAST's few steps of warm-up)
    network = MLP(hidden_layer_sizes=(16, 8))
    kw = {"n_components": 3, "module": network, "contraction": 1.0, **FAST}
    exact = ContractiveAE(jacobian="exact", **kw).fit(digits01)
    projected = ContractiveAE(jacobian="projection", n_projections=2, **kw).fit(digits01)
    repeat = ContractiveAE(jacobian="projection", n_projections=2, **kw).fit(digits01)
    assert_array_equal(projected.transform(digits01), repeat.transform(digits01))
    plain = AutoEncoder(3, module=network, **FAST).fit(digits01)

    def penalty(est):
        x = torch.as_tensor(digits01, dtype=torch.float32)
        return float(jacobian_sq_norm_autograd(est.module_, x).detach().mean())

    # both shrink the Jacobian against the unpenalised autoencoder
    assert penalty(exact) < 0.7 * penalty(plain)
    assert penalty(projected) < 0.7 * penalty(plain)


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


@pytest.mark.parametrize("Estimator", [AutoEncoder, LinearAE, VariationalAE])
def test_set_output_polars(Estimator, digits01):
    pl = pytest.importorskip("polars")
    est = Estimator(n_components=2, max_iter=2, random_state=0).set_output(transform="polars")
    codes = est.fit(digits01).transform(digits01)
    assert isinstance(codes, pl.DataFrame)
    prefix = Estimator.__name__.lower()
    assert codes.columns == [f"{prefix}0", f"{prefix}1"]
    assert_allclose(codes.to_numpy(), est.set_output(transform="default").transform(digits01))


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


class _Interrupt(Callback):
    """Raises KeyboardInterrupt (a user's Ctrl-C) at a given epoch, or mid-epoch."""

    def __init__(self, epoch, mid_epoch=False):
        self.epoch, self.mid_epoch = epoch, mid_epoch

    def on_batch_end(self, net, **kwargs):
        if self.mid_epoch and len(net.history) == self.epoch:
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if not self.mid_epoch and len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_fit_keeps_a_usable_model_and_says_so(digits01):
    ae = AutoEncoder(2, max_iter=10, batch_size=100, random_state=0)
    ae.set_params(callbacks=[_Interrupt(3, mid_epoch=True)])
    with pytest.warns(UserWarning, match="interrupted .* after 2 complete epochs"):
        ae.fit(digits01)
    assert ae.n_iter_ == len(ae.loss_curve_) == 2
    assert np.isfinite(ae.transform(digits01)).all()


def test_a_callback_stops_training_as_in_skorch(digits01):
    """skorch's convention: a callback raises KeyboardInterrupt at an epoch's end to stop
    (EarlyStopping does): no warning, the epochs run are kept, a continuation is kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ae = AutoEncoder(2, max_iter=10, batch_size=100, callbacks=[_Interrupt(3)])
        assert ae.fit(digits01).n_iter_ == 3
        stopped = AutoEncoder(2, max_iter=100, tol=0.5, n_iter_no_change=2, random_state=0)
        first = stopped.fit(digits01).n_iter_
        assert first < 100
        stopped.set_params(warm_start=True).fit(digits01)  # stopped early again: kept
        assert first < stopped.n_iter_ < first + 100


def test_an_interrupted_continuation_leaves_the_model_as_it_was(digits01):
    ae = AutoEncoder(2, max_iter=3, batch_size=100, random_state=0).fit(digits01)
    before, history = ae.transform(digits01), len(ae.history_)

    def interrupting(callback):
        ae.net_.callbacks_ = [
            *[(name, cb) for name, cb in ae.net_.callbacks_ if name != "interrupt"],
            ("interrupt", callback),
        ]

    interrupting(_Interrupt(4, mid_epoch=True))
    with pytest.raises(KeyboardInterrupt):
        ae.partial_fit(digits01)
    assert_allclose(ae.transform(digits01), before)
    assert len(ae.history_) == ae.n_iter_ == history
    interrupting(_Interrupt(5, mid_epoch=True))
    ae.set_params(warm_start=True, max_iter=5)
    with pytest.raises(KeyboardInterrupt):
        ae.fit(digits01)  # one epoch of five run, then the interrupt
    assert_allclose(ae.transform(digits01), before)
    interrupting(_Interrupt(-1))
    ae.partial_fit(digits01)  # and it goes on as before
    assert ae.n_iter_ == history + 1


def test_an_interrupted_em_keeps_the_subspace_reached(digits01, monkeypatch):
    calls = {"n": 0}
    real_qr = torch.linalg.qr

    def qr(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_qr(*args, **kwargs)

    monkeypatch.setattr(torch.linalg, "qr", qr)
    with pytest.warns(UserWarning, match="EM was interrupted"):
        lae = LinearAE(3, random_state=0).fit(digits01)
    monkeypatch.undo()
    assert lae.n_iter_ == 2
    assert_allclose(lae.components_ @ lae.components_.T, np.eye(3), atol=1e-6)
