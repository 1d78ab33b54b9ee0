"""Autoencoders regularised by a penalty on the encoder: contractive and sparse."""

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._engine.net import host_tensor
from ._nn.modules import encode
from ._nn.objectives import (
    JACOBIAN_ESTIMATES,
    SPARSITIES,
    Contractive,
    Sparse,
    jacobian_sq_norm,
    weighted_mean,
)
from .architectures import MLP
from .autoencoder import AutoEncoder

# contraction="auto": the penalty's share of the loss at the start of a fit.
AUTO_CONTRACTION = 0.05


class ContractiveAE(AutoEncoder):
    """A deep autoencoder whose encoder is penalised for its sensitivity to the input.

    The training loss is the reconstruction loss plus ``contraction`` times the squared
    Frobenius norm of the encoder's Jacobian, ``||J_f(x)||_F^2``, averaged over the batch
    (Rifai et al. 2011). The penalty asks the codes to stay put under small moves of the
    input, while reconstruction asks them to follow the directions along the data's
    manifold: what is left is an encoder that is locally invariant off the manifold.

    How the penalty is computed is ``jacobian``: skae's MLP encoders of one layer or one
    hidden layer (the default) have exact closed forms; any other encoder (deeper MLPs,
    :class:`ConvNet`, a module of your own) gets by default an unbiased random-projection
    estimate, ``||u^T J||^2`` for ``u ~ N(0, I)`` in code space, which costs one extra
    backward pass per projection instead of one per code unit for the exact Jacobian. It
    only shapes training:
    ``transform``, ``inverse_transform`` and ``score`` are those of :class:`AutoEncoder`
    (``score`` is the reconstruction log-likelihood, without the penalty).

    The code layer is linear and the decoder's weights are free (Rifai et al. tie them to
    the encoder's), so part of the penalty is met by shrinking the codes' scale, which the
    decoder undoes. Standardise the codes before distance-based uses.

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
    contraction : float or "auto", default="auto"
        Weight of the contractive penalty. Both terms are sums (the reconstruction over
        features, the penalty over the Jacobian's entries). The Jacobian is in code units
        per input unit, so a fixed weight acts more strongly on data of a smaller range
        and on a code that reconstructs well: "auto" sets the weight at the start of a fit
        so that the penalty is ``AUTO_CONTRACTION`` (0.05) times the reconstruction loss of
        the initial network (PCA's, by default), both averaged over up to 1,024 training
        rows; a network whose penalised loss is below the start's then reconstructs the
        training rows within 5% of that start. ``contraction_`` is the weight used. 0 is
        the plain :class:`AutoEncoder`.
    jacobian : {"auto", "exact", "projection"}, default="auto"
        How ``||J_f(x)||_F^2`` is computed in training. "exact": closed forms where the
        encoder has one, else the per-sample Jacobian by automatic differentiation (one
        backward pass per code unit); "projection": the mean of ``n_projections``
        vector-Jacobian products with Gaussian vectors, an unbiased estimate (drawn from
        the training seeds); "auto": closed forms where available, else "projection".
    n_projections : int, default=1
        Random projections per sample for the "projection" estimate.
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
    contraction_ : float
        The penalty's weight (``contraction`` resolved).
    module_, net_, history_, loss_curve_, n_iter_, early_stopping_, device_, n_features_in_
        As in :class:`AutoEncoder`; the losses include the penalty.
    validation_scores_, best_validation_score_, best_loss_, data_path_
        As in :class:`AutoEncoder`.
    improved_on_start_ : bool
        As in :class:`AutoEncoder`.

    See Also
    --------
    AutoEncoder : The same network without the penalty.
    SparseAE : A penalty on the codes' activity instead of their sensitivity.
    DenoisingAE : Robustness to input noise learned from corrupted inputs.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import ContractiveAE
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> cae = ContractiveAE(n_components=8, contraction=0.1, max_iter=10,
    ...                     random_state=0).fit(X)
    >>> cae.transform(X).shape
    (1797, 8)
    """

    _parameter_constraints: ClassVar[dict] = {
        **AutoEncoder._parameter_constraints,
        "contraction": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "jacobian": [StrOptions(set(JACOBIAN_ESTIMATES))],
        "n_projections": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=None,
        *,
        module=None,
        contraction="auto",
        jacobian="auto",
        n_projections=1,
        hidden_layer_sizes=(128,),
        activation="relu",
        loss="mse",
        solver="adam",
        alpha=0.0,
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
        super().__init__(
            n_components,
            module=module,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            loss=loss,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            data_path=data_path,
            precision=precision,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            callbacks=callbacks,
        )
        self.contraction = contraction
        self.jacobian = jacobian
        self.n_projections = n_projections

    def _initialize_weights(self, module, X, generator, sample_weight=None, task=None):
        module = super()._initialize_weights(module, X, generator, sample_weight, task)
        self.contraction_ = self._resolve_contraction(module, X, sample_weight)
        return module

    def _resolve_contraction(self, module, X, sample_weight=None):
        """``contraction``, or for "auto" the weight that makes the initial network's
        penalty ``AUTO_CONTRACTION`` times its reconstruction loss (see the parameter)."""
        if self.contraction != "auto":
            return float(self.contraction)
        rows = np.unique(np.linspace(0, len(X) - 1, min(len(X), 1024)).astype(int))
        dtype = next(module.parameters()).dtype
        x = host_tensor(X[rows], dtype)
        weight = None if sample_weight is None else host_tensor(sample_weight[rows], dtype)
        with torch.no_grad():
            loss = weighted_mean(self._likelihood.loss(module.decode(encode(module, x)), x), weight)
        penalty = weighted_mean(jacobian_sq_norm(module, x), weight)
        loss, penalty = float(loss), float(penalty.detach())
        return AUTO_CONTRACTION * loss / penalty if penalty > 0 and np.isfinite(loss) else 0.0

    def _objective(self):
        # contraction_ is set when a fit initialises the module; until then (and for a net
        # rebuilt around a loaded module) the same resolution as the last fit's
        contraction = getattr(self, "contraction_", self.contraction)
        return Contractive(self._likelihood, contraction, self.jacobian, self.n_projections)


class SparseAE(AutoEncoder):
    """A deep autoencoder with a sparsity penalty on its codes.

    The training loss is the reconstruction loss plus ``sparsity_weight`` times a penalty
    that keeps most code units inactive most of the time:

    * ``sparsity="kl"``, the classic sparse autoencoder (Ng's lecture notes): sigmoid code
      units, and ``sum_j KL(rho || rho_hat_j)`` between a Bernoulli of mean
      ``rho = sparsity_target`` and one of mean ``rho_hat_j``, code unit ``j``'s mean
      activation over the batch;
    * ``sparsity="l1"``: the batch mean of the codes' L1 norms, on ReLU code units. With
      :class:`AutoEncoder`'s linear codes the penalty is met mostly by shrinking every code
      and enlarging the decoder's weights to match (on digits, weight 1 cut the mean
      ``|z|`` threefold while the share of near-zero codes stayed below 10%); ReLU units
      can reach exact zeros, so the penalty buys sparsity.

    The code units' activation is the built-in networks' (:class:`MLP`, :class:`ConvNet`);
    a module of your own keeps its own codes, which for ``sparsity="kl"`` must lie in
    (0, 1). With the default network the logistic codes start at PCA's solution: the
    principal coordinates through ``sigmoid(logit(sparsity_target) + y / s)``, which the
    decoder inverts exactly (:func:`skae._nn.start.start_at_pca`). The penalty only shapes
    training: ``transform``, ``inverse_transform`` and
    ``score`` are those of :class:`AutoEncoder`.

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
    sparsity : {"kl", "l1"}, default="kl"
        The penalty: KL divergence from a target mean activation, or L1 norm.
    sparsity_weight : float, default=1.0
        Weight of the penalty. On digits at 1.0, "kl" brings the units' mean activation
        from about 0.5 to 2-4 times the target, and "l1" raises the share of zero codes
        from about 55% to 75%, each for 10-50% more reconstruction error. 0 is an
        :class:`AutoEncoder` with sigmoid ("kl") or ReLU ("l1") codes.
    sparsity_target : float, default=0.05
        The target mean activation ``rho`` of each code unit, for ``sparsity="kl"``.
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
    module_, net_, history_, loss_curve_, n_iter_, early_stopping_, device_, n_features_in_
        As in :class:`AutoEncoder`; the losses include the penalty.
    validation_scores_, best_validation_score_, best_loss_, data_path_
        As in :class:`AutoEncoder`.
    improved_on_start_ : bool
        As in :class:`AutoEncoder`.

    See Also
    --------
    AutoEncoder : The same network without the penalty.
    ContractiveAE : A penalty on the codes' sensitivity to the input.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import SparseAE
    >>> X = load_digits().data / 16
    >>> sae = SparseAE(n_components=16, sparsity="kl", sparsity_target=0.05, loss="bce",
    ...                max_iter=10, random_state=0).fit(X)
    >>> Z = sae.transform(X)
    >>> Z.shape, bool((Z > 0).all() and (Z < 1).all())
    ((1797, 16), True)
    """

    _parameter_constraints: ClassVar[dict] = {
        **AutoEncoder._parameter_constraints,
        "sparsity": [StrOptions(set(SPARSITIES))],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        n_components=None,
        *,
        module=None,
        sparsity="kl",
        sparsity_weight=1.0,
        sparsity_target=0.05,
        hidden_layer_sizes=(128,),
        activation="relu",
        loss="mse",
        solver="adam",
        alpha=0.0,
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
        super().__init__(
            n_components,
            module=module,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            loss=loss,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            data_path=data_path,
            precision=precision,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            callbacks=callbacks,
        )
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target

    def _code_activation(self):
        # KL reads the codes as Bernoulli means, in (0, 1); L1 needs units that can be 0.
        return "logistic" if self.sparsity == "kl" else "relu"

    def _initialize_weights(self, module, X, generator, sample_weight=None, task=None):
        architecture = self._architecture()
        if isinstance(architecture, MLP):
            # the PCA start's logistic codes sit at the target activation: the penalty is
            # met from the first step, and shapes what training adds
            return architecture.init_weights(
                module, generator, X, sample_weight, code_mean=self.sparsity_target
            )
        return super()._initialize_weights(module, X, generator, sample_weight, task)

    def _objective(self):
        return Sparse(self._likelihood, self.sparsity, self.sparsity_weight, self.sparsity_target)
