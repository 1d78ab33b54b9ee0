import numpy as np
import pytest
from numpy.testing import assert_allclose

from skae.datasets import load_mnist


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.RandomState(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        X_train=rng.randint(0, 256, (6, 784), dtype=np.uint8),
        y_train=np.arange(6, dtype=np.uint8),
        X_test=np.full((2, 784), 255, np.uint8),
        y_test=np.array([3, 4], dtype=np.uint8),
    )
    return path


def test_loads_a_local_file_scaled_to_unit_interval(tiny_mnist):
    data = load_mnist(tiny_mnist)
    assert data.X_train.shape == (6, 784) and data.X_train.dtype == np.float32
    assert data.X_train.min() >= 0 and data.X_train.max() <= 1
    np.testing.assert_array_equal(data.X_test, 1.0)
    np.testing.assert_array_equal(data.y_test, [3, 4])
    assert data.source == str(tiny_mnist)


def test_environment_variable_names_the_file(tiny_mnist, monkeypatch):
    monkeypatch.setenv("SKAE_MNIST", str(tiny_mnist))
    assert load_mnist().X_train.shape == (6, 784)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No MNIST file at .*nope.npz"):
        load_mnist(tmp_path / "nope.npz")


def test_wrong_file_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="is not an MNIST file"):
        load_mnist(tmp_path / "x.npz")


def test_offline_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SKAE_MNIST", raising=False)

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("sklearn.datasets.fetch_openml", offline)
    with pytest.raises(RuntimeError, match=r"fetch_openml\('mnist_784'\) failed .*Offline\?"):
        load_mnist()
    with pytest.raises(RuntimeError, match="download=False"):
        load_mnist(download=False)


def test_openml_route_splits_60000_10000(monkeypatch):
    monkeypatch.delenv("SKAE_MNIST", raising=False)

    def fake_fetch(name, **kwargs):
        assert name == "mnist_784"
        return np.zeros((70000, 784)), np.array(["7"] * 70000, dtype=object)

    monkeypatch.setattr("sklearn.datasets.fetch_openml", fake_fetch)
    data = load_mnist()
    assert data.X_train.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert data.y_train.dtype == np.uint8 and data.source == "openml"


def test_the_environment_variable_names_the_file(monkeypatch, tmp_path):
    path = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 784), dtype=np.uint8)
    np.savez(path, X_train=images[:4], y_train=np.arange(4), X_test=images[4:], y_test=[0, 1])
    monkeypatch.setenv("SKAE_MNIST", str(path))

    def no_network(*args, **kwargs):
        raise AssertionError("a local file was named: OpenML must not be asked")

    monkeypatch.setattr("sklearn.datasets.fetch_openml", no_network)
    data = load_mnist()
    assert data.source == str(path)
    assert_allclose(data.X_train, images[:4] / 255, rtol=1e-6)
