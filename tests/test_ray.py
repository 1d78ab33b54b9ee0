"""Searches under Ray's joblib backend (``ray.util.joblib``) on a local Ray of 2 CPUs.

Ray starts its workers with ``OMP_NUM_THREADS`` set to a task's CPUs (1 here), so torch in
each worker trains on one thread: no oversubscription, and the float sums of a
single-threaded fit.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler

from .conftest import search_on_backend

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    register_ray()
    yield ray
    ray.shutdown()


def _torch_threads():
    import torch

    return torch.get_num_threads()


def test_ray_workers_train_with_one_torch_thread(local_ray):
    threads = local_ray.remote(num_cpus=1)(_torch_threads)
    assert set(local_ray.get([threads.remote() for _ in range(2)])) == {1}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_on_ray_matches_n_jobs_1(local_ray):
    X = MinMaxScaler().fit_transform(load_digits().data[:600]).astype(np.float32)
    search_on_backend(X, "ray")
