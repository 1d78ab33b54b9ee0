"""Torch modules of the autoencoder family: pure ``nn.Module`` code, no scikit-learn.

Every autoencoder module exposes ``encode(x) -> z``, ``decode(z) -> eta`` and ``mean(eta)``.
``eta`` is the decoder's *natural parameter* of the output distribution: the mean itself for a
Gaussian likelihood, the logits for a Bernoulli one. Losses are computed from ``eta`` (so the
Bernoulli case uses the numerically stable ``binary_cross_entropy_with_logits``) and
``mean(eta)`` is what ``inverse_transform`` returns.
"""

import itertools
import math

import torch
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}

# Gain of the initialisation for each activation (He for ReLU, Glorot otherwise).
_GAINS = {"identity": 1.0, "logistic": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}


def mlp(sizes, activation, last_activation="identity"):
    """A stack of ``Linear`` layers through ``sizes`` with ``activation`` in between."""
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        is_last = i == len(sizes) - 2
        layers.append(ACTIVATIONS[last_activation if is_last else activation]())
    return nn.Sequential(*layers)


def init_weights(module, generator, activation="relu"):
    """Initialise every ``Linear`` of ``module`` from ``generator``, never the global RNG.

    Weights are drawn uniformly with the variance that keeps activations' scale through
    the layer (He for ReLU, Glorot-style fan-in otherwise); biases start at zero.
    """
    gain = _GAINS[activation]
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                bound = gain * math.sqrt(3.0 / layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()
    return module


class AutoEncoderModule(nn.Module):
    """An encoder and a decoder; ``forward`` returns ``(eta, z)``.

    Parameters
    ----------
    encoder, decoder : nn.Module
        Maps from inputs to codes and from codes to the output's natural parameter.
    output : {"identity", "sigmoid"}
        How ``eta`` becomes the reconstruction's mean: Gaussian (identity) or
        Bernoulli (sigmoid of the logits).
    """

    def __init__(self, encoder, decoder, output="identity"):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.output = output

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def mean(self, eta):
        return torch.sigmoid(eta) if self.output == "sigmoid" else eta

    def forward(self, x):
        z = self.encode(x)
        return self.decode(z), z


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


def mlp_autoencoder(
    n_features, hidden_layer_sizes, n_components, activation, output, code_activation="identity"
):
    """A deep MLP autoencoder whose decoder mirrors the encoder's layer sizes."""
    sizes = [n_features, *hidden_layer_sizes, n_components]
    encoder = mlp(sizes, activation, last_activation=code_activation)
    decoder = mlp(sizes[::-1], activation)
    return AutoEncoderModule(encoder, decoder, output=output)


# Upper bound of a VAE posterior's log-variance; see VAEModule.
LOGVAR_MAX = 5.0


class VAEModule(nn.Module):
    """A variational autoencoder: a Gaussian encoder q(z|x) and a decoder giving ``eta``.

    ``posterior(x)`` returns the mean and the log-variance of q(z|x) = N(mu, diag(exp(logvar)));
    ``encode(x)`` is the posterior mean, ``decode`` and ``mean`` are as in
    :class:`AutoEncoderModule`. ``forward(x)`` draws one z by the reparameterisation
    ``z = mu + exp(logvar / 2) * eps`` and returns ``(eta, z, mu, logvar)``.

    ``eps`` comes from the ``generator`` attribute, which the trainer sets to a seeded
    generator on the training device; ``forward`` refuses to run without one rather than
    fall back to torch's global RNG.

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
    output : {"identity", "sigmoid"}
        Gaussian (identity) or Bernoulli (sigmoid of the logits) output.
    """

    def __init__(self, trunk, mean_head, logvar_head, decoder, output="identity"):
        super().__init__()
        self.trunk = trunk
        self.mean_head = mean_head
        self.logvar_head = logvar_head
        self.decoder = decoder
        self.output = output
        self.generator = None

    def posterior(self, x):
        h = self.trunk(x)
        logvar = LOGVAR_MAX - nn.functional.softplus(LOGVAR_MAX - self.logvar_head(h))
        return self.mean_head(h), logvar

    def encode(self, x):
        return self.mean_head(self.trunk(x))

    def decode(self, z):
        return self.decoder(z)

    def mean(self, eta):
        return torch.sigmoid(eta) if self.output == "sigmoid" else eta

    def forward(self, x):
        if self.generator is None:
            raise RuntimeError(
                "VAEModule.forward samples z and needs a seeded torch.Generator in its "
                "`generator` attribute; it never draws from torch's global RNG."
            )
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=self.generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), z, mu, logvar


def mlp_vae(n_features, hidden_layer_sizes, n_components, activation, output):
    """A VAE whose decoder mirrors the encoder's trunk; the heads are linear."""
    sizes = [n_features, *hidden_layer_sizes]
    trunk = mlp(sizes, activation, last_activation=activation)
    return VAEModule(
        trunk,
        nn.Linear(sizes[-1], n_components),
        nn.Linear(sizes[-1], n_components),
        mlp([n_components, *sizes[::-1]], activation),
        output=output,
    )


def init_vae_weights(module, generator, activation="relu"):
    """:func:`init_weights`, then a zero log-variance head: q(z|x) starts with unit variance.

    The prior's scale is a neutral start; a random head on unscaled inputs starts far from
    it, and the first steps of the optimizer then swing the log-variance by hundreds.
    """
    init_weights(module, generator, activation)
    with torch.no_grad():
        module.logvar_head.weight.zero_()
    return module


class CodeClassifier(nn.Module):
    """The logits of a linear layer on an autoencoder module's codes (its ``encode``).

    ``encode`` rather than an ``encoder`` attribute: it is what every skae module exposes,
    a VAE's posterior mean included.
    """

    def __init__(self, autoencoder, head):
        super().__init__()
        self.autoencoder = autoencoder
        self.head = head

    def forward(self, x):
        return self.head(self.autoencoder.encode(x))
