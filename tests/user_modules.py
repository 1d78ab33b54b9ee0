"""Networks of a user's own, as a user would write them, for the tests.

They live in an importable module so that fitted estimators holding them pickle.
"""

import torch
import torch.nn.functional as F
from torch import nn


class TinyAE(nn.Module):
    """A plain two-layer autoencoder for 64 features (scikit-learn's digits)."""

    def __init__(self, width=4, n_features=64):
        super().__init__()
        self.width = width
        self.encoder = nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, width))
        self.decoder = nn.Sequential(nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, n_features))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)


class TiedAE(nn.Module):
    """A tied-weight autoencoder for any number of features: the encoder's weight is a
    ``LazyLinear``'s, created at the first call, and the decoder uses its transpose."""

    def __init__(self, width=2):
        super().__init__()
        self.width = width
        self.encoder = nn.LazyLinear(width)

    def encode(self, x):
        return torch.tanh(self.encoder(x))

    def decode(self, z):
        return F.linear(z, self.encoder.weight.t())


class TinyVAE(nn.Module):
    """A variational module for any number of features: ``posterior`` and ``decode`` only."""

    def __init__(self, width=2, hidden=8):
        super().__init__()
        self.trunk = nn.LazyLinear(hidden)
        self.mu_head = nn.Linear(hidden, width)
        self.logvar_head = nn.Linear(hidden, width)
        self.up = nn.Linear(width, hidden)

    def posterior(self, x):
        h = torch.tanh(self.trunk(x))
        return self.mu_head(h), self.logvar_head(h).clamp(max=5.0)

    def decode(self, z):
        return F.linear(torch.tanh(self.up(z)), self.trunk.weight.t())
