"""The denoising autoencoder: reconstruct the clean input from a corrupted one."""

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._nn.modules import row_moments
from ._nn.noise import NOISES, Corruption
from .autoencoder import AutoEncoder

# noise_level="auto": Gaussian noise's standard deviation relative to each feature's, and
# the fraction of inputs masking and salt-and-pepper noise corrupt.
AUTO_NOISE = 0.5
AUTO_FRACTION = 0.25


class DenoisingAE(AutoEncoder):
    """A deep autoencoder trained to reconstruct clean inputs from corrupted ones.

    Every training batch is corrupted afresh (drawn from the estimator's own generator) and
    the clean batch is the target (Vincent et al. 2008, 2010). Corruption is for training
    only: ``transform``, ``inverse_transform`` and ``score`` are deterministic and see the
    data as given.

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
    noise : {"gaussian", "masking", "salt_and_pepper"}, default="gaussian"
        Additive Gaussian noise; masking (a fraction of inputs set to 0); salt-and-pepper (a
        fraction set to the training data's per-feature minimum or maximum).
    noise_level : float or "auto", default="auto"
        The Gaussian noise's standard deviation, or the fraction of inputs corrupted.
        "auto" scales with the data: Gaussian noise of ``AUTO_NOISE`` (0.5) times each
        feature's standard deviation on the training rows (a constant feature gets none),
        whatever the features' units; for masking and salt-and-pepper, a fraction
        ``AUTO_FRACTION`` (0.25) of the inputs. ``noise_level_`` is the level used.
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
    data_min_, data_max_ : ndarray of shape (n_features_in_,)
        The training data's per-feature range (the values salt-and-pepper noise writes).
    noise_level_ : float or ndarray of shape (n_features_in_,)
        The noise's level (``noise_level`` resolved): per-feature standard deviations for
        Gaussian noise at "auto".
    module_, net_, history_, loss_curve_, n_iter_, early_stopping_, device_, n_features_in_
        As in :class:`AutoEncoder`.
    validation_scores_, best_validation_score_, best_loss_, data_path_
        As in :class:`AutoEncoder`.
    improved_on_start_ : bool
        As in :class:`AutoEncoder`.

    See Also
    --------
    AutoEncoder : The same network trained on clean inputs.
    StackedAE : Greedy layer-wise pretraining, with optional per-layer corruption.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAE
    >>> X = load_digits().data / 16
    >>> dae = DenoisingAE(n_components=8, noise="masking", noise_level=0.25, loss="bce",
    ...                   max_iter=10, random_state=0).fit(X)
    >>> dae.transform(X).shape
    (1797, 8)
    """

    _parameter_constraints: ClassVar[dict] = {
        **AutoEncoder._parameter_constraints,
        "noise": [StrOptions(set(NOISES))],
        "noise_level": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        n_components=None,
        *,
        module=None,
        noise="gaussian",
        noise_level="auto",
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
        self.noise = noise
        self.noise_level = noise_level

    def _check_data(self, X):
        super()._check_data(X)
        if self.noise != "gaussian" and self.noise_level != "auto" and self.noise_level > 1:
            raise ValueError(
                f"noise_level={self.noise_level} is the fraction of inputs corrupted by "
                f"noise={self.noise!r} and must be at most 1."
            )

    def _init_module(self, X, seeds, sample_weight=None, task=None):
        # the range salt-and-pepper noise writes and the noise's level: the first fit's,
        # kept by warm starts
        self.data_min_, self.data_max_ = X.min(axis=0), X.max(axis=0)
        self.noise_level_ = self.noise_level
        if self.noise_level == "auto":
            self.noise_level_ = AUTO_FRACTION
            if self.noise == "gaussian":
                _, mean, _ = row_moments(X, weights=sample_weight, scatter=False)
                self.noise_level_ = AUTO_NOISE * _spread(X, mean, sample_weight)
        return super()._init_module(X, seeds, sample_weight, task)

    def _corruption(self):
        return Corruption(self.noise, self.noise_level_, self.data_min_, self.data_max_)


def _spread(X, mean, weights=None, chunk=4096):
    """Each feature's standard deviation about ``mean`` (weighted by ``weights``), read in
    chunks: memory holds a chunk, never a copy of X (a memmap stays on disk)."""
    total, count = np.zeros(X.shape[1]), 0.0
    for start in range(0, len(X), chunk):
        squares = (np.asarray(X[start : start + chunk], dtype=np.float64) - mean) ** 2
        if weights is None:
            total += squares.sum(axis=0)
            count += len(squares)
        else:
            w = np.asarray(weights[start : start + chunk], dtype=np.float64)
            total += w @ squares
            count += w.sum()
    return np.sqrt(total / max(count, 1e-300))
