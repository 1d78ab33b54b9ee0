"""Regularisation penalties of the contractive and sparse autoencoders: pure torch.

The training engine calls ``criterion(module(x), x)``, so whatever a penalty needs travels in
the module's output:

* the contractive penalty needs the encoder's Jacobian at each input, so
  :class:`ContractiveModule`'s ``forward`` returns ``(eta, z, ||J_f(x)||_F^2)`` and
  :class:`ContractiveLoss` adds the batch mean of the third output;
* a sparsity penalty needs only the codes ``z``, the second output of every autoencoder
  module, so :class:`SparsityLoss` works with the plain module.

``encode`` and ``decode`` are untouched: ``transform`` never pays for a Jacobian.
"""

import torch
from torch import nn

from .losses import ReconstructionLoss
from .modules import AutoEncoderModule

# f'(a) from the pre-activation ``a`` and the output ``h = f(a)`` of an elementwise activation.
_DERIVATIVES = {
    nn.Identity: lambda a, h: torch.ones_like(h),
    nn.Sigmoid: lambda a, h: h * (1 - h),
    nn.Tanh: lambda a, h: 1 - h * h,
    nn.ReLU: lambda a, h: (a > 0).to(h.dtype),  # autograd's convention: f'(0) = 0
}

SPARSITIES = ("kl", "l1")


def _linear_stack(encoder):
    """``[(linear, activation), ...]`` when ``encoder`` is a ``Sequential`` of ``Linear``
    layers each followed by a known elementwise activation (as ``mlp`` builds), else None."""
    if not isinstance(encoder, nn.Sequential) or len(encoder) % 2:
        return None
    pairs = list(zip(encoder[::2], encoder[1::2]))
    if all(isinstance(lin, nn.Linear) and type(act) in _DERIVATIVES for lin, act in pairs):
        return pairs
    return None


def _derivative(linear, activation, x):
    a = linear(x)
    return _DERIVATIVES[type(activation)](a, activation(a))


def jacobian_sq_norm(encoder, x):
    """Squared Frobenius norm of the encoder's Jacobian at each row of ``x``, shape (n,).

    Exact for any encoder and differentiable with respect to its parameters (training
    backpropagates through it). Two shapes of encoder have closed forms that never build
    the Jacobian, with ``d = f'(W_1 x + b_1)``:

    * one layer ``f(W x + b)``: ``sum_j d_j^2 ||W_j||^2`` (Rifai et al. 2011);
    * one hidden layer and a linear code, ``W_2 f(W_1 x + b_1) + b_2`` (:class:`AutoEncoder`'s
      default encoder): ``d^T G d`` with ``G = (W_1 W_1^T) * (W_2^T W_2)`` (elementwise), since
      ``||W_2 diag(d) W_1||_F^2 = tr(diag(d) W_2^T W_2 diag(d) W_1 W_1^T)``; its cost does not
      grow with the code's size.

    Any other encoder goes through ``torch.func``: the per-sample Jacobian by reverse mode
    (one vector-Jacobian product per code unit), batched with ``vmap``. Function transforms
    ignore an enclosing ``torch.no_grad()``, so this also runs where skorch computes
    validation losses.
    """
    layers = _linear_stack(encoder)
    if layers is not None and len(layers) == 1:
        ((linear, activation),) = layers
        d = _derivative(linear, activation, x)
        return d.pow(2) @ linear.weight.pow(2).sum(dim=1)
    if layers is not None and len(layers) == 2 and isinstance(layers[1][1], nn.Identity):
        (first, activation), (second, _) = layers
        d = _derivative(first, activation, x)
        gram = (first.weight @ first.weight.T) * (second.weight.T @ second.weight)
        return ((d @ gram) * d).sum(dim=1)
    return jacobian_sq_norm_autograd(encoder, x)


def jacobian_sq_norm_autograd(encoder, x):
    """:func:`jacobian_sq_norm` by automatic differentiation, for any encoder."""
    # vmap hands the function single rows; the encoder expects a batch dimension.
    jacobian = torch.func.vmap(torch.func.jacrev(lambda row: encoder(row[None])[0]))(x)
    return jacobian.pow(2).sum(dim=(1, 2))


class ContractiveModule(AutoEncoderModule):
    """An autoencoder whose ``forward`` also returns each sample's contractive penalty.

    ``forward(x) -> (eta, z, jacobian_sq_norm(encoder, x))``; ``encode``, ``decode`` and
    ``mean`` are those of :class:`~skae.modules.AutoEncoderModule`.
    """

    def forward(self, x):
        eta, z = super().forward(x)
        return eta, z, jacobian_sq_norm(self.encoder, x)


class ContractiveLoss(ReconstructionLoss):
    """Reconstruction loss plus ``contraction`` times the batch mean of ``||J_f(x)||_F^2``."""

    def __init__(self, loss="mse", contraction=0.1):
        super().__init__(loss)
        self.contraction = contraction

    def forward(self, y_pred, y_true):
        return super().forward(y_pred, y_true) + self.contraction * y_pred[2].mean()


def kl_sparsity(z, target, eps=1e-6):
    """``sum_j KL(target || rho_j)`` with ``rho_j`` the batch mean of code unit ``j``.

    The codes must lie in (0, 1) (sigmoid units): ``rho_j`` is a Bernoulli unit's mean
    activation. It is clipped away from 0 and 1, where the divergence is infinite.
    """
    rho = z.mean(dim=0).clamp(eps, 1 - eps)
    return (
        target * torch.log(target / rho) + (1 - target) * torch.log((1 - target) / (1 - rho))
    ).sum()


def l1_sparsity(z):
    """The batch mean of the codes' L1 norms."""
    return z.abs().sum(dim=1).mean()


class SparsityLoss(ReconstructionLoss):
    """Reconstruction loss plus ``weight`` times a sparsity penalty on the codes.

    Parameters
    ----------
    loss : {"mse", "bce"}
        The reconstruction loss.
    sparsity : {"kl", "l1"}
        :func:`kl_sparsity` towards ``target`` (sigmoid codes) or :func:`l1_sparsity`.
    weight : float
        The penalty's weight.
    target : float
        The target mean activation of the KL penalty.
    """

    def __init__(self, loss="mse", sparsity="kl", weight=1.0, target=0.05):
        super().__init__(loss)
        if sparsity not in SPARSITIES:
            raise ValueError(f"sparsity must be one of {SPARSITIES}; got {sparsity!r}.")
        self.sparsity = sparsity
        self.weight = weight
        self.target = target

    def penalty(self, z):
        return kl_sparsity(z, self.target) if self.sparsity == "kl" else l1_sparsity(z)

    def forward(self, y_pred, y_true):
        return super().forward(y_pred, y_true) + self.weight * self.penalty(y_pred[1])
