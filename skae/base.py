"""The estimator layer's shared pieces: validation, conversion, the module, the API.

The data's way through ``fit``: array -> ``validate_data`` -> a module built by the
estimator's architecture, initialised from ``random_state`` and checked against the module
contract on two rows -> :func:`~skae._engine.training.fit_net` (which moves the data to the device
once and trains it with the variant's objective) -> fitted module. ``transform`` and friends
run the fitted module over the validated array in large chunks on the same device.

:class:`NeuralNetMixin` holds what every skae estimator does with its torch module (train,
continue, record, run); :class:`BaseAutoEncoder` adds the transformer API. A variant states
only what differs by overriding the hooks of :data:`EXTENSION_POINTS` (the network, its
initialisation, the loss, the input noise, ...); none copies ``fit``. ``tests/test_extending.py``
writes a new variant in a few lines with them, and checks that every hook skae's own
variants override is on that list.
"""

import contextlib
import copy
import copyreg
import inspect
import math
import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from . import distributed
from ._engine.net import _is_memory_mapped, host_tensor, map_batches
from ._engine.tasks import CallbackSupportMixin, Task
from ._engine.training import (
    TRAINING_CONSTRAINTS,
    TrainingSettings,
    continue_net,
    fit_net,
    loss_curve,
    named_seeds,
    resolve_early_stopping,
)
from ._nn.likelihoods import LIKELIHOODS
from ._nn.modules import encode
from ._nn.objectives import Reconstruction
from ._nn.start import beats_start, linear_skips
from ._version import __version__
from .persistence import check_version, portable_net, rebuilt_net

FLOAT_DTYPES = (np.float64, np.float32)

# Rows per chunk when a fitted module runs over data (transform and friends).
MAP_CHUNK = 4096

#: The hooks a variant of :class:`BaseAutoEncoder` may override, and what each decides. The
#: estimators' ``fit`` and ``partial_fit`` (``_fit``) call them in this order: validate
#: (``_check_data``), configure (``_resolve_early_stopping``, ``_fit_task``), build and
#: initialise (``_init_module`` -> ``_build_module`` -> ``_initialize_weights``), train
#: (``_training_rows``, ``_training_task``, ``_train`` with ``_objective``,
#: ``_corruption`` and ``_resample``), record (``_after_fit``).
EXTENSION_POINTS = {
    "_parameter_constraints": "the parameters and what values they take (scikit-learn's)",
    "_check_data": "checks of the data against the parameters, before anything is built",
    "_resolve_early_stopping": "whether this fit holds rows out (early_stopping_)",
    "_fit_task": "the fit's task for scikit-learn's callbacks, and its subtasks",
    "_training_task": "the task the training's epochs hang under",
    "_init_module": "settings that depend on the data, resolved before the network is built",
    "_architecture": "the network as a part (an MLP, a ConvNet, a user's module)",
    "_build_module": "the torch module for the data's shape",
    "_initialize_weights": "the module's first weights (the PCA start, pretraining)",
    "_module_for_loading": "an empty module of the fitted one's shape, to load weights into",
    "_training_rows": "the rows training sees (a cheaper equivalent of X)",
    "_objective": "the loss, called as criterion(module, x, target, weight=None)",
    "_corruption": "the noise put on each training batch's input",
    "_resample": "a redraw of each batch, input and target alike",
    "_train": "the training itself (a solver of its own, as LinearAE's EM)",
    "_after_fit": "fitted attributes computed from the trained module",
    "_code_activation": "the activation of the code layer",
    "_pca_start": "whether the built-in network starts at PCA's solution",
    "_variational": "whether the module has posterior(x) in place of encode(x)",
    "_warmup_steps": "the steps over which Adam's step size warms up",
    "_torch_dtype": "the float type the module trains in",
}

# What a fit that ran out of epochs has not done (a solver of its own says its own).
DEFAULT_UNCONVERGED = "the optimization hasn't converged yet"


def output_dtype(X):
    """float32 input gives float32 results, any other numeric input float64 (as scikit-learn)."""
    return np.float32 if X.dtype == np.float32 else np.float64


