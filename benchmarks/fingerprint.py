"""Fingerprints of skae's fits, to show a restructuring leaves every fit bit-identical.

    python -m benchmarks.fingerprint > before.txt     # at one commit
    python -m benchmarks.fingerprint > after.txt      # at another
    diff before.txt after.txt                         # nothing: the same numbers, bit for bit

Each line is a configuration and the SHA-256 (first 16 hex digits) of what its fit gives:
the outputs on the training data (codes, reconstructions, scores, probabilities) and the
loss curve, as float64 bytes. The configurations cover every estimator, the three kinds of
network, both data paths, weights, ``partial_fit``, ``warm_start``, early stopping, the
L-BFGS and EM solvers, the default detector, a Display's data and a saved file's round
trip. One torch thread, on the CPU.
"""

import hashlib
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import skae
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
)


class Tied(nn.Module):
    """A user's module: a tied linear autoencoder."""

    def __init__(self, width=3):
        super().__init__()
        self.encoder = nn.LazyLinear(width)
        self.bias = nn.Parameter(torch.zeros(64))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return z @ self.encoder.weight + self.bias


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


def autoencoder_print(est, X):
    codes = est.transform(X)
    return digest(codes, est.inverse_transform(codes), getattr(est, "loss_curve_", []))


def configurations(X, y, weights, memmap):
    small = {"n_components": 3, "max_iter": 5, "random_state": 0}
    yield "AutoEncoder", lambda: AutoEncoder(**small).fit(X)
    yield "AutoEncoder no early stopping", lambda: AutoEncoder(**small, early_stopping=False).fit(X)
    yield "AutoEncoder weighted", lambda: AutoEncoder(**small).fit(X, sample_weight=weights)
    yield "AutoEncoder streamed", lambda: AutoEncoder(**small).fit(memmap)
    yield "AutoEncoder MLP random", lambda: AutoEncoder(**small, module=MLP((16,))).fit(X)
    yield (
        "AutoEncoder ConvNet",
        lambda: AutoEncoder(**small, module=ConvNet(input_shape=(1, 8, 8), channels=(4,))).fit(X),
    )
    yield "AutoEncoder user module", lambda: AutoEncoder(**small, module=Tied()).fit(X)
    yield (
        "AutoEncoder lbfgs cosine",
        lambda: AutoEncoder(**small, solver="lbfgs", learning_rate="cosine").fit(X),
    )

    def partial():
        est = AutoEncoder(n_components=3, random_state=0)
        for chunk in np.array_split(X, 3):
            est.partial_fit(chunk)
        return est

    yield "AutoEncoder partial_fit", partial

    def warm():
        est = AutoEncoder(**small, warm_start=True).fit(X)
        return est.fit(X)

    yield "AutoEncoder warm_start", warm
    yield "LinearAE em", lambda: LinearAE(n_components=3, random_state=0).fit(X)
    yield (
        "LinearAE lbfgs",
        lambda: LinearAE(n_components=3, solver="lbfgs", max_iter=5, random_state=0).fit(X),
    )
    yield "DenoisingAE", lambda: DenoisingAE(**small).fit(X)
    yield "DenoisingAE masking", lambda: DenoisingAE(**small, noise="masking").fit(X)
    yield "ContractiveAE", lambda: ContractiveAE(**small).fit(X)
    yield "SparseAE kl", lambda: SparseAE(**small, sparsity="kl").fit(X)
    yield "StackedAE", lambda: StackedAE(**small, pretrain_iter=2).fit(X)
    yield "VariationalAE", lambda: VariationalAE(**small).fit(X)


def main():
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    digits = load_digits()
    X, y = digits.data[:400] / 16, digits.target[:400]
    weights = np.random.RandomState(0).choice([0.0, 1.0, 2.0], size=len(X))
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "X.npy", X.astype(np.float32))
        memmap = np.load(Path(folder) / "X.npy", mmap_mode="r")
        for name, fit in configurations(X, y, weights, memmap):
            print(f"{name:32s} {autoencoder_print(fit(), X)}")
        clf = EncoderClassifier(
            AutoEncoder(n_components=3, max_iter=3), max_iter=3, random_state=0
        ).fit(X, y)
        print(f"{'EncoderClassifier':32s} {digest(clf.predict_proba(X), clf.loss_curve_)}")
        det = OutlierDetector(random_state=0).fit(X)
        print(f"{'OutlierDetector default':32s} {digest(det.score_samples(X), [det.offset_])}")
        det = OutlierDetector(AutoEncoder(n_components=3, max_iter=3), random_state=0)
        det.fit(X, sample_weight=weights)
        print(f"{'OutlierDetector weighted':32s} {digest(det.score_samples(X), [det.offset_])}")
        vae = VariationalAE(n_components=2, max_iter=3, random_state=0).fit(X)
        samples = vae.sample(10, random_state=0)
        print(f"{'VariationalAE samples':32s} {digest(samples)}")
        codes = skae.plotting.CodesDisplay.from_estimators({"vae": vae}, X, y)
        print(f"{'CodesDisplay data':32s} {digest(*codes.codes.values())}")
        path = Path(folder) / "ae.safetensors"
        ae = AutoEncoder(n_components=3, max_iter=3, random_state=0).fit(X)
        skae.persistence.save(ae, path)
        print(f"{'saved and loaded':32s} {autoencoder_print(skae.persistence.load(path), X)}")


if __name__ == "__main__":
    main()
