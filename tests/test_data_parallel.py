"""Data-parallel training under ``torchrun``: 2 CPU processes on the gloo backend.

Each test launches ``tests/ddp_worker.py`` with ``python -m torch.distributed.run`` (torchrun)
and compares what the ranks fitted with each other (identical) and with a one-process fit of
the same global batch (equal up to the order of float sums: the tolerances below).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from . import ddp_worker

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torch.distributed with gloo",
)

WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(tmp_path, *args, nproc=2, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parents[1])}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(WORKER),
        str(tmp_path),
        *args,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def ranks(tmp_path, nproc=2):
    return [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(nproc)]


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("model", ["autoencoder", "classifier"])
def test_two_processes_fit_what_one_process_fits(tmp_path, model, one_thread):
    run = torchrun(tmp_path, model)
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = ranks(tmp_path)
    for key in first:  # every rank holds the same fitted estimator
        assert_array_equal(first[key], second[key])
    X, y = ddp_worker.data()
    _, alone = ddp_worker.fitted(model, X, y)
    # the same epochs (early stopping and the schedule decided on the same figures), the
    # same losses and outputs up to the order of float sums in the gradients' all-reduce
    assert first["n_iter"] == alone["n_iter"]
    assert_allclose(first["loss"], alone["loss"], rtol=1e-4)
    assert_allclose(first["outputs"], alone["outputs"], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("model", ["unseeded", "detector", "vae"])
def test_ranks_agree_on_seeds_and_draws(tmp_path, model):
    # random_state=None draws other seeds in each process (also a detector's for its
    # autoencoder): rank 0's are used everywhere. A VAE's training samples are drawn per
    # rank, its validation samples alike: one early-stopping decision, one fitted model.
    run = torchrun(tmp_path, model)
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = ranks(tmp_path)
    for key in first:
        assert_array_equal(first[key], second[key])
    assert np.isfinite(first["loss"]).all()


def test_ranks_with_different_data_or_estimators_are_refused(tmp_path):
    run = torchrun(tmp_path, "autoencoder", "--other-data-rank", "1")
    assert run.returncode != 0
    assert "needs the same X (and y) on every rank: ranks [1]" in run.stderr
    run = torchrun(tmp_path, "autoencoder", "--other-params-rank", "1")
    assert run.returncode != 0
    assert "needs the same estimator on every rank: ranks [1] fit a AutoEncoder" in run.stderr


def test_ranks_fit_alone_within_data_parallel_false(tmp_path, one_thread):
    # each rank its own data: no agreement, no all-reduce, each the one-process fit
    run = torchrun(tmp_path, "autoencoder", "--other-data-rank", "1", "--independent")
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = ranks(tmp_path)
    X, y = ddp_worker.data()
    _, alone = ddp_worker.fitted("autoencoder", X, y)
    assert_array_equal(first["outputs"], alone["outputs"])
    assert not np.allclose(second["outputs"], first["outputs"])


def test_a_failing_rank_ends_the_job_with_its_error(tmp_path):
    # rank 1 raises after its second epoch while rank 0 waits in the next all-reduce:
    # torchrun stops the job and reports the error (no hang; timeout bounds the test)
    run = torchrun(tmp_path, "autoencoder", "--fail-rank", "1", timeout=120)
    assert run.returncode != 0
    assert "rank 1 fails on purpose at epoch 2" in run.stderr
    assert not (tmp_path / "rank0.npz").exists()


def test_each_rank_trains_on_its_own_rows_only(tmp_path):
    """The data-parallel split itself: in every epoch each rank's batches hold half of the
    rows, the two halves apart and together all of them. An implementation that
    all-reduced the gradients of whole batches on every rank would fail here."""
    run = torchrun(tmp_path, "split")
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = ranks(tmp_path)
    n_rows = int(first["n_rows"])
    epochs = 2
    for mine, theirs in ((first["rows"], second["rows"]), (second["rows"], first["rows"])):
        assert len(mine) == epochs * n_rows // 2
        for epoch in range(epochs):
            part = mine[epoch * n_rows // 2 : (epoch + 1) * n_rows // 2]
            other = theirs[epoch * n_rows // 2 : (epoch + 1) * n_rows // 2]
            assert len(np.unique(part)) == len(part)
            assert not set(part) & set(other)
            assert_array_equal(np.sort(np.concatenate([part, other])), np.arange(n_rows))
