"""Writes the saved files ``tests/test_saved_files.py`` loads: one estimator of each kind,
fitted on the first 200 digits and written with pickle, skops and skae.persistence (the
safetensors format), with the outputs they gave when written (``expected.npz``).

Run once, at the code whose files must keep loading (``python tests/saved/make_files.py``);
the files are committed. Written by skae 0.2.0.dev0 at commit 9093fda's code.
"""

import pathlib
import pickle
import warnings

import numpy as np
import skops.io as sio
from sklearn.datasets import load_digits

from skae import (
    AutoEncoder,
    DenoisingAE,
    EncoderClassifier,
    LinearAE,
    OutlierDetector,
    StackedAE,
    VariationalAE,
)
from skae.persistence import save

HERE = pathlib.Path(__file__).parent


def estimators():
    return {
        "autoencoder": AutoEncoder(n_components=2, hidden_layer_sizes=(8,), max_iter=3),
        "linear": LinearAE(n_components=2),
        "denoising": DenoisingAE(n_components=2, hidden_layer_sizes=(8,), max_iter=3),
        "stacked": StackedAE(n_components=2, hidden_layer_sizes=(8,), max_iter=2, pretrain_iter=1),
        "variational": VariationalAE(n_components=2, hidden_layer_sizes=(8,), max_iter=3),
        "classifier": EncoderClassifier(
            AutoEncoder(n_components=2, hidden_layer_sizes=(8,), max_iter=2), max_iter=2
        ),
        "detector": OutlierDetector(
            AutoEncoder(n_components=2, hidden_layer_sizes=(8,), max_iter=2)
        ),
    }


def outputs(name, est, X):
    if name == "classifier":
        return est.predict_proba(X)
    if name == "detector":
        return est.score_samples(X)
    return est.transform(X)


def data():
    digits = load_digits()
    return digits.data[:200] / 16, digits.target[:200]


if __name__ == "__main__":
    X, y = data()
    expected = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est in estimators().items():
            est.set_params(random_state=0)
            est.fit(X, y) if name == "classifier" else est.fit(X)
            expected[name] = outputs(name, est, X)
            (HERE / f"{name}.pkl").write_bytes(pickle.dumps(est))
            (HERE / f"{name}.skops").write_bytes(sio.dumps(est))
            save(est, HERE / f"{name}.safetensors")
    np.savez(HERE / "expected.npz", **expected)
