"""The CUDA path, tested by what a fit achieves, not by flags. Skipped where there is no GPU
(CI has none); ``pytest -m gpu`` prints the device and every test it ran (conftest.py).

Every test here would fail on a silent device bug: a GPU fit must reach the CPU fit's
held-out loss within ``TOLERANCE`` (the two draw their batches and noise from generators on
different devices, so they are different fits of the same quality, not the same numbers)
and beat PCA wherever the CPU fit does; a model trained on the GPU must give the same
outputs after a save and a load on a machine without CUDA; the out-of-memory fallback is
driven by a real allocation failure.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from skae import (
    AutoEncoder,
    ContractiveAE,
    ConvNet,
    DenoisingAE,
    EncoderClassifier,
    LinearAE,
    OutlierDetector,
    SparseAE,
    StackedAE,
    VariationalAE,
)

from .conftest import sse

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

# A GPU fit's held-out loss may exceed the CPU fit's by this fraction: the spread between
# two CPU fits of these models with other seeds is within 3% (measured on digits).
TOLERANCE = 0.05

MODELS = {
    "AutoEncoder": lambda **kw: AutoEncoder(n_components=6, max_iter=60, **kw),
    "LinearAE": lambda **kw: LinearAE(n_components=6, **kw),
    "DenoisingAE": lambda **kw: DenoisingAE(n_components=6, max_iter=60, **kw),
    "ContractiveAE": lambda **kw: ContractiveAE(n_components=6, max_iter=60, **kw),
    "SparseAE": lambda **kw: SparseAE(n_components=6, max_iter=60, **kw),
    "StackedAE": lambda **kw: StackedAE(n_components=6, max_iter=60, pretrain_iter=5, **kw),
    "ConvNet": lambda **kw: AutoEncoder(
        n_components=6, module=ConvNet(input_shape=(1, 8, 8), channels=(8, 16)), max_iter=30, **kw
    ),
}


def held_out(model, X):
    return sse(X, model.inverse_transform(model.transform(X)))


def on_the_gpu(model):
    assert model.device_.startswith("cuda"), model.device_
    assert next(model.module_.parameters()).is_cuda


@pytest.mark.parametrize("data_path", ["resident", "streamed"])
@pytest.mark.parametrize("name", MODELS)
def test_a_gpu_fit_is_as_good_as_the_cpu_fit(name, data_path, digits):
    """The denoising noise, the contractive penalty, the sparse codes, pretraining and the
    convolutional network, on both data paths."""
    X, X_test, *_ = digits
    make = MODELS[name]
    cpu = make(device="cpu", data_path=data_path, random_state=0).fit(X)
    gpu = make(device="cuda", data_path=data_path, random_state=0).fit(X)
    on_the_gpu(gpu)
    assert gpu.data_path_ == cpu.data_path_  # LinearAE's EM reads X in chunks either way
    codes = gpu.transform(X_test)
    assert isinstance(codes, np.ndarray) and codes.dtype == X_test.dtype
    cpu_error, gpu_error = held_out(cpu, X_test), held_out(gpu, X_test)
    pca_error = held_out(PCA(6).fit(X), X_test)
    assert gpu_error <= (1 + TOLERANCE) * cpu_error
    if cpu_error < pca_error:
        assert gpu_error < pca_error


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("name", ["AutoEncoder", "DenoisingAE", "ConvNet"])
def test_mixed_precision_on_the_gpu_is_as_good_as_float32(name, precision, digits):
    """Autocast with bfloat16, and float16 with its gradient scaler: the held-out error
    within the tolerance of the float32 fit's, outputs in the input's dtype."""
    if precision == "bf16-mixed" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU lacks bfloat16")
    X, X_test, *_ = digits
    make = MODELS[name]
    full = make(device="cuda", random_state=0).fit(X)
    mixed = make(device="cuda", precision=precision, random_state=0).fit(X)
    on_the_gpu(mixed)
    assert mixed.transform(X_test).dtype == X_test.dtype
    assert held_out(mixed, X_test) <= (1 + TOLERANCE) * held_out(full, X_test)
    if precision == "16-mixed":
        assert mixed.net_.scaler_ is not None


def test_sample_weights_reach_the_gpu(digits):
    """Rows of weight 0 are ignored on the GPU as on the CPU: a fit weighted to digits 0-4
    reconstructs them within the tolerance of the CPU's weighted fit, and the digits it
    never saw worse than an unweighted fit does."""
    X, X_test, y, y_test = digits
    weights = (y < 5).astype(float)
    kept, dropped = X_test[y_test < 5], X_test[y_test >= 5]
    fits = {
        (device, weighted): AutoEncoder(
            n_components=4, max_iter=60, device=device, random_state=0
        ).fit(X, sample_weight=weights if weighted else None)
        for device in ("cpu", "cuda")
        for weighted in (True, False)
    }
    on_the_gpu(fits["cuda", True])
    assert held_out(fits["cuda", True], kept) <= (1 + TOLERANCE) * held_out(fits["cpu", True], kept)
    assert held_out(fits["cuda", True], dropped) > held_out(fits["cuda", False], dropped)


def test_the_vae_samples_on_the_gpu(digits01):
    """The ELBO's draws and the importance-weighted likelihood on the GPU: the held-out
    likelihood of a GPU fit is the CPU fit's within the tolerance (in nats)."""
    X, X_test = digits01[:1400], digits01[1400:]
    params = {"n_components": 4, "loss": "bce", "max_iter": 60, "random_state": 0}
    cpu = VariationalAE(device="cpu", **params).fit(X)
    gpu = VariationalAE(device="cuda", **params).fit(X)
    on_the_gpu(gpu)
    nll = {
        m: -m.log_likelihood(X_test, n_importance_samples=50, random_state=0).mean()
        for m in (cpu, gpu)
    }
    assert nll[gpu] <= (1 + TOLERANCE) * nll[cpu]
    samples = gpu.sample(5, random_state=0)
    assert samples.shape == (5, 64) and np.isfinite(samples).all()


