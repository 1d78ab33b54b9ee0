"""The network as a part: a user's module, the built-in architectures, the module contract."""

import copy
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from torch import nn

from skae import (
    MLP,
    AutoEncoder,
    ContractiveAE,
    ConvNet,
    DenoisingAE,
    EncoderClassifier,
    SparseAE,
    StackedAE,
    VariationalAE,
)
from skae._nn.modules import (
    AutoEncoderModule,
    add_dropout,
    conv_autoencoder,
    dropout_hooks,
    init_weights,
    mlp_autoencoder,
)
from skae._nn.objectives import jacobian_sq_norm, jacobian_sq_norm_autograd
from skae.architectures import UserModule

from .conftest import sse
from .user_modules import TiedAE, TinyAE, TinyVAE


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "Estimator, params",
    [
        (AutoEncoder, {}),
        (DenoisingAE, {"noise": "gaussian", "noise_level": 0.3}),
        (SparseAE, {"sparsity": "l1", "sparsity_weight": 0.1}),
        (ContractiveAE, {"contraction": 0.1}),
    ],
)
def test_a_user_module_is_trained_by_each_objective(digits, Estimator, params):
    X, X_test, *_ = digits
    mine = TinyAE(width=6)
    before = copy.deepcopy(mine)
    est = Estimator(module=mine, max_iter=30, random_state=0, **params).fit(X)
    assert isinstance(est.module_, TinyAE) and est.module_ is not mine
    assert same_weights(mine, before)  # the user's instance is never trained in place
    assert not same_weights(est.module_, before)
    assert est.transform(X_test).shape == (len(X_test), 6)
    assert est.get_feature_names_out().tolist()[-1].endswith("5")
    assert est.loss_curve_[-1] < 0.7 * est.loss_curve_[0]
    # it learned a manifold: far better than the mean image
    assert sse(est.inverse_transform(est.transform(X_test)), X_test) < 0.7 * sse(
        X.mean(axis=0), X_test
    )


def test_a_user_variational_module_needs_only_posterior_and_decode(digits):
    X, X_test, *_ = digits
    vae = VariationalAE(
        module=TinyVAE(width=3, hidden=32), learning_rate_init=1e-2, max_iter=30, random_state=0
    ).fit(X)
    with torch.no_grad():
        mu, _ = vae.module_.posterior(torch.as_tensor(X_test, dtype=torch.float32))
    assert_allclose(vae.transform(X_test.astype(np.float32)), mu.numpy(), rtol=1e-5, atol=1e-6)
    assert vae.loss_curve_[-1] < vae.loss_curve_[0]
    assert np.all(vae.score_samples(X_test) <= vae.log_likelihood(X_test))
    assert vae.sample(4, random_state=0).shape == (4, 64)


def test_encoder_classifier_fine_tunes_any_modules_encoder(digits):
    X, X_test, y, y_test = digits
    ae = AutoEncoder(module=TinyAE(width=8), max_iter=10, random_state=0)
    clf = EncoderClassifier(ae, max_iter=30, random_state=0).fit(X, y)
    assert isinstance(clf.module_.autoencoder, TinyAE)
    # Fine-tuning moves the encoder: better than a linear model on its frozen codes
    # (seeds 0-3: 0.84-0.88 against 0.71-0.78; chance is 0.1).
    codes = clf.autoencoder_.transform
    probe = LogisticRegression(max_iter=1000).fit(codes(X), y).score(codes(X_test), y_test)
    assert clf.score(X_test, y_test) > max(0.8, probe + 0.03)
    conv = EncoderClassifier(
        AutoEncoder(n_components=8, module=ConvNet(channels=(8, 16)), max_iter=5, random_state=0),
        max_iter=30,
        random_state=0,
    ).fit(X, y)
    codes = conv.autoencoder_.transform
    probe = LogisticRegression(max_iter=1000).fit(codes(X), y).score(codes(X_test), y_test)
    assert conv.score(X_test, y_test) > max(0.8, probe + 0.03)  # seed 0: 0.85 against 0.53


