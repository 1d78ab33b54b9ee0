"""Saving and loading: skops, safetensors + JSON (skae.persistence), ONNX export, pickle."""

import pickle
import warnings
from importlib.util import find_spec

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skae import (
    MLP,
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
    persistence,
)
from skae.persistence import InconsistentVersionWarning, load, save

from .modules import TiedAE

if find_spec("safetensors") is None:
    pytest.skip("skae's save/load needs safetensors (skae[save])", allow_module_level=True)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32)[:400], y[:400]


SMALL = {"max_iter": 3, "random_state": 0}
ESTIMATORS = {
    "AutoEncoder": lambda: AutoEncoder(4, hidden_layer_sizes=(16,), **SMALL),
    "AutoEncoder-pca-start": lambda: AutoEncoder(4, module=MLP((16,), start="pca"), **SMALL),
    "AutoEncoder-conv": lambda: AutoEncoder(
        4, module=ConvNet(input_shape=(1, 8, 8), channels=(4,)), **SMALL
    ),
    "LinearAE": lambda: LinearAE(3, random_state=0),
    "DenoisingAE": lambda: DenoisingAE(4, hidden_layer_sizes=(16,), noise="masking", **SMALL),
    "ContractiveAE": lambda: ContractiveAE(4, hidden_layer_sizes=(16,), **SMALL),
    "SparseAE": lambda: SparseAE(4, hidden_layer_sizes=(16,), **SMALL),
    "StackedAE": lambda: StackedAE(4, hidden_layer_sizes=(16,), pretrain_iter=2, **SMALL),
    "VariationalAE": lambda: VariationalAE(4, loss="bce", hidden_layer_sizes=(16,), **SMALL),
    "EncoderClassifier": lambda: EncoderClassifier(
        AutoEncoder(4, hidden_layer_sizes=(16,), max_iter=2), **SMALL
    ),
    "OutlierDetector": lambda: OutlierDetector(
        AutoEncoder(4, hidden_layer_sizes=(16,), max_iter=2), random_state=0
    ),
    "OutlierDetector-PCA": lambda: OutlierDetector(PCA(3)),
    "OutlierDetector-default": lambda: OutlierDetector(random_state=0),
}


def outputs(estimator, X):
    """What a fitted estimator computes, for comparing a copy with the original."""
    if hasattr(estimator, "predict_proba"):
        return [estimator.predict_proba(X)]
    if hasattr(estimator, "decision_function"):
        return [estimator.score_samples(X), estimator.decision_function(X)]
    codes = estimator.transform(X)
    return [codes, estimator.inverse_transform(codes)]


