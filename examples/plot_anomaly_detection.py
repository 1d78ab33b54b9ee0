"""
Anomaly detection by reconstruction
===================================

An :class:`~skae.OutlierDetector` fits an autoencoder to (mostly) normal data and flags the
rows it reconstructs worst. Here the zeros are normal and a few other digits are mixed in;
the detector is compared with scikit-learn's :class:`~sklearn.ensemble.IsolationForest` by
the area under the ROC curve.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from skae import AutoEncoder, OutlierDetector

X, y = load_digits(return_X_y=True)
X = X / 16
rng = np.random.default_rng(0)
normal = np.flatnonzero(y == 0)
others = rng.choice(np.flatnonzero(y != 0), 20, replace=False)
rows = np.concatenate([normal, others])
X_mix, is_outlier = X[rows], np.r_[np.zeros(len(normal)), np.ones(len(others))]

detector = OutlierDetector(
    AutoEncoder(4, hidden_layer_sizes=(32,), loss="bce", max_iter=200), random_state=0
).fit(X_mix)
forest = IsolationForest(random_state=0).fit(X_mix)
print(f"autoencoder  ROC AUC {roc_auc_score(is_outlier, -detector.score_samples(X_mix)):.3f}")
print(f"isolation forest ROC AUC {roc_auc_score(is_outlier, -forest.score_samples(X_mix)):.3f}")
print("flagged:", int((detector.predict(X_mix) == -1).sum()), "rows")
