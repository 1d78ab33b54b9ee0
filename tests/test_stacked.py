from types import SimpleNamespace

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skae import MLP, AutoEncoder
from skae._engine.net import AutoEncoderNet
from skae._nn.likelihoods import LIKELIHOODS
from skae.stacked import StackedAE

from .conftest import sse

SMALL = {"n_components": 4, "hidden_layer_sizes": (16, 8), "pretrain_iter": 10, "random_state": 0}
# the classic stacked autoencoder: a randomly initialised MLP, no PCA maps beside it
CLASSIC = {
    "n_components": 4,
    "module": MLP(hidden_layer_sizes=(16, 8)),
    "pretrain_iter": 10,
    "random_state": 0,
}


@pytest.fixture
def engine_calls(monkeypatch):
    """Every training run of the engine: its input, its net, and its weights once done."""
    calls = []
    partial_fit = AutoEncoderNet.partial_fit

    def spy(net, X, y=None, **fit_params):
        X_seen = np.array(X, copy=True)
        partial_fit(net, X, y, **fit_params)
        state = {k: v.detach().cpu().clone() for k, v in net.module_.state_dict().items()}
        calls.append(SimpleNamespace(X=X_seen, net=net, state=state))
        return net

    monkeypatch.setattr(AutoEncoderNet, "partial_fit", spy)
    return calls


def linear_layers(sequential):
    return [m for m in sequential if isinstance(m, torch.nn.Linear)]


def test_without_fine_tuning_the_deep_network_is_the_pretrained_stack(digits):
    X, *_ = digits
    sae = StackedAE(max_iter=0, **CLASSIC).fit(X)
    shallow = sae.pretrained_layers_
    assert len(shallow) == len(sae.pretrain_loss_curves_) == 3
    assert sae.loss_curve_ == [] and sae.n_iter_ == 0
    # AutoEncoder's network, layer for layer
    plain = AutoEncoder(
        max_iter=0, **{k: v for k, v in CLASSIC.items() if k not in ("pretrain_iter",)}
    )
    assert repr(sae.module_) == repr(plain.fit(X).module_)
    encoder, decoder = linear_layers(sae.module_.encoder), linear_layers(sae.module_.decoder)
    for depth, layer in enumerate(shallow):
        assert_array_equal(encoder[depth].weight.detach(), layer.encoder[0].weight.detach())
        assert_array_equal(encoder[depth].bias.detach(), layer.encoder[0].bias.detach())
        assert_array_equal(decoder[-1 - depth].weight.detach(), layer.decoder[0].weight.detach())
    codes = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        for layer in shallow:
            codes = layer.encode(codes)
    assert_allclose(sae.transform(X), codes.numpy(), rtol=1e-4, atol=1e-5)


def test_the_default_puts_the_pretrained_stacks_beside_pca(digits):
    """The default network: the pretrained levels are the stacks' layers beside PCA's maps,
    whose last layers start at zero (the start is PCA's solution; test_variants.py)."""
    X, *_ = digits
    sae = StackedAE(max_iter=0, **SMALL).fit(X)
    encoder, decoder = sae.module_.encoder.body, sae.module_.decoder.body
    for depth, layer in enumerate(sae.pretrained_layers_[:-1]):
        assert_array_equal(
            linear_layers(encoder)[depth].weight.detach(), layer.encoder[0].weight.detach()
        )
    assert not linear_layers(encoder)[-1].weight.any()
    assert not linear_layers(decoder)[-1].weight.any()


def test_layers_below_stay_fixed_while_a_layer_above_trains(digits, engine_calls):
    X, *_ = digits
    sae = StackedAE(max_iter=0, early_stopping=False, **CLASSIC).fit(X)
    first, second, third, fine_tuning = engine_calls
    assert_array_equal(first.X, X)
    # The first layer's weights right after its own pretraining are its final ones.
    final_first = sae.pretrained_layers_[0].state_dict()
    for name, value in first.state.items():
        assert_array_equal(final_first[name], value)
    # ...and the ones the deep network starts from (its decoder's last layer is 4th Linear).
    for name in ("weight", "bias"):
        assert_array_equal(fine_tuning.state[f"encoder.0.{name}"], first.state[f"encoder.0.{name}"])
        assert_array_equal(fine_tuning.state[f"decoder.4.{name}"], first.state[f"decoder.0.{name}"])
    # The second layer trained on the codes of the FINAL first-layer encoder...
    with torch.no_grad():
        codes = sae.pretrained_layers_[0].encode(torch.as_tensor(X, dtype=torch.float32))
    assert_allclose(second.X, codes.numpy(), rtol=1e-6)
    # ...and its recorded loss is the squared error on those codes.
    assert (
        second.net.criterion_.likelihood is third.net.criterion_.likelihood is (LIKELIHOODS["mse"])
    )
    with torch.no_grad():
        layer = sae.pretrained_layers_[1]
        loss = LIKELIHOODS["mse"].loss(layer.decode(layer.encode(codes)), codes).mean()
    # The recorded loss is the last epoch's mean while the weights still moved: the final
    # weights do a little better, by less than a whole epoch's progress (6.40 vs 6.45).
    before_last, last = sae.pretrain_loss_curves_[1][-2:]
    assert last - (before_last - last) < loss.item() < last
    assert_array_equal(third.X, sae.pretrained_layers_[1].encode(codes).detach().numpy())


