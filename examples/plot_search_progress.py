"""
A grid search with a progress bar
=================================

scikit-learn 1.9's callbacks (:mod:`sklearn.callback`) reach into skae's estimators:
``set_callbacks(ProgressBar())`` on a search draws nested bars for its candidates, their
folds and, inside each, the autoencoder's epochs; ``ScoringMonitor`` on the autoencoder
records a score at every epoch, from the search's workers too. (``ProgressBar`` needs
``rich``; here the bars are drawn once, at the end, as a non-interactive output shows
them.)
"""

import warnings

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X = load_digits().data
monitor = ScoringMonitor(scoring={"score": lambda est, X, y: est.score(X)})
pipe = make_pipeline(
    MinMaxScaler(),
    AutoEncoder(max_iter=15, early_stopping=False, random_state=0).set_callbacks(monitor),
)
search = GridSearchCV(pipe, {"autoencoder__n_components": [2, 8, 16]}, cv=3)
search.set_callbacks(ProgressBar(max_propagation_depth=None))
search.fit(X)
print("best:", search.best_params_)

# %%
# The training score of every epoch of every fit, as ``ScoringMonitor`` logged it: one
# curve per fit (three candidates on three folds, and the refit).
log = monitor.get_logs().data_as_pandas
epochs = log[log["task_name"] == "epoch"]
fig, ax = plt.subplots(figsize=(6, 3.5))
for _, fit in epochs.groupby("parent_task_id_path"):
    ax.plot(fit["task_id"] + 1, fit["score"], color="C0", alpha=0.5)
ax.set_xlabel("epoch")
ax.set_ylabel("score (minus the reconstruction loss)")
fig.tight_layout()
plt.show()
print(pd.DataFrame(search.cv_results_)[["params", "mean_test_score"]])
