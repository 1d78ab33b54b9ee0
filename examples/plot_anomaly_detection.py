"""
Anomaly detection: the default ensemble and a reconstruction
============================================================

An :class:`~skae.OutlierDetector` fits a model to the data, outliers and all, and scores
each row, lower for rows unlike the bulk. Here the zeros are normal and a few other digits
are mixed into the training data, with nothing to say which. Three detectors are compared
by their ROC curves (scikit-learn's :class:`~sklearn.metrics.RocCurveDisplay`):

* ``OutlierDetector()`` at its defaults: an ensemble of small autoencoders, scored by the
  isolation and the neighbours of its codes, the features' tails, the nearest training
  rows and the reconstruction error beyond a hinge (the default chosen on ADBench's
  tables);
* ``OutlierDetector(AutoEncoder(...))``: one autoencoder, scored by its reconstruction
  likelihood, the classic choice for images;
* scikit-learn's :class:`~sklearn.ensemble.IsolationForest`.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import RocCurveDisplay, roc_auc_score

from skae import AutoEncoder, OutlierDetector

# the single autoencoder below stops at max_iter=200 before its loss settles
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16
rng = np.random.default_rng(0)
normal = np.flatnonzero(y == 0)
others = rng.choice(np.flatnonzero(y != 0), 20, replace=False)
rows = np.concatenate([normal, others])
X_mix, is_outlier = X[rows], np.r_[np.zeros(len(normal)), np.ones(len(others))]

detectors = {
    "OutlierDetector()": OutlierDetector(random_state=0),
    "OutlierDetector(AutoEncoder)": OutlierDetector(
        AutoEncoder(4, hidden_layer_sizes=(32,), loss="bce", max_iter=200), random_state=0
    ),
    "IsolationForest": IsolationForest(random_state=0),
}
scores = {}
for name, detector in detectors.items():
    scores[name] = detector.fit(X_mix).score_samples(X_mix)
    print(f"{name:30s} ROC AUC {roc_auc_score(is_outlier, -scores[name]):.3f}")
print("flagged by the default:", int((detectors["OutlierDetector()"].predict(X_mix) == -1).sum()))

# %%
# Left, each detector's ROC curve (the outlier score is minus ``score_samples``); right, the
# default detector's scores, the mixed-in digits in orange: the lower, the more anomalous.
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, score in scores.items():
    RocCurveDisplay.from_predictions(is_outlier, -score, name=name, ax=axes[0])
axes[0].plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
score = scores["OutlierDetector()"]
bins = np.linspace(score.min(), score.max(), 30)
axes[1].hist(score[is_outlier == 0], bins=bins, alpha=0.7, label="zeros")
axes[1].hist(score[is_outlier == 1], bins=bins, alpha=0.7, label="other digits")
axes[1].set_xlabel("OutlierDetector().score_samples")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
