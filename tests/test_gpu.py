"""The CUDA path. Skipped where there is no GPU (CI has none)."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae import AutoEncoder, LinearAE

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("Estimator", [AutoEncoder, LinearAE])
def test_trains_on_the_gpu_with_auto_device(digits, Estimator):
    X, X_test, *_ = digits
    est = Estimator(n_components=3, max_iter=20, random_state=0).fit(X)
    assert est.device_.startswith("cuda")
    assert next(est.module_.parameters()).is_cuda
    Z = est.transform(X_test)
    assert isinstance(Z, np.ndarray) and Z.dtype == X_test.dtype
    assert np.isfinite(est.score_samples(X_test)).all()


def test_gpu_and_cpu_agree_up_to_floating_point(digits):
    X, X_test, *_ = digits
    params = {"n_components": 3, "max_iter": 5, "random_state": 0}
    gpu = AutoEncoder(device="cuda", **params).fit(X)
    # Same initial weights on both devices (drawn on the CPU), different shuffling streams,
    # so compare the functions after moving the GPU weights to the CPU.
    cpu = AutoEncoder(device="cpu", **params).fit(X)
    cpu.module_.load_state_dict({k: v.cpu() for k, v in gpu.module_.state_dict().items()})
    assert_allclose(cpu.transform(X_test), gpu.transform(X_test), rtol=1e-4, atol=1e-5)


def test_gpu_model_loads_on_a_machine_without_cuda(digits, tmp_path):
    X, X_test, *_ = digits
    est = AutoEncoder(n_components=3, max_iter=5, random_state=0).fit(X)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(est))
    np.save(tmp_path / "x.npy", X_test)
    code = (
        "import pickle, sys, numpy as np, torch, warnings; warnings.simplefilter('ignore');"
        "assert not torch.cuda.is_available();"
        f"est = pickle.loads(open({str(path)!r}, 'rb').read());"
        f"x = np.load({str(tmp_path / 'x.npy')!r});"
        f"np.save({str(tmp_path / 'z.npy')!r}, est.transform(x));"
        "print(est.device_, est.net_.device)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cuda", "cpu"]
    assert_allclose(np.load(tmp_path / "z.npy"), est.transform(X_test), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("module", ["conv", "user"])
def test_any_network_trains_on_the_gpu(digits, module):
    from skae import ContractiveAE, ConvNet

    from .modules import TinyAE

    X, X_test, *_ = digits
    network = ConvNet(channels=(4, 8)) if module == "conv" else TinyAE(width=3)
    est = ContractiveAE(
        n_components=3, module=network, max_iter=3, device="cuda", random_state=0
    ).fit(X)
    assert next(est.module_.parameters()).is_cuda
    assert np.isfinite(est.transform(X_test)).all()
    if module == "user":
        assert not any(p.is_cuda for p in network.parameters())  # the user's copy stays put


def test_the_streamed_path_feeds_the_gpu_from_pinned_memory(digits, tmp_path):
    from skae.engine import HostArrays

    X, X_test, *_ = digits
    batch = HostArrays(X, device="cuda").take(np.arange(10))[0]
    assert batch.is_cuda and batch.shape == (10, 64)
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    params = {"n_components": 3, "max_iter": 3, "device": "cuda", "random_state": 0}
    streamed = AutoEncoder(**params).fit(mm)  # "auto" streams a memmap
    resident = AutoEncoder(data_path="resident", **params).fit(X)
    assert streamed.data_path_ == "streamed" and resident.data_path_ == "resident"
    # the order is drawn on the CPU for streamed data, on the GPU for resident data: the
    # fits differ in their batches, not in their quality
    errors = [
        ((m.inverse_transform(m.transform(X_test)) - X_test) ** 2).sum(1).mean()
        for m in (streamed, resident)
    ]
    assert abs(errors[0] - errors[1]) < 0.1 * errors[1]


def test_partial_fit_and_transform_of_a_memmap_on_the_gpu(digits, tmp_path):
    X, *_ = digits
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    ae = AutoEncoder(n_components=3, device="cuda", random_state=0)
    for chunk in np.array_split(np.arange(len(mm)), 3):
        ae.partial_fit(mm[chunk])
    assert ae.n_iter_ == 3 and np.isfinite(ae.transform(mm)).all()