def test_the_classifier_fine_tunes_on_the_gpu(digits):
    X, X_test, y, y_test = digits
    params = {"max_iter": 30, "random_state": 0}
    clf = {
        device: EncoderClassifier(
            AutoEncoder(n_components=16, max_iter=20), device=device, **params
        ).fit(X, y)
        for device in ("cpu", "cuda")
    }
    assert clf["cuda"].score(X_test, y_test) >= clf["cpu"].score(X_test, y_test) - 0.02


def test_the_default_detector_on_the_gpu(digits):
    """One-class digits (train on zeros): the default detector, its ensemble on the GPU,
    ranks the other digits as well as the same detector with its ensemble on the CPU."""
    from skae.outliers import default_model

    X, X_test, y, y_test = digits
    train = X[y == 0]
    on_cpu = default_model(*train.shape).set_params(autoencoder__device="cpu")
    detectors = {
        "cuda": OutlierDetector(random_state=0).fit(train),
        "cpu": OutlierDetector(on_cpu, score_by="combined", random_state=0).fit(train),
    }
    on_the_gpu(detectors["cuda"].autoencoder_[-1])
    auc = {
        device: roc_auc_score(y_test != 0, -detector.score_samples(X_test))
        for device, detector in detectors.items()
    }
    assert auc["cuda"] >= auc["cpu"] - 0.02


def test_a_gpu_model_saved_and_loaded_on_a_cpu_machine(digits, tmp_path):
    """Trained on the GPU, written by skae.save, read where CUDA is hidden: the same codes."""
    from skae.persistence import save

    X, X_test, *_ = digits
    gpu = AutoEncoder(n_components=3, max_iter=20, device="cuda", random_state=0).fit(X)
    on_the_gpu(gpu)
    save(gpu, tmp_path / "model.safetensors")
    np.save(tmp_path / "x.npy", X_test)
    code = (
        "import sys, numpy as np, torch, warnings; warnings.simplefilter('ignore');"
        "from skae.persistence import load;"
        "assert not torch.cuda.is_available();"
        f"est = load({str(tmp_path / 'model.safetensors')!r});"
        f"x = np.load({str(tmp_path / 'x.npy')!r});"
        f"np.save({str(tmp_path / 'z.npy')!r}, est.transform(x));"
        "print(est.device_)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cpu"]
    assert_allclose(np.load(tmp_path / "z.npy"), gpu.transform(X_test), rtol=1e-4, atol=1e-5)


@pytest.fixture
def small_card():
    """The caching allocator limited to 2% of the card: real allocation failures, on any
    card, without filling it."""
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(0.02)
    yield torch.cuda.get_device_properties(0).total_memory * 0.02
    torch.cuda.set_per_process_memory_fraction(1.0)
    torch.cuda.empty_cache()


def test_out_of_memory_falls_back_to_streaming(small_card):
    """Data twice the allowed memory: "auto" puts it on the card (the card's free memory is
    ample), the allocation fails, and training starts again on the streamed path."""
    n_features = 1024
    n_rows = int(2 * small_card / (4 * n_features))
    X = np.random.RandomState(0).rand(n_rows, n_features).astype(np.float32)
    with pytest.warns(UserWarning, match="out of memory"):
        ae = AutoEncoder(n_components=4, max_iter=1, device="cuda", random_state=0).fit(X)
    assert ae.data_path_ == "streamed"
    assert np.isfinite(ae.transform(X[:100])).all()
    with pytest.raises(MemoryError, match="ran out of memory"):
        AutoEncoder(n_components=4, max_iter=1, device="cuda", data_path="resident").fit(X)


def test_partial_fit_and_transform_of_a_memmap_on_the_gpu(digits, tmp_path):
    X, X_test, *_ = digits
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    gpu = AutoEncoder(n_components=3, device="cuda", random_state=0)
    cpu = AutoEncoder(n_components=3, device="cpu", random_state=0)
    for _ in range(20):
        for chunk in np.array_split(np.arange(len(mm)), 3):
            gpu.partial_fit(mm[chunk])
            cpu.partial_fit(X[chunk])
    on_the_gpu(gpu)
    assert gpu.n_iter_ == 60
    assert held_out(gpu, X_test) <= (1 + TOLERANCE) * held_out(cpu, X_test)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs one GPU per rank")
def test_data_parallel_on_nccl(tmp_path):
    """Two ranks, one GPU each, on NCCL: the ranks fit the same model, the one-process fit's
    within the tolerance of the float sums."""
    from .test_data_parallel import ranks, torchrun

    run = torchrun(tmp_path, "autoencoder", "--backend", "nccl")
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = ranks(tmp_path)
    for key in first:
        assert_allclose(first[key], second[key])
