"""Torch modules of the autoencoder family: pure ``nn.Module`` code, no scikit-learn.

The contract every autoencoder module meets, skae's own and a user's alike:
``encode(x) -> z`` maps a batch of flat rows ``(n, n_features)`` to codes ``(n, k)`` and
``decode(z) -> eta`` maps codes back to the output distribution's *natural parameter*
``(n, n_features)`` (the mean for a Gaussian, the logits for a Bernoulli; see
:mod:`skae._nn.likelihoods`). A module may add ``mean(eta)`` to override the likelihood's mean.
A variational module has ``posterior(x) -> (mu, logvar)`` of q(z|x) instead of, or besides,
``encode``.

skae's modules are an encoder and a decoder made of *blocks*, one per level of the network,
each mapping flat rows to flat rows (a convolutional block unflattens, convolves and flattens
again). Block ``l`` of the encoder and the decoder block that mirrors it form the shallow
autoencoder that greedy layer-wise pretraining trains (see :class:`skae.StackedAE`).
"""

import itertools
import math

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}

# Code activations a PCA start can take: linear codes, and logistic ones (LogisticCode).
SKIP_CODES = ("identity", "logistic")

# The logistic codes' PCA start keeps every training row's pre-activation within this many
# units of the target's logit (above it, float32's sigmoid reaches 1 at about 16.6).
LOGISTIC_REACH = 3.0

# Gain of the initialisation for each activation (He for ReLU, Glorot otherwise).
_GAINS = {"identity": 1.0, "logistic": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def encode(module, x):
    """The codes of ``x``: ``module.encode``, else a variational module's posterior mean."""
    if hasattr(module, "encode"):
        return module.encode(x)
    return module.posterior(x)[0]


def mlp(sizes, activation, last_activation="identity"):
    """A stack of ``Linear`` layers through ``sizes`` with ``activation`` in between."""
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        is_last = i == len(sizes) - 2
        layers.append(ACTIVATIONS[last_activation if is_last else activation]())
    return nn.Sequential(*layers)


def init_weights(module, generator, activation="relu"):
    """Initialise every parameter of ``module`` from ``generator``, never the global RNG.

    Weights of linear, convolutional and transposed convolutional layers are drawn uniformly
    with the variance that keeps activations' scale through the layer (He for ReLU,
    Glorot-style fan-in otherwise; torch's own fan-in convention for each layer type);
    biases start at zero; normalisation layers start as the identity (weight 1, bias 0).
    A layer of another type that holds parameters is an error: its initialisation would
    come from torch's global RNG.
    """
    gain = _GAINS[activation]
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.modules.conv._ConvNd):
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
                bound = gain * math.sqrt(3.0 / fan_in)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()
            elif isinstance(layer, _NORMS):
                layer.reset_parameters()  # deterministic: ones and zeros
            elif any(True for _ in layer.parameters(recurse=False)):
                raise TypeError(
                    f"init_weights cannot initialise a {type(layer).__name__} layer from a "
                    "local generator; use Linear, convolutional or normalisation layers."
                )
    return module