def test_encoder_classifier_seeds_an_unseeded_autoencoder(digits):
    X, _, y, _ = digits
    unseeded = AutoEncoder(n_components=4, max_iter=3)
    a = EncoderClassifier(unseeded, max_iter=3, random_state=0).fit(X, y)
    b = EncoderClassifier(unseeded, max_iter=3, random_state=0).fit(X, y)
    assert unseeded.random_state is None  # the parameter is never changed
    assert isinstance(a.autoencoder_.random_state, int)
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = EncoderClassifier(unseeded, max_iter=3, random_state=1).fit(X, y)
    assert c.autoencoder_.random_state != a.autoencoder_.random_state
    # a seed the user set is kept
    seeded = EncoderClassifier(
        clone(unseeded).set_params(random_state=7), max_iter=1, random_state=0
    ).fit(X, y)
    assert seeded.autoencoder_.random_state == 7


def test_grid_search_over_module_instances(digits):
    X, *_ = digits
    candidates = [TinyAE(width=2), TinyAE(width=12)]
    originals = copy.deepcopy(candidates)
    search = GridSearchCV(
        DenoisingAE(module=TinyAE(), max_iter=15, random_state=0), {"module": candidates}, cv=2
    ).fit(X)
    assert search.best_params_["module"].width == 12  # a wider code reconstructs better
    assert search.best_estimator_.transform(X).shape == (len(X), 12)
    assert all(same_weights(c, o) for c, o in zip(candidates, originals, strict=True))


def test_grid_search_over_nested_architecture_parameters(digits):
    X, *_ = digits
    est = AutoEncoder(n_components=8, module=ConvNet(channels=(8,)), max_iter=10, random_state=0)
    assert est.get_params()["module__channels"] == (8,)
    search = GridSearchCV(
        est, {"module__channels": [(4,), (16, 32)], "module__kernel_size": [3]}, cv=2
    ).fit(X)
    assert len(search.cv_results_["params"]) == 2
    convs = [m for m in search.best_estimator_.module_.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(search.best_params_["module__channels"])
    assert est.module.channels == (8,)  # the searched estimator's part is untouched


def test_conv_refits_are_bit_identical_and_leave_the_global_rng_alone(digits):
    X, X_test, *_ = digits
    state = torch.random.get_rng_state()
    params = {"n_components": 5, "module": ConvNet(channels=(4, 8)), "max_iter": 3, "device": "cpu"}
    a = DenoisingAE(random_state=0, **params).fit(X)
    b = DenoisingAE(random_state=0, **params).fit(X)
    c = DenoisingAE(random_state=1, **params).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert_array_equal(a.transform(X_test), b.transform(X_test))
    assert not np.allclose(a.transform(X_test), c.transform(X_test))


def test_lazy_parameters_are_drawn_from_random_state(digits):
    X, *_ = digits
    state = torch.random.get_rng_state()
    fits = [
        AutoEncoder(module=TiedAE(width=3), max_iter=0, random_state=seed).fit(X)
        for seed in (0, 0, 1)
    ]
    assert torch.equal(torch.random.get_rng_state(), state)
    weights = [f.module_.encoder.weight.detach() for f in fits]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_a_user_module_keeps_its_own_starting_weights(digits):
    X, *_ = digits
    mine = TinyAE(width=3)
    est = AutoEncoder(module=mine, max_iter=0, random_state=0).fit(X)
    assert same_weights(est.module_, mine)


def test_the_default_is_the_mlp_architecture(digits):
    X, X_test, *_ = digits
    params = {"n_components": 3, "max_iter": 5, "random_state": 0}
    default = AutoEncoder(hidden_layer_sizes=(32,), activation="tanh", **params).fit(X)
    explicit = AutoEncoder(
        module=MLP(hidden_layer_sizes=(32,), activation="tanh", start="pca"), **params
    ).fit(X)
    assert_array_equal(default.transform(X_test), explicit.transform(X_test))


def test_fitted_model_with_a_user_module_pickles(digits):
    X, X_test, *_ = digits
    est = AutoEncoder(module=TinyAE(width=3), max_iter=3, random_state=0).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    assert isinstance(loaded.module_, TinyAE)
    assert_array_equal(loaded.transform(X_test), est.transform(X_test))


@pytest.mark.parametrize("channels", [(), (8,), (4, 8)])
def test_stacked_pretrains_a_conv_net_level_by_level(digits, channels):
    X, *_ = digits
    sae = StackedAE(
        n_components=6,
        module=ConvNet(channels=channels),
        pretrain_iter=2,
        max_iter=0,
        random_state=0,
    ).fit(X)
    assert len(sae.pretrained_layers_) == len(channels) + 1
    assert all(len(curve) == 2 for curve in sae.pretrain_loss_curves_)
    # the deep network is the pretrained stack, level for level
    for depth, layer in enumerate(sae.pretrained_layers_):
        assert same_weights(sae.module_.encoder[depth], layer.encoder)
        assert same_weights(sae.module_.decoder[len(channels) - depth], layer.decoder)


def test_stacked_cannot_split_a_user_module(digits):
    with pytest.raises(ValueError, match="cannot split a module of your own"):
        StackedAE(module=TinyAE()).fit(digits[0])


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 7, 5), (3, 9, 9), (2, 1, 13), (1, 1, 1)])
def test_conv_net_restores_the_exact_input_size(shape):
    n = int(np.prod(shape))
    module = ConvNet(input_shape=shape, channels=(4, 8)).build(n, 3)
    x = torch.rand(5, n)
    assert module.encode(x).shape == (5, 3)
    assert module(x).shape == (5, n)


