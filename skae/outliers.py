"""Anomaly detection by reconstruction: an outlier detector on any autoencoder, or PCA."""

from numbers import Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import distributed
from .autoencoder import AutoEncoder
from .base import BaseAutoEncoder, check_magnitude, check_weights, fitted_copy, output_dtype
from .training import named_seeds

# The robust z-score below the median beyond which contamination="auto" flags a row.
AUTO_Z = 3.0
# The MAD of a normal distribution is 0.6745 of its standard deviation.
MAD_TO_STD = 1.4826


def weighted_percentile(values, weights, q):
    """The ``q``-th percentile of ``values`` with each counted ``weights`` times: the smallest
    value whose cumulative weight reaches ``q``% of the total (the inverted CDF, numpy's
    ``method="inverted_cdf"`` on the repeated values for integer weights)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = np.searchsorted(cumulative, q / 100.0 * cumulative[-1], side="left")
    return values[order][min(index, len(values) - 1)]


class OutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection by reconstruction, on any skae autoencoder or PCA-like transformer.

    A row is the more anomalous the worse the model reconstructs it, or the lower its
    likelihood under the model: the model is fitted on (mostly) normal data, and
    ``score_samples`` is higher for rows like them, as scikit-learn's detectors
    (:class:`~sklearn.ensemble.IsolationForest`) have it. ``predict`` flags the rows whose
    score falls below ``offset_``.

    Parameters
    ----------
    autoencoder : estimator or None, default=None
        The model of normal data: any skae autoencoder, or any scikit-learn transformer with
        ``inverse_transform`` (:class:`~sklearn.decomposition.PCA`, ``KernelPCA`` with
        ``fit_inverse_transform=True``). A fitted one is deep-copied (the object passed is
        never changed); an unfitted one is cloned and fitted on the training data, its
        ``random_state=None`` parameters seeded from ``random_state``. None uses
        ``AutoEncoder(n_components=8, hidden_layer_sizes=(64,))``.
    score_by : {"auto", "likelihood", "reconstruction"}, default="auto"
        What a row's score is. "likelihood": the model's own ``score_samples`` (a skae
        autoencoder's reconstruction log-likelihood, a VAE's ELBO in nats, PCA's
        probabilistic log-likelihood). "reconstruction": minus the squared reconstruction
        error, summed over the features. "auto": the likelihood for skae's autoencoders,
        the reconstruction error for other transformers (the classic PCA baseline).
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
        Seeds an unfitted autoencoder that has no seed of its own.

    Attributes
    ----------
    autoencoder_ : estimator
        The fitted model of normal data.
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
    sklearn.ensemble.IsolationForest : Outliers by random partitioning.
    sklearn.neighbors.LocalOutlierFactor : Outliers by local density.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import AutoEncoder, OutlierDetector
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> det = OutlierDetector(AutoEncoder(n_components=8, max_iter=20), contamination=0.05,
    ...                       random_state=0).fit(X)
    >>> labels = det.predict(X)
    >>> round(float(np.mean(labels == -1)), 2)
    0.05
    >>> det.feature_errors(X[:3]).shape
    (3, 64)
    """

    _parameter_constraints: ClassVar[dict] = {
        "autoencoder": [None, HasMethods(["fit", "transform", "inverse_transform"])],
        "score_by": [StrOptions({"auto", "likelihood", "reconstruction"})],
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

    def _model(self):
        if self.autoencoder is None:
            return AutoEncoder(n_components=8, hidden_layer_sizes=(64,))
        return self.autoencoder

    def _uses_likelihood(self):
        if self.score_by == "auto":
            return isinstance(self.autoencoder_, BaseAutoEncoder)
        return self.score_by == "likelihood"

    def _scores(self, X):
        if self._uses_likelihood():
            return np.asarray(self.autoencoder_.score_samples(X), dtype=output_dtype(X))
        return -self._errors(X).sum(axis=1)

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
            Weights of the rows: in the model's fit (when it is fitted here), and in the
            quantiles that set ``offset_`` (weighted, inverted-CDF quantiles). A row of
            weight 0 is ignored.

        Returns
        -------
        self : object
            The fitted detector.
        """
        X = validate_data(self, X, dtype="numeric")
        check_magnitude(X, torch.float32)  # the training precision of skae's networks
        X, _, weights = check_weights(X, None, sample_weight)
        seeds = distributed.agree(self, named_seeds(self.random_state, ("autoencoder",)), X)
        seed = seeds["autoencoder"]
        if self.score_by == "likelihood" and not hasattr(self._model(), "score_samples"):
            raise ValueError(
                f"score_by='likelihood' uses the model's score_samples, which "
                f"{type(self._model()).__name__} does not have; use "
                "score_by='reconstruction'."
            )
        self.autoencoder_ = fitted_copy(self._model(), X, seed, weights)
        scores = self._scores(X)
        self.offset_ = self._offset(scores, weights)
        self.n_inliers_ = len(X)
        if self.refit_inliers:
            # a clone, so that a model passed fitted is fitted anew too
            inlying = scores >= self.offset_
            self.autoencoder_ = fitted_copy(
                clone(self._model()),
                X[inlying],
                seed,
                None if weights is None else weights[inlying],
            )
            self.n_inliers_ = int(inlying.sum())
            self.offset_ = self._offset(self._scores(X), weights)
        return self

    def _validated(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype="numeric", reset=False)
        check_magnitude(X, torch.float64 if output_dtype(X) == np.float64 else torch.float32)
        return X

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
