"""The deep autoencoder and the linear autoencoder, the bridge to PCA."""

import inspect
import time
import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.extmath import svd_flip
from torch import nn

from ._engine.tasks import NetSnapshot
from ._engine.training import TRAINING_CONSTRAINTS, make_net
from ._nn.modules import ACTIVATIONS, SKIP_CODES, init_weights, linear_autoencoder, row_moments
from ._nn.start import WARMUP_STEPS
from .architectures import MLP, UserModule
from .base import BaseAutoEncoder, output_dtype


class AutoEncoder(BaseAutoEncoder):
    """A deep undercomplete autoencoder as a scikit-learn transformer, on any network.

    The network is the ``module`` parameter: by default an MLP whose encoder maps
    ``n_features -> *hidden_layer_sizes -> n_components`` (a linear code layer) and whose
    decoder mirrors it; or :class:`ConvNet`, or a ``torch.nn.Module`` of your own. Trained
    with Adam to maximise the likelihood of the input given its code.

    Parameters
    ----------
    n_components : int or None, default=None
        Size of the code. None: the code width of a module of your own, else 2. With a
        module of your own, any other value than its code width is an error.
    module : None, MLP, ConvNet or torch.nn.Module, default=None
        The network. None is the MLP of ``hidden_layer_sizes`` and ``activation``,
        started at PCA's solution with ``loss="mse"`` (``MLP(start="pca")``; see the user
        guide, "Every variant starts where PCA ends"); :class:`MLP` and :class:`ConvNet` are the
        built-in architectures, whose parameters
        are searchable as nested parameters (``module__channels``). A ``torch.nn.Module``
        of your own works on flat rows with ``encode(x) -> codes`` (2-D) and
        ``decode(codes) -> eta``, the output's natural parameter (the mean for
        ``loss="mse"``, the logits for ``loss="bce"``), and may add ``mean(eta)``. Each fit
        trains a deep copy that starts from its weights; parameters it creates lazily
        (``nn.LazyLinear``) are drawn from ``random_state``.
    hidden_layer_sizes : array-like of int, default=(128,)
        Widths of the default MLP encoder's hidden layers; the decoder uses them in
        reverse. Only with ``module=None``.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the default MLP's hidden layers. Only with ``module=None``.
    loss : {"mse", "bce"}, default="mse"
        The output distribution: "mse" is a Gaussian likelihood (squared error), "bce" a
        Bernoulli likelihood with a sigmoid output, for data in [0, 1].
    solver : {"adam", "lbfgs"}, default="adam"
        The optimizer: Adam on mini-batches, or L-BFGS (strong Wolfe line search) on the
        full batch, where ``batch_size`` and ``learning_rate_init`` are not used.
    alpha : float, default=0.01
        Strength of the L2 penalty on the weights (not the biases), as in scikit-learn's
        MLP: ``alpha / 2 * ||W||^2`` joins the mean per-sample loss (Adam's
        ``weight_decay``). The default guards small tables against overfitting (see
        Notes).
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
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the data, stop when its loss has not improved by
        ``tol`` (relative) for ``n_iter_no_change`` epochs, and restore the best weights.
        Without it, training stops when the training loss stalls in the same way. "auto"
        holds out for a ``fit`` on 50 to 10,000 rows, where a network overfits small
        tables, and trains on every row otherwise (a first ``partial_fit`` never holds
        out); ``early_stopping_`` says what a fit did.
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
    module_ : torch.nn.Module
        The fitted network (a trained copy of ``module``), with ``encode`` and ``decode``.
    net_ : skae._engine.net.AutoEncoderNet
        The skorch net that trained it (its ``history`` is ``history_``).
    history_ : skorch.history.History
        One dict per epoch: ``train_loss``, ``valid_loss`` (with early stopping), ``dur``.
    loss_curve_ : list of float
        Mean training loss per epoch (per-sample loss summed over features).
    early_stopping_ : bool
        Whether the fit held rows out for early stopping (``early_stopping`` resolved).
    validation_scores_ : list of float
        Minus the validation loss per epoch, with early stopping.
    best_validation_score_ : float
        The best of ``validation_scores_``, with early stopping.
    best_loss_ : float
        The lowest training loss of an epoch (``min(loss_curve_)``), without early
        stopping.
    improved_on_start_ : bool
        With early stopping and the default network: whether training beat the PCA start
        on the held-out rows by more than two standard errors of the per-row gains in
        reconstruction; if not, the fitted network is the start, PCA's solution.
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

    Notes
    -----
    With ``module=None`` the network starts as PCA: a linear map beside each stack, set to
    the projection on the top ``n_components`` principal directions (kept fixed), and the
    stacks' last layers at zero. Adam's step size warms up linearly over the first 200
    steps, so that its first steps, as large as the learning rate whatever the gradient,
    do not throw that start away; ``alpha`` keeps what the nonlinear layers add from
    fitting noise, and on tables of up to 10,000 rows ``early_stopping="auto"`` holds out
    a tenth of them and keeps the epoch that reconstructs it best, so that the nonlinear
    layers are kept only as far as they generalise; if even that epoch does not beat the
    start on those rows by more than two standard errors of the per-row gains, the start
    is put back (``improved_on_start_``). Measured on five 30% hold-outs
    (``python -m benchmarks``'s defaults table), ``AutoEncoder(n_components=2)`` then
    reconstructs held-out digits better than ``PCA(2)`` and stays within 1% of it on
    breast cancer, wine and iris, standardised or min-max scaled, on every split; without
    the hold-out it was up to 1.5x PCA's error on iris.

    See Also
    --------
    MLP, ConvNet : The built-in networks.
    LinearAE : The linear autoencoder, equivalent to PCA.
    sklearn.decomposition.PCA : The best linear manifold.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import AutoEncoder
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> ae = AutoEncoder(n_components=8, max_iter=20, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (1797, 8)
    >>> ae.inverse_transform(ae.transform(X)).shape
    (1797, 64)
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseAutoEncoder._parameter_constraints,
        "module": [None, HasMethods(["build", "init_weights", "blocks"]), nn.Module],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(
        self,
        n_components=None,
        *,
        module=None,
        hidden_layer_sizes=(128,),
        activation="relu",
        loss="mse",
        solver="adam",
        alpha=0.01,
        batch_size="auto",
        learning_rate_init=1e-3,
        learning_rate="constant",
        max_iter=200,
        early_stopping="auto",
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
        self.n_components = n_components
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
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

    @property
    def _pca_start(self):
        """Whether the default network starts at PCA's solution (MLP(start="pca")): for
        every variant but the VAE (whose codes are a posterior's samples, not a
        projection), with a Gaussian likelihood (``loss="mse"``), whose output is the
        reconstruction itself. Under ``loss="bce"`` the output is a logit, where PCA's
        reconstruction is no start (on MNIST its sigmoid scored 174.9 test SSE per image
        against PCA's 13.97): the network starts at random. See the user guide, "Every
        variant starts where PCA ends"."""
        return self.loss == "mse"

    @property
    def _warmup_steps(self):
        """Small first steps keep a PCA start (the default network's; see Notes)."""
        pca = getattr(self._architecture(), "start", None) == "pca"
        return WARMUP_STEPS if pca and self._code_activation() in SKIP_CODES else 0

    def _code_activation(self):
        """The code layer's activation: linear, as Hinton & Salakhutdinov's code units."""
        return "identity"

    def _architecture(self):
        """The network as a part: the default MLP, a built-in architecture or a user's module."""
        if self.module is None:
            return MLP(
                hidden_layer_sizes=self.hidden_layer_sizes,
                activation=self.activation,
                start="pca" if self._pca_start else "random",
            )
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name in ("hidden_layer_sizes", "activation")
            if np.atleast_1d(getattr(self, name)).tolist()
            != np.atleast_1d(defaults[name].default).tolist()
        ]
        if changed:
            raise ValueError(
                f"{' and '.join(changed)} shape the default MLP and are not used with "
                f"module={self.module!r}. Set them on the architecture (module=MLP(...)) or "
                "leave them at their defaults."
            )
        if isinstance(self.module, nn.Module):
            return UserModule(self.module)
        return self.module

    def _build_module(self, X, n_components):
        return self._architecture().build(
            X.shape[1],
            n_components,
            variational=self._variational,
            code_activation=self._code_activation(),
        )

    def _initialize_weights(self, module, X, generator, sample_weight=None, task=None):
        return self._architecture().init_weights(module, generator, X, sample_weight)


