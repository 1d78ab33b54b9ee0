"""The engine alone (skae._engine.net), without an estimator: a skorch net trained on arrays with
skae's objective protocol, both data paths, the callbacks' events, the warm-up, and the
interrupt and resume paths."""

import copy

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from skae._engine.net import AutoEncoderNet, DeviceTensors, HostArrays, TensorBatches, map_batches
from skae._nn.likelihoods import LIKELIHOODS
from skae._nn.modules import AutoEncoderModule
from skae._nn.objectives import Reconstruction


@pytest.fixture
def X():
    return np.random.RandomState(0).randn(100, 8).astype(np.float32)


def module():
    torch.manual_seed(0)
    return AutoEncoderModule(nn.Sequential(nn.Linear(8, 2)), nn.Sequential(nn.Linear(2, 8)))


def net(dataset=DeviceTensors, lr=1e-2, max_epochs=3, callbacks=(), **kwargs):
    return AutoEncoderNet(
        module(),
        criterion=Reconstruction(LIKELIHOODS["mse"]),
        optimizer=torch.optim.Adam,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=16,
        iterator_train__shuffle=True,
        iterator_train__seed=0,
        dataset=dataset,
        train_split=None,
        callbacks=list(callbacks),
        verbose=0,
        device="cpu",
        **kwargs,
    )


def weights(trained):
    return [p.detach().clone() for p in trained.module_.parameters()]


