"""The PCA start, in one place: which modules have one, how it is set, and the two rules
that training follows for it.

An autoencoder built by :func:`~skae._nn.modules.mlp_autoencoder` with ``linear_skip``
(``MLP(start="pca")``, the default network of every variant but the VAE) has a linear map
beside each nonlinear stack (:class:`~skae._nn.modules.LinearSkip`). :func:`start_at_pca`
sets those maps to PCA's solution and the stacks' last layers to zero, so that the module
computes PCA exactly before training. Training then keeps to two rules, both stated here:

* :data:`WARMUP_STEPS`: Adam's step size rises linearly over a fit's first steps, so that
  its first, noisiest moments do not throw the start away;
* :func:`decayed_parameters`: ``alpha`` shrinks every weight matrix but the start's linear
  maps (PCA's solution is not a weight to pull towards zero), whichever the solver (Adam's
  ``weight_decay`` groups, L-BFGS's penalty in the loss).

* :func:`beats_start`: with early stopping, the trained network is kept over its start only
  if it beats it on the held-out rows by more than their noise
  (:meth:`skae.base.NeuralNetMixin._keep_training` measures the rows' gains).
"""

import math

import numpy as np
import torch
from torch import nn

from .modules import LOGISTIC_REACH, LinearSkip, LogisticCode, row_moments

# Steps over which Adam's step size warms up at the start of a fit from a PCA start.
WARMUP_STEPS = 200

# A PCA start is replaced by training only if the held-out rows' mean gain exceeds this many
# standard errors (a one-sided test at about 2.3%).
START_MARGIN = 2.0


def linear_skips(module):
    """``(encoder_skip, decoder_skip, code, inverse)`` of a module built by
    :func:`mlp_autoencoder` with ``linear_skip`` (``code`` and ``inverse`` its
    :class:`LogisticCode` maps, or None for linear codes); None for any other module."""
    encoder, decoder = getattr(module, "encoder", None), getattr(module, "decoder", None)
    if isinstance(encoder, LinearSkip) and isinstance(decoder, LinearSkip):
        return encoder, decoder, None, None
    if (
        isinstance(encoder, nn.Sequential)
        and isinstance(decoder, nn.Sequential)
        and [type(m) for m in encoder] == [LinearSkip, LogisticCode]
        and [type(m) for m in decoder] == [LogisticCode, LinearSkip]
    ):
        return encoder[0], decoder[1], encoder[1], decoder[0]
    return None


def start_at_pca(module, X, generator, max_rows=10000, sample_weight=None, code_mean=0.5):
    """Set an autoencoder with linear maps beside its stacks (:func:`linear_skips`) to PCA's
    solution: the linear maps project on and back from the top principal directions of (at
    most ``max_rows`` rows drawn from) X, and the stacks' last layers are zero, so that the
    module computes PCA exactly and training can only move it where the loss falls. The
    directions come from the rows' covariance (an ``n_features`` square matrix, weighted by
    ``sample_weight`` if given), accumulated chunk by chunk.

    Logistic codes are ``sigmoid(logit(code_mean) + y_j / s)`` of the principal coordinates
    ``y_j``, ``s`` the largest one's standard deviation, or a third of the largest
    ``|y_j|`` of the rows if wider (one scale for every unit, so that the codes keep PCA's
    proportions, a small move of a minor coordinate cannot saturate its unit, and no row of
    a heavy-tailed table leaves the curve's invertible range); the decoder's exact inverse
    gives ``y`` back, so the start is PCA's solution for these codes too."""
    skips = linear_skips(module)
    if skips is None:
        raise TypeError("start_at_pca needs linear maps beside the stacks (mlp_autoencoder)")
    encoder, decoder, code, inverse = skips
    n_components = encoder.linear.out_features
    n_samples, n_features = X.shape
    rows = np.arange(n_samples)
    if n_samples > max_rows:
        rows = torch.randperm(n_samples, generator=generator)[:max_rows].sort().values.numpy()
    count, mean, scatter = row_moments(X, rows, weights=sample_weight)
    eigenvalues, eigenvectors = np.linalg.eigh(scatter)  # ascending
    # directions beyond the data's rank have no variance and arbitrary eigenvectors: they
    # stay out of the start (zero rows), so that it depends on the data, not on rounding
    rank = int((eigenvalues > eigenvalues[-1] * n_features * np.finfo(float).eps).sum())
    k = min(n_components, rank)
    components = np.zeros((n_components, n_features))
    components[:k] = eigenvectors[:, ::-1][:, :k].T
    weight = torch.as_tensor(components, dtype=encoder.linear.weight.dtype)
    mean = torch.as_tensor(mean, dtype=weight.dtype)
    with torch.no_grad():
        encoder.linear.weight.copy_(weight)
        encoder.linear.bias.copy_(-weight @ mean)
        decoder.linear.weight.copy_(weight.T)
        decoder.linear.bias.copy_(mean)
        for linear in (encoder.linear, decoder.linear):
            linear.requires_grad_(False)  # the exact PCA start
        for stack in (encoder.body, decoder.body):
            last = [m for m in stack if isinstance(m, nn.Linear)][-1]
            last.weight.zero_()
            last.bias.zero_()
        if code is not None:
            # one scale for every unit: the largest coordinate's spread, or a third of the
            # largest coordinate seen, whichever is wider, so that no training row leaves
            # the curve's invertible range (heavy tails would saturate their units)
            top = math.sqrt(max(eigenvalues[-1], 0.0) / max(count, 1e-12))
            widest = 0.0
            for c in range(0, len(rows), 2048):
                chunk = np.asarray(X[rows[c : c + 2048]], dtype=np.float64) - mean.numpy()
                widest = max(widest, float(np.abs(chunk @ components[:k].T).max(initial=0)))
            spread = max(top, widest / LOGISTIC_REACH)
            for part in (code, inverse):
                part.offset.fill_(math.log(code_mean / (1 - code_mean)))
                part.scale.fill_(1 / spread if spread > 0 else 1.0)
    return module


def decayed_parameters(module):
    """The parameters ``alpha`` shrinks: the weight matrices (every parameter of two or
    more dimensions), not the biases, norms' scales and other vectors (as scikit-learn's
    MLP), nor the linear maps of a PCA start (:class:`~skae._nn.modules.LinearSkip`),
    whether they are frozen (the start) or trained (a classifier's fine-tuning). The one
    rule of every solver."""
    start = {
        id(p) for m in module.modules() if isinstance(m, LinearSkip) for p in m.linear.parameters()
    }
    return [p for p in module.parameters() if p.ndim > 1 and id(p) not in start]


def beats_start(gains, weights):
    """Whether a trained network beats its PCA start on held-out rows, from each row's gain
    (its loss under the start less its loss under the trained network) and weight: the
    weighted mean gain must exceed ``START_MARGIN`` standard errors (the spread of the
    gains over the square root of the rows' effective number). On a small table a tenth of
    the rows is a noisy judge, and a network that beat PCA on ten rows by chance loses to it
    on the next ones (iris). No weight at all: nothing to judge by, training is kept."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.sum() <= 0:
        return True
    mean = np.average(gains, weights=weights)
    spread = np.sqrt(np.average((gains - mean) ** 2, weights=weights))
    rows_effective = weights.sum() ** 2 / (weights**2).sum()
    return bool(mean > START_MARGIN * spread / np.sqrt(rows_effective))
