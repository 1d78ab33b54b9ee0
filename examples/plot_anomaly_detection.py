"""
Anomaly detection: the default ensemble and a reconstruction
============================================================

An :class:`~skae.OutlierDetector` fits a model to the data, outliers and all, and scores
each row, lower for rows unlike the bulk. Here the zeros are normal and a few other digits
are mixed into the training data, with nothing to say which. Three detectors are compared
by the area under the ROC curve:

* ``OutlierDetector()`` at its defaults: an ensemble of small autoencoders, scored by the
  isolation and the neighbours of its codes and by the features' tails (the default chosen
  on ADBench's tables);
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
from sklearn.metrics import roc_auc_score

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
# Each detector's scores, the mixed-in digits in orange: the lower, the more anomalous.
fig, axes = plt.subplots(1, len(scores), figsize=(11, 3))
for ax, (name, score) in zip(axes, scores.items(), strict=True):
    bins = np.linspace(score.min(), score.max(), 30)
    ax.hist(score[is_outlier == 0], bins=bins, alpha=0.7, label="zeros")
    ax.hist(score[is_outlier == 1], bins=bins, alpha=0.7, label="other digits")
    ax.set_title(f"{name}\nROC AUC {roc_auc_score(is_outlier, -score):.3f}", fontsize=9)
    ax.set_xlabel("score_samples")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
