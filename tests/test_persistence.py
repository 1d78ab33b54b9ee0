"""Saving and loading: skops, safetensors + JSON (skae.persistence), ONNX export, pickle."""

import copy
import json
import os
import pickle
import re
import subprocess
import sys
import warnings
from importlib.util import find_spec
from types import SimpleNamespace

import numpy as np
import pytest
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

from .user_modules import TiedAE

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
    """A file saved with device="cuda" loads where there is no GPU (CUDA hidden from a
    fresh process, so the test runs on machines with a GPU too)."""
    ae = fitted("AutoEncoder", data)
    ae.device = "cuda"  # as if trained on a GPU with device="cuda"
    save(ae, tmp_path / "g.safetensors")
    code = (
        "import warnings, torch; from skae.persistence import load;"
        "assert not torch.cuda.is_available();"
        "warnings.simplefilter('error');"
        f"path = {str(tmp_path / 'g.safetensors')!r};"
        "\ntry:\n    load(path)\nexcept UserWarning as w:\n    print('warned:', w)\n"
        "warnings.simplefilter('ignore'); loaded = load(path);"
        "print(loaded.device, loaded.device_, load(path, device='cpu').device_)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    warned, devices = out.stdout.strip().splitlines()
    assert "runs on the CPU" in warned
    assert devices.split() == ["cpu", "cpu", "cpu"]


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
    with pytest.raises(ValueError, match="which skae.save never writes"):
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


# --------------------------------------------------------------------------------------
# forged files: every outcome a clean ValueError naming the problem, or the estimator


def _contents(path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(path, framework="numpy") as f:
        header = json.loads(f.metadata()["skae"])
    return header, load_file(path)


def _forge(path, header, arrays):
    from safetensors.numpy import save_file

    save_file(arrays, path, metadata={"skae": json.dumps(header)})
    return path


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    """A fitted AutoEncoder's file: its header and arrays, to alter."""
    path = tmp_path_factory.mktemp("saved") / "model.safetensors"
    save(fitted("AutoEncoder", data), path)
    return _contents(path)


def _set(state, key, value):
    """The header's state with its estimator's attribute ``key`` set to an encoded value."""
    state = copy.deepcopy(state)
    state["__dict__"][key] = value
    return state


FORGERIES = {
    "a top-level class that is no estimator (sklearn.utils.Bunch)": (
        lambda h: {**h, "class": "sklearn.utils._bunch.Bunch"},
        "never writes",
    ),
    "a top-level scikit-learn estimator": (
        lambda h: {**h, "class": "sklearn.decomposition._pca.PCA"},
        "never writes",
    ),
    "a FunctionTransformer calling os.system, nested": (
        lambda h: {
            **h,
            "state": _set(
                h["state"],
                "module",
                {
                    "__object__": "sklearn.preprocessing._function_transformer.FunctionTransformer",
                    "state": {"__dict__": {"func": "os.system"}},
                },
            ),
        },
        "FunctionTransformer', which skae.save never writes",
    ),
    "an object-dtype string array": (
        lambda h: {
            **h,
            "state": _set(h["state"], "feature_names_in_", {"__strings__": ["a"], "dtype": "|O"}),
        },
        "string array of dtype '|O'",
    ),
    "an array the file lacks": (
        lambda h: {**h, "state": _set(h["state"], "extra_", {"__array__": "nope"})},
        "array 'nope' it lacks",
    ),
    "a module that does not exist": (
        lambda h: {**h, "class": "sklearn.utils._joblib.Parallel"},
        "never writes",
    ),
    "an unknown entry": (
        lambda h: {**h, "state": _set(h["state"], "extra_", {"__code__": "print(1)"})},
        "unknown entry",
    ),
    "a state that does not fit its class": (
        lambda h: {**h, "state": _set(h["state"], "n_components", 7)},
        "do not make a 'skae.autoencoder.AutoEncoder'",
    ),
    "a header that is not an object": (lambda h: [1, 2], "has format"),
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_load_refuses_a_forged_file(forgery, saved, tmp_path):
    header, arrays = saved
    alter, message = FORGERIES[forgery]
    path = _forge(tmp_path / "forged.safetensors", alter(copy.deepcopy(header)), arrays)
    with pytest.raises(persistence.InvalidFileError, match=re.escape(message)) as error:
        load(path)
    assert "not a valid skae file" in str(error.value) or "has format" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_the_allow_list_is_what_save_writes_and_what_skops_trusts(data, tmp_path):
    """Every class a save of the test estimators names is on the list, and the skops list
    is derived from it (skae's own classes)."""
    named = set()

    def walk(node):
        if isinstance(node, dict):
            named.update([node["__object__"]] if "__object__" in node else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in ESTIMATORS:
        if name == "OutlierDetector-default":
            continue  # its trees are refused (see above)
        save(fitted(name, data), tmp_path / f"{name}.safetensors")
        header, _ = _contents(tmp_path / f"{name}.safetensors")
        assert header["class"] in persistence.SAVED_ESTIMATORS
        walk(header["state"])
    assert named <= persistence.SAVED_CLASSES
    skae_classes = {p for p in persistence.SAVED_CLASSES if p.startswith("skae.")}
    assert skae_classes <= set(persistence.SKOPS_TRUSTED_TYPES)


def _nodes(tree, path=()):
    """Every position in a JSON tree, as a path of keys and indices."""
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _nodes(value, (*path, i))


def _replaced(tree, path, value):
    if not path:
        return value
    tree = copy.copy(tree)
    tree[path[0]] = _replaced(tree[path[0]], path[1:], value)
    return tree


def test_a_fuzzed_header_loads_cleanly_or_is_refused(saved, tmp_path, monkeypatch):
    """Hypothesis over the JSON tree: any node replaced by any small JSON value (an encoded
    array, object or string array among them) gives a ValueError or an AutoEncoder, and
    load imports no module but those of the classes it may build."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    allowed_modules = {path.rpartition(".")[0] for path in persistence.SAVED_CLASSES}
    imported = []
    import_module = persistence.importlib.import_module

    def recording(name, *args):
        imported.append(name)
        return import_module(name, *args)

    # persistence's own imports only (hypothesis and torch import lazily as they please)
    monkeypatch.setattr(persistence, "importlib", SimpleNamespace(import_module=recording))

    header, arrays = saved
    positions = list(_nodes(header))
    text = st.text(max_size=8)
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(allow_nan=True, allow_infinity=True),
        text,
        st.just([]),
        st.just({}),
        st.builds(lambda n: {"__array__": n}, st.sampled_from([*arrays, "nope"])),
        st.builds(
            lambda c: {"__object__": c, "state": {"__dict__": {}}},
            st.sampled_from(sorted(persistence.SAVED_CLASSES) + ["os.system", "builtins.eval"]),
        ),
        st.builds(
            lambda d: {"__strings__": ["x"], "dtype": d}, st.sampled_from(["|O", "<U1", "<f8"])
        ),
        st.builds(lambda k: {k: 1}, text),
    )

    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True)
    @hypothesis.given(st.integers(0, len(positions) - 1), values)
    def check(index, value):
        forged = _replaced(header, positions[index], value)
        path = _forge(tmp_path / "fuzzed.safetensors", forged, arrays)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator = load(path)
        except ValueError:
            return
        finally:
            assert set(imported) <= allowed_modules, set(imported) - allowed_modules
        assert type(estimator) is AutoEncoder

    check()
    assert imported  # the recorder saw load build its classes
