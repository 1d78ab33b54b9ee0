"""The benchmark tables: each function fits what it compares and returns a markdown table
(plus the fitted models, for the figures)."""

import numpy as np
from sklearn.linear_model import LogisticRegression

from skae.metrics import (
    knn_accuracy,
    linear_probe_accuracy,
    reconstruction_error,
    trustworthiness,
)

from .common import markdown_table, progress, timed


def _subset(X, y, n, seed=0):
    """At most ``n`` rows, drawn without replacement (for the O(n^2) neighbour metrics)."""
    if len(X) <= n:
        return X, y
    index = np.random.RandomState(seed).choice(len(X), n, replace=False)
    return X[index], y[index]


def manifold_table(models_by_k, X_train, X_test, y_test, *, n_metric=2000):
    """Reconstruction error, trustworthiness, kNN and linear-probe accuracy of the codes of
    held-out data, for every model at every code size."""
    X_metric, y_metric = _subset(X_test, y_test, n_metric)
    rows, fitted = [], {}
    for k, models in models_by_k.items():
        for name, model in models.items():
            progress(f"{name}, k={k}")
            _, seconds = timed(model.fit, X_train)
            fitted[name, k] = model
            rows.append(
                [
                    name,
                    k,
                    f"{reconstruction_error(model, X_test):.3f}",
                    f"{trustworthiness(model, X_metric):.3f}",
                    f"{knn_accuracy(model, X_metric, y_metric):.3f}",
                    f"{linear_probe_accuracy(model, X_metric, y_metric):.3f}",
                    getattr(model, "n_iter_", ""),
                    f"{seconds:.1f}",
                ]
            )
    header = [
        "model",
        "n_components",
        "test SSE per sample",
        "trustworthiness (k=5)",
        "5-NN accuracy",
        "linear probe accuracy",
        "epochs",
        "fit (s)",
    ]
    return markdown_table(header, rows), fitted


def reconstruction_table(models, X_train, X_test, paper):
    """Hinton & Salakhutdinov (2006), Fig. 2: test SSE per image beside the paper's."""
    rows, fitted = [], {}
    for name, model in models.items():
        progress(name)
        _, seconds = timed(model.fit, X_train)
        fitted[name] = model
        rows.append(
            [
                name,
                f"{reconstruction_error(model, X_test):.3f}",
                paper.get(name, ""),
                getattr(model, "n_iter_", ""),
                f"{seconds / 60:.1f}",
            ]
        )
        progress(" | ".join(map(str, rows[-1])))  # each row as soon as it is measured
    header = ["model (30-dim code)", "test SSE per image", "paper", "epochs", "fit (min)"]
    return markdown_table(header, rows), fitted


def classification_table(classifier, X_train, y_train, X_test, y_test, *, mnist=True):
    """A classifier fine-tuned from a pretrained encoder, against a linear probe on its
    frozen codes and a logistic regression on the raw pixels (with the papers' MNIST
    figures when ``mnist``)."""
    progress("EncoderClassifier")
    _, seconds = timed(classifier.fit, X_train, y_train)
    ae = classifier.autoencoder_
    probe = LogisticRegression(max_iter=1000).fit(ae.transform(X_train), y_train)
    raw = LogisticRegression(max_iter=200).fit(X_train, y_train)
    rows = [
        [
            f"EncoderClassifier ({type(ae).__name__} pretrained, fine-tuned)",
            f"{100 * (1 - classifier.score(X_test, y_test)):.2f}%",
            "1.2% to 1.4%",
            classifier.n_iter_,
            f"{seconds / 60:.1f}",
        ],
        [
            "logistic regression on its frozen codes",
            f"{100 * (1 - probe.score(ae.transform(X_test), y_test)):.2f}%",
            "",
            "",
            "",
        ],
        [
            "logistic regression on pixels",
            f"{100 * (1 - raw.score(X_test, y_test)):.2f}%",
            "12.0% (linear classifier)",
            "",
            "",
        ],
    ]
    if not mnist:
        rows = [[row[0], row[1], row[3], row[4]] for row in rows]
        return markdown_table(["model", "test error", "epochs", "fit (min)"], rows)
    return markdown_table(["model", "test error", "papers (MNIST)", "epochs", "fit (min)"], rows)


# Burda et al. (2016), Table 1, MNIST, one stochastic layer (784-200-200-50): the test NLL
# (IW k=5000) of the VAE trained on the ELBO and of the IWAE trained with k=50 samples.
BURDA_VAE, BURDA_IWAE_50 = 86.76, 84.78


def density_table(vae, X_train, X_test, n_importance_samples):
    """The VAE's importance-weighted test NLL on binarised data, against Burda et al."""
    progress("VariationalAE")
    _, seconds = timed(vae.fit, X_train)
    iw = -vae.log_likelihood(X_test, n_importance_samples=n_importance_samples).mean()
    elbo = -vae.score(X_test)
    sizes = "-".join(map(str, (X_train.shape[1], *vae.hidden_layer_sizes, vae.n_components)))
    rows = [
        [
            f"VariationalAE {sizes}",
            f"{iw:.2f}",
            f"{elbo:.2f}",
            vae.n_importance_samples,
            f"{BURDA_VAE:.2f} / {BURDA_IWAE_50:.2f}",
            vae.n_iter_,
            f"{seconds / 60:.1f}",
        ]
    ]
    header = [
        "model",
        f"test NLL, IW k={n_importance_samples} (nats)",
        "test -ELBO (nats)",
        "training samples k",
        "paper (VAE k=1 / IWAE k=50)",
        "epochs",
        "fit (min)",
    ]
    return markdown_table(header, rows), vae


