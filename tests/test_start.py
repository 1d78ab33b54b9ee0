"""The PCA start (skae._nn.start) and the rules training follows for it: which weights
``alpha`` shrinks, whatever the solver, and the warm-up of Adam's step size."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA

from skae import MLP, AutoEncoder, DenoisingAE, LinearAE, StackedAE, VariationalAE
from skae._nn.modules import mlp_autoencoder
from skae._nn.objectives import Reconstruction
from skae._nn.start import WARMUP_STEPS, beats_start, decayed_parameters, linear_skips

FAST = {"max_iter": 15, "random_state": 0}


def weight_norm(module):
    return sum(float(p.detach().pow(2).sum()) for p in module.parameters() if p.ndim > 1)


def test_alpha_shrinks_the_weights_and_only_the_weights(digits01):
    plain = AutoEncoder(4, module=MLP(), alpha=0.0, **FAST).fit(digits01)
    decayed = AutoEncoder(4, module=MLP(), alpha=0.3, **FAST).fit(digits01)
    assert weight_norm(decayed.module_) < 0.8 * weight_norm(plain.module_)
    groups = decayed.net_.optimizer_.param_groups
    assert {g["weight_decay"] for g in groups} == {0.3, 0.0}
    for group in groups:
        dims = {p.ndim for p in group["params"]}
        assert dims == ({2} if group["weight_decay"] else {1})


def test_alpha_with_lbfgs_joins_the_loss(digits01):
    plain = LinearAE(2, solver="lbfgs", max_iter=5, random_state=0).fit(digits01)
    decayed = LinearAE(2, solver="lbfgs", alpha=1.0, max_iter=5, random_state=0).fit(digits01)
    assert decayed.loss_curve_[-1] > plain.loss_curve_[-1]  # the penalty is in the loss
    assert weight_norm(decayed.module_) <= weight_norm(plain.module_) + 1e-6
    with pytest.raises(ValueError, match="solver='em'"):
        LinearAE(2, alpha=1.0).fit(digits01)


def test_the_default_network_starts_at_pca(digits):
    X, X_test, *_ = digits
    ae = AutoEncoder(n_components=3, max_iter=0, random_state=0).fit(X)
    pca = PCA(n_components=3).fit(X)
    # before any step the module is PCA: the same codes (up to sign) and reconstructions
    assert_allclose(np.abs(ae.transform(X_test)), np.abs(pca.transform(X_test)), atol=1e-4)
    assert_allclose(
        ae.inverse_transform(ae.transform(X_test)),
        pca.inverse_transform(pca.transform(X_test)),
        atol=1e-4,
    )
    assert ae.net_.warmup_steps == 200
    assert AutoEncoder(module=MLP()).set_params(max_iter=0).fit(X).net_.warmup_steps == 0
    trained = AutoEncoder(n_components=3, max_iter=30, random_state=0).fit(X)
    errors = [
        ((X_test - m.inverse_transform(m.transform(X_test))) ** 2).sum(1).mean()
        for m in (trained, pca)
    ]
    assert errors[0] < errors[1]  # the nonlinear layers improved on the start


def test_warmup_scales_the_first_steps():
    from skae._engine.net import AutoEncoderNet
    from skae._nn.likelihoods import Gaussian
    from skae._nn.objectives import Reconstruction

    rates = []

    class Spy(torch.optim.Adam):
        def step(self, closure=None):
            rates.append(self.param_groups[0]["lr"])
            return super().step(closure)

    net = AutoEncoderNet(
        mlp_autoencoder(4, (3,), 2, "relu"),
        criterion=Reconstruction(Gaussian()),
        optimizer=Spy,
        lr=0.1,
        max_epochs=1,
        batch_size=10,
        warmup_steps=4,
        train_split=None,
    )
    net.fit(np.random.RandomState(0).normal(size=(60, 4)).astype(np.float32))
    assert_allclose(rates, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    assert net.optimizer_.param_groups[0]["lr"] == 0.1


def test_one_rule_decides_which_weights_alpha_shrinks_for_every_solver(digits01):
    # the default network: a PCA start's linear maps beside the stacks
    adam = AutoEncoder(3, alpha=0.1, max_iter=1, random_state=0).fit(digits01)
    shrunk = {id(p) for p in decayed_parameters(adam.module_)}
    skips = linear_skips(adam.module_)
    start = {id(p) for skip in skips[:2] for p in skip.linear.parameters()}
    assert start and not start & shrunk
    assert shrunk == {id(p) for p in adam.module_.parameters() if p.ndim > 1} - start
    for group in adam.net_.optimizer_.param_groups:  # Adam's groups follow the rule
        assert all((id(p) in shrunk) == bool(group["weight_decay"]) for p in group["params"])
    # L-BFGS's penalty in the loss follows the same rule
    lbfgs = AutoEncoder(3, alpha=0.1, solver="lbfgs", max_iter=1, random_state=0).fit(digits01)
    net, x = lbfgs.net_, torch.as_tensor(digits01[:50], dtype=torch.float32)
    step = net.train_step_single((x, x))["loss"].detach()  # the loss it differentiates
    with torch.no_grad():
        plain = net.criterion_on((x, x))
        penalty = 0.05 * sum(float(p.pow(2).sum()) for p in decayed_parameters(net.module_))
    assert_allclose(float(step - plain), penalty, rtol=1e-5)


class _PenaltyInTheLoss(Reconstruction):
    """The L2 penalty written as a term of the loss, as scikit-learn's MLP has it."""

    def __init__(self, likelihood, alpha):
        super().__init__(likelihood)
        self.alpha = alpha

    def penalty(self, module, x, z, weight=None):
        return 0.5 * self.alpha * sum(w.pow(2).sum() for w in decayed_parameters(module))


