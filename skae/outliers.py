"""Anomaly detection by autoencoders: an outlier detector on any autoencoder, or PCA."""

import contextlib
import math
import warnings
from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from . import distributed
from ._engine.tasks import CallbackSupportMixin, Task
from ._engine.training import named_seeds
from .architectures import MLPEnsemble
from .autoencoder import AutoEncoder
from .base import BaseAutoEncoder, check_weights, check_X, fitted_copy, output_dtype
from .detection import (
    MAD_TO_STD,
    Calibrated,
    CodeIsolation,
    CodeNeighbours,
    FeatureNeighbours,
    Residual,
    Tails,
)

# The robust z-score below the median beyond which contamination="auto" flags a row.
AUTO_Z = 3.0

# The combined score's residual counts only beyond this many robust standard deviations.
RESIDUAL_HINGE = 3.0

# The default model: an ensemble of small autoencoders, each with a code of about
# sqrt(n_features) values, trained for a budget of steps whatever the data's size.
N_MEMBERS = 8
TRAINING_STEPS = 150
BATCH_SIZE = 128


def member_code_width(n_features):
    """The code of one member of the default ensemble: ``ceil(sqrt(n_features))`` values,
    never as many as the features (but for a single feature)."""
    return max(1, min(n_features - 1, math.ceil(math.sqrt(n_features))))


def default_model(n_samples, n_features):
    """The default model of :class:`OutlierDetector`: standardised features, then an
    :class:`~skae.MLPEnsemble` of ``N_MEMBERS`` autoencoders trained for about
    ``TRAINING_STEPS`` steps of ``BATCH_SIZE`` rows (at least one epoch)."""
    batch_size = min(BATCH_SIZE, n_samples)
    steps_per_epoch = math.ceil(n_samples / batch_size)
    return Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "autoencoder",
                AutoEncoder(
                    n_components=N_MEMBERS * member_code_width(n_features),
                    module=MLPEnsemble(n_members=N_MEMBERS),
                    batch_size=batch_size,
                    learning_rate_init=3e-3,
                    alpha=0.0,
                    max_iter=max(1, math.ceil(TRAINING_STEPS / steps_per_epoch)),
                    early_stopping=False,
                ),
            ),
        ]
    )


@contextlib.contextmanager
def _budgeted():
    """The default model trains for a budget of steps, not to convergence: its
    ``ConvergenceWarning`` would only say so on every fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def n_code_blocks(model):
    """How many members' codes a fitted model's ``transform`` lays side by side."""
    last = model[-1] if isinstance(model, Pipeline) else model
    return getattr(getattr(last, "module_", None), "n_members", 1)


def weighted_percentile(values, weights, q):
    """The ``q``-th percentile of ``values`` with each counted ``weights`` times: the smallest
    value whose cumulative weight reaches ``q``% of the total (the inverted CDF, numpy's
    ``method="inverted_cdf"`` on the repeated values for integer weights)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = np.searchsorted(cumulative, q / 100.0 * cumulative[-1], side="left")
    return values[order][min(index, len(values) - 1)]