def architecture_table(models_by_k, X_train, X_test, y_test, *, n_metric=2000):
    """The same autoencoder with different networks (and PCA) at each code size: held-out
    reconstruction error and trustworthiness, the network's size and its training speed."""
    X_metric, y_metric = _subset(X_test, y_test, n_metric)
    rows = []
    for k, models in models_by_k.items():
        for name, model in models.items():
            progress(f"{name}, k={k}")
            _, seconds = timed(model.fit, X_train)
            module = getattr(model, "module_", None)
            n_params = sum(p.numel() for p in module.parameters()) if module else ""
            epoch = np.median(model.history_[:, "dur"]) if module else seconds
            rows.append(
                [
                    name,
                    k,
                    f"{reconstruction_error(model, X_test):.3f}",
                    f"{trustworthiness(model, X_metric):.3f}",
                    f"{n_params:,}" if n_params else "",
                    f"{epoch:.2f}",
                    getattr(model, "n_iter_", ""),
                    f"{seconds:.1f}",
                ]
            )
    header = [
        "model",
        "n_components",
        "test SSE per sample",
        "trustworthiness (k=5)",
        "parameters",
        "s per epoch",
        "epochs",
        "fit (s)",
    ]
    return markdown_table(header, rows)


def defaults_table(seeds=range(5)):
    """``AutoEncoder(n_components=2)`` with every other parameter at its default against
    ``PCA(2)`` on scikit-learn's small tables, as a new user would try it: held-out
    reconstruction error (30% hold-out, scaler fitted on the rest), and on digits the 5-NN
    and LinearSVC accuracy of the held-out codes. Each figure is the mean over the splits
    (and the autoencoder's seeds) ``seeds``, with the worst split's error ratio beside it
    and, for the accuracies, on how many splits the autoencoder's codes were ahead."""
    import time

    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import MinMaxScaler, StandardScaler
    from sklearn.svm import LinearSVC

    from skae import AutoEncoder

    def error(model, X):
        return float(((X - model.inverse_transform(model.transform(X))) ** 2).sum(1).mean())

    def accuracy(clf, model, X_train, y_train, X_test, y_test):
        return clf.fit(model.transform(X_train), y_train).score(model.transform(X_test), y_test)

    def versus(pairs):
        ae, pca = np.mean(pairs, axis=0)
        wins = sum(a > p for a, p in pairs)
        return f"{ae:.3f} / {pca:.3f} ({wins}/{len(pairs)})"

    seeds = list(seeds)
    rows = []
    loaders = [load_digits, load_breast_cancer, load_wine, load_iris]
    for load in loaders:
        X, y = load(return_X_y=True)
        for scaler in (StandardScaler, MinMaxScaler):
            progress(f"defaults: {load.__name__[5:]}, {scaler.__name__}")
            errors, neighbours, svc, epochs, seconds = [], [], [], [], []
            for seed in seeds:
                X_train, X_test, y_train, y_test = train_test_split(
                    X, y, test_size=0.3, random_state=seed, stratify=y
                )
                fitted = scaler().fit(X_train)
                X_train, X_test = fitted.transform(X_train), fitted.transform(X_test)
                pca = PCA(2).fit(X_train)
                start = time.perf_counter()
                ae = AutoEncoder(n_components=2, random_state=seed).fit(X_train)
                seconds.append(time.perf_counter() - start)
                epochs.append(ae.n_iter_)
                errors.append((error(ae, X_test), error(pca, X_test)))
                if load is load_digits:
                    data = (X_train, y_train, X_test, y_test)
                    neighbours.append(
                        [accuracy(KNeighborsClassifier(5), m, *data) for m in (ae, pca)]
                    )
                    svc.append([accuracy(LinearSVC(), m, *data) for m in (ae, pca)])
            errors = np.array(errors)
            ratios = errors[:, 0] / errors[:, 1]
            rows.append(
                [
                    load.__name__[5:],
                    scaler.__name__,
                    f"{errors[:, 0].mean():.4g}",
                    f"{errors[:, 1].mean():.4g}",
                    f"{ratios.mean():.3f}",
                    f"{ratios.max():.3f}",
                    versus(neighbours) if neighbours else "",
                    versus(svc) if svc else "",
                    f"{np.mean(epochs):.0f}",
                    f"{max(seconds):.1f}",
                ]
            )
    header = [
        "data",
        "scaler",
        "AutoEncoder held-out SSE",
        "PCA held-out SSE",
        "AE / PCA",
        "AE / PCA, worst split",
        "5-NN accuracy AE / PCA (splits AE ahead)",
        "LinearSVC accuracy AE / PCA (splits AE ahead)",
        "epochs",
        "slowest fit (s)",
    ]
    return markdown_table(header, rows)
