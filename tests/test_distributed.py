"""Beyond one process: searches under joblib's Dask backend, streams from Dask arrays.

A Dask ``LocalCluster`` of two single-threaded worker processes stands in for a cluster.
Dask starts its workers with ``OMP_NUM_THREADS=1`` (its ``pre-spawn-environ``), so torch in
each worker uses one thread per task slot: no oversubscription, and the same float sums as
a single-threaded fit.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder, LinearAE

from .conftest import search_on_backend

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def X():
    return MinMaxScaler().fit_transform(load_digits().data[:600]).astype(np.float32)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _torch_threads():
    import torch

    return torch.get_num_threads()


def test_workers_train_with_one_torch_thread_per_task_slot(client):
    assert set(client.run(_torch_threads).values()) == {1}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_on_dask_matches_n_jobs_1(client, X):
    search_on_backend(X, "dask")


def test_partial_fit_over_the_blocks_of_a_dask_array(X):
    """A Dask array's blocks, computed one at a time, feed partial_fit: the same model as
    the same chunks from memory, and for LinearAE the exact PCA of every row seen."""
    X_dask = da.from_array(X, chunks=(150, X.shape[1]))
    streamed, local = AutoEncoder(4, random_state=0), AutoEncoder(4, random_state=0)
    lae = LinearAE(4, random_state=0)
    for block in X_dask.blocks:
        chunk = block.compute()
        streamed.partial_fit(chunk)
        lae.partial_fit(chunk)
    for start in range(0, len(X), 150):
        local.partial_fit(X[start : start + 150])
    assert_allclose(streamed.transform(X), local.transform(X))
    assert streamed.n_iter_ == X_dask.numblocks[0]
    full = LinearAE(4, random_state=0).fit(X)
    assert_allclose(np.abs(lae.components_), np.abs(full.components_), atol=1e-5)
