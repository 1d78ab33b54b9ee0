"""The views an :class:`~skae.OutlierDetector` scores a row by, and their calibration.

A *view* is fitted on the training rows and gives every row an outlier score, higher for a
more anomalous row. The combined score of :class:`~skae.OutlierDetector` adds up the views'
scores, each first put on a common scale by :class:`Calibrated`: a robust z-score against
the training rows' scores (their median and their median absolute deviation). So no view
dominates by its units, and a feature's units never matter: the codes come from an
autoencoder trained on standardised features, and the tails are ranks.

* :class:`CodeIsolation`: how easily random axis-parallel cuts isolate a row's code
  (an :class:`~sklearn.ensemble.IsolationForest` on each member's codes, as Deep Isolation
  Forest, Xu et al. 2023, runs one on each of many network representations);
* :class:`CodeNeighbours`: the distance from a row's code to its ``k``-th nearest code in
  a subsample of the training rows (the k-NN detector, in code space);
* :class:`Tails`: how far out in its features' marginal tails a row lies, ECOD's statistic
  (Li et al. 2022): ``-log`` of each feature's empirical tail probability, summed;
* :class:`FeatureNeighbours`: the distance from a row's standardised features to their
  ``k``-th nearest training row's (the k-NN detector on the data themselves);
* :class:`Residual`: the squared reconstruction error, each feature's in units of its
  spread on the training rows, summed; calibrated with a hinge (only its excess over 3
  robust standard deviations counts).

Each view names what it scores in ``inputs``: "codes" (the model's ``transform``),
"features" (the rows) or "reconstruction" (the model's ``inverse_transform`` of the codes).
A view may give the training scores to calibrate by in ``training_scores_``; else they
are its scores of the training rows. :class:`FeatureNeighbours` gives them, its reference
rows left out of their own neighbourhoods; :class:`CodeNeighbours` calibrates on the
training rows as scored, each reference row among its own neighbours (the calibration its
figures were measured with).
"""

import math

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

# The MAD of a normal distribution is 0.6745 of its standard deviation.
MAD_TO_STD = 1.4826


class Calibrated:
    """A view's scores as robust z-scores of the training rows' scores.

    ``(score - median) / spread``, the spread 1.4826 times the median absolute deviation
    (the standard deviation for normal scores), else their standard deviation where more
    than half of the training scores are equal, else 1. With a ``hinge`` ``t``, only the
    excess of the z-score over ``t`` counts (0 below): a view that is strong where it is
    sure and misleading elsewhere adds its evidence without masking the other views'.
    """

    hinge = None  # also for views calibrated before hinges existed (files saved then)

    def __init__(self, view, training_scores, hinge=None):
        self.view = view
        self.hinge = hinge
        self.median = float(np.median(training_scores))
        spread = MAD_TO_STD * float(np.median(np.abs(training_scores - self.median)))
        if not spread > 0:
            spread = float(np.std(training_scores))
        self.spread = spread if spread > 0 else 1.0

    def z(self, scores):
        z = (scores - self.median) / self.spread
        return z if self.hinge is None else np.maximum(z - self.hinge, 0.0)


class Tails:
    """ECOD's tail statistic of each row: for every feature, ``-log`` of the empirical
    probability of a value at least as extreme, in the tail the training data are skewed
    towards, or in either tail; the sum over features, taking whichever of the three sums
    (left, right, skewed) is largest, as the paper's Algorithm 1 does (pyod takes the
    largest of the three per feature, and fits its ECDFs on the scored rows too). Ranks
    only: invariant to an increasing map of a feature.
    Probabilities are floored at ``1 / n_samples``, the smallest the training rows resolve.
    """

    inputs = ("features",)

    def fit(self, X):
        self.sorted_ = np.sort(X, axis=0)
        # the sign of the skewness is that of the third central moment (0 if constant)
        self.right_skewed_ = ((X - X.mean(axis=0)) ** 3).mean(axis=0) >= 0
        return self

    def scores(self, X):
        n = len(self.sorted_)
        totals = np.zeros((3, len(X)))
        for j in range(X.shape[1]):
            column = self.sorted_[:, j]
            left = np.searchsorted(column, X[:, j], side="right") / n
            right = (n - np.searchsorted(column, X[:, j], side="left")) / n
            left = -np.log(np.maximum(left, 1 / n))
            right = -np.log(np.maximum(right, 1 / n))
            totals[0] += left
            totals[1] += right
            totals[2] += right if self.right_skewed_[j] else left
        return totals.max(axis=0)


def code_blocks(codes, n_blocks):
    """The codes of each ensemble member: ``n_blocks`` equal slices of the columns."""
    return np.split(codes, n_blocks, axis=1)


