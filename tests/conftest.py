import os

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="session")
def digits():
    """Standardised digits, split into a training and a held-out part."""
    data = load_digits()
    scaler = StandardScaler().fit(data.data[:1400])
    X = scaler.transform(data.data)
    return X[:1400], X[1400:], data.target[:1400], data.target[1400:]


@pytest.fixture(scope="session")
def digits01():
    """Digits scaled to [0, 1], for the Bernoulli likelihood."""
    return load_digits().data / 16.0


def sse(a, b):
    return float(((a - b) ** 2).sum(axis=1).mean())


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def _seeds():
    """The seeds of the statistical tests: ``SKAE_TESTS_SEEDS`` ("0", "0-4", "all" = 0-9 or
    "1,7"), as scikit-learn's ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED``. One seed by default, so
    the suite stays fast; ``SKAE_TESTS_SEEDS=all pytest -m 'not slow'`` checks that no
    threshold holds at one seed only."""
    spec = os.environ.get("SKAE_TESTS_SEEDS", "0")
    if spec == "all":
        return list(range(10))
    if "-" in spec:
        low, high = map(int, spec.split("-"))
        return list(range(low, high + 1))
    return [int(s) for s in spec.split(",")]


def pytest_generate_tests(metafunc):
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", _seeds())
