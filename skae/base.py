"""The estimator layer's shared pieces: validation, conversion, the training set-up, the API.

The data's way through ``fit``: array -> ``validate_data`` -> :class:`~skae.engine.AutoEncoderNet`
(which moves it to the device once and trains) -> fitted module. ``transform`` and friends
run the fitted module over the validated array in large chunks on the same device.

:class:`NeuralNetMixin` holds what every skae estimator does with its torch module (seeds,
optimizer, early stopping, the skorch net, warm starts, running the fitted module);
:class:`BaseAutoEncoder` adds the transformer API. A variant states only what differs by
overriding the hooks ``_build_module``, ``_build_criterion``, ``_corruption``,
``_check_data``, ``_training_rows`` and ``_after_fit``; none copies ``fit``.
"""

import contextlib
import copy
import math
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from .engine import AutoEncoderNet, map_batches
from .losses import ReconstructionLoss, reconstruction_nll
from .modules import ACTIVATIONS

FLOAT_DTYPES = (np.float64, np.float32)

# Constraints of the training parameters every skae estimator has.
TRAINING_CONSTRAINTS = {
    "solver": [StrOptions({"adam", "lbfgs"})],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "learning_rate": [StrOptions({"constant", "adaptive", "cosine"})],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
}


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; anything else is checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' to fall back to the CPU."
        )
    return str(parsed)


def n_seeds(random_state, n):
    """``n`` seeds for torch generators, drawn from ``random_state`` as scikit-learn does."""
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(np.iinfo(np.int32).max, size=n)]


@contextlib.contextmanager
def lend_generator(module, device, seed):
    """Lend ``module`` a generator for its own sampling while it trains.

    A module that samples inside ``forward`` (a VAE's reparameterisation) declares a
    ``generator`` attribute; it holds a seeded generator on the training device during
    training and None otherwise, so the fitted module pickles without device state.
    """
    if not hasattr(module, "generator"):
        yield
        return
    module.generator = torch.Generator(device=device).manual_seed(seed)
    try:
        yield
    finally:
        module.generator = None


class CosineDecay:
    """Factor ``(1 + cos(pi * epoch / n_epochs)) / 2`` of the initial learning rate: from 1
    at the first epoch towards 0 at the last (a picklable ``lr_lambda`` for ``LambdaLR``)."""

    def __init__(self, n_epochs):
        self.n_epochs = n_epochs

    def __call__(self, epoch):
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.n_epochs) / self.n_epochs))


