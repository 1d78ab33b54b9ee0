import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skae import MLP, AutoEncoder
from skae._nn.likelihoods import LIKELIHOODS
from skae._nn.modules import AutoEncoderModule, mlp, mlp_autoencoder
from skae._nn.objectives import (
    Contractive,
    Reconstruction,
    Sparse,
    jacobian_sq_norm,
    jacobian_sq_norm_autograd,
    jacobian_sq_norm_projection,
    kl_sparsity,
    l1_sparsity,
)
from skae.regularized import ContractiveAE, SparseAE

ACTIVATIONS = ["logistic", "tanh", "relu", "identity"]


def autograd_sq_norms(encoder, x, create_graph=False):
    """Reference: each sample's Jacobian from torch.autograd.functional, squared and summed."""
    return torch.stack(
        [
            torch.autograd.functional.jacobian(encoder, row[None], create_graph=create_graph)
            .pow(2)
            .sum()
            for row in x
        ]
    )


def encoder_jacobian_norm(est, X):
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        return jacobian_sq_norm(est.module_, x).mean().item()


def with_encoder(encoder):
    """skae's module around ``encoder`` (the decoder plays no part in the penalty)."""
    return AutoEncoderModule(encoder, torch.nn.Identity())


# The sizes and code activations cover each way the penalty is computed: one layer (closed
# form), one hidden layer with a linear code (closed form), anything else (torch.func).
@pytest.mark.parametrize("sizes", [[5, 3], [5, 4, 3], [5, 6, 4, 3]], ids=["1", "2", "3"])
@pytest.mark.parametrize("code", ["identity", "same"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_penalty_is_the_squared_frobenius_norm_of_the_jacobian(sizes, code, activation):
    torch.manual_seed(0)  # test data only; the library never touches the global RNG
    encoder = mlp(sizes, activation, code if code == "identity" else activation).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    expected = autograd_sq_norms(encoder, x)
    module = with_encoder(encoder)
    assert_allclose(jacobian_sq_norm(module, x).detach(), expected, rtol=1e-10)
    assert_allclose(jacobian_sq_norm_autograd(module, x).detach(), expected, rtol=1e-10)


@pytest.mark.parametrize("sizes", [[5, 4], [5, 4, 3], [5, 6, 4, 3]], ids=["1", "2", "3"])
def test_penalty_backpropagates_and_runs_under_no_grad(sizes):
    torch.manual_seed(0)
    encoder = mlp(sizes, "tanh").double()
    x = torch.randn(7, 5, dtype=torch.float64)
    params = list(encoder.parameters())
    # The code layer's bias does not move the Jacobian: its gradient is zero.
    grad = {"allow_unused": True, "materialize_grads": True}
    got = torch.autograd.grad(jacobian_sq_norm(with_encoder(encoder), x).sum(), params, **grad)
    expected = torch.autograd.grad(
        autograd_sq_norms(encoder, x, create_graph=True).sum(), params, **grad
    )
    for g, e in zip(got, expected, strict=True):
        assert_allclose(g, e, rtol=1e-8, atol=1e-12)
    with torch.no_grad():  # where skorch computes validation losses
        assert_allclose(
            jacobian_sq_norm(with_encoder(encoder), x), autograd_sq_norms(encoder, x), rtol=1e-10
        )


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_objectives_add_the_weighted_penalty_to_the_reconstruction_loss(loss):
    gen = torch.Generator().manual_seed(0)
    module = AutoEncoderModule(mlp([5, 4, 3], "tanh", "logistic"), mlp([3, 4, 5], "tanh"))
    x = torch.rand(6, 5, generator=gen)
    likelihood = LIKELIHOODS[loss]
    z = module.encode(x)
    recon = likelihood.loss(module.decode(z), x).mean()
    assert_allclose(Reconstruction(likelihood)(module, x, x).detach(), recon.detach())
    assert_allclose(
        Contractive(likelihood, 0.5, "exact")(module, x, x).detach(),
        (recon + 0.5 * jacobian_sq_norm(module, x).mean()).detach(),
        rtol=1e-6,
    )
    assert_allclose(
        Sparse(likelihood, "kl", 2.0, 0.1)(module, x, x).detach(),
        (recon + 2.0 * kl_sparsity(z, 0.1)).detach(),
        rtol=1e-6,
    )
    assert_allclose(
        Sparse(likelihood, "l1", 2.0)(module, x, x).detach(),
        (recon + 2.0 * l1_sparsity(z)).detach(),
        rtol=1e-6,
    )
    # the target, not the (corrupted) input, is what the reconstruction is scored against
    noisy = x + 0.1
    assert_allclose(
        Reconstruction(likelihood)(module, noisy, x).detach(),
        likelihood.loss(module(noisy), x).mean().detach(),
        rtol=1e-6,
    )


def test_larger_contraction_gives_a_smaller_jacobian(digits):
    X, X_test, *_ = digits
    params = {"n_components": 4, "max_iter": 60, "random_state": 0}
    fits = [ContractiveAE(contraction=c, **params).fit(X) for c in (0.0, 1.0, 10.0)]
    norms = [encoder_jacobian_norm(est, X_test) for est in fits]
    assert norms[0] > 1.5 * norms[1] > 1.5**2 * norms[2], norms
    # Not only a rescaling of the codes (which the free decoder could undo): the Jacobian
    # also shrinks relative to the codes' spread.
    relative = [
        n / est.transform(X_test).var(axis=0).sum() for n, est in zip(norms, fits, strict=True)
    ]
    assert relative[2] < 0.8 * relative[0], relative


def test_zero_contraction_is_the_plain_autoencoder(digits):
    X, *_ = digits
    params = {"n_components": 3, "max_iter": 3, "random_state": 0}
    assert_array_equal(
        ContractiveAE(contraction=0.0, **params).fit(X).transform(X),
        AutoEncoder(alpha=0.0, **params).fit(X).transform(X),
    )


def test_validation_loss_includes_the_penalty_of_a_deep_encoder(digits):
    X, *_ = digits
    params = {
        "n_components": 2,
        "hidden_layer_sizes": (16, 8),
        "activation": "tanh",
        "max_iter": 3,
        "early_stopping": True,
        "random_state": 0,
    }
    free = ContractiveAE(contraction=0.0, **params).fit(X)
    penalised = ContractiveAE(contraction=1.0, **params).fit(X)
    # With the same split and initial weights, the penalised validation loss adds a
    # positive term; skorch computes it under no_grad through torch.func.
    assert np.isfinite(penalised.validation_scores_).all()
    assert penalised.validation_scores_[0] < free.validation_scores_[0]


def test_kl_sparsity_is_the_bernoulli_divergence():
    z = torch.tensor([[0.1, 0.9], [0.3, 0.5]], dtype=torch.float64)
    rho, rho_hat = 0.05, np.array([0.2, 0.7])
    expected = rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))
    assert kl_sparsity(z, rho).item() == pytest.approx(expected.sum(), rel=1e-12)
    assert kl_sparsity(torch.full((4, 3), 0.05), 0.05).item() == pytest.approx(0, abs=1e-6)
    assert np.isfinite(kl_sparsity(torch.zeros(2, 3), 0.05).item())  # clipped, not inf
    assert l1_sparsity(torch.tensor([[1.0, -2.0], [0.0, 3.0]])).item() == pytest.approx(3.0)


