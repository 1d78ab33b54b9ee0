"""Faults a model meets in production: a process killed mid-fit, resumed from its last
checkpoint; a user's interrupt (Ctrl-C) mid-fit, mid-continuation and mid-EM, and a
callback that stops training; full disks and out-of-memory errors are in
test_persistence and test_data_paths."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from skae import AutoEncoder, LinearAE

EPOCHS = 8


@pytest.fixture(scope="module")
def X():
    return (load_digits().data / 16).astype(np.float32)


def _params():
    return {"n_components": 4, "max_iter": EPOCHS, "batch_size": 64, "random_state": 0}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_fit_resumes_from_its_checkpoint_to_the_same_model(X, tmp_path):
    """A fit in a subprocess checkpoints every epoch (skorch's Checkpoint) and is killed
    with SIGKILL part-way; a new fit loads the checkpoint (LoadInitState: weights,
    optimizer, history) and runs the epochs left: the model of the uninterrupted fit."""
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import time
        import numpy as np
        from skorch.callbacks import Callback, Checkpoint
        from skae import AutoEncoder

        class Slow(Callback):
            def on_epoch_end(self, net, **kwargs):
                time.sleep(0.5)  # time for the test to kill it mid-fit

        X = np.load({str(tmp_path / "X.npy")!r})
        checkpoint = Checkpoint(monitor=None, dirname={str(tmp_path / "ckpt")!r})
        AutoEncoder(**{_params()!r}, callbacks=[checkpoint, Slow()]).fit(X)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    history = tmp_path / "ckpt" / "history.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if history.exists() and history.read_text().count('"epoch"') >= 3:
                break
            assert process.poll() is None, "the fit ended before it could be killed"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path / "ckpt"))
    done = len(__import__("json").loads(history.read_text()))
    assert 3 <= done < EPOCHS
    resumed = AutoEncoder(**{**_params(), "max_iter": EPOCHS - done})
    resumed.set_params(callbacks=[checkpoint, LoadInitState(checkpoint)]).fit(X)
    whole = AutoEncoder(**_params()).fit(X)
    assert resumed.n_iter_ == whole.n_iter_ == EPOCHS
    assert_allclose(resumed.loss_curve_, whole.loss_curve_, rtol=1e-5)
    assert_allclose(resumed.transform(X), whole.transform(X), rtol=1e-4, atol=1e-5)


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
