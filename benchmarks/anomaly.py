"""Anomaly detection: skae's OutlierDetector against scikit-learn's detectors and pyod's.

Protocols, all detectors on the same splits, every score oriented so that higher is more
normal (ROC AUC and average precision of "outlier" against minus the score):

* one-class digits (and MNIST with ``--data``): train on one digit's training rows, test on
  every test row, the other digits being the anomalies (Ruff et al. 2018's protocol); the
  figures are averaged over the ten digits;
* breast cancer (scikit-learn's copy of the Wisconsin data, ODDS-style): train on 200
  benign rows, test on the other benign rows and a random tenth of the malignant ones.

Each protocol runs with several seeds (the models' and the malignant subsample's); the
tables give the mean and the spread (standard deviation) over seeds. Features are
standardised on the training rows.
"""

import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

import skae

from .common import markdown_table, progress


class _Pyod:
    """A pyod detector with scikit-learn's orientation: ``score_samples`` higher is normal."""

    def __init__(self, detector):
        self.detector = detector

    def fit(self, X):
        self.detector.fit(X)
        return self

    def score_samples(self, X):
        return -self.detector.decision_function(X)


def detectors(n_components, hidden, max_iter, seed, image_shape=None):
    """Every detector, configured alike where their parameters allow; on images also skae's
    AutoEncoder with the convolutional network."""
    common = {
        "n_components": n_components,
        "hidden_layer_sizes": hidden,
        "max_iter": max_iter,
        "random_state": seed,
    }
    found = {
        "skae OutlierDetector()": skae.OutlierDetector(random_state=seed),
        "skae AutoEncoder": skae.OutlierDetector(skae.AutoEncoder(**common)),
        "skae DenoisingAE": skae.OutlierDetector(
            skae.DenoisingAE(noise="gaussian", noise_level=0.3, **common)
        ),
        "skae VariationalAE": skae.OutlierDetector(
            skae.VariationalAE(**{**common, "learning_rate_init": 1e-3})
        ),
        "PCA reconstruction": skae.OutlierDetector(PCA(n_components=n_components)),
        "IsolationForest": IsolationForest(random_state=seed),
        "LocalOutlierFactor(novelty)": LocalOutlierFactor(novelty=True),
        "OneClassSVM": OneClassSVM(gamma="scale", nu=0.1),
    }
    if image_shape is not None:
        conv = {k: v for k, v in common.items() if k != "hidden_layer_sizes"}
        found["skae AutoEncoder (ConvNet)"] = skae.OutlierDetector(
            skae.AutoEncoder(module=skae.ConvNet(input_shape=image_shape), **conv)
        )
    try:
        from pyod.models.auto_encoder import AutoEncoder as PyodAE
        from pyod.models.vae import VAE as PyodVAE
    except ImportError:  # the bench extra installs pyod
        return found
    found["pyod AutoEncoder"] = _Pyod(
        PyodAE(hidden_neuron_list=[*hidden, n_components], random_state=seed, verbose=0)
    )
    found["pyod VAE"] = _Pyod(
        PyodVAE(
            encoder_neuron_list=list(hidden),
            decoder_neuron_list=list(hidden)[::-1],
            latent_dim=n_components,
            random_state=seed,
            verbose=0,
        )
    )
    return found


def _evaluate(splits, n_components, hidden, max_iter, seeds, image_shape=None):
    """{detector: [(auc, ap, fit_s, score_s) per seed]}, each averaged over the splits."""
    results = {}
    for seed in seeds:
        per_split = {}
        for X_train, X_test, is_outlier in splits(seed):
            scaler = StandardScaler().fit(X_train)
            X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
            found = detectors(n_components, hidden, max_iter, seed, image_shape)
            for name, det in found.items():
                start = time.perf_counter()
                det.fit(X_train)
                fitted = time.perf_counter()
                scores = det.score_samples(X_test)
                scored = time.perf_counter()
                per_split.setdefault(name, []).append(
                    (
                        roc_auc_score(is_outlier, -scores),
                        average_precision_score(is_outlier, -scores),
                        fitted - start,
                        scored - fitted,
                    )
                )
        for name, rows in per_split.items():
            rows = np.asarray(rows)
            # figures averaged over the splits; times summed over them
            results.setdefault(name, []).append(
                (*rows[:, :2].mean(axis=0), *rows[:, 2:].sum(axis=0))
            )
        progress(f"seed {seed} done")
    return results


def _table(results):
    rows = []
    for name, per_seed in sorted(results.items(), key=lambda kv: -np.mean(kv[1], axis=0)[0]):
        per_seed = np.asarray(per_seed)
        mean, std = per_seed.mean(axis=0), per_seed.std(axis=0)
        rows.append(
            [
                name,
                f"{mean[0]:.3f} ± {std[0]:.3f}",
                f"{mean[1]:.3f} ± {std[1]:.3f}",
                f"{mean[2]:.1f}",
                f"{mean[3]:.2f}",
            ]
        )
    header = ["detector", "ROC AUC", "average precision", "fit (s)", "score (s)"]
    return markdown_table(header, rows)


def one_class_splits(X, y, X_test, y_test):
    def splits(seed):
        for digit in np.unique(y):
            yield X[y == digit], X_test, (y_test != digit).astype(int)

    return splits


def digits_table(seeds, max_iter):
    digits = load_digits()
    X, X_test, y, y_test = train_test_split(
        digits.data, digits.target, train_size=0.7, stratify=digits.target, random_state=0
    )
    splits = one_class_splits(X, y, X_test, y_test)
    results = _evaluate(splits, 8, (64,), max_iter, seeds, image_shape=(1, 8, 8))
    return _table(results)


def breast_cancer_table(seeds, max_iter):
    data = load_breast_cancer()
    benign = np.flatnonzero(data.target == 1)  # 357 benign, 212 malignant
    malignant = np.flatnonzero(data.target == 0)

    def splits(seed):
        rng = np.random.RandomState(seed)
        order = rng.permutation(benign)
        outliers = rng.choice(malignant, len(malignant) // 10, replace=False)
        test = np.concatenate([order[200:], outliers])
        yield data.data[order[:200]], data.data[test], np.isin(test, outliers).astype(int)

    return _table(_evaluate(splits, 4, (16,), max_iter, seeds))


def mnist_table(mnist, seeds, max_iter, n_train):
    X, y = mnist.X_train[:n_train], mnist.y_train[:n_train]
    splits = one_class_splits(X, y, mnist.X_test, mnist.y_test)
    return _table(_evaluate(splits, 16, (128,), max_iter, seeds, image_shape=(1, 28, 28)))
