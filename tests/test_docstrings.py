"""Parameters shared by several estimators are described in the same words everywhere.

The docstrings are literal text (static tools read them); this keeps their shared entries
from drifting apart, as scikit-learn does for MLPClassifier and MLPRegressor.
"""

import pytest

pytest.importorskip("numpydoc")

from sklearn.utils._testing import assert_docstring_consistency  # noqa: E402

from skae import (  # noqa: E402
    AutoEncoder,
    ContractiveAE,
    DenoisingAE,
    EncoderClassifier,
    LinearAE,
    OutlierDetector,
    SparseAE,
    StackedAE,
    VariationalAE,
)

EVERY = [
    AutoEncoder,
    LinearAE,
    DenoisingAE,
    ContractiveAE,
    SparseAE,
    StackedAE,
    VariationalAE,
    EncoderClassifier,
]
NETWORKS = [AutoEncoder, DenoisingAE, ContractiveAE, SparseAE, StackedAE]


def test_training_parameters_read_the_same_everywhere():
    assert_docstring_consistency(
        EVERY,
        include_params=[
            "batch_size",
            "learning_rate",
            "validation_fraction",
            "n_iter_no_change",
            "device",
            "data_path",
            "precision",
            "random_state",
            "verbose",
            "warm_start",
            "callbacks",
        ],
    )


def test_network_parameters_read_the_same_everywhere():
    assert_docstring_consistency(
        NETWORKS,
        include_params=[
            "n_components",
            "module",
            "activation",
            "loss",
            "solver",
            "learning_rate_init",
            "early_stopping",
            "tol",
        ],
    )
    assert_docstring_consistency([*NETWORKS, VariationalAE], include_params=["activation"])
    assert_docstring_consistency(
        [cls for cls in NETWORKS if cls is not StackedAE] + [VariationalAE],
        include_params=["hidden_layer_sizes"],
    )


def test_every_parameter_is_documented():
    import inspect

    from numpydoc.docscrape import ClassDoc

    for cls in [*EVERY, OutlierDetector]:
        documented = [p.name for p in ClassDoc(cls)["Parameters"]]
        assert documented == list(inspect.signature(cls).parameters), cls.__name__
