"""The stacked autoencoder: greedy layer-wise pretraining, then end-to-end fine-tuning."""

import warnings
from numbers import Integral, Real
from typing import ClassVar

import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .autoencoder import _COMMON_ATTRIBUTES, _COMMON_PARAMETERS, AutoEncoder
from .base import TRAINING_CONSTRAINTS, NeuralNetMixin
from .engine import map_batches
from .losses import ReconstructionLoss
from .modules import AutoEncoderModule, init_weights, mlp, mlp_autoencoder
from .noise import NOISES, Corruption


class _ShallowAE(NeuralNetMixin):
    """Layer ``depth`` of a stack as a shallow autoencoder ``n_in -> n_out -> n_in``.

    Not an estimator: it carries its stack's training parameters (with ``pretrain_iter``
    epochs and a seed of its own) so that ``NeuralNetMixin._train`` trains it through the
    same engine, optimizer and stopping rule as the fine-tuning.

    Its encoder and decoder are, layer for layer, the deep autoencoder's encoder layer
    ``depth`` and the decoder layer mirroring it: the encoder ends in the activation, except
    at the top, whose code is the deep network's (linear); the decoder ends in the activation,
    except at the bottom where it outputs the natural parameter of the stack's ``loss``. The
    bottom layer reconstructs the data with the stack's ``loss``; the layers above
    reconstruct the codes below them with squared error, whatever that ``loss`` is.
    """

    def __init__(self, stack, depth, n_in, n_out, corruption, seed):
        for name in TRAINING_CONSTRAINTS:
            setattr(self, name, getattr(stack, name))
        self.max_iter = stack.pretrain_iter
        self.random_state = seed
        self.warm_start = False
        self._torch_dtype = stack._torch_dtype
        self._activation = stack.activation
        self._sizes = (n_in, n_out)
        self._is_bottom = depth == 0
        # the top layer's code is the deep network's: AutoEncoder's _code_activation hook
        self._code_activation = (stack._code_activation()
                                 if depth == len(stack._hidden_layer_sizes()) else None)
        self._loss = stack.loss if self._is_bottom else "mse"
        self._corruption_fn = corruption

    def _build_module(self, X, generator):
        n_in, n_out = self._sizes
        act = self._activation
        encoder = mlp([n_in, n_out], act, last_activation=self._code_activation or act)
        decoder = mlp([n_out, n_in], act, last_activation="identity" if self._is_bottom else act)
        output = "sigmoid" if self._loss == "bce" else "identity"
        return init_weights(AutoEncoderModule(encoder, decoder, output), generator, act)

    def _build_criterion(self):
        return ReconstructionLoss(self._loss)

    def _corruption(self):
        return self._corruption_fn


