"""The networks an autoencoder estimator can train: parts passed as its ``module`` parameter.

An architecture builds a fresh torch module for given input and code widths, initialises it
from a local generator, and, for greedy layer-wise pretraining, splits it into the shallow
autoencoders of its levels. The built-in ones are scikit-learn-style objects
(``get_params``/``set_params``), so their parameters are searchable as nested parameters:
``GridSearchCV(DenoisingAE(module=ConvNet()), {"module__channels": [(16,), (16, 32)]})``.

A user's ``nn.Module`` instance stands for itself (:class:`UserModule`): every fit trains a
deep copy of it, starting from its own weights.
"""

import copy
import math
from numbers import Integral
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._nn.modules import (
    ACTIVATIONS,
    SKIP_CODES,
    EnsembleModule,
    VAEModule,
    conv_autoencoder,
    conv_vae,
    init_weights,
    mlp_autoencoder,
    mlp_vae,
)
from ._nn.start import linear_skips, start_at_pca


def _positive_ints(value, name):
    sizes = np.atleast_1d(np.asarray(value, dtype=object))
    if not all(isinstance(s, Integral) and s > 0 for s in sizes):
        raise ValueError(f"{name} must be a sequence of positive integers; got {value!r}.")
    return [int(s) for s in sizes]


class _BuiltIn(BaseEstimator):
    """What skae's built-in architectures share: weights drawn from a local generator."""

    def init_weights(self, module, generator, X=None, sample_weight=None):
        """Draw every weight of ``module`` from ``generator``; a VAE's posterior starts at
        unit variance (a zero log-variance head)."""
        return _init_weights(module, generator, self.activation)


