"""The two data paths: resident (X on the device once) and streamed (a batch at a time)."""

import tracemalloc

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone

from skae import (
    AutoEncoder,
    ConvNet,
    DenoisingAE,
    EncoderClassifier,
    LinearAE,
    StackedAE,
    VariationalAE,
)
from skae._engine.net import DeviceTensors, HostArrays, fits_on_device, map_batches

CASES = [
    AutoEncoder(n_components=3, max_iter=4, early_stopping=True, batch_size=64),
    DenoisingAE(n_components=3, noise="salt_and_pepper", noise_level=0.3, max_iter=3),
    VariationalAE(n_components=3, max_iter=3),
    StackedAE(n_components=3, module=ConvNet(channels=(4,)), pretrain_iter=2, max_iter=2),
    LinearAE(n_components=3, solver="adam", max_iter=3),
]


@pytest.mark.parametrize("estimator", CASES, ids=lambda e: type(e).__name__)
def test_both_paths_fit_the_same_model_bit_for_bit(digits, estimator):
    X, X_test, *_ = digits
    fits = {
        path: estimator.set_params(data_path=path, random_state=0, device="cpu")
        .__class__(**estimator.get_params(deep=False))
        .fit(X)
        for path in ("resident", "streamed")
    }
    assert fits["resident"].data_path_ == "resident"
    assert fits["streamed"].data_path_ == "streamed"
    assert fits["resident"].loss_curve_ == fits["streamed"].loss_curve_
    assert_array_equal(fits["resident"].transform(X_test), fits["streamed"].transform(X_test))


def test_the_classifier_too_with_its_stratified_split(digits):
    X, X_test, y, _ = digits
    params = {"max_iter": 3, "early_stopping": True, "random_state": 0}
    ae = AutoEncoder(n_components=4, max_iter=2, random_state=0)
    resident = EncoderClassifier(ae, data_path="resident", **params).fit(X, y)
    streamed = EncoderClassifier(ae, data_path="streamed", **params).fit(X, y)
    assert streamed.data_path_ == "streamed"
    assert_array_equal(resident.predict_proba(X_test), streamed.predict_proba(X_test))


@pytest.fixture
def memmap(tmp_path, digits):
    """The digits as a read-only float64 memmap, 60 times over (43 MB)."""
    X = np.tile(digits[0], (60, 1))
    path = tmp_path / "X.npy"
    np.save(path, X)
    return np.load(path, mmap_mode="r")


def test_auto_streams_a_memmap_and_keeps_an_array_resident(digits, memmap):
    X, *_ = digits
    assert AutoEncoder(max_iter=1).fit(X).data_path_ == "resident"
    assert AutoEncoder(max_iter=1).fit(memmap).data_path_ == "streamed"
    assert not fits_on_device(memmap[:100], "cpu", torch.float32)
    assert fits_on_device(np.array(memmap[:100]), "cpu", torch.float32)


def peak_numpy_memory(fn, *args):
    """The peak of memory that numpy (and so skae's host conversions) allocated during fn."""
    tracemalloc.start()
    try:
        result = fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_no_method_copies_a_read_only_memmap(memmap):
    ae = AutoEncoder(n_components=2, max_iter=1, batch_size=256, random_state=0)
    clone(ae).fit(np.array(memmap[:600]))  # what torch sets up on first use is not counted
    _, peak = peak_numpy_memory(ae.fit, memmap)
    budget = memmap.nbytes / 4  # a copy would be the whole of it, float32 half of it
    assert peak < budget, peak
    for method in (ae.transform, ae.score_samples, ae.score):
        _, peak = peak_numpy_memory(method, memmap)
        assert peak < budget, (method.__name__, peak)
    Z = ae.transform(memmap)
    _, peak = peak_numpy_memory(ae.inverse_transform, Z)
    assert peak < memmap.nbytes * 1.05 + budget  # the output itself is X's size


def test_integer_data_are_converted_batch_by_batch(tmp_path, digits):
    X = (np.tile(digits[0], (60, 1)) * 10).astype(np.int16)
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    ae = AutoEncoder(n_components=2, max_iter=1, batch_size=256, random_state=0)
    _, peak = peak_numpy_memory(ae.fit, mm)
    assert peak < mm.nbytes  # a float64 copy would be four times its size
    Z, peak = peak_numpy_memory(ae.transform, mm)
    assert Z.dtype == np.float64 and peak < mm.nbytes
    assert_array_equal(Z, ae.transform(X.astype(np.float64)))


