"""Metrics of a learned manifold, for any fitted transformer, PCA included.

Each metric takes a fitted estimator and data, ``metric(estimator, X, y=None)``, which is
also scikit-learn's scorer signature: pass them (or :data:`SCORERS`) as ``scoring`` to
``GridSearchCV`` or ``cross_val_score``. A pipeline works as the estimator as long as every
step can ``transform`` (and, for the reconstruction error, ``inverse_transform``).
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import trustworthiness as _trustworthiness
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_array

__all__ = [
    "knn_accuracy",
    "linear_probe_accuracy",
    "neg_reconstruction_error",
    "reconstruction_error",
    "trustworthiness",
]


def reconstruction_error(estimator, X, y=None, *, per="sample"):
    """Squared error of ``inverse_transform(transform(X))`` against X.

    Parameters
    ----------
    estimator : fitted transformer with ``inverse_transform``
    X : array-like of shape (n_samples, n_features)
    y : ignored
    per : {"sample", "feature"}, default="sample"
        "sample": summed over features, averaged over samples (the "SSE per image" of
        Hinton & Salakhutdinov 2006); "feature": averaged over both (the MSE).

    Returns
    -------
    error : float
    """
    X = check_array(X, dtype=(np.float64, np.float32))
    squared = (estimator.inverse_transform(estimator.transform(X)) - X) ** 2
    if per == "sample":
        return float(squared.sum(axis=1).mean())
    if per == "feature":
        return float(squared.mean())
    raise ValueError(f"per must be 'sample' or 'feature'; got {per!r}.")


def neg_reconstruction_error(estimator, X, y=None):
    """Minus :func:`reconstruction_error` (per sample): a scorer, higher is better.

    Parameters
    ----------
    estimator : fitted transformer with ``inverse_transform``
    X : array-like of shape (n_samples, n_features)
    y : ignored

    Returns
    -------
    score : float
    """
    return -reconstruction_error(estimator, X)


def trustworthiness(estimator, X, y=None, *, n_neighbors=5):
    """How well the codes keep the neighbourhoods of X, in [0, 1] (Venna & Kaski 2001).

    scikit-learn's :func:`~sklearn.manifold.trustworthiness` of ``estimator.transform(X)``.

    Parameters
    ----------
    estimator : fitted transformer
    X : array-like of shape (n_samples, n_features)
    y : ignored
    n_neighbors : int, default=5
        The neighbourhoods' size.

    Returns
    -------
    trustworthiness : float
    """
    X = check_array(X, dtype=(np.float64, np.float32))
    return float(_trustworthiness(X, estimator.transform(X), n_neighbors=n_neighbors))


def knn_accuracy(estimator, X, y, *, n_neighbors=5):
    """Leave-one-out accuracy of a k-nearest-neighbour vote in code space.

    Each sample is classified by the majority label of its ``n_neighbors`` nearest other
    samples among the codes of X (ties go to the smallest label).

    Parameters
    ----------
    estimator : fitted transformer
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        The labels.
    n_neighbors : int, default=5
        The voters per sample.

    Returns
    -------
    accuracy : float
    """
    Z = estimator.transform(check_array(X, dtype=(np.float64, np.float32)))
    labels, y_codes = np.unique(np.asarray(y), return_inverse=True)
    neighbours = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(Z)
    # Ask for one more neighbour and drop each sample's own row; a sample with more than
    # n_neighbors duplicates in code space may not be among its own neighbours (ties are
    # returned in index order), and then drops the farthest of them instead.
    index = neighbours.kneighbors(Z, return_distance=False)
    dropped = index == np.arange(len(Z))[:, None]
    dropped[~dropped.any(axis=1), -1] = True
    others = index[~dropped].reshape(len(Z), n_neighbors)
    votes = np.apply_along_axis(np.bincount, 1, y_codes[others], minlength=len(labels))
    return float(np.mean(votes.argmax(axis=1) == y_codes))


def linear_probe_accuracy(estimator, X, y, *, cv=5):
    """Cross-validated accuracy of a logistic regression trained on the codes of X.

    Parameters
    ----------
    estimator : fitted transformer
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        The labels.
    cv : int or cross-validation generator, default=5
        As :func:`~sklearn.model_selection.cross_val_score` takes it.

    Returns
    -------
    accuracy : float
        The mean over the folds.
    """
    Z = estimator.transform(check_array(X, dtype=(np.float64, np.float32)))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return float(cross_val_score(probe, Z, y, cv=cv).mean())


SCORERS = {
    "neg_reconstruction_error": neg_reconstruction_error,
    "trustworthiness": trustworthiness,
    "knn_accuracy": knn_accuracy,
    "linear_probe_accuracy": linear_probe_accuracy,
}