def test_conv_net_reads_square_images_and_checks_its_shape():
    assert ConvNet().image_shape(784) == (1, 28, 28)
    assert ConvNet().image_shape(64) == (1, 8, 8)
    assert ConvNet().image_shape(10) == (1, 1, 10)
    with pytest.raises(ValueError, match=r"holds 784 values per image, but X has 64"):
        ConvNet(input_shape=(1, 28, 28)).image_shape(64)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvNet(kernel_size=4).build(64, 2)


def test_init_weights_covers_every_built_in_layer_type():
    module = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.ConvTranspose2d(2, 1, 3),
        nn.Linear(3, 2),
        nn.BatchNorm1d(2),
        nn.LayerNorm(2),
    )
    a = init_weights(copy.deepcopy(module), torch.Generator().manual_seed(0))
    b = init_weights(copy.deepcopy(module), torch.Generator().manual_seed(0))
    c = init_weights(copy.deepcopy(module), torch.Generator().manual_seed(1))
    assert same_weights(a, b) and not same_weights(a, c)
    assert torch.equal(a[3].weight, torch.ones(2)) and torch.equal(a[4].bias, torch.zeros(2))
    with pytest.raises(TypeError, match="cannot initialise a Embedding"):
        init_weights(nn.Embedding(3, 2), torch.Generator())


def test_contractive_penalty_is_exact_for_a_conv_encoder():
    torch.manual_seed(0)  # test data only
    module = conv_autoencoder((1, 5, 4), [3], 3, 2, "tanh").double()
    x = torch.randn(6, 20, dtype=torch.float64)
    expected = torch.stack(
        [torch.autograd.functional.jacobian(module.encode, row[None]).pow(2).sum() for row in x]
    )
    assert_allclose(jacobian_sq_norm(module, x).detach(), expected, rtol=1e-10)
    assert_allclose(
        jacobian_sq_norm_autograd(TinyAEWrapper(module), x).detach(), expected, rtol=1e-10
    )


