"""scikit-learn's full estimator contract for every public estimator.

The estimators are found from ``skae.__all__``, so a new class cannot escape: each is checked
as built with its defaults (a small ``max_iter``), and most also with the built-in
convolutional network and with a user's own module (:mod:`tests.user_modules`). ``max_iter`` is
small: the checks test the contract, not the quality of the fit. The user modules have a
one-dimensional code because the checks set ``n_components=1``, which must then match.
Further instances exercise other code paths (early stopping's validation split, noise, the
closed-form and autograd Jacobians, pretraining noise). The expected failures are listed
with their reasons in ``expected_failed_checks``.
"""

import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import has_fit_parameter
from torch import nn
from torch.nn.parameter import UninitializedParameter

import skae
from skae import (
    AutoEncoder,
    ContractiveAE,
    ConvNet,
    DenoisingAE,
    EncoderClassifier,
    MLPEnsemble,
    OutlierDetector,
    SparseAE,
    StackedAE,
    VariationalAE,
)

from .user_modules import TiedAE, TinyVAE

PUBLIC_ESTIMATORS = [
    cls
    for cls in (getattr(skae, name) for name in skae.__all__)
    if inspect.isclass(cls) and issubclass(cls, BaseEstimator) and hasattr(cls, "fit")
]
SMALL_CONV = ConvNet(channels=(4,))

# Beyond each class's defaults: other architectures and code paths.
CONFIGURATIONS = {
    AutoEncoder: [
        {"activation": "tanh", "hidden_layer_sizes": (8, 4), "max_iter": 5, "early_stopping": True},
        {"module": SMALL_CONV, "max_iter": 5},
        {"module": TiedAE(width=1), "max_iter": 10},
        # the checks set n_components=1, which one member's code is
        {"module": MLPEnsemble(n_members=1), "max_iter": 5},
    ],
    DenoisingAE: [
        {"noise": "salt_and_pepper", "noise_level": 0.3, "max_iter": 5},
        {"module": SMALL_CONV, "noise": "masking", "max_iter": 5},
        {"module": TiedAE(width=1), "max_iter": 10},
    ],
    ContractiveAE: [
        {"activation": "tanh", "hidden_layer_sizes": (8, 4), "max_iter": 5, "early_stopping": True},
        {"hidden_layer_sizes": (), "activation": "logistic", "max_iter": 5},
        {"module": SMALL_CONV, "max_iter": 5},
        {"module": TiedAE(width=1), "max_iter": 10},
    ],
    SparseAE: [
        {"sparsity": "l1", "max_iter": 10},
        {"hidden_layer_sizes": (8,), "early_stopping": True, "max_iter": 5},
        {"module": SMALL_CONV, "max_iter": 5},
        {"module": TiedAE(width=1), "sparsity": "l1", "max_iter": 10},
    ],
    StackedAE: [
        {
            "activation": "tanh",
            "hidden_layer_sizes": (8,),
            "pretrain_noise": "salt_and_pepper",
            "pretrain_noise_level": 0.2,
            "pretrain_iter": 3,
            "max_iter": 5,
            "early_stopping": True,
        },
        {"module": SMALL_CONV, "pretrain_iter": 3, "max_iter": 5},
    ],
    VariationalAE: [
        {
            "loss": "mse",
            "activation": "tanh",
            "hidden_layer_sizes": (8, 4),
            "beta": 4.0,
            "max_iter": 5,
            "early_stopping": True,
        },
        {"module": SMALL_CONV, "max_iter": 5},
        {"module": TinyVAE(width=1), "max_iter": 10},
    ],
    OutlierDetector: [
        {},  # the default ensemble and its combined score
        # a code narrower than the checks' two features: a code as wide reconstructs every
        # row exactly (the PCA start), and a detector of equal scores flags nothing
        {"autoencoder": AutoEncoder(n_components=1, max_iter=20)},
        {"autoencoder": VariationalAE(max_iter=10), "contamination": 0.1},
        {"autoencoder": PCA(n_components=1), "refit_inliers": True},
        {"autoencoder": AutoEncoder(module=TiedAE(width=1), max_iter=10), "contamination": 0.2},
    ],
    EncoderClassifier: [
        {
            "autoencoder": StackedAE(
                n_components=8,
                hidden_layer_sizes=(16,),
                pretrain_iter=5,
                max_iter=0,
                random_state=0,
            ),
            "max_iter": 50,
        },
        {
            "autoencoder": AutoEncoder(n_components=4, module=SMALL_CONV, max_iter=5),
            "max_iter": 100,
            "learning_rate_init": 1e-2,
        },
        {
            "autoencoder": AutoEncoder(module=TiedAE(width=4), max_iter=5),
            "max_iter": 100,
            "learning_rate_init": 1e-2,
        },
    ],
}


def instances():
    for cls in PUBLIC_ESTIMATORS:
        if "max_iter" in inspect.signature(cls).parameters:
            yield cls(max_iter=20 if cls is not EncoderClassifier else 30, random_state=0)
        for params in CONFIGURATIONS.get(cls, []):
            yield cls(**params, random_state=0)


ESTIMATORS = list(instances())


def test_every_public_estimator_is_checked():
    assert {type(e) for e in ESTIMATORS} == set(PUBLIC_ESTIMATORS)
    assert len(PUBLIC_ESTIMATORS) == 9  # MLPEnsemble is a part, not an estimator
    assert set(CONFIGURATIONS) <= set(PUBLIC_ESTIMATORS)


