"""Files written by an earlier skae keep loading: the estimators of ``tests/saved/``, written
by skae 0.2.0.dev0 with pickle, skops and skae.persistence (see ``make_files.py`` there),
load and give the outputs they gave when written."""

import pathlib
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from skae.persistence import SKOPS_TRUSTED_TYPES, load

from .saved.make_files import data as saved_data
from .saved.make_files import outputs

SAVED = pathlib.Path(__file__).parent / "saved"
NAMES = ["autoencoder", "linear", "denoising", "stacked", "variational", "classifier", "detector"]

# numpy 2 writes its arrays' classes under numpy._core, which numpy 1 lacks: a pickle (or
# skops file, which pickles none but names numpy's types) from numpy 2 needs numpy 2
needs_numpy_2 = pytest.mark.skipif(
    int(np.__version__.split(".")[0]) < 2, reason="the files were pickled by numpy 2"
)


@pytest.fixture(scope="module")
def data():
    return saved_data()[0], np.load(SAVED / "expected.npz")


def loaded(fmt, path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no version warning: the same format, read as written
        if fmt == "pkl":
            return pickle.loads(path.read_bytes())
        if fmt == "skops":
            sio = pytest.importorskip("skops.io")
            return sio.loads(path.read_bytes(), trusted=SKOPS_TRUSTED_TYPES)
        pytest.importorskip("safetensors")
        return load(path)


FORMATS = [
    pytest.param("pkl", marks=needs_numpy_2),
    pytest.param("skops", marks=needs_numpy_2),
    "safetensors",
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_files_written_before_keep_loading(name, fmt, data):
    X, expected = data
    est = loaded(fmt, SAVED / f"{name}.{fmt}")
    np.testing.assert_allclose(outputs(name, est, X), expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_parameters_added_since_take_their_defaults(fmt):
    """The files predate ``precision`` and the VAE's ``n_importance_samples``: loaded, the
    estimators have them at their defaults, with which they were fitted."""
    for name in ("autoencoder", "variational"):
        est = loaded(fmt, SAVED / f"{name}.{fmt}")
        params = est.get_params(deep=False)
        assert params["precision"] == "32-true"
    assert params["n_importance_samples"] == 1
    assert clone(est).get_params(deep=False)["n_importance_samples"] == 1
