"""The variational autoencoder: its bounds are log-likelihoods in nats, its randomness seeded."""

import copy
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch import nn

from skae._nn.estimates import (
    _uniform,
    elbo,
    gaussian_kl,
    gaussian_log_density,
    importance_weighted_log_likelihood,
    keyed_standard_normal,
    row_keys,
)
from skae._nn.likelihoods import LIKELIHOODS
from skae._nn.modules import LOGVAR_MAX, VAEModule
from skae._nn.objectives import ELBO, IWAE
from skae.variational import VariationalAE

BERNOULLI = {"n_components": 8, "loss": "bce", "random_state": 0}
GAUSSIAN, BERNOULLI_LIKELIHOOD = LIKELIHOODS["mse"], LIKELIHOODS["bce"]


@pytest.fixture(scope="module")
def split01(digits01):
    return digits01[:1400], digits01[1400:]


@pytest.fixture(scope="module")
def bernoulli_vae(split01):
    """Default training on 1,400 digits scaled to [0, 1]."""
    return VariationalAE(**BERNOULLI).fit(split01[0])


def _double(module):
    """A float64 copy of a fitted module, as the estimator evaluates float64 input."""
    return copy.deepcopy(module).double()


# --- the bounds ------------------------------------------------------------------------


def test_elbo_below_importance_weighted_below_zero(bernoulli_vae, split01):
    X_test = split01[1]
    lower = bernoulli_vae.score_samples(X_test)
    iw = bernoulli_vae.log_likelihood(X_test)
    # Same 50 draws per row: Jensen's inequality holds row by row, not only on average.
    assert np.all(lower <= iw)
    # Bernoulli probabilities are at most 1, so log p(x) <= 0: here far below, as the grey
    # levels of digits/16 cost their entropy whatever the model.
    assert np.all(iw < -5)
    one = bernoulli_vae.log_likelihood(X_test, n_importance_samples=1)
    many = bernoulli_vae.log_likelihood(X_test, n_importance_samples=500)
    # K=1 is an unbiased estimate of the ELBO; more draws tighten the bound.
    assert abs(one.mean() - lower.mean()) < 0.15
    assert many.mean() > one.mean() + 0.1
    assert many.mean() == pytest.approx(iw.mean(), abs=0.1)


def test_estimates_are_exact_when_q_is_the_true_posterior():
    """A linear Gaussian decoder with the exact posterior as encoder: log p(x) is known.

    p(z) = N(0, I), p(x|z) = N(Wz + b, I) gives p(x) = N(b, W W^T + I) and the posterior
    N(S W^T (x - b), S) with S = (I + W^T W)^-1, diagonal for orthogonal columns of W. Then
    every importance weight equals p(x): the ELBO and the IW estimate are exact for any
    draws, which checks every constant (2 pi, the prior, log q).
    """
    rng = np.random.RandomState(0)
    d, k = 6, 2
    W = np.linalg.qr(rng.normal(size=(d, k)))[0] * np.array([3.0, 0.5])
    b = rng.normal(size=d)
    S = np.diag(1 / (1 + (W**2).sum(axis=0)))
    module = VAEModule(nn.Identity(), nn.Linear(d, k), nn.Linear(d, k), nn.Linear(k, d)).double()
    logvar = np.log(np.diag(S))
    with torch.no_grad():
        module.mean_head.weight.copy_(torch.as_tensor(S @ W.T))
        module.mean_head.bias.copy_(torch.as_tensor(-S @ W.T @ b))
        module.logvar_head.weight.zero_()
        # undo the soft upper bound: logvar = LOGVAR_MAX - softplus(LOGVAR_MAX - raw)
        raw = LOGVAR_MAX - np.log(np.expm1(LOGVAR_MAX - logvar))
        module.logvar_head.bias.copy_(torch.as_tensor(raw))
        module.decoder.weight.copy_(torch.as_tensor(W))
        module.decoder.bias.copy_(torch.as_tensor(b))
    X = rng.normal(size=(200, d)) * 2
    exact = stats.multivariate_normal(b, W @ W.T + np.eye(d)).logpdf(X)
    x = torch.as_tensor(X)
    with torch.no_grad():
        assert_allclose(elbo(module, x, 7, 1, GAUSSIAN).numpy(), exact, rtol=1e-10)
        for n_draws in (1, 50):
            iw = importance_weighted_log_likelihood(module, x, n_draws, 2, GAUSSIAN)
            assert_allclose(iw.numpy(), exact, rtol=1e-10)
        # A worse encoder: the ELBO drops below log p(x) and the IW estimate climbs back.
        module.mean_head.bias.add_(0.5)
        worse = elbo(module, x, 200, 3, GAUSSIAN).numpy()
        iw_many = importance_weighted_log_likelihood(module, x, 2000, 3, GAUSSIAN).numpy()
    assert np.mean(worse) < np.mean(iw_many) < np.mean(exact) + 0.01
    assert np.mean(exact - iw_many) < 0.1 * np.mean(exact - worse)


