"""MLPEnsemble: several autoencoders in one batched module, each trained on its own loss."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae import AutoEncoder, MLPEnsemble, StackedAE, VariationalAE
from skae._nn.likelihoods import Gaussian
from skae._nn.modules import EnsembleModule
from skae._nn.objectives import Reconstruction


def ensemble(n_members=3, n_features=5, k=2, seed=0):
    return EnsembleModule(n_members, n_features, (8,), k, "relu").init_weights(
        torch.Generator().manual_seed(seed)
    )


def test_members_are_independent_networks():
    module = ensemble()
    x = torch.randn(4, 5)
    z = module.encode(x)
    assert z.shape == (4, 6) and module.decode(z).shape == (4, 5)
    members = module.decode_members(z)
    assert members.shape == (3, 4, 5)
    assert torch.allclose(module.decode(z), members.mean(dim=0))
    # member 1's codes are columns 2:4 and depend on member 1's weights alone
    with torch.no_grad():
        module.encoder[0].weight[0].add_(1.0)
        module.encoder[0].weight[2].add_(1.0)
    assert torch.equal(module.encode(x)[:, 2:4], z[:, 2:4])
    assert not torch.equal(module.encode(x)[:, :2], z[:, :2])


def test_each_member_minimises_its_own_loss():
    """The objective's gradient for a member is that of the member's own loss (over the
    number of members): not the gradient of the members' mean reconstruction."""
    module = ensemble()
    x = torch.randn(16, 5)
    Reconstruction(Gaussian())(module, x, x).backward()
    together = module.encoder[0].weight.grad[1].clone()
    module.zero_grad()
    own = Gaussian().loss(module.decode_members(module.encode(x))[1], x).mean()
    own.backward()
    assert_allclose(together.numpy(), module.encoder[0].weight.grad[1].numpy() / 3, rtol=1e-5)
    module.zero_grad()
    Gaussian().loss(module.decode(module.encode(x)), x).mean().backward()
    assert not np.allclose(together.numpy(), module.encoder[0].weight.grad[1].numpy() / 3)


def test_an_ensemble_trains_and_reproduces(digits):
    X, X_test, *_ = digits
    a = AutoEncoder(8, module=MLPEnsemble(n_members=4), max_iter=5, random_state=0).fit(X)
    b = AutoEncoder(8, module=MLPEnsemble(n_members=4), max_iter=5, random_state=0).fit(X)
    assert a.transform(X_test).shape == (len(X_test), 8)
    assert_allclose(
        a.inverse_transform(a.transform(X_test)), b.inverse_transform(b.transform(X_test))
    )
    assert a.loss_curve_[-1] < a.loss_curve_[0]
    hidden = a.module_.encoder[0].weight.shape
    assert hidden == (4, 64, 64)  # "auto": as wide as the data up to 64 units


def test_an_ensemble_refuses_what_it_cannot_be(digits):
    X, *_ = digits
    with pytest.raises(ValueError, match="n_components=5 must be a multiple of n_members=4"):
        AutoEncoder(5, module=MLPEnsemble(n_members=4), max_iter=1).fit(X)
    with pytest.raises(ValueError, match="MLPEnsemble builds autoencoders, not VAEs"):
        VariationalAE(4, module=MLPEnsemble(n_members=4), max_iter=1).fit(X)
    with pytest.raises(ValueError, match="StackedAE pretrains one network"):
        StackedAE(4, module=MLPEnsemble(n_members=4), max_iter=1).fit(X)
