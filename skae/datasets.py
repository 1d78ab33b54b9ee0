"""Data sets: MNIST from a local file, or from OpenML when online.

scikit-learn's :func:`~sklearn.datasets.load_digits` ships with scikit-learn and is the
embedded default of the benchmarks; MNIST is looked for, in order, at ``path``, at the
file named by the environment variable ``SKAE_MNIST``, then on OpenML (``mnist_784``).
"""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

MNIST_ENV = "SKAE_MNIST"


__all__ = ["load_mnist"]


def _from_npz(path):
    with np.load(path) as data:
        missing = {"X_train", "y_train", "X_test", "y_test"} - set(data.files)
        if missing:
            raise ValueError(f"{path} is not an MNIST file: it lacks {sorted(missing)}.")
        return tuple(data[k] for k in ("X_train", "y_train", "X_test", "y_test"))


def _from_openml(data_home):
    from sklearn.datasets import fetch_openml

    X, y = fetch_openml(
        "mnist_784", version=1, return_X_y=True, as_frame=False, data_home=data_home
    )
    y = y.astype(np.uint8)
    # OpenML keeps the official order: the 60,000 training images, then the 10,000 test ones.
    return X[:60000], y[:60000], X[60000:], y[60000:]


def load_mnist(path=None, *, data_home=None, download=True):
    """MNIST, the 60,000 / 10,000 split, pixels scaled to [0, 1] as float32.

    Parameters
    ----------
    path : str or Path, default=None
        An ``.npz`` file with ``X_train``, ``y_train``, ``X_test``, ``y_test`` (pixels
        0..255). None looks at the environment variable ``SKAE_MNIST``, then OpenML.
    data_home : str, default=None
        scikit-learn's download cache for OpenML.
    download : bool, default=True
        Whether OpenML may be asked when no local file is given.

    Returns
    -------
    data : Bunch
        ``X_train`` (60000, 784), ``y_train``, ``X_test`` (10000, 784), ``y_test``, and
        ``source`` (the file, or "openml").

    Raises
    ------
    FileNotFoundError
        A given file does not exist.
    RuntimeError
        No local file was given and OpenML could not be reached (offline).
    """
    path = path if path is not None else os.environ.get(MNIST_ENV) or None
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"No MNIST file at {path}: pass path=... (or --data) or "
                f"set {MNIST_ENV} to an .npz with X_train, y_train, "
                "X_test, y_test."
            )
        arrays, source = _from_npz(path), str(path)
    elif not download:
        raise RuntimeError(
            f"MNIST is not available: no path given, {MNIST_ENV} is not set and download=False."
        )
    else:
        try:
            arrays, source = _from_openml(data_home), "openml"
        except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
            raise RuntimeError(
                "MNIST is not available: no path given, "
                f"{MNIST_ENV} is not set, and fetch_openml('mnist_784') failed "
                f"({type(exc).__name__}: {exc}). Offline? Pass path=... (or --data) or set "
                f"{MNIST_ENV} to a local mnist.npz."
            ) from exc
    X_train, y_train, X_test, y_test = arrays
    scale = np.float32(1 / 255.0)
    return Bunch(
        X_train=X_train.astype(np.float32) * scale,
        y_train=np.asarray(y_train),
        X_test=X_test.astype(np.float32) * scale,
        y_test=np.asarray(y_test),
        source=source,
    )