def test_closed_form_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=g, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 5, 3, generator=g, dtype=torch.float64)
    monte_carlo = (gaussian_log_density(z, mu, logvar) - gaussian_log_density(z)).mean(0)
    assert_allclose(gaussian_kl(mu, logvar).numpy(), monte_carlo.numpy(), rtol=0.02)
    assert_allclose(gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).numpy(), [0.0])


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_log_likelihoods_are_normalised_densities(loss):
    rng = np.random.RandomState(0)
    eta = rng.normal(size=(4, 5))
    x = rng.randint(0, 2, size=(4, 5)).astype(float)
    if loss == "mse":
        x = rng.normal(size=(4, 5))
        expected = [
            stats.multivariate_normal(e, np.eye(5)).logpdf(xi) for e, xi in zip(eta, x, strict=True)
        ]
    else:
        expected = stats.bernoulli(1 / (1 + np.exp(-eta))).logpmf(x).sum(axis=1)
    got = LIKELIHOODS[loss].log_prob(torch.as_tensor(eta), torch.as_tensor(x))
    assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_gaussian_elbo_beats_linear_model_with_the_same_noise(digits, global_random_seed):
    """Default parameters on standardised digits: the ELBO is a density in nats."""
    X_train, X_test, *_ = digits
    vae = VariationalAE(random_state=global_random_seed).fit(X_train)
    lower = vae.score_samples(X_test)
    d = X_test.shape[1]
    # log p(x|z) <= -(d/2) log(2 pi) for a unit-variance Gaussian: no bound can exceed it.
    assert np.all(lower < -0.5 * d * math.log(2 * math.pi))
    # Probabilistic PCA with the same unit noise variance, the best linear decoder.
    pca = PCA(n_components=2).fit(X_train)
    W = pca.components_.T * np.sqrt(np.maximum(pca.explained_variance_ - 1, 0))
    linear = stats.multivariate_normal(pca.mean_, W @ W.T + np.eye(d)).logpdf(X_test).mean()
    assert vae.score(X_test) > linear + 1.5  # measured at seed 0: -77.7 against -81.1
    assert vae.log_likelihood(X_test).mean() > vae.score(X_test)


def test_importance_weighted_estimate_improves_with_training(split01):
    X_train, X_test = split01
    short = VariationalAE(**BERNOULLI, max_iter=2).fit(X_train)
    longer = VariationalAE(**BERNOULLI, max_iter=40).fit(X_train)
    # measured: -27.9 and -24.3 nats
    assert longer.log_likelihood(X_test).mean() > short.log_likelihood(X_test).mean() + 2


def test_score_samples_is_the_elbo_with_beta_one(split01):
    """An independent estimate: closed-form KL and torch's own normal draws."""
    X_train, X_test = split01
    vae = VariationalAE(**BERNOULLI, beta=0.5, max_iter=30).fit(X_train)
    module, x = _double(vae.module_), torch.as_tensor(X_test[:200])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        mu, logvar = module.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(
            1000, *mu.shape, generator=g, dtype=torch.float64
        )
        reference = (
            LIKELIHOODS["bce"].log_prob(module.decode(z), x).mean(0) - gaussian_kl(mu, logvar)
        ).numpy()
        kl = gaussian_kl(mu, logvar).numpy()
    got = vae.score_samples(X_test[:200])
    assert kl.mean() > 1  # a beta-weighted KL would be off by half the KL
    assert np.mean(got) == pytest.approx(np.mean(reference), abs=0.05)
    assert np.max(np.abs(got - reference)) < 1.0


# --- the estimator's behaviour --------------------------------------------------------


