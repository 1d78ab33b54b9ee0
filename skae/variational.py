"""The variational autoencoder: a generative model whose ELBO bounds log p(x)."""

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._engine.training import named_seeds
from ._nn.estimates import elbo, importance_weighted_log_likelihood
from ._nn.modules import VAEModule, row_moments
from ._nn.noise import binarize
from ._nn.objectives import ELBO, IWAE
from .autoencoder import AutoEncoder

# Draws of z per sample in ``score_samples``: as many as ``log_likelihood`` makes by default,
# and the same ones, so that the two are ordered row by row. On digits one sample's ELBO is
# then within about 0.1-0.2 nats of its expectation, a data set's mean within about 0.01.
N_ELBO_SAMPLES = 50


class VariationalAE(AutoEncoder):
    """The variational autoencoder (Kingma & Welling 2014) as a scikit-learn transformer.

    The encoder is a Gaussian posterior q(z|x) = N(mu(x), diag(sigma^2(x))): by default an
    MLP trunk ``n_features -> *hidden_layer_sizes`` (or a :class:`ConvNet`'s convolutions)
    with two linear heads for the mean and the log-variance of the ``n_components``-dimensional
    code, or the ``posterior`` of a module of your own. The decoder mirrors the trunk
    and gives the likelihood p(x|z); the prior is p(z) = N(0, I). Training minimises, over
    mini-batches, the mean of ``-log p(x|z) + beta * KL(q(z|x) || p(z))`` with one
    reparameterised draw ``z = mu + sigma * eps`` per sample and the KL in closed form:
    minus the evidence lower bound (ELBO) when ``beta=1``.

    All log-likelihoods are in nats and include their constants, so ``score_samples`` and
    :meth:`log_likelihood` are comparable across models and with published numbers:

    - ``loss="bce"``: Bernoulli likelihood with logits from the decoder (data in [0, 1];
      exact for binary data, minus the cross-entropy for grey levels);
    - ``loss="mse"``: Gaussian likelihood with unit variance,
      ``log p(x|z) = -||x - eta||^2 / 2 - (d / 2) log(2 pi)``. The variance is fixed, not
      learned: standardise X so that unit variance is the scale of the data.

    ``transform`` returns the posterior mean and is deterministic; ``inverse_transform`` and
    :meth:`sample` return the decoder's mean. Randomness is seeded by ``random_state`` and
    never drawn from torch's global generator: the training noise from the seeds of ``fit``,
    the draws of ``score_samples``, :meth:`log_likelihood` and :meth:`sample` from their
    ``random_state`` argument (else the estimator's), so calls with a fixed seed repeat.

    Parameters
    ----------
    n_components : int or None, default=None
        Dimension of the latent code z. None: the code width of a module of your own, else 2. With a
        module of your own, any other value than its code width is an error.
    module : None, MLP, ConvNet or torch.nn.Module, default=None
        The network. None is the MLP of ``hidden_layer_sizes`` and ``activation``;
        :class:`MLP` and :class:`ConvNet` are the built-in architectures, whose parameters
        are searchable as nested parameters (``module__channels``); both build a trunk with
        two linear heads for the posterior's mean and log-variance. A ``torch.nn.Module``
        of your own works on flat rows with ``posterior(x) -> (mean, logvar)`` (2-D each)
        and ``decode(z) -> eta``, the output's natural parameter, and may add ``encode``
        (else the posterior mean) and ``mean(eta)``. Each fit trains a deep copy that
        starts from its weights; parameters it creates lazily are drawn from
        ``random_state``.
    hidden_layer_sizes : array-like of int, default=(128,)
        Widths of the default MLP encoder's hidden layers; the decoder uses them in
        reverse. Only with ``module=None``.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the default MLP's hidden layers. Only with ``module=None``.
    loss : {"mse", "bce"}, default="mse"
        The decoder's likelihood: "mse" a unit-variance Gaussian, "bce" a Bernoulli with a
        sigmoid output, for data in [0, 1].
    beta : float, default=1.0
        Weight of the KL term in the training loss (beta-VAE, Higgins et al. 2017): above 1
        it pushes the posterior towards the prior. ``score_samples`` reports the ELBO with
        ``beta=1`` whatever its value, as only that is a bound on log p(x).
    n_importance_samples : int, default=1
        Draws of z per row in the training objective. 1 trains on the ELBO (one draw, the
        KL in closed form); ``k > 1`` on the importance-weighted bound of Burda et al.
        (2016, IWAE), ``log (1/k) sum_j p(x, z_j) / q(z_j | x)``, tighter than the ELBO and
        tighter as ``k`` grows, at about ``k`` times the decoder's cost per step (the
        draws are decoded in groups, so memory stays bounded for large ``k``). Needs
        ``beta=1``: the bound has no KL term to weight.
    binarize : bool, default=False
        Dynamic binarisation (with ``loss="bce"``, data in [0, 1]): every training batch is
        redrawn as Bernoulli(x) each time it is seen, so each epoch trains on fresh binary
        images of the grey levels (as Burda et al. 2016 train on MNIST) instead of one fixed
        draw, which overfits. The bits come from the training seeds, so a fit repeats; a
        validation split is binarised once. Evaluate on binarised data.

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
    learning_rate_init : float, default=1e-2
        Adam's learning rate. Ten times AutoEncoder's: the ELBO's gradients are noisy
        and small, and at 1e-3 a VAE on digits is still far from converged after 200
        epochs. Lower it for large data sets, where an epoch has many more steps: a
        784-200-200-50 tanh VAE on binarised MNIST (60,000 rows, batch 100) stalled
        at a test -ELBO of 213 nats with 1e-2 and reached 111 with 1e-3 (10 epochs).
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
    AutoEncoder : The deterministic autoencoder with the same layers.
    sklearn.decomposition.PCA : Probabilistic PCA, the linear Gaussian latent model; its
        ``score`` is a held-out log-likelihood too.

    Notes
    -----
    ``score_samples`` estimates each sample's ELBO, ``E_q[log p(x, z) - log q(z|x)]``, as
    the mean over 50 draws of z (``N_ELBO_SAMPLES``); :meth:`log_likelihood` estimates
    log p(x) by the log of the mean of ``p(x, z) / q(z|x)`` over its draws, the tighter
    importance-weighted bound (Burda et al. 2016). With the default 50 draws they use the
    same z, and then ``score_samples(X) <= log_likelihood(X)`` holds row by row (Jensen's
    inequality), not only in expectation. Training uses the closed-form KL instead; on a
    fitted model the Monte-Carlo KL cancels much of the noise of the log-likelihood term
    (q is close to the true posterior, Roeder et al. 2017): on digits the spread of one
    sample's estimate drops by a factor 1.2 to 2, to about 0.1-0.2 nats.

    Their draws are independent from row to row, yet a row's draws depend only on the seed
    and the row's values: a row's estimate does not change with the other rows scored with
    it or their order, as scikit-learn requires of ``score_samples``, and is the same on the
    CPU and a GPU up to floating-point rounding. They are made by a counter-based generator
    (:func:`skae._nn.estimates.keyed_standard_normal`), as one ``torch.Generator`` stream consumed
    batch by batch would tie each row's draws to its position. :meth:`sample` uses a
    ``torch.Generator`` on the module's device.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAE
    >>> X = load_digits().data / 16
    >>> vae = VariationalAE(n_components=8, loss="bce", max_iter=10, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (1797, 8)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    """

    _pca_start = False

    _parameter_constraints: ClassVar[dict] = {
        **AutoEncoder._parameter_constraints,
        # L-BFGS's line search compares loss values, but every evaluation of the ELBO draws
        # fresh noise: only stochastic gradient methods fit.
        "solver": [StrOptions({"adam"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "binarize": ["boolean"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        module=None,
        hidden_layer_sizes=(128,),
        activation="relu",
        loss="mse",
        beta=1.0,
        n_importance_samples=1,
        binarize=False,
        solver="adam",
        alpha=0.0,
        batch_size="auto",
        learning_rate_init=1e-2,
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
        self.beta = beta
        self.n_importance_samples = n_importance_samples
        self.binarize = binarize

    _variational = True

    def _objective(self):
        if self.n_importance_samples > 1:
            return IWAE(self._likelihood, self.n_importance_samples)
        return ELBO(self._likelihood, self.beta)

    def _check_data(self, X):
        super()._check_data(X)
        if self.n_importance_samples > 1 and self.beta != 1:
            raise ValueError(
                f"n_importance_samples={self.n_importance_samples} trains on the "
                f"importance-weighted bound, which has no KL term for beta={self.beta} to "
                "weight; use beta=1, or n_importance_samples=1 for a beta-VAE."
            )
        if self.binarize and self.loss != "bce":
            raise ValueError(
                f"binarize=True draws binary data for a Bernoulli likelihood; it needs "
                f"loss='bce', got loss={self.loss!r}."
            )

    def _resample(self):
        return binarize if self.binarize else None

    def _initialize_weights(self, module, X, generator, sample_weight=None, task=None):
        """The architecture's initialisation, and for skae's own networks a decoder output
        bias at the data's mean (its logit for ``loss="bce"``): the decoder starts from the
        mean image rather than from grey, as VAE implementations commonly do (Burda et al.
        2016's code)."""
        module = super()._initialize_weights(module, X, generator, sample_weight, task)
        if isinstance(self.module, nn.Module) or not isinstance(module, VAEModule):
            return module  # a user's network keeps the initialisation it came with
        last = [m for m in module.decoder.modules() if isinstance(m, nn.Linear)]
        if not last or last[-1].out_features != X.shape[1] or last[-1].bias is None:
            return module  # a convolutional decoder: one bias per channel, not per feature
        _, mean, _ = row_moments(X, weights=sample_weight, scatter=False)
        if self.loss == "bce":
            mean = np.clip(mean, 1e-3, 1 - 1e-3)
            mean = np.log(mean) - np.log1p(-mean)
        with torch.no_grad():
            last[-1].bias.copy_(torch.as_tensor(mean))
        return module

    def _seed(self, random_state):
        """The seed of a method's draws: its ``random_state``, else the estimator's."""
        return named_seeds(self.random_state if random_state is None else random_state, ("draws",))[
            "draws"
        ]

    def _per_sample(self, X, estimate, n_draws, random_state):
        """``estimate(module, x, n_draws, seed)`` per row of X, in X's precision."""
        X = self._validated(X)
        self._check_data(X)
        seed = self._seed(random_state)
        return self._map(lambda module, x: estimate(module, x, n_draws, seed), X)

    def score_samples(self, X):
        """Each sample's evidence lower bound (ELBO) on log p(x), in nats.

        ``E_q[log p(x|z)] - KL(q(z|x) || N(0, I))`` estimated by Monte Carlo over 50 draws
        of z per sample, seeded by ``random_state``: those of :meth:`log_likelihood` with
        its defaults, which it never exceeds (see Notes in the class documentation). Always
        the ``beta=1`` bound, whatever ``beta`` was trained with.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            Higher is better; low values flag anomalies. ``score`` is their mean.
        """
        likelihood = self._likelihood
        return self._per_sample(
            X,
            lambda module, x, n, seed: elbo(module, x, n, seed, likelihood),
            N_ELBO_SAMPLES,
            None,
        )

    @validate_params(
        {
            "X": ["array-like"],
            "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def log_likelihood(self, X, n_importance_samples=50, random_state=None):
        """Importance-weighted estimate of each sample's log p(x), in nats.

        ``log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)`` with ``z_k ~ q(z|x)`` (Burda et al.
        2016): a lower bound in expectation, at least as tight as the ELBO and tighter as K
        grows; its first 50 draws are those of ``score_samples``. Minus its mean is the
        negative log-likelihood that papers report (with K=5000 for Burda et al.'s numbers).
        Computed on the module's device in X's precision, in groups of draws so that memory
        stays bounded.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        n_importance_samples : int, default=50
            K, the number of draws of z per sample.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None uses the estimator's ``random_state``.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
        """
        likelihood = self._likelihood
        return self._per_sample(
            X,
            lambda module, x, n, seed: importance_weighted_log_likelihood(
                module, x, n, seed, likelihood
            ),
            n_importance_samples,
            random_state,
        )

    @validate_params(
        {
            "n_samples": [Interval(Integral, 1, None, closed="left")],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, random_state=None):
        """Generate data: decode draws of the prior z ~ N(0, I).

        Returns the decoder's *mean* for each z (pixel intensities for ``loss="bce"``, as
        VAE papers show their samples), not a draw from p(x|z).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws of z; None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
        """
        check_is_fitted(self)
        # net_.device, not device_: a model trained on a GPU may be loaded on a CPU.
        device = self.net_.device
        generator = torch.Generator(device=device).manual_seed(self._seed(random_state))
        Z = torch.randn(
            (n_samples, self._n_features_out),
            generator=generator,
            device=device,
            dtype=torch.float64,
        )
        return self.inverse_transform(Z.cpu().numpy())