class AutoEncoderModule(nn.Module):
    """An encoder and a decoder; ``forward(x)`` is ``decode(encode(x))``.

    Parameters
    ----------
    encoder, decoder : nn.Module
        Map flat inputs to codes, and codes to the output's natural parameter.
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class Shift(nn.Module):
    """Adds a fixed vector (a buffer, not a parameter): centring inside a module."""

    def __init__(self, shift):
        super().__init__()
        self.register_buffer("shift", torch.as_tensor(shift))

    def forward(self, x):
        return x + self.shift


def linear_autoencoder(mean, n_components):
    """The linear autoencoder on centred data: ``x -> W_e (x - mean)``, ``z -> W_d z + mean``."""
    mean = torch.as_tensor(mean)  # kept in its precision until the module is cast
    n_features = mean.shape[0]
    encoder = nn.Sequential(Shift(-mean), nn.Linear(n_features, n_components, bias=False))
    decoder = nn.Sequential(nn.Linear(n_components, n_features, bias=False), Shift(mean))
    return AutoEncoderModule(encoder, decoder)


# Upper bound of a VAE posterior's log-variance; see VAEModule.
LOGVAR_MAX = 5.0


class VAEModule(nn.Module):
    """A variational autoencoder: a Gaussian encoder q(z|x) and a decoder giving ``eta``.

    ``posterior(x)`` returns the mean and the log-variance of q(z|x) = N(mu, diag(exp(logvar)));
    ``encode(x)`` is the posterior mean and ``forward(x)`` is ``decode(encode(x))``. Sampling
    belongs to the training objective (:class:`skae._nn.objectives.ELBO`), not to the module.

    The log-variance is bounded above, smoothly, by ``LOGVAR_MAX``: a standard deviation of
    at most e^2.5 ~ 12, far wider than the prior's 1, beyond which the KL term only grows.
    On unscaled inputs an unbounded head takes log-variances in the hundreds, whose ``exp``
    overflows. The bound is soft so that its gradient fades instead of stopping at it.

    Parameters
    ----------
    trunk : nn.Module
        The encoder's shared layers, from inputs to the last hidden representation.
    mean_head, logvar_head : nn.Module
        Map the trunk's output to the posterior's mean and log-variance.
    decoder : nn.Module
        Maps codes to the output's natural parameter.
    """

    def __init__(self, trunk, mean_head, logvar_head, decoder):
        super().__init__()
        self.trunk = trunk
        self.mean_head = mean_head
        self.logvar_head = logvar_head
        self.decoder = decoder

    def posterior(self, x):
        h = self.trunk(x)
        logvar = LOGVAR_MAX - nn.functional.softplus(LOGVAR_MAX - self.logvar_head(h))
        return self.mean_head(h), logvar

    def encode(self, x):
        return self.mean_head(self.trunk(x))

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class LinearSkip(nn.Module):
    """``linear(x) + body(x)``: a nonlinear stack beside a linear map of the same shape."""

    def __init__(self, linear, body):
        super().__init__()
        self.linear = linear
        self.body = body

    def forward(self, x):
        return self.linear(x) + self.body(x)


class LogisticCode(nn.Module):
    """Codes in (0, 1) from real ones, ``sigmoid(offset + scale * y)`` per unit, or with
    ``inverse`` its exact inverse ``(logit(z) - offset) / scale`` (codes clipped to the
    dtype's smallest positive number and to one epsilon below 1). ``offset`` and ``scale``
    are buffers, set by :func:`start_at_pca`: the encoder ends with the map, the decoder
    starts with its inverse, so that logistic codes lose nothing of what the linear ones
    beneath them hold."""

    def __init__(self, n_components, inverse=False):
        super().__init__()
        self.inverse = inverse
        self.register_buffer("offset", torch.zeros(n_components))
        self.register_buffer("scale", torch.ones(n_components))

    def forward(self, x):
        if self.inverse:
            # logit(z) = log(z) - log(1 - z): exact down to the smallest float (a row far
            # below the target keeps its value); above, 1 - z has the precision of its dtype
            tiny, top = torch.finfo(x.dtype).tiny, 1 - torch.finfo(x.dtype).eps
            z = x.clamp(tiny, top)
            return (torch.log(z) - torch.log1p(-z) - self.offset) / self.scale
        return torch.sigmoid(self.offset + self.scale * x)


def mlp_autoencoder(
    n_features,
    hidden_layer_sizes,
    n_components,
    activation,
    code_activation="identity",
    linear_skip=False,
):
    """A deep MLP autoencoder whose decoder mirrors the encoder's layer sizes; with
    ``linear_skip``, encoder and decoder each get a linear map beside their stack
    (:class:`LinearSkip`), which can start at PCA's solution; logistic codes are then the
    :class:`LogisticCode` map of the linear ones, which the decoder inverts."""
    sizes = [n_features, *hidden_layer_sizes, n_components]
    if not linear_skip:
        encoder = mlp(sizes, activation, last_activation=code_activation)
        return AutoEncoderModule(encoder, mlp(sizes[::-1], activation))
    if code_activation not in SKIP_CODES:
        raise ValueError(
            f"a linear map beside the stacks needs a code activation in {SKIP_CODES}; "
            f"got {code_activation!r}."
        )
    encoder = LinearSkip(nn.Linear(n_features, n_components), mlp(sizes, activation))
    decoder = LinearSkip(nn.Linear(n_components, n_features), mlp(sizes[::-1], activation))
    if code_activation == "logistic":
        encoder = nn.Sequential(encoder, LogisticCode(n_components))
        decoder = nn.Sequential(LogisticCode(n_components, inverse=True), decoder)
    return AutoEncoderModule(encoder, decoder)


def row_moments(X, rows=None, chunk=2048, weights=None, scatter=True):
    """Row count, mean and scatter matrix (float64) of ``X[rows]`` (all rows by default),
    read in chunks: memory holds a chunk and an ``n_features`` square matrix, never X.

    With ``weights`` (one per row of X), each row counts ``weights`` times: the count is
    their sum, the mean and the scatter are weighted. ``scatter=False`` skips the scatter
    (None is returned in its place)."""
    index = np.arange(len(X)) if rows is None else rows
    chunks = [index[i : i + chunk] for i in range(0, len(index), chunk)]
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    mean = np.zeros(X.shape[1])
    for c in chunks:
        rows_c = np.asarray(X[c], dtype=np.float64)
        mean += rows_c.sum(axis=0) if w is None else w[c] @ rows_c
    count = len(index) if w is None else float(w[index].sum())
    mean /= count if count > 0 else 1
    if not scatter:
        return count, mean, None
    total = np.zeros((X.shape[1], X.shape[1]))
    for c in chunks:
        centred = np.asarray(X[c], dtype=np.float64) - mean
        total += centred.T @ (centred if w is None else centred * w[c][:, None])
    return count, mean, total


def mlp_vae(n_features, hidden_layer_sizes, n_components, activation):
    """A VAE whose decoder mirrors the encoder's trunk; the heads are linear."""
    sizes = [n_features, *hidden_layer_sizes]
    trunk = mlp(sizes, activation, last_activation=activation)
    return VAEModule(
        trunk,
        nn.Linear(sizes[-1], n_components),
        nn.Linear(sizes[-1], n_components),
        mlp([n_components, *sizes[::-1]], activation),
    )


def conv_shapes(input_shape, channels, kernel_size):
    """The (channels, height, width) of each level of a stride-2 convolutional encoder."""
    shapes = [tuple(input_shape)]
    padding = kernel_size // 2
    for c in channels:
        _, h, w = shapes[-1]
        shapes.append(
            (c, (h + 2 * padding - kernel_size) // 2 + 1, (w + 2 * padding - kernel_size) // 2 + 1)
        )
    return shapes


def _conv_block(layer, activation, shape_in):
    """A block on flat rows: unflatten to ``shape_in``, apply ``layer`` and ``activation``,
    flatten again."""
    return nn.Sequential(nn.Unflatten(1, shape_in), layer, ACTIVATIONS[activation](), nn.Flatten())


def conv_stack(input_shape, channels, kernel_size, activation):
    """Encoder and decoder blocks of a convolutional network, without the code layer.

    Each encoder block is a stride-2 convolution ``channels[l-1] -> channels[l]`` (halving
    height and width, rounding up); each decoder block the transposed convolution back,
    with the output padding that restores the exact size. The decoder's bottom block ends
    with no activation: it outputs the natural parameter. Returns the encoder blocks, the
    decoder blocks (top first) and the flat width of the top level.
    """
    shapes = conv_shapes(input_shape, channels, kernel_size)
    padding = kernel_size // 2
    encoder, decoder = [], []
    for depth, (shape_in, shape_out) in enumerate(itertools.pairwise(shapes)):
        conv = nn.Conv2d(shape_in[0], shape_out[0], kernel_size, stride=2, padding=padding)
        encoder.append(_conv_block(conv, activation, shape_in))
        output_padding = [
            size - ((small - 1) * 2 - 2 * padding + kernel_size)
            for size, small in zip(shape_in[1:], shape_out[1:], strict=True)
        ]
        deconv = nn.ConvTranspose2d(
            shape_out[0],
            shape_in[0],
            kernel_size,
            stride=2,
            padding=padding,
            output_padding=tuple(output_padding),
        )
        decoder.insert(0, _conv_block(deconv, "identity" if depth == 0 else activation, shape_out))
    top = shapes[-1]
    return encoder, decoder, top[0] * top[1] * top[2]


def conv_autoencoder(
    input_shape, channels, kernel_size, n_components, activation, code_activation="identity"
):
    """A convolutional autoencoder on flat rows holding ``input_shape`` images.

    Encoder: the blocks of :func:`conv_stack`, then a linear code layer; decoder: a linear
    layer back to the top level (with ``activation``), then the transposed blocks.
    """
    down, up, width = conv_stack(input_shape, channels, kernel_size, activation)
    encoder = nn.Sequential(*down, mlp([width, n_components], activation, code_activation))
    decoder = nn.Sequential(mlp([n_components, width], activation, activation), *up)
    return AutoEncoderModule(encoder, decoder)


def conv_vae(input_shape, channels, kernel_size, n_components, activation):
    """A convolutional VAE: the blocks of :func:`conv_stack` as trunk, linear heads."""
    down, up, width = conv_stack(input_shape, channels, kernel_size, activation)
    return VAEModule(
        nn.Sequential(*down),
        nn.Linear(width, n_components),
        nn.Linear(width, n_components),
        nn.Sequential(mlp([n_components, width], activation, activation), *up),
    )


class Dropout:
    """Dropout of a layer's input while the layer trains: a forward pre-hook, so that it fits
    any network (:func:`add_dropout`).

    The mask is drawn from ``generator`` when one is lent (training seeds it from the
    estimator's ``random_state``), else from torch's global generator.
    """

    def __init__(self, p):
        self.p = p
        self.generator = None

    def __call__(self, layer, args):
        if not layer.training or self.p == 0:
            return None
        x, *rest = args
        keep = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return (x * (keep >= self.p) / (1 - self.p), *rest)


def add_dropout(module, dropout=0.0, input_dropout=0.0):
    """Put :class:`Dropout` on the inputs of ``module``'s linear and convolutional layers:
    ``input_dropout`` on the first one registered (the data), ``dropout`` on the others
    (hidden units and codes). Returns ``module``; in eval mode it computes what it did."""
    layers = [m for m in module.modules() if isinstance(m, nn.Linear | nn.modules.conv._ConvNd)]
    for i, layer in enumerate(layers):
        p = input_dropout if i == 0 else dropout
        if p:
            layer.register_forward_pre_hook(Dropout(p))
    return module


def dropout_hooks(module):
    """The :class:`Dropout` hooks on ``module``'s layers."""
    return [
        hook
        for m in module.modules()
        for hook in m._forward_pre_hooks.values()
        if isinstance(hook, Dropout)
    ]


class CodeClassifier(nn.Module):
    """The logits of a linear layer on an autoencoder module's codes (see :func:`encode`)."""

    def __init__(self, autoencoder, head):
        super().__init__()
        self.autoencoder = autoencoder
        self.head = head

    def forward(self, x):
        return self.head(encode(self.autoencoder, x))


class GroupedLinear(nn.Module):
    """``n_groups`` independent linear layers applied in one batched product.

    ``forward`` maps ``(n_groups, n, in_features)`` to ``(n_groups, n, out_features)``:
    group ``g``'s rows go through its own weight ``weight[g]`` and bias ``bias[g]``
    (``torch.baddbmm``), so that several small networks train in one pass instead of a
    Python loop over them.
    """

    def __init__(self, n_groups, in_features, out_features):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_groups, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(n_groups, 1, out_features))

    def init_weights(self, generator, activation):
        """Each group's weights as :func:`init_weights` draws a ``Linear`` layer's; zero
        biases."""
        bound = _GAINS[activation] * math.sqrt(3.0 / self.in_features)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.zero_()

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleModule(nn.Module):
    """``n_members`` MLP autoencoders side by side, trained in one batched pass.

    Each member maps ``n_features -> *hidden -> k -> *reversed(hidden) -> n_features`` with
    its own weights (:class:`GroupedLinear` layers). The module contract sees one
    autoencoder: ``encode(x)`` is the members' codes side by side, ``(n, n_members * k)``;
    ``decode(z)`` the mean of the members' reconstructions. ``decode_members(z)`` keeps
    them apart, ``(n_members, n, n_features)``: the objectives train on it when a module has
    it, so that each member minimises its own loss (their mean), as if trained alone.
    """

    def __init__(self, n_members, n_features, hidden_layer_sizes, member_components, activation):
        super().__init__()
        self.n_members = n_members
        self.member_components = member_components
        self.activation = activation
        sizes = [n_features, *hidden_layer_sizes, member_components]

        def stack(sizes):
            layers = []
            for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
                layers.append(GroupedLinear(n_members, n_in, n_out))
                if i < len(sizes) - 2:
                    layers.append(ACTIVATIONS[activation]())
            return nn.Sequential(*layers)

        self.encoder = stack(sizes)
        self.decoder = stack(sizes[::-1])

    def init_weights(self, generator):
        for layer in self.modules():
            if isinstance(layer, GroupedLinear):
                layer.init_weights(generator, self.activation)
        return self

    def encode_members(self, x):
        """The members' codes, ``(n_members, n, k)``."""
        return self.encoder(x.expand(self.n_members, *x.shape))

    def encode(self, x):
        z = self.encode_members(x)
        return z.transpose(0, 1).reshape(len(x), -1)

    def decode_members(self, z):
        """Each member's reconstruction of its own part of the codes ``z`` (as
        :meth:`encode` lays them out), ``(n_members, n, n_features)``."""
        z = z.reshape(len(z), self.n_members, self.member_components).transpose(0, 1)
        return self.decoder(z)

    def decode(self, z):
        return self.decode_members(z).mean(dim=0)

    def forward(self, x):
        return self.decode(self.encode(x))