def test_map_batches_writes_into_the_output_it_is_given(tmp_path):
    X = np.arange(30, dtype=np.float64).reshape(10, 3)
    path = tmp_path / "out.npy"

    def out(shape, dtype):
        return np.lib.format.open_memmap(path, mode="w+", shape=shape, dtype=dtype)

    result = map_batches(lambda x: 2 * x, X, "cpu", batch_size=4, out=out)
    assert isinstance(result, np.memmap)
    assert_array_equal(np.load(path), 2 * X)


def test_the_streamed_dataset_returns_the_resident_rows(digits):
    X = digits[0][:50]
    resident, streamed = DeviceTensors(X), HostArrays(X)
    assert not streamed.resident and len(streamed) == 50
    index = np.array([7, 3, 3, 49])
    assert_array_equal(streamed.take(index)[0], resident.take(index)[0])
    assert_array_equal(streamed.take(slice(10, 20))[0], resident.take(slice(10, 20))[0])
    assert_array_equal(streamed[42][0], resident[42][0])


def test_data_path_is_validated(digits):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'data_path' parameter"):
        AutoEncoder(data_path="disk").fit(digits[0])


@pytest.fixture
def device_full(monkeypatch):
    """A device with no room for the data: moving X there runs out of memory (simulated)."""

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")

    monkeypatch.setattr(DeviceTensors, "__init__", out_of_memory)


def test_out_of_memory_on_the_resident_path_falls_back_to_streaming(digits, device_full):
    X, X_test, *_ = digits
    params = {"n_components": 3, "max_iter": 3, "random_state": 0}
    with pytest.warns(ResourceWarning, match="ran out of memory .* data_path='streamed'"):
        auto = AutoEncoder(**params).fit(X)
    assert auto.data_path_ == "streamed"
    streamed = AutoEncoder(data_path="streamed", **params).fit(X)
    assert_array_equal(auto.transform(X_test), streamed.transform(X_test))  # a fresh start


def test_out_of_memory_on_a_forced_path_names_what_to_change(digits, device_full):
    ae = AutoEncoder(data_path="resident", max_iter=2)
    with pytest.raises(MemoryError, match=r"lower batch_size.*data_path='streamed'"):
        ae.fit(digits[0])
    assert not hasattr(ae, "net_")


@pytest.mark.parametrize(
    "estimator",
    [
        LinearAE(n_components=3, max_iter=3),
        DenoisingAE(n_components=3, noise="salt_and_pepper", max_iter=1, batch_size=256),
        StackedAE(
            n_components=3, hidden_layer_sizes=(16,), pretrain_iter=1, max_iter=1, batch_size=256
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_variant_fits_a_memmap_without_copying_it(memmap, estimator):
    # a first small fit, so that what torch sets up on first use is not counted
    clone(estimator).fit(np.array(memmap[:600]))
    fitted, peak = peak_numpy_memory(estimator.set_params(random_state=0).fit, memmap)
    assert fitted.data_path_ == ("resident" if isinstance(fitted, LinearAE) else "streamed")
    assert peak < memmap.nbytes / 4, peak


def test_transform_out_of_memory_retries_in_smaller_chunks(digits, monkeypatch):
    import skae.base

    X, *_ = digits
    ae = AutoEncoder(n_components=2, max_iter=1, random_state=0).fit(X)
    expected = ae.transform(X)
    encode = skae.base.encode

    def encode_small_batches_only(module, x):
        if len(x) > 512:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return encode(module, x)

    monkeypatch.setattr(skae.base, "encode", encode_small_batches_only)
    with pytest.warns(ResourceWarning, match="retrying with 512"):
        assert_array_equal(ae.transform(X), expected)
    monkeypatch.setattr(skae.base, "MAP_CHUNK", 8192)
    with pytest.raises(MemoryError, match="on chunks of 1024 rows"), pytest.warns(ResourceWarning):
        ae.transform(X)