class StackedAE(AutoEncoder):
    __doc__ = (
        """A deep autoencoder initialised by greedy layer-wise pretraining, then fine-tuned.

    The stack ``n_features -> *hidden_layer_sizes -> n_components`` is built one layer at a
    time (Hinton & Salakhutdinov 2006; Bengio et al. 2007): a shallow autoencoder
    ``n_features -> h1 -> n_features`` is trained on the data; its encoder is then fixed and
    the next shallow autoencoder ``h1 -> h2 -> h1`` is trained on its codes; and so on up to
    the code layer. The deep autoencoder, the same network as :class:`AutoEncoder`'s, takes
    encoder layer ``l`` and the decoder layer mirroring it from shallow autoencoder ``l``
    and is fine-tuned end to end. With ``pretrain_noise`` every shallow autoencoder is a
    denoising one: a stacked denoising autoencoder (Vincent et al. 2010).

    The bottom shallow autoencoder reconstructs the data with ``loss``; the ones above
    reconstruct the codes below them with squared error, through the activation their
    decoder layer has in the deep network; the top one has the deep network's linear code.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code.
    hidden_layer_sizes : array-like of int, default=(128, 64)
        Widths of the encoder's hidden layers, one shallow autoencoder each (plus one for
        the code); the decoder uses them in reverse.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers.
    loss : {"mse", "bce"}, default="mse"
        The output distribution: "mse" is a Gaussian likelihood (squared error), "bce" a
        Bernoulli likelihood with a sigmoid output, for data in [0, 1].
    pretrain_iter : int, default=10
        Maximum number of epochs of each shallow autoencoder; 0 skips pretraining (the
        deep network starts from random weights, as :class:`AutoEncoder`'s). Pretraining
        uses the training parameters below, ``max_iter`` and ``warm_start`` aside.
    pretrain_noise : {"gaussian", "masking", "salt_and_pepper"} or None, default=None
        Corruption of each shallow autoencoder's input during pretraining (as in
        :class:`DenoisingAE`, drawn afresh for every batch; salt-and-pepper writes each
        layer's input range). None pretrains plain autoencoders. Fine-tuning is noiseless.
    pretrain_noise_level : float, default=0.0
        The Gaussian noise's standard deviation, or the fraction of inputs corrupted.
"""
        + _COMMON_PARAMETERS.format(solver="adam", max_iter=200, tol=1e-4).replace(
            "0 keeps the initial weights.", "Of the fine-tuning; 0 keeps the pretrained weights."
        )
        + """
    Attributes
    ----------
    pretrained_layers_ : list of torch.nn.Module
        The shallow autoencoders as pretraining left them (on the CPU), bottom first, each
        with ``encode``, ``decode`` and ``mean``.
    pretrain_loss_curves_ : list of list of float
        Each shallow autoencoder's mean training loss per epoch, bottom first."""
        + _COMMON_ATTRIBUTES.replace("Mean training loss", "Mean fine-tuning loss")
        + """
    See Also
    --------
    AutoEncoder : The same network trained from random weights.
    DenoisingAE : A denoising autoencoder trained in one piece.
    EncoderClassifier : Supervised fine-tuning of a pretrained encoder.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import StackedAE
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> sae = StackedAE(n_components=8, hidden_layer_sizes=(32, 16), pretrain_iter=5,
    ...                 max_iter=10, random_state=0).fit(X)
    >>> len(sae.pretrain_loss_curves_), sae.transform(X).shape
    (3, (1797, 8))
    """
    )

    _parameter_constraints: ClassVar[dict] = {
        **AutoEncoder._parameter_constraints,
        "pretrain_iter": [Interval(Integral, 0, None, closed="left")],
        "pretrain_noise": [None, StrOptions(set(NOISES))],
        "pretrain_noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        loss="mse",
        pretrain_iter=10,
        pretrain_noise=None,
        pretrain_noise_level=0.0,
        solver="adam",
        batch_size="auto",
        learning_rate_init=1e-3,
        learning_rate="constant",
        max_iter=200,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        super().__init__(
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            loss=loss,
            solver=solver,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
        )
        self.pretrain_iter = pretrain_iter
        self.pretrain_noise = pretrain_noise
        self.pretrain_noise_level = pretrain_noise_level

    def _check_data(self, X):
        super()._check_data(X)
        if self.pretrain_noise not in (None, "gaussian") and self.pretrain_noise_level > 1:
            raise ValueError(
                f"pretrain_noise_level={self.pretrain_noise_level} is the fraction of inputs "
                f"corrupted by pretrain_noise={self.pretrain_noise!r} and must be at most 1."
            )

    def _layer_corruption(self, inputs):
        if self.pretrain_noise is None:
            return None
        return Corruption(
            self.pretrain_noise, self.pretrain_noise_level, inputs.min(axis=0), inputs.max(axis=0)
        )

    def _build_module(self, X, generator):
        """Pretrain the stack greedily and return the deep autoencoder it initialises."""
        sizes = [X.shape[1], *self._hidden_layer_sizes(), self.n_components]
        seeds = torch.randint(2**31 - 1, (len(sizes) - 1,), generator=generator).tolist()
        inputs, layers, curves = X, [], []
        for depth, seed in enumerate(seeds):
            layer = _ShallowAE(self, depth, sizes[depth], sizes[depth + 1],
                               self._layer_corruption(inputs), seed)
            # Pretraining is an initialisation with a fixed budget of epochs, not a fit
            # that should reach convergence: its max_iter warnings would be noise.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                layer._train(inputs)
            if depth < len(seeds) - 1:
                # the fixed encoder's codes, computed on the device, feed the next layer
                inputs = map_batches(layer.module_.encode, inputs, layer.device_,
                                     self._torch_dtype)
            layers.append(layer.module_.cpu())  # so the fitted stack pickles device-free
            curves.append(layer.loss_curve_)
        self.pretrained_layers_, self.pretrain_loss_curves_ = layers, curves

        deep = mlp_autoencoder(
            X.shape[1], sizes[1:-1], self.n_components, self.activation,
            output="sigmoid" if self.loss == "bce" else "identity",
            code_activation=self._code_activation(),
        )
        # load_state_dict checks that every layer's name and shape match the deep network.
        deep.encoder.load_state_dict(
            nn.Sequential(*(m for layer in layers for m in layer.encoder)).state_dict()
        )
        deep.decoder.load_state_dict(
            nn.Sequential(*(m for layer in reversed(layers) for m in layer.decoder)).state_dict()
        )
        return deep
