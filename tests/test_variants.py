"""Every variant at its defaults against PCA, and the character that is each one's reason to
exist, measured beside AutoEncoder (or itself without its objective) at the same width."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skae import MLP, AutoEncoder, ContractiveAE, DenoisingAE, SparseAE, StackedAE
from skae._nn.modules import LogisticCode, mlp_autoencoder
from skae._nn.objectives import jacobian_sq_norm
from skae._nn.start import linear_skips, start_at_pca
from skae.denoising import AUTO_NOISE
from skae.regularized import AUTO_CONTRACTION

from .conftest import sse

VARIANTS = [AutoEncoder, DenoisingAE, StackedAE, ContractiveAE, SparseAE]


def split(load, scaler, seed):
    X = load().data
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=seed)
    fitted = scaler().fit(X_train)
    return fitted.transform(X_train), fitted.transform(X_test)


def reconstruction(model, X):
    return sse(X, model.inverse_transform(model.transform(X)))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__)
@pytest.mark.parametrize(
    "load, scaler, k",
    [(load_breast_cancer, StandardScaler, 15), (load_wine, MinMaxScaler, 2)],
    ids=["breast_cancer-standard-15", "wine-minmax-2"],
)
def test_every_variant_at_its_defaults_is_within_5_percent_of_pca(
    variant, load, scaler, k, global_random_seed
):
    X_train, X_test = split(load, scaler, global_random_seed)
    pca = reconstruction(PCA(k).fit(X_train), X_test)
    model = variant(n_components=k, random_state=global_random_seed).fit(X_train)
    assert reconstruction(model, X_test) <= 1.05 * pca


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__)
def test_every_variant_starts_at_pca(variant, digits):
    """With no training (max_iter=0), every variant's default network is PCA's solution,
    SparseAE's logistic codes and StackedAE's pretrained stacks included."""
    X_train, X_test = digits[0], digits[1]
    model = variant(n_components=6, max_iter=0, random_state=0)
    if variant is StackedAE:
        model.set_params(pretrain_iter=2)
    model.fit(X_train)
    pca = PCA(6).fit(X_train)
    assert_allclose(reconstruction(model, X_test), reconstruction(pca, X_test), rtol=1e-4)
    skips = linear_skips(model.module_)
    assert skips is not None
    assert not skips[0].linear.weight.requires_grad  # the start is kept, not trained away


def test_logistic_codes_invert_exactly_and_sit_at_the_target(digits):
    """SparseAE's start: codes in (0, 1) around the target activation, and a decoder that
    reads PCA's coordinates back from them."""
    X = digits[0]
    module = mlp_autoencoder(64, (16,), 5, "relu", code_activation="logistic", linear_skip=True)
    start_at_pca(module, X, torch.Generator().manual_seed(0), code_mean=0.1)
    code = module.encoder[1]
    assert isinstance(code, LogisticCode)
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        z = module.encode(x)
        y = module.encoder[0](x)
        assert_allclose(module.decoder[0](z), y, atol=1e-4)
    assert ((z > 0) & (z < 1)).all()
    assert abs(float(torch.median(z)) - 0.1) < 0.02  # the target, at the principal mean


def test_denoising_reconstructs_corrupted_inputs_better(digits):
    """DenoisingAE's reason to exist: from inputs corrupted by its own noise (Gaussian, half
    each feature's spread), its reconstructions of the clean rows are closer than those of
    AutoEncoder at the same width; without the noise it has no such edge."""
    X_train, X_test = digits[0], digits[1]
    ae = AutoEncoder(n_components=10, random_state=0).fit(X_train)
    dae = DenoisingAE(n_components=10, random_state=0).fit(X_train)
    assert_allclose(dae.noise_level_, AUTO_NOISE * X_train.std(axis=0), rtol=1e-6)
    noisy = X_test + dae.noise_level_ * np.random.RandomState(1).randn(*X_test.shape)

    def denoised(model):
        return sse(X_test, model.inverse_transform(model.transform(noisy)))

    assert denoised(dae) < 0.9 * denoised(ae)
    silent = DenoisingAE(n_components=10, noise_level=0.0, random_state=0).fit(X_train)
    assert denoised(silent) > 0.95 * denoised(ae)


def test_denoising_noise_follows_each_features_spread(digits):
    """noise_level="auto" is relative: a feature in other units gets noise in those units,
    a constant feature none."""
    X = digits[0][:, :5].copy()
    X[:, 0] *= 1000.0
    X[:, 1] = 3.0
    dae = DenoisingAE(n_components=2, max_iter=1, random_state=0).fit(X)
    assert_allclose(dae.noise_level_, AUTO_NOISE * X.std(axis=0), rtol=1e-6)
    assert dae.noise_level_[1] == 0
    masking = DenoisingAE(n_components=2, noise="masking", max_iter=1).fit(X)
    assert masking.noise_level_ == 0.25
    fixed = DenoisingAE(n_components=2, noise_level=0.3, max_iter=1).fit(X)
    assert fixed.noise_level_ == 0.3  # a level the user set keeps its meaning


