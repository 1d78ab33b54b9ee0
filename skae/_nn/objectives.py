"""Training objectives: what a variant minimises, for any autoencoder module. Pure torch.

The training engine calls ``objective(module, x, target)`` on every batch (``x`` the input,
possibly corrupted; ``target`` the clean input, or the labels) and gets the batch's scalar
loss. An objective reaches the network only through the module contract of
:mod:`skae._nn.modules` (``encode``, ``decode``, ``posterior``), so every objective works with
every architecture: skae's MLP, its convolutional network or a user's module.

* :class:`Reconstruction`: the likelihood's negative log-likelihood of the target;
* :class:`Contractive`: plus the squared Frobenius norm of the encoder's Jacobian;
* :class:`Sparse`: plus a sparsity penalty on the codes;
* :class:`ELBO`: minus a VAE's evidence lower bound (one reparameterised draw);
* :class:`IWAE`: minus Burda et al.'s importance-weighted bound (``k`` draws per row);
* :class:`CrossEntropy`: a classifier's loss.

Every objective takes an optional ``weight``, one per row (``sample_weight``, scaled by the
estimator to mean 1 over the training rows): each row's loss counts ``weight`` times, and
the batch loss is the mean of the weighted losses, so that in expectation over batches the
gradient is that of the whole data's weighted mean loss. A row of weight 0 is ignored.

Corruption (a denoising autoencoder's noise) is not an objective: it is applied to the input
by the engine's batches, so it combines with any of these.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .estimates import draws_per_group, gaussian_kl, log_weights
from .modules import AutoEncoderModule, LinearSkip, encode

SPARSITIES = ("kl", "l1")

# f'(a) from the pre-activation ``a`` and the output ``h = f(a)`` of an elementwise activation.
_DERIVATIVES = {
    nn.Identity: lambda a, h: torch.ones_like(h),
    nn.Sigmoid: lambda a, h: h * (1 - h),
    nn.Tanh: lambda a, h: 1 - h * h,
    nn.ReLU: lambda a, h: (a > 0).to(h.dtype),  # autograd's convention: f'(0) = 0
}


def _linear_stack(encoder):
    """``[(linear, activation), ...]`` when ``encoder`` is a ``Sequential`` of ``Linear``
    layers each followed by a known elementwise activation (skae's MLP encoder); else None."""
    if not isinstance(encoder, nn.Sequential) or len(encoder) % 2:
        return None
    pairs = list(zip(encoder[::2], encoder[1::2], strict=True))
    if all(isinstance(lin, nn.Linear) and type(act) in _DERIVATIVES for lin, act in pairs):
        return pairs
    return None


def _derivative(linear, activation, x):
    a = linear(x)
    return _DERIVATIVES[type(activation)](a, activation(a))


JACOBIAN_ESTIMATES = ("auto", "exact", "projection")


def _closed_form(module, x):
    """:func:`jacobian_sq_norm`'s closed forms, or None where the encoder has none."""
    if not isinstance(module, AutoEncoderModule):
        return None
    encoder, skip = module.encoder, None
    if isinstance(encoder, LinearSkip):  # MLP(start="pca"): a linear map beside the stack
        encoder, skip = encoder.body, encoder.linear.weight
    layers = _linear_stack(encoder)
    if layers is not None and len(layers) == 1 and skip is None:
        ((linear, activation),) = layers
        d = _derivative(linear, activation, x)
        return d.pow(2) @ linear.weight.pow(2).sum(dim=1)
    if layers is not None and len(layers) == 2 and isinstance(layers[1][1], nn.Identity):
        (first, activation), (second, _) = layers
        d = _derivative(first, activation, x)
        gram = (first.weight @ first.weight.T) * (second.weight.T @ second.weight)
        norms = ((d @ gram) * d).sum(dim=1)
        if skip is not None:
            # ||S + W_2 D W_1||^2 = ||S||^2 + 2 sum_i d_i (W_1 S^T W_2)_ii + ||W_2 D W_1||^2
            cross = ((first.weight @ skip.T) * second.weight.T).sum(dim=1)
            norms = norms + 2 * (d @ cross) + skip.pow(2).sum()
        return norms
    return None


def jacobian_sq_norm(module, x):
    """Squared Frobenius norm of the Jacobian of ``encode`` at each row of ``x``, shape (n,).

    Exact for any module, and differentiable with respect to its parameters (training
    backpropagates through it). Two shapes of skae's MLP encoder have closed forms that
    never build the Jacobian, with ``d = f'(W_1 x + b_1)``:

    * one layer ``f(W x + b)``: ``sum_j d_j^2 ||W_j||^2`` (Rifai et al. 2011);
    * one hidden layer and a linear code, ``W_2 f(W_1 x + b_1) + b_2`` (:class:`AutoEncoder`'s
      default encoder): ``d^T G d`` with ``G = (W_1 W_1^T) * (W_2^T W_2)`` (elementwise), since
      ``||W_2 diag(d) W_1||_F^2 = tr(diag(d) W_2^T W_2 diag(d) W_1 W_1^T)``; its cost does not
      grow with the code's size. With a linear map ``S x`` beside it (``MLP(start="pca")``),
      ``||S||^2 + 2 d^T c + d^T G d``, ``c_i = (W_1 S^T W_2)_ii``.

    Any other encoder (deeper MLPs, convolutional networks, a user's module) goes through
    :func:`jacobian_sq_norm_autograd`.
    """
    exact = _closed_form(module, x)
    return jacobian_sq_norm_autograd(module, x) if exact is None else exact


def jacobian_sq_norm_autograd(module, x):
    """:func:`jacobian_sq_norm` by reverse-mode automatic differentiation, for any encoder.

    Row ``j`` of every sample's Jacobian is the gradient of the batch sum of code unit ``j``
    with respect to the input, as long as a sample's code depends on that sample alone (no
    batch statistics, such as batch normalisation in training mode): one backward pass per
    code unit, ``n_components`` in all. Runs with gradients enabled even where the caller
    disabled them (skorch's validation step), keeping the graph only when the caller wants
    to backpropagate.
    """
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        z = encode(module, x)
        total = x.new_zeros(len(x))
        for j in range(z.shape[1]):
            (grad,) = torch.autograd.grad(
                z[:, j].sum(), x, create_graph=keep_graph, retain_graph=True
            )
            total = total + grad.pow(2).flatten(1).sum(dim=1)
    return total if keep_graph else total.detach()


def jacobian_sq_norm_projection(module, x, n_projections=1, generator=None):
    """An unbiased random-projection estimate of :func:`jacobian_sq_norm`, for any encoder.

    For ``u ~ N(0, I)`` in code space, ``E ||u^T J||^2 = tr(J J^T) = ||J||_F^2``: each
    projection costs one vector-Jacobian product (a backward pass through the encoder, kept
    in the graph so that training backpropagates through it) instead of one per code unit.
    The mean over ``n_projections`` draws (from ``generator``, else torch's global one) is
    returned; its variance shrinks as 1 / n_projections and averages out over batches.
    """
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        z = encode(module, x)
        total = x.new_zeros(len(x))
        for i in range(n_projections):
            u = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            (grad,) = torch.autograd.grad(
                z, x, u, create_graph=keep_graph, retain_graph=i < n_projections - 1 or keep_graph
            )
            total = total + grad.pow(2).flatten(1).sum(dim=1)
    total = total / n_projections
    return total if keep_graph else total.detach()


def weighted_mean(values, weight=None):
    """The mean of ``values`` (one per row), each row counted ``weight`` times (rows of the
    whole data have mean weight 1; see the module's docstring)."""
    return values.mean() if weight is None else (values * weight).mean()


def kl_sparsity(z, target, eps=1e-6, weight=None):
    """``sum_j KL(target || rho_j)`` with ``rho_j`` the batch mean of code unit ``j``.

    The codes must lie in (0, 1) (sigmoid units): ``rho_j`` is a Bernoulli unit's mean
    activation (weighted by ``weight`` when given). It is clipped away from 0 and 1, where
    the divergence is infinite.
    """
    if weight is None:
        rho = z.mean(dim=0)
    else:
        rho = (z * weight[:, None]).sum(dim=0) / weight.sum().clamp_min(1e-12)
    rho = rho.clamp(eps, 1 - eps)
    return (
        target * torch.log(target / rho) + (1 - target) * torch.log((1 - target) / (1 - rho))
    ).sum()


def l1_sparsity(z, weight=None):
    """The batch mean of the codes' L1 norms."""
    return weighted_mean(z.abs().sum(dim=1), weight)


class Reconstruction(nn.Module):
    """Batch mean of ``likelihood.loss(decode(encode(x)), target)``, plus :meth:`penalty`.

    Parameters
    ----------
    likelihood : skae._nn.likelihoods.Gaussian or skae._nn.likelihoods.Bernoulli
        The output distribution.
    """

    def __init__(self, likelihood):
        super().__init__()
        self.likelihood = likelihood

    def penalty(self, module, x, z, weight=None):
        """A regulariser of the batch (a scalar), or None."""
        return None

    def forward(self, module, x, target, weight=None):
        z = encode(module, x)
        # an ensemble's members each minimise their own loss (the mean over members), not
        # the loss of their mean reconstruction, which would let them share the work
        decode = getattr(module, "decode_members", module.decode)
        loss = weighted_mean(self.likelihood.loss(decode(z), target), weight)
        penalty = self.penalty(module, x, z, weight)
        return loss if penalty is None else loss + penalty


class Contractive(Reconstruction):
    """:class:`Reconstruction` plus ``contraction`` times the batch mean of the encoder's
    squared Jacobian norm (Rifai et al. 2011).

    ``estimate``: "exact" is :func:`jacobian_sq_norm`; "projection" is
    :func:`jacobian_sq_norm_projection` with ``n_projections`` draws from ``generator``
    (lent by training); "auto" uses the closed forms where skae's MLP encoder has one and
    projections otherwise.
    """

    def __init__(self, likelihood, contraction=0.1, estimate="auto", n_projections=1):
        super().__init__(likelihood)
        if estimate not in JACOBIAN_ESTIMATES:
            raise ValueError(f"estimate must be one of {JACOBIAN_ESTIMATES}; got {estimate!r}.")
        self.contraction = contraction
        self.estimate = estimate
        self.n_projections = n_projections
        self.generator = None

    def penalty(self, module, x, z, weight=None):
        if self.estimate == "exact":
            norms = jacobian_sq_norm(module, x)
        else:
            norms = None if self.estimate == "projection" else _closed_form(module, x)
            if norms is None:
                norms = jacobian_sq_norm_projection(module, x, self.n_projections, self.generator)
        return self.contraction * weighted_mean(norms, weight)


class Sparse(Reconstruction):
    """:class:`Reconstruction` plus ``weight`` times a sparsity penalty on the codes.

    Parameters
    ----------
    likelihood : skae._nn.likelihoods.Gaussian or skae._nn.likelihoods.Bernoulli
        The output distribution.
    sparsity : {"kl", "l1"}
        :func:`kl_sparsity` towards ``target`` (codes in (0, 1)) or :func:`l1_sparsity`.
    weight : float
        The penalty's weight.
    target : float
        The target mean activation of the KL penalty.
    """

    def __init__(self, likelihood, sparsity="kl", weight=1.0, target=0.05):
        super().__init__(likelihood)
        if sparsity not in SPARSITIES:
            raise ValueError(f"sparsity must be one of {SPARSITIES}; got {sparsity!r}.")
        self.sparsity = sparsity
        self.weight = weight
        self.target = target

    def penalty(self, module, x, z, weight=None):
        if self.sparsity == "kl":
            value = kl_sparsity(z, self.target, weight=weight)
        else:
            value = l1_sparsity(z, weight)
        return self.weight * value


class ELBO(nn.Module):
    """Batch mean of ``-log p(x|z) + beta * KL(q(z|x) || N(0, I))``: minus the ELBO at beta=1.

    One reparameterised draw ``z = mu + exp(logvar / 2) * eps`` per sample from the module's
    ``posterior``, the KL in closed form. ``eps`` comes from the ``generator`` attribute, which
    the trainer sets to a seeded generator on the training device; the objective refuses to
    run without one rather than fall back to torch's global RNG.
    """

    def __init__(self, likelihood, beta=1.0):
        super().__init__()
        self.likelihood = likelihood
        self.beta = beta
        self.generator = None

    def forward(self, module, x, target, weight=None):
        if self.generator is None:
            raise RuntimeError(
                "ELBO samples z and needs a seeded torch.Generator in its `generator` "
                "attribute; it never draws from torch's global RNG."
            )
        mu, logvar = module.posterior(x)
        eps = torch.randn(mu.shape, generator=self.generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        nll = -self.likelihood.log_prob(module.decode(z), target)
        return weighted_mean(nll + self.beta * gaussian_kl(mu, logvar), weight)


class IWAE(nn.Module):
    """Batch mean of ``-log (1/k) sum_j p(x, z_j) / q(z_j | x)``: minus the
    importance-weighted bound of Burda et al. (2016), ``k`` reparameterised draws
    ``z_j = mu + exp(logvar / 2) * eps_j`` per row from the module's ``posterior``.

    The bound is at least the ELBO and tightens as ``k`` grows (in expectation); at
    ``k=1`` it is the ELBO with its KL estimated from the draw (:class:`ELBO`, which uses
    the closed form, is then the lower-variance choice). The draws come from the
    ``generator`` attribute, as :class:`ELBO`'s. Memory is bounded for large ``k``: the
    draws are decoded in groups of at most ``max_elements`` outputs or hidden units, and
    beyond one group each group's activations are recomputed in the backward pass
    (``torch.utils.checkpoint``) instead of kept, so that only the ``k`` log-weights of a
    row stay in memory.
    """

    def __init__(self, likelihood, n_samples=5, max_elements=2**24):
        super().__init__()
        self.likelihood = likelihood
        self.n_samples = n_samples
        self.max_elements = max_elements
        self.generator = None

    def forward(self, module, x, target, weight=None):
        if self.generator is None:
            raise RuntimeError(
                "IWAE samples z and needs a seeded torch.Generator in its `generator` "
                "attribute; it never draws from torch's global RNG."
            )
        mu, logvar = module.posterior(x)
        k = self.n_samples
        eps = torch.randn(
            (k, *mu.shape), generator=self.generator, device=mu.device, dtype=mu.dtype
        )
        group = draws_per_group(module, len(x), target.shape[-1], self.max_elements)
        if group >= k:
            log_w = log_weights(module, mu, logvar, eps, target, self.likelihood)
        else:
            log_w = torch.cat(
                [
                    checkpoint(
                        log_weights,
                        module,
                        mu,
                        logvar,
                        eps[start : start + group],
                        target,
                        self.likelihood,
                        use_reentrant=False,
                    )
                    for start in range(0, k, group)
                ]
            )
        bound = torch.logsumexp(log_w, dim=0) - math.log(k)
        return weighted_mean(-bound, weight)


class CrossEntropy(nn.Module):
    """A classifier's batch mean cross-entropy of the labels, from ``module(x)``'s logits."""

    def forward(self, module, x, target, weight=None):
        return weighted_mean(F.cross_entropy(module(x), target, reduction="none"), weight)
