"""Supervised fine-tuning: a softmax layer on a pretrained encoder, trained with labels."""

import copy
from numbers import Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from . import distributed
from ._engine.tasks import Task
from ._engine.training import SEED_NAMES, TRAINING_CONSTRAINTS, named_seeds
from ._nn.modules import AutoEncoderModule, CodeClassifier, VAEModule, add_dropout, init_weights
from ._nn.objectives import CrossEntropy
from .base import NeuralNetMixin, check_weights, check_X, fitted_copy
from .stacked import StackedAE


class EncoderClassifier(ClassifierMixin, NeuralNetMixin, BaseEstimator):
    """A classifier made of a pretrained autoencoder's encoder and a softmax layer.

    A randomly initialised softmax output layer is put on a copy of the autoencoder's
    encoder and the whole network is fine-tuned with the labels (cross-entropy): the
    supervised fine-tuning of Hinton & Salakhutdinov (2006) and Vincent et al. (2010).

    Parameters
    ----------
    autoencoder : skae autoencoder or None, default=None
        The pretrained autoencoder. A fitted one is deep-copied (the object passed is never
        changed); an unfitted one is cloned and fitted on the training data. Wrap a fitted
        one in :class:`~sklearn.frozen.FrozenEstimator` to keep it fitted through ``clone``
        (which ``GridSearchCV`` and ``cross_validate`` call). None uses
        ``StackedAE(n_components=32, hidden_layer_sizes=(128, 64), max_iter=0)``: greedy
        layer-wise pretraining only, as in the papers above, fine-tuning being left to the
        labels; seeded from ``random_state``, on ``device``. X must be what it was (or
        will be) fitted on, e.g. scaled the same way.
    dropout : float, default=0.0
        Probability of dropping each hidden unit during fine-tuning (the inputs of every
        linear or convolutional layer of the encoder after its first; the codes that feed
        the softmax layer are kept), as in Srivastava et al. (2014); none at prediction.
    input_dropout : float, default=0.0
        Probability of dropping each input feature during fine-tuning (the input of the
        encoder's first layer); Srivastava et al. use 0.2 with ``dropout=0.5``.
    solver : {"adam", "lbfgs"}, default="adam"
        The optimizer: Adam on mini-batches, or L-BFGS (strong Wolfe line search) on the
        full batch, where ``batch_size`` and ``learning_rate_init`` are not used.
    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (not the biases), as in scikit-learn's
        MLP: ``alpha / 2 * ||W||^2`` joins the mean per-sample loss (Adam's
        ``weight_decay``).
    batch_size : int or "auto", default="auto"
        Mini-batch size; "auto" is ``min(200, n_samples)`` up to 2,000 rows and a tenth of
        the rows beyond (at most 2,048), so that an epoch of a larger table is ten steps,
        not hundreds.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    learning_rate : {"constant", "adaptive", "cosine"}, default="constant"
        Adam's learning-rate schedule, per epoch. "constant" keeps ``learning_rate_init``;
        "adaptive" divides it by 5 each time two consecutive epochs fail to improve the
        monitored loss by ``tol`` (relative), as scikit-learn's MLP does for SGD; "cosine"
        decays it from ``learning_rate_init`` to 0 along half a cosine over ``max_iter``
        epochs, anew in each call to ``fit``. Not used by L-BFGS.
    max_iter : int, default=200
        Maximum number of epochs (passes over the data; for L-BFGS, steps of up to 20
        iterations). 0 keeps the initial weights.
    early_stopping : bool or "auto", default=False
        Hold out a stratified ``validation_fraction`` of the data, stop when its loss has
        not improved by ``tol`` (relative) for ``n_iter_no_change`` epochs, and restore the
        best weights. Without it, training stops when the training loss stalls in the same
        way. "auto" as in :class:`AutoEncoder`.
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before stopping.
    tol : float, default=1e-4
        Relative improvement of the monitored loss that counts as progress.
    device : str or torch.device, default="auto"
        Where to train: "auto" picks CUDA when available, else the CPU.
    data_path : {"auto", "resident", "streamed"}, default="auto"
        How the training data reach the device. "resident" moves X there once and slices
        batches on the device (the fastest); "streamed" leaves X where it is (a memmap
        stays on disk) and moves one batch at a time, so memory holds a batch, never a
        copy of X; "auto" streams when X is memory-mapped or when its copy in the training
        precision would take more than half of the device's free memory (of the available
        RAM on the CPU). Both paths train on the same batches in the same order, with the
        same noise: on the CPU the same fit, bit for bit. ``data_path_`` records the path
        taken.
    precision : {"32-true", "bf16-mixed", "16-mixed"}, default="32-true"
        The arithmetic of training, by Lightning's and accelerate's names. "32-true" is
        float32 throughout. "bf16-mixed" runs the forward pass and the loss under
        ``torch.autocast`` in bfloat16 (the weights, their gradients and Adam's state stay
        float32), on a CPU with bfloat16 instructions (AVX-512 BF16 or AMX) or a CUDA device
        that has them; "16-mixed" runs it in float16 with a gradient scaler, on CUDA only.
        Either needs ``solver="adam"``; a device without the arithmetic is refused with an
        error that says so. ``transform`` and the other outputs are computed in float32 (or
        float64 for float64 input) whatever the training precision.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling (and any noise) through local torch generators;
        the global seeds are never touched. An int gives bit-identical results on the CPU.
    verbose : int, default=0
        1 prints a progress bar and a line per epoch; 0 is silent.
    warm_start : bool, default=False
        Continue training the fitted module on the next call to ``fit``.
    callbacks : list of skorch callbacks or (name, callback) pairs, default=None
        Callbacks of your own (checkpointing, gradient clipping, logging), run beside skae's
        own (``stopper``, ``lr_schedule``, ``progress``) during training. Each fit runs deep
        copies of them, so clones and repeated fits never share their state; the fitted
        copies are in ``net_.callbacks_``.

    Attributes
    ----------
    autoencoder_ : estimator
        The fitted autoencoder whose encoder the network started from (not fine-tuned).
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    module_ : torch.nn.Module
        The fitted network: ``module_.autoencoder`` (a copy of the autoencoder's module
        without its decoder), whose codes ``module_.head`` maps to the logits.
    net_ : skae._engine.net.AutoEncoderNet
        The skorch net that trained it (its ``history`` is ``history_``).
    history_ : skorch.history.History
        One dict per epoch: ``train_loss``, ``valid_loss`` (with early stopping), ``dur``.
    loss_curve_ : list of float
        Mean training cross-entropy per epoch, in nats.
    validation_scores_ : list of float
        Minus the validation cross-entropy per epoch, with ``early_stopping=True``.
    best_validation_score_ : float
        The best of ``validation_scores_``, with early stopping.
    best_loss_ : float
        The lowest training loss of an epoch (``min(loss_curve_)``), without early
        stopping.
    early_stopping_ : bool
        Whether the fit held rows out for early stopping (``early_stopping`` resolved).
    n_iter_ : int
        Number of epochs run.
    device_ : str
        The device it was trained on.
    data_path_ : {"resident", "streamed"}
        The data path training took (see ``data_path``).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when X had string column names.

    See Also
    --------
    StackedAE : Greedy layer-wise pretraining of the encoder.
    sklearn.neural_network.MLPClassifier : The same kind of network from random weights.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import EncoderClassifier
    >>> from skae import StackedAE
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> scaler = StandardScaler().fit(X_train)
    >>> X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    >>> ae = StackedAE(n_components=16, hidden_layer_sizes=(32,), pretrain_iter=5,
    ...                max_iter=0, random_state=0)
    >>> clf = EncoderClassifier(ae, max_iter=30, random_state=0).fit(X_train, y_train)
    >>> clf.predict_proba(X_test[:2]).shape
    (2, 10)
    >>> bool(clf.score(X_test, y_test) > 0.9)
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "autoencoder": [None, HasMethods(["fit", "transform"])],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        **TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        autoencoder=None,
        *,
        dropout=0.0,
        input_dropout=0.0,
        solver="adam",
        alpha=0.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        learning_rate="constant",
        max_iter=200,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        data_path="auto",
        precision="32-true",
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
    ):
        self.autoencoder = autoencoder
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.data_path = data_path
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks

    def _init_module(self, seeds):
        """A copy of the autoencoder's module without its decoder, and a new softmax layer."""
        autoencoder = copy.deepcopy(self.autoencoder_.module_)
        if isinstance(autoencoder, AutoEncoderModule | VAEModule):
            # Classification needs only the codes: without skae's decoder, its weights stay
            # out of the optimizer and the pickle. A user's module is kept whole, as its
            # ``encode`` may use any of its parts; its decoder gets no gradient.
            autoencoder.decoder = None
        n_codes = len(self.autoencoder_.get_feature_names_out())
        with torch.random.fork_rng(devices=[]):  # nn.Linear draws a default init when built
            head = nn.Linear(n_codes, len(self.classes_))
        init_weights(head, torch.Generator().manual_seed(seeds["weights"]), "identity")
        autoencoder.requires_grad_(True)  # fine-tuning trains all of it (a PCA start's map too)
        add_dropout(autoencoder, self.dropout, self.input_dropout)
        return CodeClassifier(autoencoder, head).to(self._torch_dtype)

    def _objective(self):
        return CrossEntropy()

    def _module_for_loading(self):
        return self._init_module(named_seeds(0))

    def _fitted_autoencoder(self, X, seed, sample_weight=None, task=None):
        """The autoencoder to start from: a copy of a fitted one, else a clone fitted on X.

        A clone with ``random_state=None`` (its nested parameters included) is seeded from
        ``seed``, as scikit-learn's meta-estimators seed what they build, so that a classifier
        with ``random_state`` set is deterministic end to end.
        """
        if self.autoencoder is None:
            default = StackedAE(
                n_components=32,
                hidden_layer_sizes=(128, 64),
                max_iter=0,
                device=self.device,
                random_state=seed,
            )
            with task.nested("fit autoencoder", default):
                return default.fit(X, sample_weight=sample_weight)
        autoencoder = fitted_copy(
            self.autoencoder, X, seed, sample_weight, task=task, name="fit autoencoder"
        )
        module = getattr(autoencoder, "module_", None)
        if not (hasattr(module, "encode") or hasattr(module, "posterior")):
            raise ValueError(
                f"autoencoder={self.autoencoder!r} is not a skae autoencoder: its fitted "
                "module_ has no encode method to put the softmax layer on."
            )
        return autoencoder

    @_fit_context(prefer_skip_nested_validation=False)  # the autoencoder validates its own
    def fit(self, X, y, sample_weight=None):
        """Fit the autoencoder if it is not fitted, then fine-tune encoder and softmax layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the cross-entropy (scaled to mean 1), and in the
            autoencoder's fit when it is fitted here. A row of weight 0 is ignored.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        continuing = self.warm_start and hasattr(self, "net_")
        return self._fit(X, y, continuing=continuing, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One pass over X, y: the first call sets everything up, later ones continue.

        As ``MLPClassifier.partial_fit``: the first call needs ``classes``, every label any
        call will see; it fits the autoencoder (if it is not fitted) on that first chunk.
        Each call is one epoch of fine-tuning, continuing the optimizer's state and the
        seeds' streams. A call that fails (unknown labels, a wrong number of features)
        leaves the classifier as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            Its class labels.
        classes : array-like of shape (n_classes,), default=None
            Every class label; required on the first call, ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's rows, as in ``fit``.

        Returns
        -------
        self : object
            The updated classifier.
        """
        continuing = hasattr(self, "net_")
        if not continuing and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit: the classifier's "
                "output layer needs every label any call will see."
            )
        return self._fit(
            X, y, continuing=continuing, classes=classes, epochs=1, sample_weight=sample_weight
        )

    def _fit(self, X, y, *, continuing, classes=None, epochs=None, sample_weight=None):
        X, y = check_X(self, X, y, reset=not continuing, training=True)
        check_classification_targets(y)
        labels = LabelEncoder().fit(y if classes is None or continuing else classes)
        known = self.classes_ if continuing else labels.classes_
        unseen = np.setdiff1d(y, known)
        if unseen.size and continuing:
            raise ValueError(
                f"y has labels {unseen.tolist()} that the first fit did not see; warm_start "
                f"and partial_fit continue that fit with its classes_ {known.tolist()}."
            )
        if unseen.size:
            raise ValueError(
                f"y has labels {unseen.tolist()} that are not in classes={known.tolist()}."
            )
        X, y, sample_weight = check_weights(X, y, sample_weight)
        # the nested autoencoder's seed is drawn after those of the classifier's own training
        seeds = distributed.agree(
            self, named_seeds(self.random_state, (*SEED_NAMES, "autoencoder")), X, y
        )
        module = None
        # scikit-learn's callbacks: a first fit's subtasks are the autoencoder's fit (when
        # it is fitted here) and the fine-tuning, whose epochs are its own subtasks
        n_epochs = self.max_iter if epochs is None else epochs
        name = "fit" if epochs is None else "partial_fit"
        fits_autoencoder = not continuing and not _is_fitted(self.autoencoder)
        task = Task.root(
            self,
            X,
            y,
            sample_weight=sample_weight,
            name=name,
            max_subtasks=n_epochs if continuing else fits_autoencoder + 1,
        )
        fine_tuning = task
        if not continuing:
            self._resolve_early_stopping(
                X.shape[0], chunked=epochs == 1, n_classes=len(labels.classes_)
            )
            self.classes_ = labels.classes_
            self.autoencoder_ = self._fitted_autoencoder(
                X, seeds["autoencoder"], sample_weight, task
            )
            module = self._init_module(seeds)
            fine_tuning = task.child("fine-tune", n_epochs)
        y_encoded = np.searchsorted(self.classes_, y).astype(np.int64)
        self._train(
            X,
            y_encoded,
            module=module,
            seeds=seeds,
            stratified=True,
            epochs=epochs,
            sample_weight=sample_weight,
            task=fine_tuning,
        )
        if fine_tuning is not task:
            fine_tuning.end({})
        task.end({})
        return self

    def predict_proba(self, X):
        """Class probabilities: the softmax of the network's output.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of the classes in the order of ``classes_``; rows sum to 1.
        """
        X = check_X(self, X, reset=False)
        return self._map(lambda module, x: torch.softmax(module(x), dim=1), X)

    def predict(self, X):
        """The most probable class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def _is_fitted(estimator):
    """Whether a given autoencoder is fitted (None, the default, is not)."""
    if estimator is None:
        return False
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True
