"""Denormal floats are flushed to zero on every one of torch's CPU threads while a net trains,
and the previous mode is back afterwards (skae._engine.denormals)."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skae import AutoEncoder
from skae._engine.denormals import _team_flushes, flushed_denormals, flushing

pytestmark = pytest.mark.skipif(
    not torch.set_flush_denormal(False), reason="this CPU has no flush-to-zero mode"
)


@pytest.fixture
def threads():
    """Two torch threads at least, so that a product is split among threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(before, 2))
    torch.ones(1 << 20).sum()  # torch's threads exist before the block is entered
    yield
    torch.set_num_threads(before)


def test_every_thread_flushes_inside_the_block_and_none_after(threads):
    assert not flushing() and not _team_flushes()
    with flushed_denormals("cpu"):
        assert flushing()
        assert _team_flushes()  # the worker threads too, not only this one
        tiny = torch.full((1 << 20,), 1e-40)
        assert not (tiny * 1.0).count_nonzero()
    assert not flushing() and not _team_flushes()
    assert (torch.full((1 << 20,), 1e-40) * 1.0).count_nonzero() == 1 << 20


def test_a_mode_set_before_is_left_as_it_was(threads):
    torch.set_flush_denormal(True)
    try:
        with flushed_denormals("cpu"):
            assert flushing()
        assert flushing()
    finally:
        torch.set_flush_denormal(False)


def test_another_device_is_left_alone(threads):
    with flushed_denormals("cuda"):
        assert not flushing()


class _Mode(Callback):
    def on_epoch_end(self, net, **kwargs):
        net.history.record("flushing", flushing() and _team_flushes())


def test_a_fit_trains_flushed_and_restores_the_mode(threads):
    X = np.random.RandomState(0).rand(300, 8).astype(np.float32)
    model = AutoEncoder(n_components=2, max_iter=2, random_state=0, callbacks=[_Mode()]).fit(X)
    assert model.net_.history[:, "flushing"] == [True, True]
    assert not flushing() and not _team_flushes()