def fitted(name, data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ESTIMATORS[name]().fit(X, y)


def assert_same_outputs(a, b, X):
    for left, right in zip(outputs(a, X), outputs(b, X), strict=True):
        assert_allclose(left, right, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_skops_round_trip(name, data):
    sio = pytest.importorskip("skops.io")
    estimator = fitted(name, data)
    blob = sio.dumps(estimator)
    untrusted = sio.get_untrusted_types(data=blob)
    # the documented list is all a user must trust for skae's own networks
    assert set(untrusted) <= set(persistence.SKOPS_TRUSTED_TYPES)
    loaded = sio.loads(blob, trusted=untrusted)
    assert_same_outputs(estimator, loaded, data[0])
    assert loaded.get_params().keys() == estimator.get_params().keys()
    clone(loaded)


def test_the_default_detector_is_refused_by_safetensors_before_any_file(data, tmp_path):
    """Its isolation forest's trees are no arrays and JSON; pickle and skops keep them."""
    detector = fitted("OutlierDetector-default", data)
    with pytest.raises(ValueError, match="holds a Tree.*use pickle or skops"):
        save(detector, tmp_path / "model.safetensors")
    assert not list(tmp_path.iterdir())


SAFETENSORS = [name for name in ESTIMATORS if name != "OutlierDetector-default"]


@pytest.mark.parametrize("name", SAFETENSORS)
def test_safetensors_round_trip(name, data, tmp_path):
    estimator = fitted(name, data)
    save(estimator, tmp_path / "model.safetensors")
    loaded = load(tmp_path / "model.safetensors")
    assert type(loaded) is type(estimator)
    assert_same_outputs(estimator, loaded, data[0])
    assert repr(loaded) == repr(estimator)


def test_unfitted_estimators_save_too(tmp_path):
    save(AutoEncoder(3, hidden_layer_sizes=(8, 4)), tmp_path / "a.safetensors")
    loaded = load(tmp_path / "a.safetensors")
    assert loaded.get_params()["hidden_layer_sizes"] == (8, 4)
    assert not hasattr(loaded, "net_")


def test_loaded_models_train_on(data, tmp_path):
    """The optimizer's state travels with the weights: a loaded model continues as the
    original does."""
    X, _ = data
    original = fitted("AutoEncoder", data)
    via_pickle = pickle.loads(pickle.dumps(original))
    save(original, tmp_path / "m.safetensors")
    via_file = load(tmp_path / "m.safetensors")
    for model in (original, via_pickle, via_file):
        model.partial_fit(X)
    assert_allclose(via_pickle.transform(X), original.transform(X), rtol=1e-6, atol=1e-6)
    assert_allclose(via_file.transform(X), original.transform(X), rtol=1e-6, atol=1e-6)
    assert via_file.n_iter_ == original.n_iter_ == 4


def test_a_users_module_is_passed_again(data, tmp_path):
    X, _ = data
    ae = AutoEncoder(module=TiedAE(width=3), max_iter=3, random_state=0).fit(X)
    save(ae, tmp_path / "tied.safetensors")
    with pytest.raises(ValueError, match="module of your own"):
        load(tmp_path / "tied.safetensors")
    loaded = load(tmp_path / "tied.safetensors", module=TiedAE(width=3))
    assert_allclose(loaded.transform(X), ae.transform(X), rtol=1e-6)
    sio = pytest.importorskip("skops.io")
    with pytest.raises(TypeError, match="skops cannot write"):
        sio.dumps(ae)
    # pickle and deepcopy are not concerned
    assert_allclose(pickle.loads(pickle.dumps(ae)).transform(X), ae.transform(X))


def test_callbacks_are_not_saved(data, tmp_path):
    from skorch.callbacks import EpochTimer

    X, _ = data
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_iter=2, callbacks=[EpochTimer()]).fit(X)
    save(ae, tmp_path / "c.safetensors")
    assert load(tmp_path / "c.safetensors").callbacks is None


def test_every_format_warns_on_another_version(data, tmp_path, monkeypatch):
    ae = fitted("AutoEncoder", data)
    blob = pickle.dumps(ae)
    save(ae, tmp_path / "v.safetensors")
    sio = pytest.importorskip("skops.io")
    skops_blob = sio.dumps(ae)
    for module in ("skae.base", "skae.persistence"):
        monkeypatch.setattr(f"{module}.__version__", "99.0")
    with pytest.warns(InconsistentVersionWarning, match="saved by skae 0"):
        pickle.loads(blob)
    with pytest.warns(InconsistentVersionWarning, match="loaded by skae 99.0"):
        load(tmp_path / "v.safetensors")
    with pytest.warns(InconsistentVersionWarning):
        sio.loads(skops_blob, trusted=sio.get_untrusted_types(data=skops_blob))


def test_the_same_version_loads_silently(data, tmp_path):
    ae = fitted("AutoEncoder", data)
    save(ae, tmp_path / "s.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        load(tmp_path / "s.safetensors")
        pickle.loads(pickle.dumps(ae))


def test_a_missing_gpu_falls_back_to_the_cpu(data, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has the GPU")
    ae = fitted("AutoEncoder", data)
    ae.device = "cuda"  # as if trained on a GPU with device="cuda"
    save(ae, tmp_path / "g.safetensors")
    with pytest.warns(UserWarning, match="runs on the CPU"):
        loaded = load(tmp_path / "g.safetensors")
    assert loaded.device == "cpu" and loaded.device_ == "cpu"
    assert load(tmp_path / "g.safetensors", device="cpu").device_ == "cpu"


def test_saving_is_atomic(data, tmp_path, monkeypatch):
    """A failure while writing (a full disk) leaves the previous file as it was and no
    partial file beside it."""
    ae = fitted("AutoEncoder", data)
    target = tmp_path / "model.safetensors"
    save(ae, target)
    before = target.read_bytes()

    def full_disk(arrays, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.numpy.save_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save(AutoEncoder(2, max_iter=1).fit(data[0]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_load_refuses_foreign_files_and_classes(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not a file written by skae.save"):
        load(tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="from skae and scikit-learn only"):
        persistence._allowed_class("os.system")


@pytest.mark.parametrize(
    "name", ["AutoEncoder", "AutoEncoder-conv", "VariationalAE", "LinearAE", "StackedAE"]
)
@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
def test_onnx_export_matches_the_estimator(name, method, data, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    X, _ = data
    estimator = fitted(name, data)
    path = tmp_path / f"{method}.onnx"
    persistence.export_onnx(estimator, path, method=method)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = X[:37] if method == "transform" else estimator.transform(X[:37])
    (result,) = session.run(None, {"X": inputs.astype(np.float32)})
    expected = getattr(estimator, method)(inputs)
    assert result.shape == expected.shape
    assert_allclose(result, expected, rtol=1e-4, atol=1e-5)


def test_onnx_export_errors(data):
    with pytest.raises(ValueError, match="method must be"):
        persistence.export_onnx(fitted("AutoEncoder", data), "x.onnx", method="predict")
    with pytest.raises(ValueError, match="not a skae autoencoder"):
        persistence.export_onnx(fitted("OutlierDetector", data), "x.onnx")


def test_pickle_keeps_everything(data):
    X, _ = data
    stacked = fitted("StackedAE", data)
    loaded = pickle.loads(pickle.dumps(stacked))
    assert len(loaded.pretrained_layers_) == len(stacked.pretrained_layers_)
    assert_array_equal(loaded.transform(X), stacked.transform(X))
