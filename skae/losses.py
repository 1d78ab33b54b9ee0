"""Loss functions as negative log-likelihoods, and the criteria the training engine calls.

Per-sample quantities are summed over features: for ``"mse"`` the squared error (the
Gaussian NLL with variance 1/2, up to a constant), for ``"bce"`` the Bernoulli NLL in nats.
A criterion returns the batch mean, a scalar for ``backward``.
"""

import torch.nn.functional as F
from torch import nn


def reconstruction_nll(eta, x, loss="mse"):
    """Per-sample reconstruction loss of targets ``x`` under outputs ``eta``, shape (n,)."""
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(eta, x, reduction="none").sum(dim=1)
    return (eta - x).pow(2).sum(dim=1)


class ReconstructionLoss(nn.Module):
    """Mean over the batch of :func:`reconstruction_nll` of the module's first output."""

    def __init__(self, loss="mse"):
        super().__init__()
        self.loss = loss

    def forward(self, y_pred, y_true):
        return reconstruction_nll(y_pred[0], y_true, self.loss).mean()
