"""A served model: one fitted estimator called from many threads at once.

``transform``, ``inverse_transform``, ``score_samples``, ``predict`` and ``predict_proba``
only read the fitted module (inference mode, no state written), so concurrent calls return
what serial calls do. ``fit`` replaces the fitted state and must not run concurrently with
them on the same object (as for any scikit-learn estimator): fit a clone instead.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

from skae import AutoEncoder, EncoderClassifier, OutlierDetector, VariationalAE


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def _calls(estimator, X):
    methods = ["transform", "inverse_transform", "score_samples", "predict", "predict_proba"]
    calls = []
    for name in methods:
        method = getattr(estimator, name, None)
        if method is None:
            continue
        if name == "inverse_transform":
            codes = estimator.transform(X)
            calls.append((name, lambda c=codes, m=method: m(c)))
        else:
            calls.append((name, lambda m=method: m(X)))
    return calls


@pytest.mark.parametrize(
    "make",
    [
        lambda: AutoEncoder(8, max_iter=3, random_state=0),
        lambda: VariationalAE(8, loss="bce", max_iter=3, random_state=0),
        lambda: EncoderClassifier(AutoEncoder(8, max_iter=2), max_iter=3, random_state=0),
        lambda: OutlierDetector(AutoEncoder(8, max_iter=3), random_state=0),
    ],
    ids=["AutoEncoder", "VariationalAE", "EncoderClassifier", "OutlierDetector"],
)
def test_eight_threads_get_what_serial_calls_get(make, data):
    X, y = data
    estimator = make().fit(X, y)
    calls = _calls(estimator, X)
    serial = {name: call() for name, call in calls}
    jobs = [(name, call) for name, call in calls for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: (job[0], job[1]()), jobs))
    for name, result in results:
        assert_array_equal(result, serial[name])
    # float64 input takes another path (a float64 copy of the module), concurrently too
    X64 = X.astype(np.float64)
    expected = estimator.score_samples(X64) if hasattr(estimator, "score_samples") else None
    if expected is not None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for result in pool.map(lambda _: estimator.score_samples(X64), range(8)):
                assert_array_equal(result, expected)