def check_X(estimator, X, y="no_validation", *, reset, training=None):
    """The one validation of every skae estimator's input: ``validate_data`` (with ``y``
    when given, as scikit-learn's) without a copy of X. Numeric dtypes (ints, bools,
    float16) are kept as they are and converted batch by batch, where the data meet the
    module. Values too large for the precision they are computed in
    (:func:`check_magnitude`) are refused: in the training precision for a fit
    (``training``, default ``reset``; the estimator's ``_torch_dtype``, float32 by
    default), else in the output's. Outside a fit the estimator must be fitted
    (``check_is_fitted``'s error). Returns X, or ``(X, y)`` when y is validated.
    """
    training = reset if training is None else training
    if not training:
        check_is_fitted(estimator)
    with_y = not (isinstance(y, str) and y == "no_validation")
    if not with_y:
        X = validate_data(estimator, X, dtype="numeric", reset=reset)
    else:
        X, y = validate_data(estimator, X, y, dtype="numeric", reset=reset)
    if training:
        dtype = getattr(estimator, "_torch_dtype", torch.float32)
    else:  # the results come back in the input's precision
        dtype = torch.float64 if output_dtype(X) == np.float64 else torch.float32
    check_magnitude(X, dtype)
    return (X, y) if with_y else X


def check_magnitude(X, dtype, chunk=8192):
    """Refuse finite values so large that squared errors summed over the features overflow
    ``dtype`` (about 1e17 in float32, 1e151 in float64 for a few hundred features): the
    network would turn them into infinities. Read chunk by chunk (memmaps stay on disk)."""
    if not np.size(X):
        return
    n_features = max(X.shape[1], 1)
    limit = np.sqrt(torch.finfo(dtype).max / n_features) / 4
    largest = max(float(np.abs(X[i : i + chunk]).max()) for i in range(0, len(X), chunk))
    if largest > limit:
        raise ValueError(
            f"X has values of magnitude up to {largest:.3g}, too large to compute with in "
            f"{str(dtype).removeprefix('torch.')} (squared errors overflow beyond about "
            f"{limit:.1g}). Scale X first, e.g. with StandardScaler."
        )


def check_weights(X, y, sample_weight):
    """Validate ``sample_weight`` for the rows of X (and y): ``(X, y, weights)`` with the
    weights scaled to mean 1 (float64), or unchanged with ``None``.

    Rows of weight 0 are dropped, so that they are not even seen (a memory-mapped X keeps
    them, with weight 0, rather than be copied into memory): a zero weight and a removed row
    fit the same model. Equal weights are no weights (None). Weights must be finite,
    non-negative and not all zero.
    """
    if sample_weight is None:
        return X, y, None
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    total = weights.sum()
    if not total > 0:
        raise ValueError(
            "sample_weight sums to zero: at least one row needs a positive weight to be trained on."
        )
    if not weights.all() and not _is_memory_mapped(X):
        kept = np.flatnonzero(weights)
        X, weights = X[kept], weights[kept]
        y = None if y is None else y[kept]
    if np.all(weights == weights[0]):
        return X, y, None  # equal weights: the unweighted fit, exactly
    return X, y, weights * (len(weights) / total)