def test_sample_is_seeded_and_in_the_data_range(bernoulli_vae, split01):
    X = bernoulli_vae.sample(5, random_state=1)
    assert X.shape == (5, 64)
    assert X.min() >= 0 and X.max() <= 1
    assert_array_equal(bernoulli_vae.sample(5, random_state=1), X)
    assert not np.allclose(bernoulli_vae.sample(5, random_state=2), X)
    # without a random_state: the estimator's (0 here)
    assert_array_equal(bernoulli_vae.sample(3), bernoulli_vae.sample(3, random_state=0))
    # decoded prior draws reproduce the data's mean image (measured: 0.035 at worst)
    many = bernoulli_vae.sample(2000, random_state=0)
    assert np.abs(many.mean(axis=0) - split01[0].mean(axis=0)).max() < 0.08


def test_transform_is_the_posterior_mean(bernoulli_vae, split01):
    X = split01[1]
    Z = bernoulli_vae.transform(X)
    assert_array_equal(bernoulli_vae.transform(X), Z)
    module = _double(bernoulli_vae.module_)
    with torch.no_grad():
        mu, _ = module.posterior(torch.as_tensor(X))
        mean = torch.sigmoid(module.decode(torch.as_tensor(Z))).numpy()
    assert_allclose(Z, mu.numpy(), rtol=1e-12)
    assert_allclose(bernoulli_vae.inverse_transform(Z), mean, rtol=1e-12)


def test_estimates_depend_on_the_row_only(bernoulli_vae, split01):
    X = split01[1]
    iw = bernoulli_vae.log_likelihood(X)
    assert_array_equal(bernoulli_vae.log_likelihood(X[10:20]), iw[10:20])
    assert_allclose(bernoulli_vae.log_likelihood(X[::-1].copy())[::-1], iw, rtol=1e-12)
    assert not np.array_equal(bernoulli_vae.log_likelihood(X, random_state=5), iw)
    single = bernoulli_vae.log_likelihood(X.astype(np.float32))
    assert single.dtype == np.float32
    assert_allclose(single, iw, rtol=1e-5)  # same draws in both precisions
    module, x = _double(bernoulli_vae.module_), torch.as_tensor(X)
    with torch.no_grad():  # memory-bounded groups of draws give the same numbers
        one_by_one = importance_weighted_log_likelihood(
            module, x, 30, 0, BERNOULLI_LIKELIHOOD, max_elements=1
        )
        at_once = importance_weighted_log_likelihood(module, x, 30, 0, BERNOULLI_LIKELIHOOD)
    assert_allclose(one_by_one.numpy(), at_once.numpy(), rtol=1e-12)


def test_fit_is_reproducible_and_leaves_global_rngs_alone(split01):
    X = split01[0][:300]
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    params = {**BERNOULLI, "max_iter": 3}
    a = VariationalAE(**params).fit(X)
    b = VariationalAE(**params).fit(X)
    assert_array_equal(a.transform(X), b.transform(X))
    assert_array_equal(a.score_samples(X), b.score_samples(X))
    a.sample(3), a.log_likelihood(X)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    other = VariationalAE(**{**params, "random_state": 1}).fit(X)
    assert not np.allclose(other.transform(X), a.transform(X))


def test_larger_beta_gives_a_smaller_kl(split01):
    X = split01[0]

    def mean_kl(beta):
        vae = VariationalAE(**BERNOULLI, beta=beta, max_iter=30).fit(X)
        with torch.no_grad():
            return gaussian_kl(*vae.module_.posterior(torch.as_tensor(X).float())).mean().item()

    kl = [mean_kl(beta) for beta in (0.5, 1.0, 4.0)]
    assert kl[0] > kl[1] > 2 * kl[2]


def test_warm_start_continues_training(split01):
    X = split01[0][:300]
    vae = VariationalAE(**BERNOULLI, max_iter=2, warm_start=True).fit(X)
    first = vae.loss_curve_[-1]
    vae.fit(X)
    assert vae.n_iter_ == 4
    assert vae.loss_curve_[-1] < first


def test_unscaled_input_stays_finite(rng):
    # A random log-variance head on inputs near 100 starts at log-variances in the hundreds.
    X = rng.normal(loc=100, size=(100, 2))
    vae = VariationalAE(max_iter=5, random_state=0).fit(X)
    assert np.isfinite(vae.score_samples(X)).all()


def test_elbo_objective_needs_a_generator_and_repeats_with_one():
    module = VAEModule(nn.Identity(), nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(2, 3))
    objective, x = ELBO(GAUSSIAN), torch.zeros(4, 3)
    with pytest.raises(RuntimeError, match="needs a seeded torch.Generator"):
        objective(module, x, x)
    objective.generator = torch.Generator().manual_seed(0)
    first = objective(module, x, x)
    assert not torch.equal(objective(module, x, x), first)  # a fresh draw of z
    objective.generator.manual_seed(0)
    assert torch.equal(objective(module, x, x), first)


