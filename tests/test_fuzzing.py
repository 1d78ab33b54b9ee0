"""Input fuzzing: every public estimator and method, on inputs Hypothesis generates.

Shapes (0 and 1 rows, 1 feature, wide), dtypes (bool, ints, float16/32/64, object arrays of
numbers or strings, complex), NaN and infinity at random places, huge and tiny finite
magnitudes, non-contiguous and negatively strided arrays, memmaps, pandas frames with
nullable and categorical dtypes, sparse matrices and lists. Every case ends in a correct
result (the right shape, finite) or in a ``ValueError`` / ``TypeError`` raised by skae or
scikit-learn with a message, never in an exception from inside torch or skorch.
"""

import os
import traceback

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.decomposition import PCA

from skae import (
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

N_FEATURES = 5
SMALL = {"hidden_layer_sizes": (4,), "max_iter": 1, "random_state": 0}
ESTIMATORS = {
    "AutoEncoder": AutoEncoder(2, **SMALL),
    "LinearAE": LinearAE(2, max_iter=5, random_state=0),
    "DenoisingAE": DenoisingAE(2, **SMALL),
    "ContractiveAE": ContractiveAE(2, **SMALL),
    "SparseAE": SparseAE(2, **SMALL),
    "StackedAE": StackedAE(2, pretrain_iter=1, **SMALL),
    "VariationalAE": VariationalAE(2, **SMALL),
    "EncoderClassifier": EncoderClassifier(AutoEncoder(2, **SMALL), max_iter=1, random_state=0),
    "OutlierDetector": OutlierDetector(AutoEncoder(2, **SMALL)),
    "OutlierDetector-PCA": OutlierDetector(PCA(2)),
}
METHODS = [
    "transform",
    "inverse_transform",
    "score_samples",
    "score",
    "predict",
    "predict_proba",
    "decision_function",
]
# the number of generated cases per test, reported by the suite's summary
EXAMPLES = int(os.environ.get("SKAE_FUZZ_EXAMPLES", "60"))
CASES = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)


@st.composite
def arrays(draw, n_features=N_FEATURES, min_rows=0):
    """A 2-D input in one of the forms a user may pass."""
    n_rows = draw(st.sampled_from([min_rows, 1, 2, 7, 30]))
    n_cols = draw(st.sampled_from([n_features, n_features, 1, 200]))
    kind = draw(
        st.sampled_from(
            [
                "float64",
                "float32",
                "float16",
                "int64",
                "uint8",
                "bool",
                "object_numbers",
                "strings",
                "complex",
                "fortran",
                "strided",
                "reversed",
                "memmap",
                "list",
                "sparse",
                "pandas_nullable",
                "pandas_categorical",
            ]
        )
    )
    scale = draw(st.sampled_from([1.0, 1e-30, 1e30, 1e300]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.random((n_rows, n_cols)) * scale
    if draw(st.booleans()) and X.size:
        holes = rng.random(X.shape) < 0.2
        X[holes] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if kind in ("float64", "float32", "float16"):
        return X.astype(kind)
    if kind in ("int64", "uint8"):
        return np.nan_to_num(X, nan=0, posinf=1, neginf=0).clip(0, 255).astype(kind)
    if kind == "bool":
        return X > 0.5
    if kind == "object_numbers":
        return X.astype(object)
    if kind == "strings":
        return X.astype(str)
    if kind == "complex":
        return X + 1j
    if kind == "fortran":
        return np.asfortranarray(X)
    if kind == "strided":
        return np.repeat(X, 2, axis=1)[:, ::2]
    if kind == "reversed":
        return X[::-1]
    if kind == "memmap":
        path = f"/tmp/skae-fuzz-{os.getpid()}.npy"
        np.save(path, X)
        return np.load(path, mmap_mode="r")
    if kind == "list":
        return X.tolist()
    if kind == "sparse":
        return sp.csr_matrix(np.nan_to_num(X))
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(n_cols)])
    if kind == "pandas_nullable":
        return frame.astype("Float64")
    return frame.astype("category")


def _from_torch_or_skorch(error):
    """Whether the error was raised inside torch or skorch (not by skae's own checks)."""
    frames = traceback.extract_tb(error.__traceback__)
    raiser = frames[-1].filename if frames else ""
    return f"{os.sep}torch{os.sep}" in raiser or f"{os.sep}skorch{os.sep}" in raiser


def _check_outcome(run, expected_rows):
    try:
        result = run()
    except (ValueError, TypeError) as error:
        assert str(error), "an error without a message"
        assert not _from_torch_or_skorch(error), f"raised inside torch: {error!r}"
        return
    except Exception as error:  # anything else is a bug
        raise AssertionError(f"{type(error).__name__} instead of a clear error: {error}") from error
    result = np.asarray(result)
    if result.ndim:
        assert result.shape[0] == expected_rows
    if result.dtype.kind == "f":
        assert np.isfinite(result).all(), "a non-finite output from accepted input"


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.random((40, N_FEATURES))
    y = np.arange(40) % 3
    return {name: clone(est).fit(X, y) for name, est in ESTIMATORS.items()}


def _columns(X, n):
    """The first ``n`` columns of X, in X's own form (codes for inverse_transform)."""
    if isinstance(X, list):
        return [row[:n] for row in X]
    if hasattr(X, "iloc"):
        return X.iloc[:, :n]
    return X[:, :n]


def _rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", list(ESTIMATORS))
@CASES
@given(X=arrays())
def test_methods_on_any_input(fitted, name, X):
    estimator = fitted[name]
    for method in METHODS:
        if not hasattr(estimator, method):
            continue
        if method == "inverse_transform":
            n_codes = estimator.transform(np.zeros((1, N_FEATURES))).shape[1]
            codes = _columns(X, n_codes)
            _check_outcome(lambda m=method, Z=codes: getattr(estimator, m)(Z), _rows(X))
            continue
        if method == "score":
            if isinstance(estimator, EncoderClassifier):
                continue  # needs labels: scikit-learn's accuracy
            _check_outcome(lambda: estimator.score(X), _rows(X))
            continue
        _check_outcome(lambda m=method: getattr(estimator, m)(X), _rows(X))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", list(ESTIMATORS))
@settings(
    max_examples=max(EXAMPLES // 3, 5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(X=arrays(min_rows=0))
def test_fit_on_any_input(name, X):
    estimator = clone(ESTIMATORS[name])
    y = np.arange(_rows(X)) % 2

    def fit():
        estimator.fit(X, y)
        return estimator.transform(X) if hasattr(estimator, "transform") else estimator.predict(X)

    _check_outcome(fit, _rows(X))