def test_pretraining_lowers_heldout_error_at_the_same_fine_tuning_budget(digits):
    # Measured on 5 seeds, held-out SSE per image: 24.6 with pretraining vs 34.0 without
    # (every seed 24.3-24.8 vs 31.9-37.3). With the 30 epochs of pretraining spent on
    # fine-tuning instead (50 epochs, no pretraining) it is 23.9: the gain here is at equal
    # fine-tuning budget, not at equal compute.
    X_train, X_test, *_ = digits
    # the classic stack, randomly initialised (the default's PCA start needs little of it;
    # test_variants.py measures what pretraining adds there)
    budget = {
        "n_components": 8,
        "module": MLP(hidden_layer_sizes=(128, 64)),
        "max_iter": 20,
        "random_state": 0,
    }
    pretrained = StackedAE(pretrain_iter=10, **budget).fit(X_train)
    scratch = StackedAE(pretrain_iter=0, **budget).fit(X_train)
    assert all(curve == [] for curve in scratch.pretrain_loss_curves_)
    error = sse(pretrained.inverse_transform(pretrained.transform(X_test)), X_test)
    scratch_error = sse(scratch.inverse_transform(scratch.transform(X_test)), X_test)
    assert error < 0.85 * scratch_error


def test_bottom_layer_uses_the_loss_and_upper_layers_squared_error(digits01, engine_calls):
    sae = StackedAE(loss="bce", max_iter=2, **SMALL).fit(digits01)
    criteria = [call.net.criterion_.likelihood.name for call in engine_calls]
    assert criteria == ["bce", "mse", "mse", "bce"]
    # the bottom layer's decoder outputs the Bernoulli logits: no activation
    assert [type(layer.decoder[-1]).__name__ for layer in sae.pretrained_layers_] == [
        "Identity",
        "ReLU",
        "ReLU",
    ]
    recon = sae.inverse_transform(sae.transform(digits01))
    assert recon.min() > 0 and recon.max() < 1  # the Bernoulli mean
    # hidden codes pass the activation, the top code is linear
    assert [type(layer.encoder[-1]).__name__ for layer in sae.pretrained_layers_] == [
        "ReLU",
        "ReLU",
        "Identity",
    ]


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_and_pepper"])
def test_pretrain_noise_makes_a_stacked_denoising_autoencoder(digits, noise):
    X, *_ = digits
    params = {**SMALL, "pretrain_iter": 3, "max_iter": 2}
    clean = StackedAE(**params).fit(X)
    assert_array_equal(
        StackedAE(pretrain_noise=noise, pretrain_noise_level=0.0, **params).fit(X).transform(X),
        clean.transform(X),
    )
    noisy = StackedAE(pretrain_noise=noise, pretrain_noise_level=0.3, **params).fit(X)
    assert not np.allclose(noisy.transform(X), clean.transform(X))
    # noise is for training only: transform is the fitted encoder on the clean input
    with torch.no_grad():
        codes = noisy.module_.encode(torch.as_tensor(X, dtype=torch.float32)).numpy()
    assert_allclose(noisy.transform(X.astype(np.float32)), codes, rtol=1e-6, atol=1e-6)


def test_reproducible_and_leaves_the_global_rng_alone(digits):
    X, *_ = digits
    state = torch.random.get_rng_state()
    a = StackedAE(max_iter=2, pretrain_noise="masking", pretrain_noise_level=0.2, **SMALL).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = StackedAE(max_iter=2, pretrain_noise="masking", pretrain_noise_level=0.2, **SMALL).fit(X)
    assert_array_equal(a.transform(X), b.transform(X))
    c = StackedAE(max_iter=2, **{**SMALL, "random_state": 1}).fit(X)
    assert not np.allclose(
        a.pretrained_layers_[0].encoder[0].weight.detach(),
        c.pretrained_layers_[0].encoder[0].weight.detach(),
    )


def test_warm_start_continues_fine_tuning_without_pretraining_again(digits):
    X, *_ = digits
    sae = StackedAE(max_iter=2, warm_start=True, **SMALL).fit(X)
    first_layer = sae.pretrained_layers_[0]
    sae.fit(X)
    assert sae.pretrained_layers_[0] is first_layer
    assert sae.n_iter_ == 4


def test_noise_fraction_above_one_is_an_error(digits):
    with pytest.raises(ValueError, match="pretrain_noise_level=1.5 is the fraction"):
        StackedAE(pretrain_noise="masking", pretrain_noise_level=1.5).fit(digits[0])
    with pytest.raises(ValueError, match="'pretrain_noise' parameter"):
        StackedAE(pretrain_noise="speckle").fit(digits[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pretrains_and_fine_tunes_on_the_gpu(digits):
    X, *_ = digits
    sae = StackedAE(
        device="cuda",
        max_iter=2,
        pretrain_noise="salt_and_pepper",
        pretrain_noise_level=0.2,
        **SMALL,
    ).fit(X)
    assert next(sae.module_.parameters()).is_cuda
    assert not any(p.is_cuda for layer in sae.pretrained_layers_ for p in layer.parameters())
    assert np.isfinite(sae.transform(X)).all()
