import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skae import MLP, AutoEncoder, DenoisingAE
from skae._nn.noise import Corruption

from .conftest import sse


@pytest.mark.parametrize(
    "noise, level",
    [
        ("masking", 0.3),
        ("gaussian", 0.3),
        ("salt_and_pepper", 0.2),
    ],
)
def test_denoises_better_than_a_plain_autoencoder(digits01, noise, level, global_random_seed):
    X_train, X_test = digits01[:1400], digits01[1400:]
    corrupt = Corruption(noise, level, X_train.min(0), X_train.max(0))
    generator = torch.Generator().manual_seed(global_random_seed + 1)
    X_noisy = corrupt(torch.as_tensor(X_test), generator).numpy()
    budget = {"n_components": 16, "loss": "bce", "max_iter": 60, "random_state": global_random_seed}
    dae = DenoisingAE(noise=noise, noise_level=level, **budget).fit(X_train)
    ae = AutoEncoder(module=MLP(), alpha=0.0, **budget).fit(X_train)  # the same network
    dae_error = sse(dae.inverse_transform(dae.transform(X_noisy)), X_test)
    ae_error = sse(ae.inverse_transform(ae.transform(X_noisy)), X_test)
    assert dae_error < 0.9 * ae_error


def test_transform_is_deterministic_and_training_is_reproducible(digits01):
    dae = DenoisingAE(
        n_components=4, noise="masking", noise_level=0.5, max_iter=3, random_state=0
    ).fit(digits01)
    # transform runs the encoder on the clean input: no noise, whatever noise_level says
    X32 = digits01.astype(np.float32)
    with torch.no_grad():
        codes = dae.module_.encode(torch.as_tensor(X32)).numpy()
    assert_allclose(dae.transform(X32), codes, rtol=1e-6, atol=1e-6)
    again = DenoisingAE(
        n_components=4, noise="masking", noise_level=0.5, max_iter=3, random_state=0
    ).fit(digits01)
    assert_array_equal(again.transform(digits01), dae.transform(digits01))


def test_zero_noise_is_the_plain_autoencoder(digits):
    X, *_ = digits
    params = {"n_components": 3, "max_iter": 3, "random_state": 0}
    assert_array_equal(
        DenoisingAE(noise_level=0.0, **params).fit(X).transform(X),
        AutoEncoder(alpha=0.0, **params).fit(X).transform(X),
    )


def test_corruption_statistics():
    x = torch.full((2000, 50), 0.5, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    masked = Corruption("masking", 0.25)(x, g)
    assert (masked == 0).double().mean().item() == pytest.approx(0.25, abs=0.01)
    assert set(masked.unique().tolist()) == {0.0, 0.5}
    sp = Corruption("salt_and_pepper", 0.4, low=-1.0, high=2.0)(x, g)
    assert (sp == -1).double().mean().item() == pytest.approx(0.2, abs=0.01)
    assert (sp == 2).double().mean().item() == pytest.approx(0.2, abs=0.01)
    gauss = Corruption("gaussian", 0.3)(x, g) - x
    assert gauss.mean().item() == pytest.approx(0, abs=0.01)
    assert gauss.std().item() == pytest.approx(0.3, rel=0.02)
    # fresh noise on every call
    assert not torch.equal(Corruption("masking", 0.25)(x, g), Corruption("masking", 0.25)(x, g))


def test_salt_and_pepper_writes_the_training_range(digits):
    """Every corrupted value is its feature's training minimum or maximum, about half each,
    and a warm start keeps the first fit's range."""
    X, *_ = digits
    dae = DenoisingAE(noise="salt_and_pepper", noise_level=1.0, max_iter=1, random_state=0)
    dae.fit(X)
    corrupted = dae._corruption()(torch.as_tensor(X[:500]), torch.Generator().manual_seed(0))
    corrupted = corrupted.numpy()
    low, high = corrupted == X.min(0), corrupted == X.max(0)
    assert np.all(low | high)
    varying = X.min(0) != X.max(0)
    assert 0.4 < low[:, varying].mean() < 0.6
    dae.set_params(warm_start=True).fit(X[:100] * 0.5)
    assert_allclose(dae.data_max_, X.max(0))


def test_fraction_above_one_is_an_error(digits):
    with pytest.raises(ValueError, match="noise_level=1.5 is the fraction of inputs"):
        DenoisingAE(noise="masking", noise_level=1.5).fit(digits[0])


def test_unknown_noise_is_an_error(digits):
    with pytest.raises(ValueError, match="'noise' parameter"):
        DenoisingAE(noise="speckle").fit(digits[0])
    assert np.isfinite(DenoisingAE(max_iter=1).fit(digits[0]).transform(digits[0])).all()