def test_a_net_trains_on_arrays_and_records_each_epoch(X):
    trained = net().fit(X, None)
    losses = trained.history[:, "train_loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert trained.history[:, "train_batch_count"] == [7] * 3  # ceil(100 / 16)
    # the epoch's loss is the mean of the objective over its rows: at lr=0, the data's
    still = net(lr=0.0, max_epochs=1).fit(X, None)
    with torch.no_grad():
        x = torch.as_tensor(X)
        expected = Reconstruction(LIKELIHOODS["mse"])(still.module_, x, x)
    assert still.history[-1, "train_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_both_data_paths_train_alike(X):
    resident = net(DeviceTensors).fit(X, None)
    streamed = net(HostArrays).fit(X, None)
    assert resident.data_path_ == "resident" and streamed.data_path_ == "streamed"
    for a, b in zip(weights(resident), weights(streamed), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resident.history[:, "train_loss"] == streamed.history[:, "train_loss"]


def test_the_batches_are_the_seeds_alone(X):
    data = DeviceTensors(X)
    first = [b[0] for b in TensorBatches(data, 16, shuffle=True, seed=3)]
    again = [b[0] for b in TensorBatches(data, 16, shuffle=True, seed=3)]
    other = [b[0] for b in TensorBatches(data, 16, shuffle=True, seed=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    # every row once per epoch
    rows = torch.cat(first)
    assert sorted(rows[:, 0].tolist()) == sorted(torch.as_tensor(X)[:, 0].tolist())


class Counter(Callback):
    def initialize(self):
        self.batches = self.grads = 0
        return self

    def on_batch_end(self, net, **kwargs):
        self.batches += 1

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.grads += 1


def test_batch_events_reach_the_callbacks_that_define_them(X):
    counter = Counter()
    trained = net(callbacks=[("counter", counter)]).fit(X, None)
    assert counter.batches == counter.grads == 7 * 3
    assert len(trained.history[-1, "batches"]) == 7  # a record per batch, when listened to


def test_the_warm_up_scales_the_first_steps(X):
    # the step's rate is scaled inside the step: the first steps move the weights less
    cold, warm = net(max_epochs=1), net(max_epochs=1, warmup_steps=100)
    cold.initialize()
    warm.initialize()
    start = weights(cold)
    batch = next(iter(TensorBatches(DeviceTensors(X), 16)))
    cold.train_step(batch)
    warm.train_step(batch)

    def moved(trained):
        return sum(float((a - b).abs().sum()) for a, b in zip(weights(trained), start, strict=True))

    assert moved(warm) == pytest.approx(moved(cold) / 100, rel=0.05)
    # and the rate itself is put back after each step
    assert warm.optimizer_.param_groups[0]["lr"] == 1e-2
    assert warm.steps_taken_ == 1


class InterruptAt(Callback):
    def __init__(self, batch):
        self.batch = batch

    def initialize(self):
        self.seen = 0
        return self

    def on_batch_end(self, net, **kwargs):
        self.seen += 1
        if self.seen == self.batch:
            raise KeyboardInterrupt


def test_an_interrupt_in_mid_epoch_leaves_no_half_epoch(X):
    trained = net(callbacks=[("stop", InterruptAt(7 + 3))]).fit(X, None)
    assert trained.interrupted_
    assert len(trained.history) == 1  # the cut second epoch has no record
    assert "dur" in trained.history[-1]


def test_a_resumed_net_goes_on_as_an_uninterrupted_one(X):
    whole = net(max_epochs=4).fit(X, None)
    resumed = net(max_epochs=2).fit(X, None)
    resumed = copy.deepcopy(resumed)  # as a checkpoint restores it
    resumed.partial_fit(X, None, epochs=2)
    assert len(resumed.history) == 4
    for a, b in zip(weights(whole), weights(resumed), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_map_batches_runs_a_function_over_chunks(X):
    out = map_batches(lambda x: x * 2, X, "cpu", batch_size=7)
    np.testing.assert_array_equal(out, X * 2)


def _losses_in(precision, X, **kwargs):
    trained = net(precision=precision, max_epochs=4, **kwargs).fit(X, None)
    return trained, np.asarray(trained.history[:, "train_loss"])


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_computes_the_loss_in_half_and_keeps_float32_weights(precision, X):
    """Autocast on the CPU (the estimators refuse float16 there, for speed; the engine's
    logic is the same on CUDA): the loss is float32's to half precision's accuracy, training
    follows float32's (float16's first steps overflow at the scaler's first scale, 2**16,
    and are skipped while it backs off), the weights stay float32."""
    _, exact = _losses_in("32-true", X, lr=0.0)
    _, rounded = _losses_in(precision, X, lr=0.0)
    np.testing.assert_allclose(rounded, exact, rtol=1e-2)
    assert rounded[0] != exact[0]  # half precision did compute the loss
    _, expected = _losses_in("32-true", X)
    mixed, losses = _losses_in(precision, X)
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.75 * losses[0]
    np.testing.assert_allclose(losses, expected, rtol=0.05)
    assert all(p.dtype == torch.float32 for p in mixed.module_.parameters())
    if precision == "16-mixed":
        assert mixed.scaler_ is not None and mixed.scaler_.get_scale() < 2.0**16
    else:
        assert mixed.scaler_ is None


def test_float16s_scaler_unscales_before_listeners_and_skips_overflowing_steps(X):
    seen = []

    class Norms(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            seen.append(max(float(p.grad.abs().max()) for _, p in named_parameters))

    trained = net(precision="16-mixed", max_epochs=1, callbacks=[("norms", Norms())]).fit(X, None)
    # listeners see the true gradients, not ones scaled by 2**16 (the first steps'
    # overflow at that scale, and are skipped)
    finite = [v for v in seen if np.isfinite(v)]
    assert len(finite) > len(seen) / 2 and 0 < max(finite) < 100
    before = weights(trained)
    trained.scaler_.update(2.0**40)  # a scale that overflows every gradient in float16
    batch = (torch.as_tensor(X[:16]), torch.as_tensor(X[:16]))
    trained.train_step(batch)
    for a, b in zip(before, weights(trained), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the step was skipped
    assert trained.scaler_.get_scale() == 2.0**39  # and the scale backed off


def test_a_precision_the_device_or_solver_cannot_train_in_is_refused(monkeypatch):
    from skae._engine import net as engine

    assert engine.check_precision("32-true", "lbfgs", "cpu") == "32-true"
    with pytest.raises(
        ValueError, match="needs a CUDA device; on the CPU use precision='bf16-mixed'"
    ):
        engine.check_precision("16-mixed", "adam", "cpu")
    with pytest.raises(ValueError, match="is for Adam's mini-batch steps; solver='lbfgs'"):
        engine.check_precision("bf16-mixed", "lbfgs", "cpu")
    with pytest.raises(ValueError, match="not on 'meta'"):
        engine.check_precision("bf16-mixed", "adam", "meta")
    monkeypatch.setattr(engine, "_cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="needs a CPU with bfloat16 instructions"):
        engine.check_precision("bf16-mixed", "adam", "cpu")