class _PenalisedAE(AutoEncoder):
    def _objective(self):
        return _PenaltyInTheLoss(self._likelihood, 0.05)


def test_alpha_in_the_optimizer_step_is_the_penalty_in_the_loss(digits01):
    """Adam's coupled weight_decay adds alpha * w to the gradient: the gradient of
    alpha / 2 * ||w||^2 in the loss, so both give the same fit to float tolerance."""
    kwargs = {"module": MLP((16,)), "max_iter": 3, "early_stopping": False, "random_state": 0}
    in_step = AutoEncoder(3, alpha=0.05, **kwargs).fit(digits01)
    in_loss = _PenalisedAE(3, alpha=0.0, **kwargs).fit(digits01)
    for a, b in zip(in_step.module_.parameters(), in_loss.module_.parameters(), strict=True):
        assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_warmup_only_from_a_pca_start(digits01):
    assert AutoEncoder(3, max_iter=0).fit(digits01).net_.warmup_steps == WARMUP_STEPS
    assert AutoEncoder(3, module=MLP(), max_iter=0).fit(digits01).net_.warmup_steps == 0
    assert VariationalAE(3, max_iter=0).fit(digits01).net_.warmup_steps == 0


def test_training_beats_its_start_only_by_more_than_the_noise():
    rng = np.random.RandomState(0)
    noise = rng.normal(size=400)
    ones = np.ones(400)
    assert beats_start(1.0 + noise, ones)  # a gain of 20 standard errors
    assert not beats_start(0.05 + noise, ones)  # one standard error: noise
    assert not beats_start(-1.0 + noise, ones)  # worse than the start
    # weights count: the same gains judged on ten effective rows are noise
    weights = np.r_[np.ones(10), np.full(390, 1e-9)]
    assert not beats_start(np.r_[noise[:10] - noise[:10].mean(), 1.0 + noise[10:]], weights)
    assert beats_start(noise, np.zeros(400))  # nothing to judge by: training is kept


@pytest.mark.parametrize("Estimator", [AutoEncoder, StackedAE, DenoisingAE])
def test_only_a_gaussian_likelihood_starts_at_pca(Estimator, digits01):
    """Under loss="bce" the decoder's output is a logit: PCA's reconstruction through a
    sigmoid is no start (on MNIST 174.9 test SSE per image against PCA's 13.97), so the
    network starts at random; under loss="mse" it starts at PCA's solution."""
    kw = {"n_components": 3, "max_iter": 0}
    if Estimator is StackedAE:
        kw["pretrain_iter"] = 1
    assert linear_skips(Estimator(**kw).fit(digits01).module_) is not None
    bernoulli = Estimator(**kw, loss="bce").fit(digits01)
    assert linear_skips(bernoulli.module_) is None
    assert bernoulli.net_.warmup_steps == 0