def test_keyed_draws_are_independent_standard_normals():
    x = torch.as_tensor(np.random.RandomState(0).rand(1000, 10))
    keys = row_keys(x, seed=0)
    assert torch.equal(row_keys(x[100:200], seed=0), keys[100:200])
    assert torch.equal(row_keys(x.float(), seed=0), keys)
    assert (row_keys(x, seed=1) != keys).all()
    e = keyed_standard_normal(keys, 0, 100, 6, torch.float64)  # (draws, rows, dims)
    assert torch.equal(keyed_standard_normal(keys, 40, 60, 6, torch.float64), e[40:60])
    flat = e.flatten().numpy()
    assert abs(flat.mean()) < 0.01 and abs(flat.var() - 1) < 0.01
    assert stats.kstest(flat[:100_000], "norm").pvalue > 0.01
    for a, b in [(e[1:], e[:-1]), (e[:, 1:], e[:, :-1]), (e[..., 1:], e[..., :-1])]:
        assert abs(np.corrcoef(a.flatten(), b.flatten())[0, 1]) < 0.01
    # the top and bottom hash values stay inside (0, 1) in float32: no infinite draws
    u = _uniform(torch.tensor([0, 2**32 - 1]), torch.float32)
    assert 0 < u[0] and u[1] < 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda vae, X: vae.log_likelihood(X, n_importance_samples=0), "n_importance_samples"),
        (lambda vae, X: vae.sample(0), "n_samples"),
        (lambda vae, X: VariationalAE(solver="lbfgs").fit(X), "solver"),
        (lambda vae, X: VariationalAE(beta=-1.0).fit(X), "beta"),
    ],
)
def test_invalid_arguments(bernoulli_vae, split01, call, match):
    with pytest.raises(InvalidParameterError, match=match):
        call(bernoulli_vae, split01[1])


def test_bce_needs_data_in_unit_interval(bernoulli_vae, split01):
    with pytest.raises(ValueError, match="loss='bce'"):
        bernoulli_vae.log_likelihood(split01[1] * 2)


def test_documented_learning_rate_is_the_default():
    assert "learning_rate_init : float, default=1e-2" in VariationalAE.__doc__
    assert VariationalAE().learning_rate_init == 1e-2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_and_cpu_estimates_agree(split01):
    X_train, X_test = split01
    gpu = VariationalAE(**BERNOULLI, max_iter=5, device="cuda").fit(X_train)
    cpu = VariationalAE(**BERNOULLI, max_iter=5, device="cpu").fit(X_train)
    cpu.module_.load_state_dict({k: v.cpu() for k, v in gpu.module_.state_dict().items()})
    # keyed draws: the same numbers on both devices
    assert_allclose(gpu.log_likelihood(X_test), cpu.log_likelihood(X_test), rtol=1e-6)
    assert_allclose(gpu.score_samples(X_test), cpu.score_samples(X_test), rtol=1e-6)
    assert gpu.sample(4).shape == (4, 64)


def test_sample_runs_where_the_model_is_loaded_not_where_it_was_trained(digits01):
    vae = VariationalAE(n_components=2, loss="bce", max_iter=2, random_state=0, device="cpu").fit(
        digits01
    )
    vae.device_ = "cuda"  # as after unpickling a GPU-trained model on a CPU-only machine
    assert vae.sample(3, random_state=0).shape == (3, digits01.shape[1])


def test_vae_binarize_trains_on_bits_and_repeats(digits01):
    kw = {"n_components": 4, "loss": "bce", "max_iter": 3, "random_state": 0}
    seen = []

    class Spy(Callback):
        def on_batch_begin(self, net, batch=None, training=None, **kwargs):
            if training:
                seen.append(batch[0].clone())

    a = VariationalAE(binarize=True, **kw).fit(digits01)
    b = VariationalAE(binarize=True, **kw).fit(digits01)
    assert_array_equal(a.transform(digits01), b.transform(digits01))
    a.net_.callbacks_.append(("spy", Spy()))
    a.set_params(warm_start=True, max_iter=2).fit(digits01)
    epoch = len(seen) // 2
    assert set(torch.cat(seen).unique().tolist()) <= {0.0, 1.0}
    # the same rows (one batch of the sorted data sums) differ between the two epochs
    sums = [torch.cat(seen[i * epoch : (i + 1) * epoch]).sum(dim=0) for i in range(2)]
    assert not torch.equal(sums[0], sums[1])
    with pytest.raises(ValueError, match="loss='bce'"):
        VariationalAE(binarize=True, loss="mse", max_iter=1).fit(digits01)