class LinearAE(BaseAutoEncoder):
    """The linear autoencoder: PCA learned by gradient descent.

    Encoder ``z = W_e (x - mean_)`` and decoder ``x = W_d z + mean_``, no activations,
    trained with squared error. Its optimum projects onto the top ``n_components`` principal
    subspace (Baldi & Hornik 1989). After training, the learned subspace (the column space of
    ``W_d``) is given an orthonormal basis ordered by the variance it explains (an SVD of
    the data projected on it, as Plaut 2018 reads principal directions off the weights), and
    the module is rewritten to that basis: ``transform`` then returns coordinates like
    :class:`~sklearn.decomposition.PCA`'s, and ``components_``, ``mean_`` and
    ``explained_variance_`` let it stand in for PCA.

    The loss is nearly flat under rotations of the subspace, so gradient methods crawl to
    it. The default solver, "em", is Roweis's (1998) EM algorithm for PCA written as the
    autoencoder's alternating least squares: the encoder that minimises the loss for the
    current decoder (``W_e = (W_d^T W_d)^-1 W_d^T``), then the decoder that minimises it for
    that encoder (``W_d = C W_e^T (W_e C W_e^T)^-1``, C the covariance), each step exact and
    never increasing the loss. Its error shrinks by ``lambda_{k+1} / lambda_k`` per
    iteration (the eigenvalues' ratio at the cut), each iteration costs
    ``O(n_features^2 n_components)`` on the covariance, accumulated once in float64 chunk by
    chunk (so a memmap is read once, and ``partial_fit`` accumulates it across chunks:
    the exact PCA of all rows seen). "lbfgs" and "adam" train the same network by
    gradient steps, in float64.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the subspace; at most ``n_features``.

    solver : {"em", "adam", "lbfgs"}, default="em"
        The optimizer: alternating exact minimisation over encoder and decoder on the
        data's covariance (see above); Adam on mini-batches; or L-BFGS (strong Wolfe line
        search) on the full batch. ``batch_size`` and ``learning_rate_init`` are Adam's
        alone; ``early_stopping`` is for Adam and L-BFGS.
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
    max_iter : int, default=500
        Maximum number of iterations: EM steps (each cheap: the data are read once), or
        epochs (passes over the data; for L-BFGS, steps of up to 20 iterations). 0 keeps
        the initial weights.
    early_stopping : bool or "auto", default=False
        Hold out ``validation_fraction`` of the data, stop when its loss has not improved by
        ``tol`` (relative) for ``n_iter_no_change`` epochs, and restore the best weights.
        Without it, training stops when the training loss stalls in the same way. "auto"
        as in :class:`AutoEncoder` (never with ``solver="em"``).
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before stopping.
    tol : float, default=1e-6
        For "em", convergence: the sine of the largest angle between the subspaces of two
        successive iterations; for Adam and L-BFGS, the relative improvement of the
        monitored loss that counts as progress.
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
    components_ : ndarray of shape (n_components, n_features)
        Orthonormal principal directions of the learned subspace, by decreasing variance.
    explained_variance_ : ndarray of shape (n_components,)
        Variance of the training data along each component.
    explained_variance_ratio_ : ndarray of shape (n_components,)
        The same as a fraction of the total variance.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    module_ : torch.nn.Module
        The fitted network (a trained copy of ``module``), with ``encode`` and ``decode``.
    net_ : skae._engine.net.AutoEncoderNet
        The skorch net that trained it (its ``history`` is ``history_``).
    history_ : skorch.history.History
        One dict per epoch: ``train_loss``, ``valid_loss`` (with early stopping), ``dur``.
    loss_curve_ : list of float
        Mean training loss per epoch (per-sample loss summed over features).
    validation_scores_ : list of float
        Minus the validation loss per epoch, with ``early_stopping=True``.
    best_validation_score_ : float
        The best of ``validation_scores_``, with early stopping.
    best_loss_ : float
        The lowest training loss of an epoch (``min(loss_curve_)``), without early
        stopping.
    early_stopping_ : bool
        Whether the fit held rows out for early stopping (``early_stopping`` resolved;
        the EM solver never does).
    n_samples_seen_ : int
        With the EM solver: the rows whose moments the subspace was solved on (all the
        chunks given to ``partial_fit`` so far).
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
    sklearn.decomposition.PCA : The closed-form solution it approaches.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import LinearAE
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> lae = LinearAE(n_components=5, random_state=0).fit(X)
    >>> lae.components_.shape
    (5, 64)
    """

    loss = "mse"  # squared error is what makes the optimum PCA's subspace
    # The subspace is pinned down by second-order differences of the loss (excess loss
    # ~ eigengap * sin^2(angle)), below float32's resolution near the optimum.
    _torch_dtype = torch.float64

    def __init__(
        self,
        n_components=2,
        *,
        solver="em",
        alpha=0.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        learning_rate="constant",
        max_iter=500,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-6,
        device="auto",
        data_path="auto",
        precision="32-true",
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
    ):
        self.n_components = n_components
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

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        **TRAINING_CONSTRAINTS,
        "solver": [StrOptions({"em", "adam", "lbfgs"})],
    }

    def _check_data(self, X):
        if self.solver == "em" and self.alpha:
            raise ValueError(
                f"alpha={self.alpha} penalises the weights of a gradient solver; solver='em' "
                "solves exactly for PCA's subspace. Use solver='lbfgs' or 'adam' with alpha."
            )
        if self.solver == "em" and self.early_stopping is True:
            raise ValueError(
                "early_stopping=True holds out rows for mini-batch training; solver='em' "
                "solves on the whole data's covariance. Use solver='adam' or 'lbfgs' for it."
            )
        if self.n_components > X.shape[1]:
            raise ValueError(
                f"n_components={self.n_components} must be at most n_features={X.shape[1]}: "
                "a linear autoencoder spans a subspace of the input space."
            )

    def _resolve_early_stopping(self, n_samples, chunked=False):
        # EM solves on the whole data's moments: nothing to hold out
        super()._resolve_early_stopping(n_samples, chunked or self.solver == "em")

    def _build_module(self, X, n_components):
        return linear_autoencoder(X.mean(axis=0), n_components)

    def _initialize_weights(self, module, X, generator, sample_weight=None, task=None):
        return init_weights(module, generator, "identity")

    def _training_rows(self, X, sample_weight=None):
        """Rows with X's mean and covariance: all full-batch L-BFGS needs, at less cost.

        The loss ``mean ||(I - W_d W_e)(x - m)||^2`` (m the mean) depends on X only through
        its mean and covariance ``C = V diag(lam) V^T``. The 2p rows ``m +- sqrt(p lam_j / n)
        v_j`` over the p non-zero eigenvalues have the same mean and covariance, so their
        loss and gradient are X's (to rounding) at a cost independent of n_samples: 2p <= 2 *
        n_features rows in place of n_samples (on MNIST, 1,424 in place of 60,000). Used for
        L-BFGS without early stopping (which needs real rows to hold out) when it is cheaper.
        """
        if self.solver != "lbfgs" or self._settings().early_stopping:
            return X, sample_weight  # Adam needs rows; EM reads X once for its moments
        n_samples, n_features = X.shape
        if n_samples <= 2 * n_features:
            return X, sample_weight
        count, mean, scatter = row_moments(X, weights=sample_weight)
        eigenvalues, eigenvectors = np.linalg.eigh(scatter / count)
        # eigenvalues below the rounding of the largest are zero directions of the data
        keep = eigenvalues > eigenvalues[-1] * n_features * np.finfo(np.float64).eps
        p = int(keep.sum())
        if p == 0:  # constant data: one row is the whole story
            return mean[None, :], None
        half = (eigenvectors[:, keep] * np.sqrt(p * eigenvalues[keep])).T  # (p, n_features)
        return np.concatenate([mean + half, mean - half]), None

    def _moments(self, X, accumulate, sample_weight=None):
        """Row count, mean and scatter matrix (float64) of X (its rows weighted by
        ``sample_weight``), or of X and the rows seen before when ``accumulate`` (Chan et
        al.'s pairwise update, as IncrementalPCA)."""
        n, mean, scatter = row_moments(X, weights=sample_weight)
        if accumulate and getattr(self, "n_samples_seen_", 0):
            n0, mean0, scatter0 = self.n_samples_seen_, self._mean_seen, self._scatter_seen
            delta = mean - mean0
            total = n0 + n
            scatter = scatter0 + scatter + np.outer(delta, delta) * n0 * n / total
            mean, n = mean0 + delta * n / total, total
        self.n_samples_seen_, self._mean_seen, self._scatter_seen = n, mean, scatter
        return n, mean, scatter

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
        """Train with the solver: Adam and L-BFGS are the engine's training, as for every
        estimator; EM is :meth:`_solve_em`. Either way the steps are in ``net_.history``,
        and the fitted attributes and convergence warning come from it
        (:meth:`_record_history`)."""
        if self.solver != "em":
            return super()._train(
                X,
                y,
                module=module,
                seeds=seeds,
                epochs=epochs,
                sample_weight=sample_weight,
                task=task,
            )
        converged = self._solve_em(X, module, seeds, epochs, sample_weight, task)
        self._record_history(
            len(self.net_.history),
            converged=converged,
            unconverged=f"the subspace still moves by more than tol={self.tol} per EM step",
        )

    def _solve_em(self, X, module, seeds, epochs, sample_weight, task):
        """EM on X's moments (Roweis 1998; Tipping & Bishop's zero-noise limit), one
        history entry per step. Returns whether it stopped before ``max_iter`` for a reason
        (the subspace settled within ``tol``, a callback asked, the user interrupted)."""
        # partial_fit (epochs=1) accumulates the moments; fit and warm_start read X's own
        n, mean, scatter = self._moments(X, epochs is not None, sample_weight)
        if module is not None:
            net = make_net(
                module,
                self._objective(),
                self._settings(),
                seeds,
                max(len(X), 1),
                dtype=self._torch_dtype,
            )
            net.initialize()
            self.net_, self.device_, self.data_path_ = net, net.device, "resident"
        net = self.net_
        module = net.module_
        device, dtype = net.device, self._torch_dtype
        cov = torch.as_tensor(scatter / max(n, 1), dtype=dtype, device=device)
        encoder, decoder = module.encoder[1].weight, module.decoder[0].weight
        basis = torch.linalg.qr(decoder.detach().to(dtype))[0]  # the decoder's subspace
        trace = torch.trace(cov)
        settled = interrupted = stopped = False
        # each EM step a subtask of the fit for scikit-learn's callbacks
        steps = task if task is not None and task.listening else None
        with torch.no_grad():
            module.encoder[0].shift.copy_(torch.as_tensor(-mean))
            module.decoder[1].shift.copy_(torch.as_tensor(mean))
            try:
                for _ in range(self.max_iter):
                    step = None if steps is None else steps.child("em step")
                    start = time.perf_counter()
                    # E-step: the optimal encoder for an orthonormal decoder is its
                    # transpose; M-step: the optimal decoder for that encoder,
                    # C W (W^T C W)^+
                    projected = cov @ basis
                    new = projected @ torch.linalg.pinv(basis.T @ projected, hermitian=True)
                    new = torch.linalg.qr(new)[0]
                    # loss of the new (orthonormal) pair: tr(C) - tr(W^T C W)
                    loss = float(trace - torch.trace(new.T @ cov @ new)) if n else 0.0
                    moved = torch.linalg.matrix_norm(new - basis @ (basis.T @ new), ord=2)
                    record = {"train_loss": loss, "dur": time.perf_counter() - start}
                    basis = new
                    net.history.append({"epoch": len(net.history) + 1, "batches": [], **record})
                    if step is not None and step.end(_em_fitted(net, basis)):
                        stopped = True  # a callback asked to stop: the subspace reached is kept
                        break
                    if float(moved) <= self.tol:
                        settled = True
                        break
            except KeyboardInterrupt:
                # every step leaves an orthonormal basis of a better subspace: keep it
                interrupted = True
                warnings.warn(
                    f"LinearAE: EM was interrupted (KeyboardInterrupt) after "
                    f"{len(net.history)} steps; the model keeps the subspace reached.",
                    UserWarning,
                    stacklevel=3,
                )
            encoder.copy_(basis.T)
            decoder.copy_(basis)
        module.eval()
        return settled or interrupted or stopped

    def _after_fit(self, X, sample_weight=None):
        """Rewrite the module to the ordered orthonormal basis of the subspace it learned
        (the variances: of the rows weighted by ``sample_weight``)."""
        # the mean the module centres with (set by the first fit; a warm start keeps it)
        dtype = output_dtype(X)
        self.mean_ = self.module_.decoder[1].shift.detach().cpu().numpy().astype(dtype)
        decoder = self.module_.decoder[0].weight.detach().cpu().double().numpy()
        basis, _ = np.linalg.qr(decoder)  # (n_features, n_components), orthonormal
        if self.solver == "em":  # the moments it solved on: all rows seen
            n_samples, scatter = self.n_samples_seen_, self._scatter_seen
            variances, rotation = np.linalg.eigh(basis.T @ scatter @ basis)
            variances, rotation = variances[::-1], rotation[:, ::-1]
            _, components = svd_flip(None, rotation.T @ basis.T, u_based_decision=False)
            singular_values = np.sqrt(np.clip(variances, 0, None))
            squares = np.trace(scatter)
        else:
            # the weighted second moments, projected on the subspace and in total
            n_samples, data_mean, scatter = row_moments(X, weights=sample_weight)
            shifted = data_mean - self.mean_.astype(np.float64)
            moments = basis.T @ scatter @ basis + n_samples * np.outer(
                basis.T @ shifted, basis.T @ shifted
            )
            variances, rotation = np.linalg.eigh(moments)
            variances, rotation = variances[::-1], rotation[:, ::-1]
            _, components = svd_flip(None, rotation.T @ basis.T, u_based_decision=False)
            singular_values = np.sqrt(np.clip(variances, 0, None))
            squares = np.trace(scatter)
        self.components_ = components.astype(dtype, copy=False)
        self.explained_variance_ = (singular_values**2 / max(n_samples - 1, 1)).astype(dtype)
        total_variance = squares / (n_samples - 1) if n_samples > 1 else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            self.explained_variance_ratio_ = self.explained_variance_ / total_variance
        weight = torch.as_tensor(components, dtype=self._torch_dtype)
        with torch.no_grad():
            self.module_.encoder[1].weight.copy_(weight)
            self.module_.decoder[0].weight.copy_(weight.T)


def _em_fitted(net, basis):
    """The fitted attributes of a LinearAE whose EM step reached the orthonormal ``basis``
    (for scikit-learn's callbacks: a copy of the module with that basis, made if asked)."""

    def fitted():
        snapshot = NetSnapshot(net)
        with torch.no_grad():
            snapshot.module_.encoder[1].weight.copy_(basis.T)
            snapshot.module_.decoder[0].weight.copy_(basis)
        return {"net_": snapshot, "device_": net.device}

    return fitted