class OutlierDetector(CallbackSupportMixin, OutlierMixin, BaseEstimator):
    """Outlier detection by autoencoders: on skae's ensemble by default, or on any skae
    autoencoder or PCA-like transformer.

    The model is fitted on the training data, outliers and all (nothing tells it which
    rows they are), and ``score_samples`` is higher for rows like the bulk of them, as
    scikit-learn's detectors (:class:`~sklearn.ensemble.IsolationForest`) have it.
    ``predict`` flags the rows whose score falls below ``offset_``.

    By default (``autoencoder=None``, ``score_by="auto"``) the model is an ensemble of
    eight small autoencoders trained side by side (:class:`MLPEnsemble`) on standardised
    features, each with a code of ``ceil(sqrt(n_features))`` values (never as wide as the
    data), trained for about 150 steps whatever the data's size; and a row's score
    combines five views of it, each a robust z-score against the training rows' (see
    ``score_by="combined"``). Measured on ADBench's tabular data sets, this ranks ahead of
    IsolationForest, ECOD, k-NN and pyod's autoencoders (see the user guide).

    Parameters
    ----------
    autoencoder : estimator or None, default=None
        The model of normal data: any skae autoencoder, or any scikit-learn transformer with
        ``inverse_transform`` (:class:`~sklearn.decomposition.PCA`, ``KernelPCA`` with
        ``fit_inverse_transform=True``), or a pipeline ending in one. A fitted one is
        deep-copied (the object passed is never changed); an unfitted one is cloned and
        fitted on the training data, its ``random_state=None`` parameters seeded from
        ``random_state``. None builds the default ensemble for the data's shape (above).
    score_by : {"auto", "combined", "likelihood", "reconstruction"}, default="auto"
        What a row's score is, higher for a more normal row.

        - "combined": minus the sum of five robust z-scores (each view's score less its
          median on the training rows, over 1.4826 times their median absolute deviation):
          the isolation of the row's code (an :class:`~sklearn.ensemble.IsolationForest`
          of 100 trees shared among the ensemble's members, on each member's codes), the
          distance from its code to the 5th nearest training code, ECOD's tail statistic
          of its features (how far out in each feature's empirical tails it lies), the
          distance from its standardised features to the 10th nearest training row's, and
          its reconstruction error (each feature's in units of its training spread), of
          which only the excess over 3 counts. The codes place a row on the model's
          manifold, the tails catch a value extreme in one feature, the neighbours in
          feature space and the residual a row off the manifold; the residual's hinge
          keeps the anomalies of contaminated training data, which the model learns to
          reconstruct, from masking the other views.
        - "likelihood": the model's own ``score_samples`` (a skae autoencoder's
          reconstruction log-likelihood, a VAE's ELBO in nats, PCA's probabilistic
          log-likelihood).
        - "reconstruction": minus the squared reconstruction error, summed over the
          features.
        - "auto": "combined" for the default model; for a model passed as
          ``autoencoder``, the likelihood for skae's autoencoders and the reconstruction
          error for other transformers (the classic PCA baseline).
    contamination : "auto" or float in (0, 0.5], default="auto"
        The share of outliers in the training data. A float sets ``offset_`` at that
        quantile of the training scores, so that this share of training rows is flagged.
        "auto" needs no guess: ``offset_`` is the training scores' median minus 3 robust
        standard deviations (1.4826 times their median absolute deviation), the rule of
        robust z-scores.
    refit_inliers : bool, default=False
        Fit the model a second time on the training rows the first fit judged inliers, and
        set ``offset_`` from the second model's scores: training data that are themselves
        contaminated pull the first model towards their outliers.
    random_state : int, RandomState instance or None, default=None
        Seeds an unfitted autoencoder that has no seed of its own, and the isolation
        forest of ``score_by="combined"``.

    Attributes
    ----------
    autoencoder_ : estimator
        The fitted model of normal data (by default a pipeline: a ``StandardScaler``, then
        an :class:`AutoEncoder` on an :class:`MLPEnsemble`).
    score_by_ : {"combined", "likelihood", "reconstruction"}
        What the scores are (``score_by`` resolved).
    views_ : dict
        With ``score_by_="combined"``, the fitted views by name ("isolation",
        "neighbours", "tails", "feature_neighbours", "residual"), each a
        ``skae.detection.Calibrated`` with the median and spread of its training
        scores (and the residual's hinge); else empty.
    offset_ : float
        The score threshold: rows that score below it are outliers;
        ``decision_function`` is ``score_samples - offset_``.
    n_inliers_ : int
        The training rows the final model was fitted on (all of them, unless
        ``refit_inliers``).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when X had string column names.

    See Also
    --------
    MLPEnsemble : The default model's network.
    sklearn.ensemble.IsolationForest : Outliers by random partitioning.
    sklearn.neighbors.LocalOutlierFactor : Outliers by local density.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import OutlierDetector
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> det = OutlierDetector(contamination=0.05, random_state=0).fit(X)
    >>> labels = det.predict(X)
    >>> round(float(np.mean(labels == -1)), 2)
    0.05
    >>> det.feature_errors(X[:3]).shape
    (3, 64)
    """

    _parameter_constraints: ClassVar[dict] = {
        "autoencoder": [None, HasMethods(["fit", "transform", "inverse_transform"])],
        "score_by": [StrOptions({"auto", "combined", "likelihood", "reconstruction"})],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "refit_inliers": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        autoencoder=None,
        *,
        score_by="auto",
        contamination="auto",
        refit_inliers=False,
        random_state=None,
    ):
        self.autoencoder = autoencoder
        self.score_by = score_by
        self.contamination = contamination
        self.refit_inliers = refit_inliers
        self.random_state = random_state

    def _model(self, X):
        if self.autoencoder is None:
            return default_model(*X.shape)
        return self.autoencoder

    def _resolve_score_by(self, model):
        if self.score_by != "auto":
            return self.score_by
        if self.autoencoder is None:
            return "combined"
        return "likelihood" if isinstance(model, BaseAutoEncoder) else "reconstruction"

    def _fit_model(self, model, X, seed, weights, task=None, name="fit model"):
        context = contextlib.nullcontext() if self.autoencoder is not None else _budgeted()
        with context:
            return fitted_copy(model, X, seed, weights, task=task, name=name)

    def _inputs(self, X):
        """What the views score: the rows, their codes and their reconstructions."""
        codes = np.asarray(self.autoencoder_.transform(X), dtype=np.float64)
        return {
            "features": np.asarray(X, dtype=np.float64),
            "codes": codes,
            "reconstruction": np.asarray(
                self.autoencoder_.inverse_transform(codes.astype(X.dtype, copy=False)),
                dtype=np.float64,
            ),
        }

    def _fit_views(self, X, seed, weights):
        """The combined score's views, fitted on the training rows (of positive weight)."""
        if weights is not None:
            keep = weights > 0
            X, weights = X[keep], weights[keep]
        inputs = self._inputs(X)
        codes, features = inputs["codes"], inputs["features"]
        blocks = n_code_blocks(self.autoencoder_)
        views = {
            "isolation": CodeIsolation(blocks, random_state=seed).fit(codes, weights),
            "neighbours": CodeNeighbours(blocks, random_state=seed).fit(codes),
            "tails": Tails().fit(features),
            "feature_neighbours": FeatureNeighbours(random_state=seed).fit(features),
            "residual": Residual().fit(features),
        }
        self.views_ = {}
        for name, view in views.items():
            training = getattr(view, "training_scores_", None)
            if training is None:
                training = view.scores(*(inputs[i] for i in view.inputs))
            hinge = RESIDUAL_HINGE if name == "residual" else None
            self.views_[name] = Calibrated(view, training, hinge=hinge)

    def _combined(self, X):
        inputs = self._inputs(X)
        total = np.zeros(len(X))
        for calibrated in self.views_.values():
            view = calibrated.view
            total += calibrated.z(view.scores(*(inputs[i] for i in view.inputs)))
        return -total

    def _scores(self, X):
        if self.score_by_ == "combined":
            scores = self._combined(X)
        elif self.score_by_ == "likelihood":
            scores = self.autoencoder_.score_samples(X)
        else:
            scores = -self._errors(X).sum(axis=1)
        return np.asarray(scores, dtype=output_dtype(X))

    def _errors(self, X):
        model = self.autoencoder_
        reconstruction = np.asarray(model.inverse_transform(model.transform(X)))
        return (reconstruction - X) ** 2

    def _offset(self, scores, sample_weight=None):
        def percentile(values, q):
            if sample_weight is None:
                return np.percentile(values, q)
            return weighted_percentile(values, sample_weight, q)

        if self.contamination == "auto":
            median = percentile(scores, 50)
            spread = MAD_TO_STD * percentile(np.abs(scores - median), 50)
            return float(median - AUTO_Z * spread)
        return float(percentile(scores, 100.0 * self.contamination))

    @_fit_context(prefer_skip_nested_validation=False)  # the autoencoder validates its own
    def fit(self, X, y=None, sample_weight=None):
        """Fit the model of normal data and set the threshold ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, mostly normal.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows: in the model's fit (when it is fitted here), in the
            isolation forest of the combined score (its other views leave out the rows of
            weight 0 and count the others once), and in the quantiles that set ``offset_``
            (weighted, inverted-CDF quantiles). A row of weight 0 is ignored.

        Returns
        -------
        self : object
            The fitted detector.
        """
        X = check_X(self, X, reset=True)  # in float32, the training precision of skae's nets
        X, _, weights = check_weights(X, None, sample_weight)
        seeds = distributed.agree(self, named_seeds(self.random_state, ("autoencoder", "views")), X)
        model = self._model(X)
        # scikit-learn's callbacks: the model's fit (when it is fitted here), and its refit
        task = Task.root(self, X, sample_weight=sample_weight, max_subtasks=1 + self.refit_inliers)
        self.score_by_ = self._resolve_score_by(model)
        if self.score_by_ == "likelihood" and not hasattr(model, "score_samples"):
            raise ValueError(
                f"score_by='likelihood' uses the model's score_samples, which "
                f"{type(model).__name__} does not have; use "
                "score_by='reconstruction' or 'combined'."
            )
        self.autoencoder_ = self._fit_model(model, X, seeds["autoencoder"], weights, task)
        self.views_ = {}
        if self.score_by_ == "combined":
            self._fit_views(X, seeds["views"], weights)
        scores = self._scores(X)
        self.offset_ = self._offset(scores, weights)
        self.n_inliers_ = len(X)
        if self.refit_inliers:
            # a clone, so that a model passed fitted is fitted anew too
            inlying = scores >= self.offset_
            self.autoencoder_ = self._fit_model(
                clone(model),
                X[inlying],
                seeds["autoencoder"],
                None if weights is None else weights[inlying],
                task,
                "refit on inliers",
            )
            if self.score_by_ == "combined":
                self._fit_views(
                    X[inlying], seeds["views"], None if weights is None else weights[inlying]
                )
            self.n_inliers_ = int(inlying.sum())
            self.offset_ = self._offset(self._scores(X), weights)
        task.end({})
        return self

    def _validated(self, X):
        return check_X(self, X, reset=False)

    def score_samples(self, X):
        """How normal each row is: higher is more normal (see ``score_by``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return self._scores(self._validated(X))

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers, -1 for outliers, as scikit-learn's detectors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def feature_errors(self, X):
        """Each feature's squared reconstruction error: which features make a row anomalous.

        A row's errors sum to minus its reconstruction score
        (``score_by="reconstruction"``).
        A pandas DataFrame in gives a DataFrame out, with X's index and columns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        errors : ndarray or DataFrame of shape (n_samples, n_features)
        """
        errors = self._errors(self._validated(X))
        if hasattr(X, "columns") and hasattr(X, "index"):
            return type(X)(errors, index=X.index, columns=X.columns)
        return errors
