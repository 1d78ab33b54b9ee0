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
