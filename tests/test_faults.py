"""Faults a model meets in production: a process killed mid-fit, resumed from its last
checkpoint; interrupts, full disks and out-of-memory errors are in test_training_options,
test_persistence and test_data_paths."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from skorch.callbacks import Checkpoint, LoadInitState

from skae import AutoEncoder

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
