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


def search_on_backend(X, backend):
    """A small GridSearchCV of AutoEncoder with ``n_jobs=1`` and on a joblib ``backend``
    (``n_jobs=-1``); checks their scores agree and returns nothing."""
    import joblib
    from sklearn.model_selection import GridSearchCV

    from skae import AutoEncoder

    grid = {"n_components": [2, 4], "alpha": [0.0, 0.01]}

    def search(n_jobs):
        model = AutoEncoder(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
        return GridSearchCV(model, grid, cv=2, n_jobs=n_jobs)

    local = search(1).fit(X)
    with joblib.parallel_backend(backend):
        remote = search(-1).fit(X)
    # stated tolerance: float sums may differ with the thread count of a fit; the workers'
    # single thread and this process's threads give the same scores to 1e-4
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"], rtol=1e-4
    )
    assert remote.best_params_ == local.best_params_


def pytest_report_header(config):
    import torch

    if torch.cuda.is_available():
        return (
            f"CUDA: {torch.cuda.get_device_name()} ({torch.cuda.device_count()} device(s)), "
            f"torch {torch.__version__}, CUDA {torch.version.cuda}"
        )
    return "CUDA: none (the tests marked gpu skip)"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """With ``-m gpu``: what ran on the device, test by test, so a run's log says it."""
    if "gpu" not in (config.getoption("markexpr") or ""):
        return
    seen = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            # test reports only (the stats also hold deselected items and warnings)
            if not hasattr(report, "when") or "gpu" not in getattr(report, "keywords", {}):
                continue
            if report.when == "call" or report.outcome != "passed":
                seen[report.nodeid] = report.outcome
    terminalreporter.section("GPU tests")
    for nodeid, outcome in sorted(seen.items()):
        terminalreporter.write_line(f"{outcome:8} {nodeid}")
    counts = {o: list(seen.values()).count(o) for o in sorted(set(seen.values()))}
    terminalreporter.write_line(", ".join(f"{n} {o}" for o, n in counts.items()) or "none ran")