class MLP(_BuiltIn):
    """A multilayer perceptron autoencoder: the default network of skae's estimators.

    The encoder maps ``n_features -> *hidden_layer_sizes -> n_components`` (a linear code
    layer unless the estimator asks for another); the decoder mirrors it. Weights are drawn
    from the estimator's ``random_state`` (He-style for ReLU, Glorot-style otherwise).

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(128,)
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers.
    start : {"random", "pca"}, default="random"
        "pca" puts a linear map beside the encoder's and the decoder's stacks, set to PCA's
        projection (fitted on at most 10,000 training rows) while the stacks' last layers
        start at zero: the network starts as PCA's solution, which training can only
        improve on in training loss, and the nonlinear layers learn what PCA misses.
        For a linear code layer, or a logistic one (:class:`SparseAE`'s: a fixed logistic
        map of the linear codes, which the decoder inverts exactly); not for a VAE, nor
        ReLU codes. The default of every autoencoder but :class:`VariationalAE`.

    See Also
    --------
    ConvNet : A convolutional network for images.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import MLP, AutoEncoder
    >>> X = load_digits().data / 16
    >>> ae = AutoEncoder(module=MLP(hidden_layer_sizes=(32,)), max_iter=5, random_state=0)
    >>> ae.fit(X).transform(X).shape
    (1797, 2)
    """

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "start": [StrOptions({"random", "pca"})],
    }

    def __init__(self, hidden_layer_sizes=(128,), activation="relu", start="random"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.start = start

    def build(self, n_features, n_components, *, variational=False, code_activation="identity"):
        """A new module: an MLP autoencoder, or with ``variational`` a VAE."""
        self._validate_params()
        sizes = _positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")
        if variational:
            return mlp_vae(n_features, sizes, n_components, self.activation)
        return mlp_autoencoder(
            n_features,
            sizes,
            n_components,
            self.activation,
            code_activation=code_activation,
            linear_skip=self.start == "pca" and code_activation in SKIP_CODES,
        )

    def init_weights(self, module, generator, X=None, sample_weight=None, *, code_mean=0.5):
        """Draw every weight from ``generator``; with ``start="pca"`` and the training data
        ``X`` (their rows weighted by ``sample_weight``), then set the linear maps to PCA's
        solution (:func:`start_at_pca`; logistic codes around ``code_mean``)."""
        module = super().init_weights(module, generator)
        if linear_skips(module) is not None and X is not None:
            module = start_at_pca(
                module, X, generator, sample_weight=sample_weight, code_mean=code_mean
            )
        return module

    def blocks(self, module):
        """The ``(encoder_block, decoder_block)`` of each level, bottom first, sharing the
        module's layers: the shallow autoencoders of greedy layer-wise pretraining."""
        encoder, decoder = module.encoder, module.decoder
        skips = linear_skips(module)
        if skips is not None:  # the stacks beside PCA's linear maps
            encoder, decoder = skips[0].body, skips[1].body
        n = len(decoder)
        # new Sequentials of the same (shared) layers, numbered from 0
        return [
            (
                nn.Sequential(*encoder[2 * i : 2 * i + 2]),
                nn.Sequential(*decoder[n - 2 * i - 2 : n - 2 * i]),
            )
            for i in range(len(encoder) // 2)
        ]


class ConvNet(_BuiltIn):
    """A convolutional autoencoder for images given as flattened rows.

    Each row of X holds one image of ``input_shape`` (channels, height, width) in row-major
    order, as ``image.reshape(-1)`` gives. The encoder is a stack of stride-2 convolutions,
    one per entry of ``channels`` (each halves height and width, rounding up), then a linear
    code layer; the decoder mirrors it with a linear layer and stride-2 transposed
    convolutions back to the exact input size. The default suits 28x28 (MNIST: 28 -> 14 ->
    7) and 8x8 images (scikit-learn's digits: 8 -> 4 -> 2). Weights are drawn from the
    estimator's ``random_state``.

    Parameters
    ----------
    input_shape : tuple of 3 int or None, default=None
        (channels, height, width) of the images. None reads one square grey image per row
        when ``n_features`` is a perfect square (64 -> (1, 8, 8), 784 -> (1, 28, 28)), else
        a one-row signal (1, 1, n_features).
    channels : array-like of int, default=(32, 64)
        Output channels of the encoder's convolutions, bottom first; the decoder uses them
        in reverse. Empty: no convolution, only the linear code layer.
    kernel_size : int, default=3
        Side of the square kernels; odd, so that padding ``kernel_size // 2`` centres them.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation after each convolution and the decoder's linear layer.

    See Also
    --------
    MLP : The fully connected default.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import ConvNet, DenoisingAE
    >>> X = load_digits().data / 16
    >>> dae = DenoisingAE(n_components=10, module=ConvNet(input_shape=(1, 8, 8)),
    ...                   loss="bce", noise="masking", max_iter=2, random_state=0).fit(X)
    >>> dae.transform(X).shape
    (1797, 10)
    """

    _parameter_constraints: ClassVar[dict] = {
        "input_shape": [None, tuple, list],
        "channels": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(self, input_shape=None, channels=(32, 64), kernel_size=3, activation="relu"):
        self.input_shape = input_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.activation = activation

    def image_shape(self, n_features):
        """The (channels, height, width) of one row of ``n_features`` values."""
        if self.input_shape is None:
            side = math.isqrt(n_features)
            return (1, side, side) if side * side == n_features else (1, 1, n_features)
        shape = tuple(_positive_ints(self.input_shape, "input_shape"))
        if len(shape) != 3:
            raise ValueError(
                f"input_shape must be (channels, height, width); got {self.input_shape!r}."
            )
        if math.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={self.input_shape!r} holds {math.prod(shape)} values per image, "
                f"but X has {n_features} features."
            )
        return shape

    def build(self, n_features, n_components, *, variational=False, code_activation="identity"):
        """A new module: a convolutional autoencoder, or with ``variational`` a VAE."""
        self._validate_params()
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd; got {self.kernel_size}.")
        channels = _positive_ints(self.channels, "channels")
        shape = self.image_shape(n_features)
        if variational:
            return conv_vae(shape, channels, self.kernel_size, n_components, self.activation)
        return conv_autoencoder(
            shape,
            channels,
            self.kernel_size,
            n_components,
            self.activation,
            code_activation=code_activation,
        )

    def blocks(self, module):
        """The ``(encoder_block, decoder_block)`` of each level, bottom first, sharing the
        module's layers: the shallow autoencoders of greedy layer-wise pretraining."""
        encoder, decoder = module.encoder, module.decoder
        return [(encoder[i], decoder[len(decoder) - 1 - i]) for i in range(len(encoder))]


class MLPEnsemble(_BuiltIn):
    """Several small MLP autoencoders trained side by side, in one batched pass.

    Each of the ``n_members`` members is an MLP autoencoder of its own weights (drawn from
    the estimator's ``random_state``, a different draw for each): its code is
    ``n_components / n_members`` wide, and ``transform`` returns the members' codes side by
    side, ``inverse_transform`` the mean of their reconstructions. The members' layers are
    stacked into batched matrix products (one ``torch.baddbmm`` per layer for all of them):
    small networks leave the CPU or GPU mostly idle, so eight members take 1.2 to 2.7 times
    one member's step time, not eight times (measured on 2 CPU threads, batch 128, 10 to 166
    features): RandNet's autoencoder ensembles (Chen et al. 2017) without a Python loop of
    fits. Each member is trained on its own reconstruction loss, as if alone (the
    estimator's objective is their mean).

    Parameters
    ----------
    n_members : int, default=8
        Number of autoencoders; ``n_components`` must be a multiple of it.
    hidden_layer_sizes : array-like of int or "auto", default="auto"
        Widths of each member's hidden layers (the decoder uses them in reverse). "auto" is
        one hidden layer of ``max(16, 2 * k, min(n_features, 64))`` units, for a member
        code of ``k`` values: as wide as the data up to 64 features, so that a step's cost
        grows no faster than the number of features.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers.

    See Also
    --------
    MLP : One MLP autoencoder.
    OutlierDetector : Its default model is an ensemble of these.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoEncoder, MLPEnsemble
    >>> X = load_digits().data / 16
    >>> ae = AutoEncoder(n_components=8, module=MLPEnsemble(n_members=4), max_iter=5,
    ...                  random_state=0).fit(X)
    >>> ae.transform(X).shape  # four members' codes of 2 values each
    (1797, 8)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [StrOptions({"auto"}), "array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(self, n_members=8, hidden_layer_sizes="auto", activation="relu"):
        self.n_members = n_members
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation

    def hidden_sizes(self, n_features, member_components):
        """The hidden widths of one member ("auto" resolved)."""
        if isinstance(self.hidden_layer_sizes, str):
            return [max(16, 2 * member_components, min(n_features, 64))]
        return _positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def build(self, n_features, n_components, *, variational=False, code_activation="identity"):
        """A new :class:`~skae._nn.modules.EnsembleModule`."""
        self._validate_params()
        if variational:
            raise ValueError(
                "MLPEnsemble builds autoencoders, not VAEs; use MLP or ConvNet with VariationalAE."
            )
        if code_activation != "identity":
            raise ValueError(
                "MLPEnsemble's members have a linear code layer; use MLP for an estimator "
                f"whose codes need the {code_activation!r} activation."
            )
        if n_components % self.n_members:
            raise ValueError(
                f"n_components={n_components} must be a multiple of n_members="
                f"{self.n_members}: the ensemble's code is its members' codes side by side."
            )
        k = n_components // self.n_members
        hidden = self.hidden_sizes(n_features, k)
        return EnsembleModule(self.n_members, n_features, hidden, k, self.activation)

    def init_weights(self, module, generator, X=None, sample_weight=None):
        """Draw every member's weights from ``generator``."""
        return module.init_weights(generator)

    def blocks(self, module):
        raise ValueError(
            "StackedAE pretrains one network layer by layer; MLPEnsemble holds several. "
            "Use module=MLP(...) with StackedAE."
        )


def _init_weights(module, generator, activation):
    init_weights(module, generator, activation)
    if isinstance(module, VAEModule):
        # The prior's scale is a neutral start; a random head on unscaled inputs starts far
        # from it, and the first steps of the optimizer then swing the log-variance by
        # hundreds.
        with torch.no_grad():
            module.logvar_head.weight.zero_()
    return module


class UserModule:
    """A user's ``nn.Module`` instance as an architecture: each fit trains a deep copy.

    The copy starts from the instance's own weights (pretrained ones are kept). Parameters
    it creates lazily at its first call (``nn.LazyLinear``) are drawn, like torch's default
    initialisation, from torch's generator seeded by the estimator's ``random_state`` for
    the occasion, so fits are repeatable either way.
    """

    def __init__(self, module):
        self.module = module

    def build(self, n_features, n_components, *, variational=False, code_activation="identity"):
        return copy.deepcopy(self.module)

    def init_weights(self, module, generator, X=None, sample_weight=None):
        return module

    def blocks(self, module):
        raise ValueError(
            f"StackedAE pretrains skae's MLP and ConvNet layer by layer, but cannot split "
            f"a module of your own ({type(module).__name__}) into levels. Use module=MLP(...) "
            "or module=ConvNet(...), or train your module with AutoEncoder."
        )