def _key(estimator):
    """An estimator's repr on one line: what the checks' ids are made of."""
    return " ".join(repr(estimator).split())


# check_sample_weight_equivalence_on_dense_data fits 15 rows of 30 features, weighted by
# integers 0-4, against the same rows repeated (about 30): one full batch per epoch either
# way, so the fits see the same data in the same batches. These configurations pass it
# exactly on the CPU with torch's fused Adam (measured at 56b7ae5: their outputs agree to
# the check's rtol of 1e-7; the fused kernel's rounding moved two cases to the edge); every
# other one is listed below with the reason it differs. xfail_strict (pyproject.toml) makes
# a listed case that starts passing an error, so the list cannot hide a fix or a failure.
PASS_WEIGHT_EQUIVALENCE = {
    "LinearAE(max_iter=20, random_state=0)",
    "AutoEncoder(max_iter=10, module=TiedAE( (encoder): LazyLinear(in_features=0, "
    "out_features=1, bias=True) ), random_state=0)",
    "SparseAE(max_iter=5, module=ConvNet(channels=(4,)), random_state=0)",
    "StackedAE(max_iter=5, module=ConvNet(channels=(4,)), pretrain_iter=3, random_state=0)",
    "EncoderClassifier(autoencoder=StackedAE(hidden_layer_sizes=(16,), max_iter=0, "
    "n_components=8, pretrain_iter=5, random_state=0), max_iter=50, random_state=0)",
}
# At the edge of the check's rtol: with torch's default Adam the detector passed and the
# ConvNet AutoEncoder did not; with the fused kernel (56b7ae5, an AVX-512 CPU) the AutoEncoder
# passes and the detector misses by 2e-7 relative. Whether they pass depends on the kernels'
# rounding, so neither list holds them.
EDGE_WEIGHT_EQUIVALENCE = {
    "AutoEncoder(max_iter=5, module=ConvNet(channels=(4,)), random_state=0)",
    "OutlierDetector(autoencoder=AutoEncoder(max_iter=10, module=TiedAE( (encoder): "
    "LazyLinear(in_features=0, out_features=1, bias=True) )), contamination=0.2, "
    "random_state=0)",
}


def _draws_per_row(estimator):
    """What an estimator draws afresh for each row it trains on, or None."""
    inner = estimator.get_params().get("autoencoder")
    if isinstance(estimator, OutlierDetector) and inner is None:
        return "the default detector's isolation forests and neighbour references subsample rows"
    target = inner if isinstance(estimator, OutlierDetector) else estimator
    if isinstance(target, DenoisingAE):
        return "the denoising noise is drawn for each row"
    if isinstance(target, VariationalAE):
        return "the ELBO's latent samples are drawn for each row"
    if isinstance(target, ContractiveAE) and target.get_params()["module"] is not None:
        return (
            "the penalty's random projections (this encoder has no closed form) are drawn per row"
        )
    return None


def expected_failed_checks(estimator):
    """The checks an estimator is known to fail, each with its reason."""
    failing = {}
    module = estimator.get_params().get("module")
    if isinstance(module, nn.Module) and any(
        not isinstance(p, UninitializedParameter) for p in module.parameters()
    ):
        failing["check_estimators_overwrite_params"] = (
            "the check compares joblib.hash of each parameter with that of a deep copy, and "
            "pickling a torch tensor records its storage's memory address, so a copy of a "
            "module with weights never hashes equal. tests/test_modules.py checks instead "
            "that fit leaves a user's module unchanged, weight for weight."
        )
    autoencoder = estimator.get_params().get("autoencoder")
    refuses_weights = autoencoder is not None and not has_fit_parameter(
        autoencoder, "sample_weight"
    )
    if refuses_weights:
        failing["check_sample_weights_not_overwritten"] = (
            f"{type(autoencoder).__name__}.fit takes no sample_weight, so the detector "
            "refuses weights with a ValueError rather than ignore them."
        )
        failing["check_sample_weight_equivalence_on_dense_data"] = failing[
            "check_sample_weights_not_overwritten"
        ]
    elif _key(estimator) not in PASS_WEIGHT_EQUIVALENCE | EDGE_WEIGHT_EQUIVALENCE:
        draws = _draws_per_row(estimator)
        failing["check_sample_weight_equivalence_on_dense_data"] = (
            f"{draws}: a row repeated w times gets w draws where a row of weight w gets one, "
            "so the two fits differ by the draws' spread (0.001 to 18 here). "
            "tests/test_sample_weight.py checks the equivalence in expectation."
            if draws
            else "training runs in float32: the weighted and the repeated fit group their "
            "rows' sums differently, and Adam's normalised steps carry the rounding "
            "(1e-9 to 5e-5 here) past the check's rtol of 1e-7. tests/test_sample_weight.py "
            "checks the equivalence within a float32 tolerance."
        )
    return failing


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    name = getattr(getattr(check, "func", check), "__name__", "")
    if name == "check_sample_weight_equivalence_on_dense_data" and (
        _key(estimator) in EDGE_WEIGHT_EQUIVALENCE
    ):
        pytest.skip("at the edge of the check's rtol: passes or not by the CPU's kernels")
    check(estimator)