class TinyAEWrapper(nn.Module):
    """A user's module around skae's: the penalty goes through ``encode`` alone."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def encode(self, x):
        return self.inner.encode(x)

    def decode(self, z):
        return self.inner.decode(z)


class NoEncode(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(64, 2)

    def decode(self, z):
        return z


class FlatCodes(TinyAE):
    def encode(self, x):
        return super().encode(x).sum(dim=1)


class WrongOutput(TinyAE):
    def decode(self, z):
        return super().decode(z)[:, :10]


class Broken(TinyAE):
    def encode(self, x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")


@pytest.mark.parametrize(
    "module, match",
    [
        (NoEncode(), "module NoEncode does not meet skae's module contract: it has no encode"),
        (FlatCodes(), r"codes must be a 2-D tensor .* they are \(2,\)"),
        (WrongOutput(), r"WrongOutput.decode must return the input's shape \(2, 64\)"),
        (Broken(), r"Broken.encode failed on an input of shape \(2, 64\): RuntimeError: mat1"),
        (TinyAE(n_features=10), r"TinyAE.encode failed on an input of shape \(2, 64\)"),
    ],
)
def test_a_module_that_breaks_the_contract_fails_at_fit_with_a_clear_message(digits, module, match):
    with pytest.raises(ValueError, match=match):
        AutoEncoder(module=module, max_iter=1).fit(digits[0])


def test_a_variational_estimator_needs_a_posterior(digits):
    with pytest.raises(ValueError, match="it has no posterior method"):
        VariationalAE(module=TinyAE(), max_iter=1).fit(digits[0])


def test_n_components_is_read_from_the_module(digits):
    X, *_ = digits
    est = AutoEncoder(module=TinyAE(width=5), max_iter=1).fit(X)
    assert est.transform(X).shape[1] == 5
    AutoEncoder(n_components=5, module=TinyAE(width=5), max_iter=1).fit(X)  # consistent
    with pytest.raises(ValueError, match="n_components=3, but module TinyAE's codes have 5"):
        AutoEncoder(n_components=3, module=TinyAE(width=5), max_iter=1).fit(X)
    assert AutoEncoder(max_iter=1).fit(X).transform(X).shape[1] == 2  # None: the default 2


def test_mlp_parameters_with_a_module_are_an_error_not_ignored(digits):
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=\(64,\) shape the default MLP"):
        AutoEncoder(module=TinyAE(), hidden_layer_sizes=(64,)).fit(digits[0])
    with pytest.raises(ValueError, match="activation='tanh' shape the default MLP"):
        SparseAE(module=ConvNet(), activation="tanh").fit(digits[0])
    # the defaults, spelt as a list, are not a change
    AutoEncoder(module=TinyAE(), hidden_layer_sizes=[128], max_iter=1).fit(digits[0])


def test_module_must_be_a_torch_module_or_an_architecture(digits):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'module' parameter of AutoEncoder"):
        AutoEncoder(module="conv").fit(digits[0])


def test_user_module_adapter_copies_the_instance():
    mine = TinyAE()
    built = UserModule(mine).build(64, 2)
    assert built is not mine and same_weights(built, mine)
    module = AutoEncoderModule(nn.Linear(3, 2), nn.Linear(2, 3))
    x = torch.rand(4, 3)
    assert torch.equal(module(x), module.decode(module.encode(x)))


def test_dropout_acts_in_training_and_not_in_eval():
    torch.manual_seed(0)
    module = add_dropout(mlp_autoencoder(20, (16,), 3, "relu"), dropout=0.5, input_dropout=0.2)
    assert [h.p for h in dropout_hooks(module)] == [0.2, 0.5, 0.5, 0.5]
    x = torch.randn(64, 20)
    module.eval()
    assert torch.equal(module(x), module(x))
    module.train()
    first, second = module(x), module(x)
    assert not torch.equal(first, second)
    # inverted dropout keeps the mean activation of the input
    hook = dropout_hooks(module)[0]
    (dropped,) = hook(module.encoder[0], (torch.ones(20000, 20),))
    assert abs(float(dropped.mean()) - 1.0) < 0.02
    assert abs(float((dropped == 0).float().mean()) - 0.2) < 0.01
