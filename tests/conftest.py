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
