"""A VAE's log-likelihood estimates, pure torch: Gaussian densities, the KL, keyed draws.

Log-likelihoods here are real log-densities in nats (constants included), so a VAE's ELBO is
a bound on log p(x) that can be compared across models and with papers. The output
distribution is a likelihood object of :mod:`skae._nn.likelihoods`.
"""

import math

import torch
from torch import nn

from .likelihoods import LOG_2PI


def gaussian_log_density(z, mu=None, logvar=None):
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension; N(0, I) by default."""
    d = z.shape[-1]
    if mu is None:
        return -0.5 * (z.pow(2).sum(dim=-1) + d * LOG_2PI)
    return -0.5 * (((z - mu).pow(2) * torch.exp(-logvar) + logvar).sum(dim=-1) + d * LOG_2PI)


def gaussian_kl(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, in closed form, shape (n,)."""
    return 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar).sum(dim=-1)


# Monte-Carlo draws for a fitted VAE's per-sample estimates. scikit-learn asks that a row's
# score not depend on which other rows are scored with it, nor on their order, so the draws
# cannot come from one generator stream consumed batch after batch. Each draw is instead a
# hash of (seed, the row's values, draw index, dimension) -- a counter-based generator in the
# manner of Philox (Salmon et al. 2011), here with MurmurHash3's finaliser: rows get
# independent draws, any subset or order of rows gets the same ones, any group of draws can
# be made without the others, and the CPU and a GPU make the same numbers.

_M32 = 0xFFFFFFFF


def _mul32(a, c):
    """``(a * c) mod 2**32`` for int64 tensors of 32-bit values, with no int64 overflow."""
    return (a * (c & 0xFFFF) + (((a * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _mix32(h):
    """MurmurHash3's 32-bit finaliser (a bijection with full avalanche) on int64 tensors."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def row_keys(x, seed):
    """A 32-bit key per row of ``x``, a hash of ``seed`` and the row's values.

    The values are hashed as float32, so the same data in float32 or float64 gets the same
    draws and the two precisions agree up to rounding.
    """
    words = x.to(torch.float32).view(torch.int32).to(torch.int64) & _M32
    position = torch.arange(words.shape[-1], device=x.device)
    h = _mix32(words ^ _mix32(position)).sum(dim=-1) & _M32
    return _mix32(h ^ _mix32(torch.tensor(int(seed) & _M32, device=x.device)))


def _uniform(h, dtype):
    """32-bit hashes to the midpoints of 2**23 equal bins of (0, 1): exact in float32, whose
    24 bits hold no more; with 2**24 bins the top midpoint rounds to 1, a draw of +inf."""
    return ((h >> 9).to(dtype) + 0.5) * 2.0**-23


def keyed_standard_normal(keys, start, stop, n_dims, dtype=torch.float32):
    """Draws ``start`` to ``stop`` of N(0, I_n_dims) for each key: shape (draws, keys, n_dims).

    Each number is the normal quantile of :func:`_uniform` of a hash of (key, draw,
    dimension), so the tails are cut at 5.3 standard deviations.
    """
    device = keys.device
    draw = torch.arange(start, stop, device=device)[:, None]
    counter = (draw * n_dims + torch.arange(n_dims, device=device)) & _M32
    h = _mix32(keys[None, :, None] ^ _mix32(counter)[:, None, :])
    return torch.special.ndtri(_uniform(h, dtype))


def draws_per_group(module, n_rows, n_features, max_elements):
    """How many draws of z to decode at once so that a group holds at most
    ``max_elements`` decoder outputs or hidden units (at least one draw). The widest linear
    layer stands for the decoder's hidden units (a heuristic for other layer types: their
    activations are not counted)."""
    widths = [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]
    return max(1, max_elements // max(1, n_rows * max([n_features, *widths])))


def log_weights(module, mu, logvar, eps, target, likelihood):
    """``log p(target, z) - log q(z | x)`` of the draws ``z = mu + exp(logvar / 2) * eps``
    of q(z|x) = N(mu, diag(exp(logvar))), shape (draws, n)."""
    z = mu + torch.exp(0.5 * logvar) * eps
    # log q from the standard-normal draw itself: (z - mu) / sigma loses the digits of
    # a narrow posterior to the rounding of z.
    log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(dim=-1)
    # the module contract decodes a 2-D batch of codes: draws and rows are flattened
    eta = module.decode(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:-1], -1)
    return likelihood.log_prob(eta, target) + gaussian_log_density(z) - log_q


def log_importance_weights(module, x, n_draws, seed, likelihood, max_elements=2**24):
    """Yield ``log p(x, z_k) - log q(z_k | x)`` for groups of draws z_k ~ q(z|x), (group, n).

    The draws are :func:`keyed_standard_normal` of the rows of ``x`` and ``seed``: draw k of
    a row is the same whatever ``n_draws`` and the grouping. A group holds at most
    ``max_elements`` decoder outputs or hidden units (at least one draw), so memory stays
    bounded whatever ``n_draws``.
    """
    mu, logvar = module.posterior(x)
    keys = row_keys(x, seed)
    group = draws_per_group(module, len(x), x.shape[-1], max_elements)
    for start in range(0, n_draws, group):
        e = keyed_standard_normal(keys, start, min(start + group, n_draws), mu.shape[-1], mu.dtype)
        yield log_weights(module, mu, logvar, e, x, likelihood)


def elbo(module, x, n_draws, seed, likelihood, max_elements=2**24):
    """Per-sample ELBO in nats, E_q[log p(x, z) - log q(z|x)], by Monte Carlo over n_draws.

    Both terms are estimated from the same draws, the KL included: on a fitted model q is
    close to the posterior, where log p(x, z) - log q(z|x) varies little with z (Roeder et
    al. 2017), so this has less variance than the closed-form KL with a Monte-Carlo
    log-likelihood. With the same draws it is, by Jensen's inequality, at most
    :func:`importance_weighted_log_likelihood`, row by row.
    """
    total = 0.0
    for log_w in log_importance_weights(module, x, n_draws, seed, likelihood, max_elements):
        total = total + log_w.sum(dim=0)
    return total / n_draws


def importance_weighted_log_likelihood(module, x, n_draws, seed, likelihood, max_elements=2**24):
    """Per-sample estimate of log p(x): log mean_k p(x, z_k) / q(z_k | x), z_k ~ q(z|x).

    Burda et al. (2016): a lower bound in expectation that tightens as ``n_draws`` grows.
    The mean is a streaming logsumexp over groups of draws.
    """
    total = None
    for log_w in log_importance_weights(module, x, n_draws, seed, likelihood, max_elements):
        part = torch.logsumexp(log_w, dim=0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(n_draws)
