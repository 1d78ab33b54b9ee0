"""Output distributions of a decoder: pure torch, no scikit-learn.

A decoder returns ``eta``, the natural parameter of the output distribution p(x | z): the
mean itself for a Gaussian, the logits for a Bernoulli. A likelihood object is everything the
rest of skae needs to know about that distribution:

* ``loss(eta, x)``: the per-sample training loss, a negative log-likelihood up to a constant;
* ``log_prob(eta, x)``: the exact log-density in nats, constants included (the VAE's bounds);
* ``mean(eta)``: the reconstruction's mean, what ``inverse_transform`` returns;
* ``check_support(X)``: a clear error for data the distribution cannot model.

Per-sample quantities are summed over the last dimension, so ``x`` may carry leading
dimensions (draws of z) that broadcast against ``eta``.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


class Gaussian:
    """A Gaussian output with mean ``eta``: the squared error.

    ``loss`` is the squared error summed over features (the NLL with variance 1/2, up to a
    constant); ``log_prob`` is the density with unit variance, its constant included.
    """

    name = "mse"

    def loss(self, eta, x):
        return (eta - x).pow(2).sum(dim=-1)

    def log_prob(self, eta, x):
        x = x.expand_as(eta)
        return -0.5 * (x - eta).pow(2).sum(dim=-1) - 0.5 * eta.shape[-1] * LOG_2PI

    def mean(self, eta):
        return eta

    def check_support(self, X):
        """Any finite value is in the support."""

    def __repr__(self):
        return "Gaussian()"


class Bernoulli:
    """A Bernoulli output with logits ``eta``: the binary cross-entropy, for data in [0, 1].

    For grey levels in [0, 1] ``log_prob`` is minus the cross-entropy, exact for binary data.
    """

    name = "bce"

    def loss(self, eta, x):
        return F.binary_cross_entropy_with_logits(eta, x, reduction="none").sum(dim=-1)

    def log_prob(self, eta, x):
        return -self.loss(eta, x.expand_as(eta))

    def mean(self, eta):
        return torch.sigmoid(eta)

    def check_support(self, X):
        X = np.asarray(X)
        if X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                "loss='bce' models X as Bernoulli probabilities and needs values in [0, 1]; "
                f"got values in [{X.min():.4g}, {X.max():.4g}]. Scale X (e.g. MinMaxScaler) "
                "or use loss='mse'."
            )

    def __repr__(self):
        return "Bernoulli()"


LIKELIHOODS = {"mse": Gaussian(), "bce": Bernoulli()}