def held_out_jacobian(model, X):
    with torch.no_grad():
        return jacobian_sq_norm(model.module_, torch.as_tensor(X, dtype=torch.float32)).mean()


def test_contractive_encoder_is_less_sensitive(digits):
    """ContractiveAE's reason to exist: a smaller encoder Jacobian on held-out rows than
    AutoEncoder's at the same width (and than its own without the penalty)."""
    X_train, X_test = digits[0], digits[1]
    ae = AutoEncoder(n_components=10, random_state=0).fit(X_train)
    cae = ContractiveAE(n_components=10, random_state=0).fit(X_train)
    off = ContractiveAE(n_components=10, contraction=0.0, random_state=0).fit(X_train)
    assert held_out_jacobian(cae, X_test) < 0.5 * held_out_jacobian(ae, X_test)
    assert held_out_jacobian(cae, X_test) < 0.5 * held_out_jacobian(off, X_test)


def test_contraction_auto_is_relative_to_the_reconstruction(digits):
    """contraction="auto": at the start the penalty is AUTO_CONTRACTION times the
    reconstruction loss, whatever the data's scale; a weight the user set is kept."""
    X = digits[0]
    weights = []
    for scale in (1.0, 0.01):
        cae = ContractiveAE(n_components=4, max_iter=0, random_state=0).fit(scale * X)
        x = torch.as_tensor(scale * X, dtype=torch.float32)
        with torch.no_grad():
            loss = ((cae.module_(x) - x) ** 2).sum(dim=1).mean()
        penalty = cae.contraction_ * held_out_jacobian(cae, scale * X)
        assert_allclose(float(penalty), AUTO_CONTRACTION * float(loss), rtol=0.05)
        weights.append(cae.contraction_)
    assert_allclose(weights[1], weights[0] * 1e-4, rtol=0.05)  # the loss is 1e-4 as large
    assert ContractiveAE(contraction=0.3, max_iter=0).fit(X).contraction_ == 0.3


def test_sparse_codes_are_closer_to_the_target(digits):
    """SparseAE's reason to exist: each code unit's mean activation on held-out rows is
    closer to ``sparsity_target`` than without the penalty. The default network's start
    already sits at the target (its logistic map is centred there), so the penalty's own
    work shows on a network that starts elsewhere (random weights, activations near 0.5);
    on the default network the penalty keeps the units there through training."""
    X_train, X_test = digits[0], digits[1]
    target = 0.05

    def distance(model):
        return float(np.abs(model.transform(X_test).mean(axis=0) - target).mean())

    random_start = {"n_components": 10, "module": MLP(start="random"), "random_state": 0}
    sparse = SparseAE(**random_start).fit(X_train)
    off = SparseAE(sparsity_weight=0.0, **random_start).fit(X_train)
    assert distance(sparse) < 0.5 * distance(off)
    default = SparseAE(n_components=10, random_state=0).fit(X_train)
    assert distance(default) < 0.01


def test_stacked_pretraining_lowers_a_short_fine_tunings_loss(digits):
    """StackedAE's reason to exist: after the same short fine-tuning, the pretrained stack
    has a lower training loss than the same network with its pretraining switched off."""
    X = digits[0]
    params = {"n_components": 10, "max_iter": 30, "early_stopping": False, "random_state": 0}
    pretrained = StackedAE(**params).fit(X)
    scratch = StackedAE(pretrain_iter=0, **params).fit(X)
    assert pretrained.loss_curve_[-1] < scratch.loss_curve_[-1]


def test_a_start_that_training_does_not_beat_beyond_noise_is_put_back():
    """Iris, split seed 1: the ten held-out rows let the trained network through by chance
    (1.08 times PCA's error on the test rows); the per-row test puts the start back."""
    X_train, X_test = split(load_iris, StandardScaler, 1)
    pca = reconstruction(PCA(2).fit(X_train), X_test)
    for variant in (AutoEncoder, ContractiveAE, SparseAE):
        model = variant(n_components=2, random_state=1).fit(X_train)
        assert not model.improved_on_start_
        assert reconstruction(model, X_test) <= 1.0001 * pca


def test_a_start_that_training_beats_is_replaced(digits):
    X_train, X_test = digits[0], digits[1]
    model = AutoEncoder(n_components=10, random_state=0).fit(X_train)
    assert model.improved_on_start_
    assert reconstruction(model, X_test) < 0.8 * reconstruction(PCA(10).fit(X_train), X_test)