class CodeIsolation:
    """An isolation forest on each member's codes, their scores averaged; ``n_estimators``
    trees in all, shared among the members."""

    inputs = ("codes",)

    def __init__(self, n_blocks, n_estimators=100, random_state=0):
        self.n_blocks = n_blocks
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, codes, sample_weight=None):
        per_block = max(1, math.ceil(self.n_estimators / self.n_blocks))
        rng = np.random.RandomState(self.random_state)
        self.forests_ = [
            IsolationForest(n_estimators=per_block, random_state=rng.randint(2**31 - 1)).fit(
                block, sample_weight=sample_weight
            )
            for block in code_blocks(codes, self.n_blocks)
        ]
        return self

    def scores(self, codes):
        blocks = code_blocks(codes, self.n_blocks)
        pairs = zip(self.forests_, blocks, strict=True)
        return -np.mean([forest.score_samples(b) for forest, b in pairs], axis=0)


class CodeNeighbours:
    """The distance to the ``n_neighbors``-th nearest of a member's reference codes,
    averaged over the members.

    Each member's reference set is its own random subsample of at most ``max_samples``
    training rows, as in Zimek et al.'s (2013) subsampled k-NN ensembles, which rank
    outliers as well as k-NN on all rows or better, at a fraction of the cost. A reference
    row scored again finds itself among its neighbours, as any row equal to it would.
    """

    inputs = ("codes",)

    def __init__(self, n_blocks, n_neighbors=5, max_samples=4096, random_state=0):
        self.n_blocks = n_blocks
        self.n_neighbors = n_neighbors
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, codes):
        rng = np.random.RandomState(self.random_state)
        n = len(codes)
        self.references_ = []
        for block in code_blocks(codes, self.n_blocks):
            if n > self.max_samples:
                block = block[rng.choice(n, self.max_samples, replace=False)]
            self.references_.append(block)
        return self

    def scores(self, codes):
        blocks = code_blocks(codes, self.n_blocks)
        pairs = zip(self.references_, blocks, strict=True)
        return np.mean([_kth_distance(r, b, self.n_neighbors) for r, b in pairs], axis=0)


class FeatureNeighbours:
    """The distance from a row's standardised features (a ``StandardScaler`` of the training
    rows) to the ``n_neighbors``-th nearest of a random reference set of at most
    ``max_samples`` training rows.

    ``training_scores_`` leaves each reference row out of its own neighbours (the
    ``n_neighbors + 1``-th distance) and counts only the reference rows: a training row
    scored against a set that holds it would sit at distance 0 from itself, and the
    calibration would take the training rows for tighter than new rows from the same
    distribution are. With 10 neighbours, a handful of anomalies repeated in the training
    rows do not hide one another (with 1, an anomaly's twin in training is its nearest
    neighbour).
    """

    inputs = ("features",)

    def __init__(self, n_neighbors=10, max_samples=4096, random_state=0):
        self.n_neighbors = n_neighbors
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X):
        self.scaler_ = StandardScaler().fit(X)
        rng = np.random.RandomState(self.random_state)
        if len(X) > self.max_samples:
            X = X[rng.choice(len(X), self.max_samples, replace=False)]
        self.reference_ = self.scaler_.transform(X)
        self.training_scores_ = _kth_distance(
            self.reference_, self.reference_, self.n_neighbors + 1
        )
        return self

    def scores(self, X):
        return _kth_distance(self.reference_, self.scaler_.transform(X), self.n_neighbors)


class Residual:
    """The squared reconstruction error of a row, each feature's error in units of that
    feature's standard deviation on the training rows (1 for a constant feature), summed
    over the features: the classic autoencoder score, whatever the features' units."""

    inputs = ("features", "reconstruction")

    def fit(self, X):
        self.scale_ = StandardScaler().fit(X).scale_
        return self

    def scores(self, X, reconstruction):
        return (((np.asarray(reconstruction, np.float64) - X) / self.scale_) ** 2).sum(axis=1)


def _kth_distance(reference, queries, n_neighbors):
    """The distance from each query to its ``n_neighbors``-th neighbour among the rows of
    ``reference`` (fewer when it has fewer rows), with distances within rounding error of 0
    set to 0.

    The brute-force search computes ``|q|^2 + |r|^2 - 2 q.r``, whose rounding error is about
    ``eps * (|q|^2 + |r|^2)``: equal codes (duplicated rows) would otherwise be some 1e-8
    apart, by an amount that depends on where they sit in a matrix product, and that noise,
    calibrated by a spread of the same size, would give equal rows different scores.
    """
    k = min(n_neighbors, len(reference))
    index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    distances, neighbours = index.kneighbors(queries)
    norms = (queries**2).sum(axis=1)[:, None] + (reference**2).sum(axis=1)[neighbours]
    noise = np.sqrt(64 * np.finfo(np.float64).eps * norms)
    return np.where(distances[:, -1] <= noise[:, -1], 0.0, distances[:, -1])