def test_vae_output_bias_starts_at_the_data_mean(digits01):
    vae = VariationalAE(4, loss="bce", max_iter=0, random_state=0).fit(digits01)
    mean = np.clip(digits01.mean(axis=0), 1e-3, 1 - 1e-3)
    bias = vae.module_.decoder[-2].bias.detach().numpy()
    assert_allclose(1 / (1 + np.exp(-bias)), mean, rtol=1e-4, atol=1e-6)
    gaussian = VariationalAE(4, max_iter=0, random_state=0).fit(digits01)
    assert_allclose(gaussian.module_.decoder[-2].bias.detach().numpy(), digits01.mean(0), 1e-5)


@pytest.fixture(scope="module")
def fitted_vae(digits01):
    vae = VariationalAE(8, loss="bce", max_iter=15, random_state=0).fit(digits01)
    return vae.module_.eval(), torch.as_tensor(digits01, dtype=torch.float32)


def _bound(objective, module, x, seed):
    """The mean bound per row (minus the objective) with draws from ``seed``."""
    objective.generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return -float(objective(module, x, x))


def test_iwae_bound_is_above_the_elbo_and_tightens_with_k(fitted_vae):
    module, x = fitted_vae
    bce = LIKELIHOODS["bce"]
    elbo = np.mean([_bound(ELBO(bce), module, x, seed) for seed in range(5)])
    iwae = {k: np.mean([_bound(IWAE(bce, k), module, x, s) for s in range(5)]) for k in (1, 5, 50)}
    # at k=1 the bound is the ELBO (its KL by Monte Carlo: equal in expectation)
    assert abs(iwae[1] - elbo) < 0.05
    # above it, and tighter as k grows, by far more than the estimates' noise here
    assert elbo + 0.2 < iwae[5] < iwae[50] - 0.05
    # k draws of IWAE are the draws of skae's evaluation, which uses other (keyed) draws:
    # the same quantity, up to Monte-Carlo noise
    with torch.no_grad():
        evaluated = importance_weighted_log_likelihood(module, x, 50, 0, bce).mean()
    assert abs(float(evaluated) - iwae[50]) < 0.05


def test_iwae_at_k_1_takes_the_elbos_draw(fitted_vae):
    module, x = fitted_vae
    bce = LIKELIHOODS["bce"]
    # the same generator gives both the same eps: their difference is the KL's estimate only
    with torch.no_grad():
        mu, logvar = module.posterior(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    z = mu + torch.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(-1)
    log_p = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
    kl = 0.5 * (mu.pow(2) + torch.exp(logvar) - 1 - logvar).sum(-1)
    gap = float((kl + log_p - log_q).mean())
    assert_allclose(
        _bound(IWAE(bce, 1), module, x, 3) - _bound(ELBO(bce), module, x, 3), gap, atol=1e-4
    )


def test_iwae_groups_of_draws_bound_memory_without_changing_loss_or_gradient(fitted_vae):
    module, x = fitted_vae
    bce = LIKELIHOODS["bce"]
    x = x[:64]
    results = []
    for max_elements in (2**24, 64 * 128 * 3):  # all 20 draws at once; groups of 3 draws
        objective = IWAE(bce, 20, max_elements=max_elements)
        objective.generator = torch.Generator().manual_seed(0)
        module.zero_grad()
        loss = objective(module, x, x)
        loss.backward()
        results.append((float(loss), [p.grad.clone() for p in module.parameters()]))
    assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    module.zero_grad()


def test_iwae_training_is_reproducible_and_refuses_a_beta(digits01):
    kw = {"loss": "bce", "n_importance_samples": 5, "max_iter": 3, "random_state": 0}
    a, b = VariationalAE(4, **kw).fit(digits01), VariationalAE(4, **kw).fit(digits01)
    assert_array_equal(a.transform(digits01), b.transform(digits01))
    elbo = VariationalAE(4, **{**kw, "n_importance_samples": 1}).fit(digits01)
    assert not np.array_equal(a.transform(digits01), elbo.transform(digits01))
    assert a.loss_curve_ != elbo.loss_curve_
    with pytest.raises(ValueError, match="no KL term for beta=2"):
        VariationalAE(4, beta=2.0, n_importance_samples=5).fit(digits01)