class NeuralNetMixin:
    """Training set-up shared by skae's estimators: a torch module trained by skorch.

    Uses the parameters of ``TRAINING_CONSTRAINTS``; subclasses implement
    ``_build_module(X, generator)`` and ``_build_criterion()``.
    """

    # The float type the module trains and runs in; outputs take the input's dtype.
    _torch_dtype = torch.float32

    def _build_module(self, X, generator):
        raise NotImplementedError

    def _build_criterion(self):
        raise NotImplementedError

    def _corruption(self):
        """A callable ``(X, generator) -> corrupted X`` for training batches, or None."""
        return

    def __sklearn_is_fitted__(self):
        # Hooks set fitted attributes (data ranges, pretrained layers) before training;
        # only a trained net makes the estimator fitted.
        return hasattr(self, "net_")

    @property
    def module_(self):
        """The fitted torch module (held by ``net_``, which pickles it device-independently)."""
        return self.net_.module_

    @property
    def history_(self):
        """skorch's ``History``: one dict per epoch (losses, duration)."""
        return self.net_.history

    def _batch_size(self, n_samples):
        if self.solver == "lbfgs":
            return n_samples  # a quasi-Newton method needs the full-batch loss
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the {n_samples} samples; "
                "it is clipped to the number of samples.",
                UserWarning,
            )
        return min(self.batch_size, n_samples)

    def _optimizer(self):
        if self.solver == "lbfgs":
            # torch's default history of 100 corrections: with scipy's 10 the linear AE
            # stalled near saddle subspaces (measured on digits, several seeds).
            return {"optimizer": torch.optim.LBFGS, "lr": 1.0,
                    "optimizer__line_search_fn": "strong_wolfe"}
        return {"optimizer": torch.optim.Adam, "lr": self.learning_rate_init}

    def _lr_schedule(self, monitor):
        """skorch's LRScheduler for ``learning_rate``, or None (constant, or L-BFGS)."""
        if self.solver == "lbfgs" or self.learning_rate == "constant":
            return None
        if self.learning_rate == "adaptive":
            return LRScheduler(
                ReduceLROnPlateau, monitor=monitor, factor=0.2, patience=1,
                threshold=self.tol, threshold_mode="rel", event_name="learning_rate",
            )
        # last_epoch=-1: every call to fit starts its own cycle from learning_rate_init
        return LRScheduler(LambdaLR, lr_lambda=CosineDecay(max(self.max_iter, 1)), last_epoch=-1,
                           event_name="learning_rate")

    def _make_net(self, X, y, seeds, stratified=False):
        # nn.Linear draws a default initialisation from the global RNG when it is built;
        # fork_rng puts that state back, and _build_module draws the real weights from
        # the local generator.
        with torch.random.fork_rng(devices=[]):
            module = self._build_module(X, torch.Generator().manual_seed(seeds[0]))
        monitor = "valid_loss" if self.early_stopping else "train_loss"
        callbacks = [
            ("stopper", EarlyStopping(
                monitor=monitor, patience=self.n_iter_no_change, threshold=self.tol,
                threshold_mode="rel", load_best=self.early_stopping,
            )),
        ]
        schedule = self._lr_schedule(monitor)
        if schedule is not None:
            callbacks.append(("lr_schedule", schedule))
        if self.verbose:
            callbacks.append(("progress", ProgressBar()))
        train_split = None
        if self.early_stopping:
            train_split = ValidSplit(
                self.validation_fraction, stratified=stratified, random_state=seeds[2]
            )
        return AutoEncoderNet(
            module.to(self._torch_dtype),
            criterion=self._build_criterion(),
            **self._optimizer(),
            max_epochs=self.max_iter,
            batch_size=self._batch_size(len(X)),
            iterator_train__shuffle=True,
            iterator_train__seed=seeds[1],
            iterator_train__corruption=self._corruption(),
            iterator_valid__seed=seeds[1],
            dataset__dtype=self._torch_dtype,
            train_split=train_split,
            callbacks=callbacks,
            verbose=self.verbose,
            device=resolve_device(self.device),
        )

    def _train(self, X, y=None, stratified=False):
        """Build a new net, or continue the fitted one (``warm_start``), and train it.

        A new net becomes ``net_`` only once training succeeded; a continuation that fails
        (diverges) puts the previous net back, so no error leaves a broken model behind.
        Returns the number of epochs run.
        """
        # weights, data order and noise, validation split, the module's own sampling
        seeds = n_seeds(self.random_state, 4)
        if self.warm_start and hasattr(self, "net_"):
            previous = copy.deepcopy(self.net_)  # weights, optimizer state and history
            # A continuation must not replay the first call's sampling noise (the engine
            # does the same for the data order).
            seeds = [s + len(previous.history) for s in seeds]
            try:
                with lend_generator(self.module_, self.net_.device, seeds[3]):
                    self.net_.partial_fit(X, y)
            except BaseException:
                self.net_ = previous
                raise
            epochs = len(self.net_.history) - len(previous.history)
        else:
            net = self._make_net(X, y, seeds, stratified=stratified).initialize()
            with lend_generator(net.module_, net.device, seeds[3]):
                net.partial_fit(X, y)
            self.net_, self.device_ = net, net.device
            epochs = len(net.history)
        self.module_.eval()
        self._record_history(epochs)
        return epochs

    def _record_history(self, epochs):
        history = self.net_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"]) if len(history) else []
        if self.early_stopping and len(history):
            self.validation_scores_ = [-v for v in history[:, "valid_loss"]]
            self.best_validation_score_ = max(self.validation_scores_)
        elif self.loss_curve_:
            self.best_loss_ = min(self.loss_curve_)
        stopper = dict(self.net_.callbacks_)["stopper"]
        if self.max_iter and epochs >= self.max_iter and stopper.misses_ < stopper.patience:
            warnings.warn(
                f"{type(self).__name__}: maximum iterations (max_iter={self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )

    def _map(self, fn, X):
        """``fn(module, x)`` over X on the module's device, in X's precision.

        Training runs in ``_torch_dtype``; float64 input is evaluated with a float64 copy of
        the weights, so results do not depend on how rows are batched (float32 rounding
        does) and float64 stays float64 as in scikit-learn.
        """
        module = self.module_
        dtype = torch.float64 if X.dtype == np.float64 else self._torch_dtype
        if dtype != self._torch_dtype:
            module = copy.deepcopy(module).to(dtype)
        out = map_batches(lambda x: fn(module, x), X, self.net_.device, dtype)
        return out.astype(X.dtype, copy=False)


class BaseAutoEncoder(
    NeuralNetMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class of skae's autoencoders. Not for direct use: see :class:`skae.AutoEncoder`."""

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions({"mse", "bce"})],
        **TRAINING_CONSTRAINTS,
    }

    def _build_criterion(self):
        return ReconstructionLoss(self.loss)

    def _check_data(self, X):
        """Checks that depend on the data and the parameters together."""
        if self.loss == "bce" and X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                "loss='bce' models X as Bernoulli probabilities and needs values in [0, 1]; "
                f"got values in [{X.min():.4g}, {X.max():.4g}]. Scale X (e.g. MinMaxScaler) "
                "or use loss='mse'."
            )

    def _training_rows(self, X):
        """The rows the net trains on: X itself, unless a variant has a cheaper equivalent."""
        return X

    def _after_fit(self, X):
        """Called once training ends, with the training data."""

    def _hidden_layer_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes, dtype=object))
        if not all(isinstance(s, Integral) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers; got "
                f"{self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to X (unsupervised: ``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        first_fit = not (self.warm_start and hasattr(self, "net_"))
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=first_fit)
        self._check_data(X)
        self._train(self._training_rows(X))
        self._n_features_out = self.n_components
        self._after_fit(X)
        return self

    def _validated(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)

    def transform(self, X):
        """Encode X: the codes, shape (n_samples, n_components)."""
        X = self._validated(X)
        return self._map(lambda module, x: module.encode(x), X)

    def inverse_transform(self, X):
        """Decode codes X back to the input space: the reconstructions' mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOAT_DTYPES)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"is expecting {self._n_features_out} features (the n_components of the codes)."
            )
        return self._map(lambda module, z: module.mean(module.decode(z)), Z)

    def score_samples(self, X):
        """Minus each sample's reconstruction loss (a log-likelihood up to a constant).

        Summed over features: minus the squared error for ``loss="mse"``, the Bernoulli
        log-likelihood in nats for ``loss="bce"``. Low values flag anomalies.
        """
        X = self._validated(X)
        self._check_data(X)
        loss = self.loss
        return -self._map(
            lambda module, x: reconstruction_nll(module.decode(module.encode(x)), x, loss), X
        )

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: higher is better, as ``GridSearchCV`` expects."""
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
