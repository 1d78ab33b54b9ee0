"""ADBench's classical tabular data sets under ADBench's unsupervised protocol.

The protocol (Han et al. 2022, ``adbench/datasets/data_generator.py``): a data set beyond
10,000 rows is subsampled to 10,000; a stratified 70/30 split; MinMaxScaler fitted on the
training part; every detector fitted on the training part, its anomalies included (nothing
tells a detector which rows they are); ROC AUC of the test part's labels against the
detector's outlier score. Every detector runs on the same splits, one per seed.
"""

import pathlib
import time

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

import skae

from .anomaly import _Pyod
from .common import markdown_table, progress

MAX_ROWS = 10_000


def data_sets(folder):
    """``{name: path}`` of the ``.npz`` files (arrays ``X`` and ``y``, 1 for an anomaly) in
    ``folder``, in ADBench's numbering."""
    paths = sorted(pathlib.Path(folder).glob("*.npz"))
    if not paths:
        raise FileNotFoundError(f"no ADBench .npz files (arrays X and y) in {folder}")

    def number(path):
        head = path.stem.split("_", 1)[0]
        return (int(head), path.stem) if head.isdigit() else (10**9, path.stem)

    return {path.stem: path for path in sorted(paths, key=number)}


def split(path, seed):
    """ADBench's split of one data set at one seed: ``X_train, X_test, y_train, y_test``,
    min-max scaled on the training part."""
    with np.load(path, allow_pickle=False) as data:
        X, y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"]).astype(int)
    rng = np.random.RandomState(seed)
    if len(y) > MAX_ROWS:
        keep = rng.choice(len(y), MAX_ROWS, replace=False)
        X, y = X[keep], y[keep]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    scaler = MinMaxScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def peers(seed):
    """The peers at their defaults: scikit-learn's IsolationForest and pyod's detectors
    (when pyod, in the ``bench`` extra, is installed)."""
    found = {"IsolationForest": IsolationForest(random_state=seed)}
    try:
        from pyod.models.auto_encoder import AutoEncoder as PyodAE
        from pyod.models.ecod import ECOD
        from pyod.models.knn import KNN
        from pyod.models.vae import VAE as PyodVAE
    except ImportError:
        progress("pyod is not installed (pip install -e '.[bench]'): its detectors are left out")
        return found
    found["ECOD (pyod)"] = _Pyod(ECOD())
    found["KNN (pyod)"] = _Pyod(KNN())
    found["pyod AutoEncoder"] = _Pyod(PyodAE(random_state=seed, verbose=0))
    found["pyod VAE"] = _Pyod(PyodVAE(random_state=seed, verbose=0))
    return found


def detectors(seed):
    """skae's detectors at their defaults, then the peers."""
    return {
        "skae OutlierDetector()": skae.OutlierDetector(random_state=seed),
        "skae OutlierDetector(VariationalAE())": skae.OutlierDetector(
            skae.VariationalAE(), random_state=seed
        ),
        **peers(seed),
    }


def evaluate(folder, seeds, names=None, make=detectors):
    """``{(data set, detector): [(roc_auc, average_precision, fit_s, score_s) per seed]}``."""
    results = {}
    sets = data_sets(folder)
    for name, path in sets.items():
        if names and name not in names:
            continue
        for seed in seeds:
            X_train, X_test, _, y_test = split(path, seed)
            for detector, model in make(seed).items():
                start = time.perf_counter()
                model.fit(X_train)
                fitted = time.perf_counter()
                scores = -np.asarray(model.score_samples(X_test), dtype=np.float64)
                scored = time.perf_counter()
                if not np.all(np.isfinite(scores)):
                    raise ValueError(f"{detector} gave non-finite scores on {name}")
                results.setdefault((name, detector), []).append(
                    (
                        roc_auc_score(y_test, scores),
                        average_precision_score(y_test, scores),
                        fitted - start,
                        scored - fitted,
                    )
                )
        progress(f"adbench {name} done")
    return results


def summary(results):
    """Per data set and detector the mean over seeds; the detectors' order of the table."""
    sets = list(dict.fromkeys(name for name, _ in results))
    dets = list(dict.fromkeys(det for _, det in results))
    auc = np.array([[np.mean([r[0] for r in results[s, d]]) for d in dets] for s in sets])
    seconds = np.array([[np.sum([r[2] + r[3] for r in results[s, d]]) for d in dets] for s in sets])
    # rank 1 is the best ROC AUC on a data set; ties share their mean rank
    ranks = np.vstack([rankdata(-row) for row in auc])
    return sets, dets, auc, ranks, seconds


def per_data_set_table(results):
    sets, dets, auc, _, _ = summary(results)
    best = auc.max(axis=1, keepdims=True)
    rows = []
    for i, name in enumerate(sets):
        cells = [f"**{a:.3f}**" if a == best[i, 0] else f"{a:.3f}" for a in auc[i]]
        rows.append([name, *cells])
    return markdown_table(["data set", *dets], rows)


def summary_table(results, below_reference="IsolationForest"):
    """Mean ROC AUC, average rank, worst data set, the count below 0.5 (and of those, where
    the reference detector reaches 0.6), and the total fit + score seconds."""
    sets, dets, auc, ranks, seconds = summary(results)
    ref = dets.index(below_reference) if below_reference in dets else None
    rows = []
    for j in np.argsort(-auc.mean(axis=0), kind="stable"):
        below = auc[:, j] < 0.5
        held = "" if ref is None else str(int((below & (auc[:, ref] >= 0.6)).sum()))
        worst = int(np.argmin(auc[:, j]))
        rows.append(
            [
                dets[j],
                f"{auc[:, j].mean():.3f}",
                f"{ranks[:, j].mean():.2f}",
                f"{auc[worst, j]:.3f} ({sets[worst]})",
                str(int(below.sum())),
                held,
                f"{seconds[:, j].sum():.1f}",
            ]
        )
    header = [
        f"detector ({len(sets)} data sets)",
        "mean ROC AUC",
        f"average rank of {len(dets)}",
        "worst",
        "below 0.5",
        f"of those, where {below_reference} >= 0.6",
        "fit + score (s)",
    ]
    return markdown_table(header, rows)