class NeuralNetMixin(CallbackSupportMixin):
    """Training shared by skae's estimators: a torch module trained by skorch.

    Uses the parameters of ``TRAINING_CONSTRAINTS``; subclasses implement ``_objective()``.
    scikit-learn's callbacks (``set_callbacks``, scikit-learn >= 1.9) see each epoch as a
    subtask of the fit (see :mod:`skae._engine.tasks`).
    """

    # The float type the module trains and runs in; outputs take the input's dtype.
    _torch_dtype = torch.float32

    def _objective(self):
        raise NotImplementedError

    def _corruption(self):
        """A callable ``(X, generator) -> corrupted X`` for training batches, or None."""
        return

    def _resample(self):
        """A callable ``(X, generator) -> X`` that redraws each training batch (input and
        target alike), or None."""
        return

    # Steps over which Adam's step size warms up linearly at the start of a fit.
    _warmup_steps = 0

    def _settings(self):
        """The training parameters as the functions of :mod:`skae._engine.training` take them (a
        frozen :class:`~skae._engine.training.TrainingSettings`), with ``early_stopping`` as this
        fit resolved it (``early_stopping_``)."""
        early_stopping = getattr(
            self, "early_stopping_", resolve_early_stopping(self.early_stopping, 0)
        )
        return TrainingSettings.of(self, early_stopping, self._warmup_steps)

    def _resolve_early_stopping(self, n_samples, chunked=False, n_classes=1):
        """Set ``early_stopping_``, the parameter resolved for a new fit on ``n_samples``
        rows of ``n_classes`` classes (see
        :func:`~skae._engine.training.resolve_early_stopping`)."""
        n_held_out = math.ceil(self.validation_fraction * n_samples)
        self.early_stopping_ = resolve_early_stopping(
            self.early_stopping, n_samples, chunked, n_held_out, n_classes
        )

    def __sklearn_is_fitted__(self):
        # Hooks set fitted attributes (data ranges, pretrained layers) before training;
        # only a trained net makes the estimator fitted.
        return hasattr(self, "net_")

    # Persistence. pickle (and deepcopy) keep the skorch net as skorch pickles it: module,
    # optimizer, callbacks, history. ``__getstate__`` alone, which skops and skae's own
    # formats read, gives a portable state of numbers: the module's weights and the
    # optimizer's state as numpy arrays, the history as lists and dicts; ``__setstate__``
    # rebuilds the net from it (see :mod:`skae.persistence`).

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (type(self),), self._full_state()

    def _full_state(self):
        state = super().__getstate__()
        return {**state, "_skae_version": __version__}

    def __getstate__(self):
        return self._portable_state()

    def _portable_state(self, omit_module=False):
        """The portable state; a ``module`` of the user's is refused, or with
        ``omit_module`` left out (skae.persistence.save, whose load takes it again)."""
        state = self._full_state()
        net = state.pop("net_", None)
        # scikit-learn's callbacks follow a fit; they are not part of the model
        state.pop("_skl_callbacks", None)
        # copies of the layers after pretraining (StackedAE), torch modules: not portable
        state.pop("pretrained_layers_", None)
        if isinstance(state.get("module"), torch.nn.Module):
            if not omit_module:
                raise TypeError(
                    f"{type(self).__name__} holds a module of your own "
                    f"({type(self.module).__name__}), whose torch tensors skops cannot "
                    "write. Save it with pickle, or with skae.persistence.save(estimator, "
                    "path) and load it with skae.persistence.load(path, module=...)."
                )
            state["module"] = None
        if net is not None:
            state["_skae_net"] = portable_net(net)
        return state

    def __setstate__(self, state):
        # parameters added since the estimator was saved (precision, a VAE's
        # n_importance_samples): it was fitted as their defaults fit
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
            if parameter.default is not parameter.empty
        }
        state = {**defaults, **state}
        check_version(state.pop("_skae_version", None), type(self).__name__)
        net = state.pop("_skae_net", None)
        super().__setstate__(state)
        if net is not None:
            self.net_ = self._rebuild_net(net)
            self.device_ = self.net_.device

    def _module_for_loading(self):
        """A module of the fitted one's architecture, to load its weights into."""
        raise NotImplementedError

    def _rebuild_net(self, saved):
        module = self._module_for_loading()
        settings = self._settings().replace(callbacks=None)
        if settings.device != "auto" and "cuda" in str(settings.device):
            if not torch.cuda.is_available():
                warnings.warn(
                    f"{type(self).__name__} was trained with device={self.device!r}, which "
                    "this machine lacks; it runs on the CPU (set_params(device=...) to choose).",
                    UserWarning,
                    stacklevel=4,
                )
                self.device = "cpu"
                settings = settings.replace(device="cpu")
        seeds = named_seeds(self.random_state)  # those of the fit, for an int random_state
        return rebuilt_net(saved, module, self._objective(), settings, seeds, self._torch_dtype)

    @property
    def module_(self):
        """The fitted torch module (held by ``net_``, which pickles it device-independently)."""
        return self.net_.module_

    @property
    def history_(self):
        """skorch's ``History``: one dict per epoch (losses, duration)."""
        return self.net_.history

    def _train(
        self,
        X,
        y=None,
        *,
        module,
        seeds,
        stratified=False,
        epochs=None,
        sample_weight=None,
        task=None,
    ):
        """Train ``module`` from scratch, or with ``module=None`` continue the fitted net, for
        ``epochs`` (default: ``max_iter``), each row weighted by ``sample_weight`` if given,
        each epoch a subtask of ``task`` for scikit-learn's callbacks.

        A new net becomes ``net_`` only once training succeeded; a continuation that fails
        (diverges) puts the previous net back, so no error leaves a broken model behind.
        """
        if module is None:
            previous = copy.deepcopy(self.net_)  # weights, optimizer state and history
            if epochs is None:  # warm_start: this call's max_iter, as scikit-learn's MLP
                self.net_.max_epochs = self.max_iter
            try:
                epochs = continue_net(self.net_, X, y, seeds, epochs, sample_weight, task)
            except BaseException:
                self.net_ = previous
                raise
        else:
            start = self._start_to_guard(module)
            net = fit_net(
                module,
                self._objective(),
                X,
                y,
                self._settings(),
                seeds,
                dtype=self._torch_dtype,
                corruption=self._corruption(),
                resample=self._resample(),
                stratified=stratified,
                epochs=epochs,
                sample_weight=sample_weight,
                task=task,
            )
            self.net_, self.device_ = net, net.device
            self.data_path_ = net.data_path_
            epochs = len(net.history)
            if start is not None:
                self.improved_on_start_ = self._keep_training(start, X, y, sample_weight)
        self._record_history(epochs)

    def _start_to_guard(self, module):
        """The initial weights of a PCA start that early stopping will judge (a copy), or
        None: training keeps its result only if it beats that start on the held-out rows
        by more than their noise (:meth:`_keep_training`)."""
        if not self._settings().early_stopping or linear_skips(module) is None:
            return None
        return copy.deepcopy(module.state_dict())

    def _keep_training(self, start, X, y=None, sample_weight=None):
        """Keep the trained network, or put the PCA start back when on the held-out rows
        its reconstruction is not better by more than their noise
        (:func:`~skae._nn.start.beats_start`). Returns whether training was kept."""
        net = self.net_
        if distributed.world()[1] > 1:
            return True  # every rank must decide alike; the ranks' held-out rows are one
        _, valid = net.train_split(np.arange(len(X)), y)
        rows = np.sort(np.asarray(valid.indices))
        if len(rows) < 2:
            return True
        module = net.module_
        trained = copy.deepcopy(module.state_dict())
        after = self._row_losses(module, X, rows)
        module.load_state_dict(start)
        gains = self._row_losses(module, X, rows) - after
        w = np.ones(len(rows)) if sample_weight is None else np.asarray(sample_weight)[rows]
        if beats_start(gains, w):
            module.load_state_dict(trained)
            return True
        return False

    def _row_losses(self, module, X, rows, chunk=4096):
        """Each row's reconstruction loss (the likelihood's, no penalty) under ``module``."""
        device = next(module.parameters()).device
        was_training = module.training
        module.eval()
        losses = []
        with torch.no_grad():
            for i in range(0, len(rows), chunk):
                x = host_tensor(X[rows[i : i + chunk]], self._torch_dtype).to(device)
                eta = module.decode(encode(module, x))
                losses.append(self._likelihood.loss(eta, x).double().cpu().numpy())
        module.train(was_training)
        return np.concatenate(losses)

    def _record_history(self, epochs, *, converged=None, unconverged=None):
        """The fitted attributes of the history (``n_iter_``, ``loss_curve_``, the best
        scores), and the ``ConvergenceWarning`` of a fit that ran its ``max_iter`` epochs
        unconverged: by default, unless early stopping's patience ran out; a solver of its
        own (LinearAE's EM) says whether it ``converged`` and what ``unconverged`` means."""
        history = self.net_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = loss_curve(history)
        if self._settings().early_stopping and len(history):
            self.validation_scores_ = [-v for v in history[:, "valid_loss"]]
            self.best_validation_score_ = max(self.validation_scores_)
        elif self.loss_curve_:
            self.best_loss_ = min(self.loss_curve_)
        if converged is None:
            # whether the stopper's patience ran out, kept in the history by the stopper
            # (a net saved before it recorded that has no entry: not stopped)
            stopped = len(history) and history[-1].get("stopped_early", False)
            converged = epochs < self.max_iter or bool(stopped)
        if self.max_iter and not converged:
            warnings.warn(
                f"{type(self).__name__}: maximum iterations (max_iter={self.max_iter}) "
                f"reached and {unconverged or DEFAULT_UNCONVERGED}.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _map(self, fn, X):
        """``fn(module, x)`` over X on the module's device, in X's precision.

        Training runs in ``_torch_dtype``; float64 input is evaluated with a float64 copy of
        the weights, so results do not depend on how rows are batched (float32 rounding
        does) and float64 stays float64 as in scikit-learn. Chunks of rows that run the
        device out of memory are retried eight times smaller, with a warning.
        """
        module = self.module_
        out_dtype = output_dtype(X)
        dtype = torch.float64 if out_dtype == np.float64 else self._torch_dtype
        if dtype != self._torch_dtype:
            module = copy.deepcopy(module).to(dtype)
        device = self.net_.device
        try:
            out = map_batches(lambda x: fn(module, x), X, device, dtype, MAP_CHUNK)
        except torch.OutOfMemoryError as error:
            warnings.warn(
                f"{device} ran out of memory on chunks of {MAP_CHUNK} rows; retrying with "
                f"{MAP_CHUNK // 8}.",
                ResourceWarning,
                stacklevel=3,
            )
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            try:
                out = map_batches(lambda x: fn(module, x), X, device, dtype, MAP_CHUNK // 8)
            except torch.OutOfMemoryError:
                raise MemoryError(
                    f"{device} ran out of memory running the module on chunks of "
                    f"{MAP_CHUNK // 8} rows: the network is too large for the device's free "
                    f"memory; free some, or move the estimator's module to the CPU. torch "
                    f"said: {error}"
                ) from error
        return out.astype(out_dtype, copy=False)


def fitted_copy(estimator, X, seed, sample_weight=None, task=None, name="fit"):
    """A fitted copy of ``estimator`` for a meta-estimator: a deep copy of a fitted one (the
    object passed is never changed), else a clone fitted on X (in a subtask ``name`` of the
    meta-estimator's ``task``, where scikit-learn's callbacks see its own).

    A clone's ``random_state=None`` parameters (nested ones included) are seeded from
    ``seed``, as scikit-learn's meta-estimators seed what they build, so that a
    meta-estimator with ``random_state`` set is deterministic end to end. A fitted one must
    have been fitted on X's number of features. ``sample_weight`` is passed to a clone's fit
    (an estimator whose fit takes no weights refuses them).
    """
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        fitted = clone(estimator)
        if task is None:
            return _fit_clone(fitted, X, seed, sample_weight)
        with task.nested(name, fitted):
            return _fit_clone(fitted, X, seed, sample_weight)
    fitted = copy.deepcopy(estimator)
    if getattr(fitted, "n_features_in_", X.shape[1]) != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features, but the fitted autoencoder "
            f"{type(fitted).__name__} was fitted on {fitted.n_features_in_}."
        )
    return fitted


def _fit_clone(fitted, X, seed, sample_weight):
    unseeded = {
        name: seed
        for name, value in fitted.get_params().items()
        if name.endswith("random_state") and value is None
    }
    fitted.set_params(**unseeded)
    if sample_weight is None:
        return fitted.fit(X)
    if isinstance(fitted, Pipeline):
        # each step takes the weights by name, and each must take them
        for name, step in fitted.steps:
            if step != "passthrough" and not has_fit_parameter(step, "sample_weight"):
                raise ValueError(
                    f"sample_weight was given, but step {name!r} ({type(step).__name__}) of "
                    "the pipeline takes no sample_weight: fit it beforehand, or drop the "
                    "weights."
                )
        params = {
            f"{name}__sample_weight": sample_weight
            for name, step in fitted.steps
            if step != "passthrough"
        }
        return fitted.fit(X, **params)
    if not has_fit_parameter(fitted, "sample_weight"):
        raise ValueError(
            f"sample_weight was given, but {type(fitted).__name__}.fit takes no "
            "sample_weight: fit it beforehand, or drop the weights."
        )
    return fitted.fit(X, sample_weight=sample_weight)


def check_module(module, x, n_components, variational=False):
    """Run ``module`` on the rows ``x``; return the code width, or raise a clear error.

    The contract (see :mod:`skae._nn.modules`): ``encode(x)`` (or, for a variational module,
    ``posterior(x) -> (mu, logvar)``) gives 2-D codes with a row per input row, ``decode``
    maps them back to the input's shape, and ``mean``, if present, keeps that shape.
    """
    name = type(module).__name__
    required = ("posterior", "decode") if variational else ("encode", "decode")
    missing = [method for method in required if not callable(getattr(module, method, None))]
    if missing:
        raise ValueError(
            f"module {name} does not meet skae's module contract: it has no "
            f"{' or '.join(missing)} method. An autoencoder module needs encode(x) -> codes "
            "and decode(codes) -> reconstruction; a variational one posterior(x) -> "
            "(mean, log-variance) and decode."
        )

    def run(method, *args):
        try:
            return getattr(module, method)(*args)
        except Exception as error:  # a user's module fails here, not deep inside training
            shapes = ", ".join(str(tuple(a.shape)) for a in args)
            raise ValueError(
                f"module {name}.{method} failed on an input of shape {shapes}: "
                f"{type(error).__name__}: {error}"
            ) from error

    was_training = module.training
    module.eval()
    with torch.no_grad():
        if variational:
            posterior = run("posterior", x)
            if not (isinstance(posterior, tuple | list) and len(posterior) == 2):
                raise ValueError(f"module {name}.posterior must return (mean, log-variance).")
            z = posterior[0]
            if posterior[1].shape != z.shape:
                raise ValueError(
                    f"module {name}.posterior returned a mean of shape {tuple(z.shape)} and "
                    f"a log-variance of shape {tuple(posterior[1].shape)}; they must match."
                )
        else:
            z = run("encode", x)
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or len(z) != len(x):
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(
                f"module {name}'s codes must be a 2-D tensor (n_samples, n_components) with a "
                f"row per input row; for an input of shape {tuple(x.shape)} they are {shape}."
            )
        outputs = [("decode", run("decode", z))]
        if callable(getattr(module, "mean", None)):
            outputs.append(("mean", run("mean", outputs[0][1])))
        for method, out in outputs:
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"module {name}.{method} must return the input's shape {tuple(x.shape)} "
                    f"(flat rows); it returned {shape}."
                )
    module.train(was_training)
    if n_components is not None and z.shape[1] != n_components:
        raise ValueError(
            f"n_components={n_components}, but module {name}'s codes have {z.shape[1]} "
            "dimensions. Leave n_components=None to use the module's code width."
        )
    return z.shape[1]