def test_kl_moves_the_mean_activation_toward_the_target(digits01):
    X, X_test = digits01[:1400], digits01[1400:]
    params = {"n_components": 16, "loss": "bce", "max_iter": 30, "random_state": 0}
    target = 0.05
    gaps = []
    for weight in (0.0, 0.3, 3.0):
        sae = SparseAE(sparsity="kl", sparsity_weight=weight, sparsity_target=target, **params).fit(
            X
        )
        Z = sae.transform(X_test)
        assert Z.min() > 0 and Z.max() < 1  # sigmoid codes
        gaps.append(abs(Z.mean() - target))
    assert gaps[0] > 1.5 * gaps[1] > 1.5**2 * gaps[2], gaps


def test_l1_gives_more_zero_codes_than_no_penalty(digits):
    X, X_test, *_ = digits
    params = {"n_components": 16, "sparsity": "l1", "max_iter": 30, "random_state": 0}
    zero_share = [
        np.mean(SparseAE(sparsity_weight=w, **params).fit(X).transform(X_test) == 0)
        for w in (0.0, 1.0)
    ]
    assert zero_share[1] > zero_share[0] + 0.1, zero_share


@pytest.mark.parametrize(
    "Estimator, params, match",
    [
        (ContractiveAE, {"contraction": -1.0}, "'contraction' parameter"),
        (SparseAE, {"sparsity": "l2"}, "'sparsity' parameter"),
        (SparseAE, {"sparsity_target": 1.0}, "'sparsity_target' parameter"),
        (SparseAE, {"sparsity_weight": -0.1}, "'sparsity_weight' parameter"),
    ],
)
def test_invalid_parameters_are_errors(digits, Estimator, params, match):
    with pytest.raises(ValueError, match=match):
        Estimator(**params).fit(digits[0])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_projection_estimate_is_unbiased(activation):
    torch.manual_seed(0)
    module = mlp_autoencoder(12, (9, 7), 4, activation)
    x = torch.randn(16, 12)
    exact = jacobian_sq_norm_autograd(module, x).detach()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        draws = torch.stack([jacobian_sq_norm_projection(module, x, 1, g) for _ in range(4000)])
    mean, se = draws.mean(0), draws.std(0) / np.sqrt(len(draws))
    # every sample's estimate within 4 standard errors of the exact value
    assert torch.all((mean - exact).abs() < 4 * se + 1e-6), (mean, exact, se)
    assert float(draws.var(0).mean()) > 0  # a real estimate, not the exact value


def test_projection_estimate_trains_through_the_penalty():
    torch.manual_seed(0)
    module = mlp_autoencoder(12, (9, 7), 4, "tanh")
    x = torch.randn(16, 12)
    g = torch.Generator().manual_seed(0)
    jacobian_sq_norm_projection(module, x, 3, g).mean().backward()
    grads = [p.grad for p in module.encoder.parameters() if p.ndim > 1]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(float(gr.abs().sum()) > 0 for gr in grads)


def test_contractive_jacobian_options(digits01):
    # a random start (the PCA start barely moves in these few steps of warm-up)
    network = MLP(hidden_layer_sizes=(16, 8))
    kw = {
        "n_components": 3,
        "module": network,
        "contraction": 1.0,
        "max_iter": 15,
        "random_state": 0,
    }
    exact = ContractiveAE(jacobian="exact", **kw).fit(digits01)
    projected = ContractiveAE(jacobian="projection", n_projections=2, **kw).fit(digits01)
    repeat = ContractiveAE(jacobian="projection", n_projections=2, **kw).fit(digits01)
    assert_array_equal(projected.transform(digits01), repeat.transform(digits01))
    plain = AutoEncoder(3, module=network, max_iter=15, random_state=0).fit(digits01)

    def penalty(est):
        x = torch.as_tensor(digits01, dtype=torch.float32)
        return float(jacobian_sq_norm_autograd(est.module_, x).detach().mean())

    # both shrink the Jacobian against the unpenalised autoencoder
    assert penalty(exact) < 0.7 * penalty(plain)
    assert penalty(projected) < 0.7 * penalty(plain)
