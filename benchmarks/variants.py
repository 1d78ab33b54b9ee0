"""Every autoencoder variant at its defaults against PCA at the same width, on tables
nobody here chose: held-out reconstruction error (sum of squares per row) over a 30%
hold-out, the scaler fitted on the rest.

The cases (issue 21): digits, standardised and min-max scaled, at k = 2, 10, 30; breast
cancer, wine and iris, both scalers, at k = 2 and half the features; with ``--data``, every
ADBench ``.npz`` in that folder (its ``X``, standardised, at most 10,000 rows drawn) at
k = 2 and a quarter of the features. Each variant runs with every parameter at its default
but ``n_components`` and ``random_state``.
"""

import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import skae

from .common import markdown_table, progress

MAX_ROWS = 10_000
VARIANTS = ("AutoEncoder", "DenoisingAE", "StackedAE", "ContractiveAE", "SparseAE")


def held_out_sse(model, X):
    """Mean over rows of the squared reconstruction error summed over features."""
    return float(((X - model.inverse_transform(model.transform(X))) ** 2).sum(axis=1).mean())


def cases(adbench=None):
    """``(name, scaler, X, widths)`` of every case, scikit-learn's tables first."""
    loaders = {
        "digits": load_digits,
        "breast_cancer": load_breast_cancer,
        "wine": load_wine,
        "iris": load_iris,
    }
    for name, load in loaders.items():
        X = load().data.astype(np.float64)
        d = X.shape[1]
        widths = (2, 10, 30) if name == "digits" else tuple(sorted({2, d // 2}))
        for scaler in (StandardScaler, MinMaxScaler):
            yield name, scaler, X, widths
    if adbench is not None:
        from .adbench import data_sets

        for name, path in data_sets(adbench).items():
            with np.load(path, allow_pickle=False) as data:
                X = np.asarray(data["X"], dtype=np.float64)
            if len(X) > MAX_ROWS:
                X = X[np.random.RandomState(0).choice(len(X), MAX_ROWS, replace=False)]
            d = X.shape[1]
            yield name, StandardScaler, X, tuple(sorted({min(2, d - 1), max(1, d // 4)}))


def measure(variants=VARIANTS, *, adbench=None, seeds=range(3), params=None, only=None, n_jobs=1):
    """Rows ``(data, scaler, k, variant, seed, sse, pca_sse, seconds)``; ``params`` maps
    a variant's name to parameters of an experiment (not the defaults). ``n_jobs`` splits
    the (case, seed) tasks over processes, each with an equal share of torch's threads."""
    tasks = [
        (name, scaler, X, widths, seed)
        for name, scaler, X, widths in cases(adbench)
        if only is None or name in only
        for seed in seeds
    ]
    if n_jobs == 1:
        results = [_measure_split(*task, variants, params or {}) for task in tasks]
    else:
        from joblib import Parallel, delayed

        threads = max(1, torch.get_num_threads() // n_jobs)
        results = Parallel(n_jobs=n_jobs)(
            delayed(_measure_split)(*task, variants, params or {}, threads) for task in tasks
        )
    return [row for rows in results for row in rows]


def _measure_split(name, scaler, X, widths, seed, variants, params, threads=None):
    """Every variant at every width on one split of one data set."""
    if threads is not None:
        torch.set_num_threads(threads)
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=seed)
    fitted = scaler().fit(X_train)
    X_train, X_test = fitted.transform(X_train), fitted.transform(X_test)
    rows = []
    for k in widths:
        pca = held_out_sse(PCA(k).fit(X_train), X_test)
        for variant in variants:
            model = getattr(skae, variant)(
                n_components=k, random_state=seed, **params.get(variant, {})
            )
            start = time.perf_counter()
            model.fit(X_train)
            seconds = time.perf_counter() - start
            sse = held_out_sse(model, X_test)
            rows.append((name, scaler.__name__, k, variant, seed, sse, pca, seconds))
            progress(
                f"{name} {scaler.__name__} k={k} {variant} seed={seed}: "
                f"{sse / max(pca, 1e-12):.3f} x PCA, {seconds:.1f} s"
            )
    return rows


def ratio(sse, pca):
    """The error ratio to PCA's; a PCA error at rounding level counts as the error itself
    (a width that reconstructs exactly)."""
    return sse / pca if pca > 1e-9 else (1.0 if sse <= 1e-6 else np.inf)


def summary_table(rows):
    """Per variant: the worst and median ratio to PCA over every case and split, where the
    worst is, how many cases exceed 1.05, and the slowest fit."""
    out = []
    for variant in dict.fromkeys(r[3] for r in rows):
        mine = [r for r in rows if r[3] == variant]
        ratios = np.array([ratio(r[5], r[6]) for r in mine])
        worst = mine[int(np.argmax(ratios))]
        over = sum(
            max(ratio(r[5], r[6]) for r in mine if r[:3] == case) > 1.05
            for case in dict.fromkeys(r[:3] for r in mine)
        )
        out.append(
            [
                variant,
                f"{ratios.max():.3f}",
                f"{worst[0]}, {worst[1]}, k={worst[2]}",
                f"{np.median(ratios):.3f}",
                f"{over} of {len({r[:3] for r in mine})}",
                f"{max(r[7] for r in mine):.1f}",
            ]
        )
    header = [
        "variant",
        "worst held-out SSE / PCA's",
        "where",
        "median",
        "cases above 1.05",
        "slowest fit (s)",
    ]
    return markdown_table(header, out)


def detail_table(rows):
    """Per case: each variant's worst ratio to PCA over the splits."""
    variants = list(dict.fromkeys(r[3] for r in rows))
    out = []
    for case in dict.fromkeys(r[:3] for r in rows):
        mine = [r for r in rows if r[:3] == case]
        worst = {v: max(ratio(r[5], r[6]) for r in mine if r[3] == v) for v in variants}
        out.append(
            [case[0], case[1], case[2], f"{mine[0][6]:.4g}", *(f"{worst[v]:.3f}" for v in variants)]
        )
    header = ["data", "scaler", "k", "PCA held-out SSE", *variants]
    return markdown_table(header, out)


def active_units(vae, X, threshold=0.01):
    """Burda et al.'s (2016) activity of a VAE's code units: unit ``u`` is active when the
    variance over the data of its posterior mean exceeds ``threshold``."""
    return int((vae.transform(X).var(axis=0) > threshold).sum())


def vae_table(seeds=range(3)):
    """``VariationalAE`` at its defaults against PCA on digits: held-out SSE ratio (mean
    and worst over the splits) and how many of its code units the posterior uses."""
    out = []
    X = load_digits().data.astype(np.float64)
    for scaler in (StandardScaler, MinMaxScaler):
        for k in (2, 10, 30):
            ratios, units = [], []
            for seed in seeds:
                X_train, X_test = train_test_split(X, test_size=0.3, random_state=seed)
                fitted = scaler().fit(X_train)
                X_train, X_test = fitted.transform(X_train), fitted.transform(X_test)
                vae = skae.VariationalAE(n_components=k, random_state=seed).fit(X_train)
                pca = held_out_sse(PCA(k).fit(X_train), X_test)
                ratios.append(held_out_sse(vae, X_test) / pca)
                units.append(active_units(vae, X_test))
                progress(
                    f"VariationalAE digits {scaler.__name__} k={k} seed={seed}: "
                    f"{ratios[-1]:.3f} x PCA, {units[-1]} active units"
                )
            out.append(
                [
                    scaler.__name__,
                    k,
                    f"{np.mean(ratios):.3f}",
                    f"{max(ratios):.3f}",
                    f"{np.mean(units):.1f} of {k}",
                ]
            )
    header = ["scaler", "k", "held-out SSE / PCA's (mean)", "worst", "active code units"]
    return markdown_table(header, out)