class BaseAutoEncoder(
    NeuralNetMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class of skae's autoencoders. Not for direct use: see :class:`skae.AutoEncoder`.

    Subclasses build their network in ``_build_module(X, n_components)``.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [None, Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions(set(LIKELIHOODS))],
        **TRAINING_CONSTRAINTS,
    }

    # A variational module exposes posterior(x) -> (mu, logvar) rather than encode(x).
    _variational = False

    @property
    def _likelihood(self):
        return LIKELIHOODS[self.loss]

    def _objective(self):
        return Reconstruction(self._likelihood)

    def _check_data(self, X):
        """Checks that depend on the data and the parameters together."""
        self._likelihood.check_support(X)

    def _initialize_weights(self, module, X, generator, sample_weight=None, task=None):
        """Draw the new module's weights (a variant may pretrain them instead, on the rows
        of X weighted by ``sample_weight``, as subtasks of the fit's ``task``)."""
        return module

    def _init_module(self, X, seeds, sample_weight=None, task=None):
        """The module a new fit starts from: built, initialised and checked on two rows.

        Layers draw a default initialisation from torch's global RNG when they are built,
        and lazy layers when first called: that RNG is seeded from ``random_state`` for the
        occasion and put back as it was (``fork_rng``); skae's own weights are then drawn
        from a local generator.
        """
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only (torch.manual_seed would reseed CUDA's too): modules
            # are built on the CPU
            torch.random.default_generator.manual_seed(seeds["weights"])
            n_components = 2 if self.n_components is None else self.n_components
            module = self._build_module(X, n_components)
            generator = torch.Generator().manual_seed(seeds["weights"])
            module = self._initialize_weights(module, X, generator, sample_weight, task=task)
            module = module.to(self._torch_dtype)
            probe = host_tensor(X[:2], self._torch_dtype)
            self._n_features_out = check_module(module, probe, self.n_components, self._variational)
        return module

    def _module_for_loading(self):
        n_components = 2 if self.n_components is None else self.n_components
        with torch.random.fork_rng(devices=[]):
            probe = np.zeros((2, self.n_features_in_), dtype=np.float32)
            module = self._build_module(probe, n_components).to(self._torch_dtype)
            check_module(module, host_tensor(probe, self._torch_dtype), None, self._variational)
        return module

    def _training_rows(self, X, sample_weight=None):
        """The rows the net trains on and their weights: X itself, unless a variant has a
        cheaper equivalent."""
        return X, sample_weight

    def _after_fit(self, X, sample_weight=None):
        """Called once training ends, with the training data (and their weights)."""

    def _fit_task(self, X, sample_weight, *, name, n_epochs, first_fit):
        """The fit's task for scikit-learn's callbacks (begun): its subtasks are the
        ``n_epochs`` epochs (a variant that pretrains adds its own)."""
        return Task.root(self, X, X, sample_weight=sample_weight, name=name, max_subtasks=n_epochs)

    @contextlib.contextmanager
    def _training_task(self, task, first_fit, n_epochs):
        """The task the training's epochs are subtasks of: the fit's own."""
        yield task

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the autoencoder to X (unsupervised: ``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows: each row's loss counts ``sample_weight`` times (scaled to
            mean 1, so the step size means the same as without weights). A row of weight 0
            is ignored; an integer weight acts as that many copies of the row, up to the
            order of the mini-batches.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """One pass over X, continuing the optimizer, its state and the seeds' streams.

        The first call initialises the module as ``fit`` does; each call is one epoch of
        ``max_iter`` (so early stopping and the learning-rate schedule see one epoch per
        call). Feed data larger than memory chunk by chunk, or loop over a stream. A call
        that fails (a wrong number of features, a diverging step) leaves the model as it
        was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's rows, as in ``fit`` (scaled to mean 1 within the chunk).

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, sample_weight, incremental=True)

    def _fit(self, X, sample_weight, *, incremental):
        """``fit`` (``incremental=False``: ``max_iter`` epochs, from scratch unless
        ``warm_start``) and ``partial_fit`` (one epoch, continuing): validate, configure,
        train, record."""
        if incremental:
            first_fit = not hasattr(self, "net_")
        else:
            first_fit = not (self.warm_start and hasattr(self, "net_"))
        # validate
        X = check_X(self, X, reset=first_fit, training=True)
        X, _, sample_weight = check_weights(X, None, sample_weight)
        self._check_data(X)
        # configure
        seeds = distributed.agree(self, named_seeds(self.random_state), X)
        previous = self.__dict__.get("early_stopping_")
        if first_fit:
            self._resolve_early_stopping(X.shape[0], chunked=incremental)
        n_epochs = 1 if incremental else self.max_iter
        task = self._fit_task(
            X,
            sample_weight,
            name="partial_fit" if incremental else "fit",
            n_epochs=n_epochs,
            first_fit=first_fit,
        )
        # train
        try:
            module = self._init_module(X, seeds, sample_weight, task) if first_fit else None
            rows, weights = (
                (X, sample_weight) if incremental else self._training_rows(X, sample_weight)
            )
            with self._training_task(task, first_fit, n_epochs) as epochs:
                self._train(
                    rows,
                    module=module,
                    seeds=seeds,
                    epochs=1 if incremental else None,
                    sample_weight=weights,
                    task=epochs,
                )
        except BaseException:
            if previous is not None:  # a failed refit keeps the fitted model: its setting too
                self.early_stopping_ = previous
            raise
        # record
        self._after_fit(X, sample_weight)
        task.end({})
        return self

    def _validated(self, X):
        return check_X(self, X, reset=False)

    def _mean(self, module, eta):
        """The reconstruction's mean: the module's own ``mean``, else the likelihood's."""
        mean = getattr(module, "mean", None)
        return mean(eta) if callable(mean) else self._likelihood.mean(eta)

    def transform(self, X):
        """Encode X: the codes, shape (n_samples, n_components).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
        """
        X = self._validated(X)
        return self._map(encode, X)

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
        return self._map(lambda module, z: self._mean(module, module.decode(z)), Z)

    def score_samples(self, X):
        """Minus each sample's reconstruction loss (a log-likelihood up to a constant).

        Summed over features: minus the squared error for ``loss="mse"``, the Bernoulli
        log-likelihood in nats for ``loss="bce"``. Low values flag anomalies.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = self._validated(X)
        self._check_data(X)
        likelihood = self._likelihood
        return -self._map(lambda module, x: likelihood.loss(module.decode(encode(module, x)), x), X)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: higher is better, as ``GridSearchCV`` expects.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
