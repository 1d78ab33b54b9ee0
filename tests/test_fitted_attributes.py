"""Every fitted attribute is documented, in the style of scikit-learn's
``test_fit_docstring_attributes``: each public attribute ending in ``_`` that a fit sets (or
a fitted property) is named in the class docstring's Attributes section."""

import warnings

import pytest

pytest.importorskip("numpydoc")

from numpydoc.docscrape import ClassDoc  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

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

CASES = {
    "AutoEncoder (early stopping)": lambda: AutoEncoder(max_iter=2, early_stopping=True),
    "AutoEncoder (without)": lambda: AutoEncoder(max_iter=2, early_stopping=False),
    "LinearAE (EM)": lambda: LinearAE(n_components=2),
    "LinearAE (L-BFGS)": lambda: LinearAE(n_components=2, solver="lbfgs", max_iter=2),
    "DenoisingAE": lambda: DenoisingAE(max_iter=2, early_stopping=True),
    "ContractiveAE": lambda: ContractiveAE(max_iter=2, early_stopping=True),
    "SparseAE": lambda: SparseAE(max_iter=2, early_stopping=False),
    "StackedAE": lambda: StackedAE(max_iter=2, pretrain_iter=1, early_stopping=True),
    "VariationalAE": lambda: VariationalAE(max_iter=2, early_stopping=True),
    "EncoderClassifier": lambda: EncoderClassifier(max_iter=2),
    "EncoderClassifier (early stopping)": lambda: EncoderClassifier(
        max_iter=2, early_stopping=True
    ),
    "OutlierDetector": lambda: OutlierDetector(),
    "OutlierDetector (refit)": lambda: OutlierDetector(AutoEncoder(max_iter=2), refit_inliers=True),
}


def documented_attributes(cls):
    names = set()
    for entry in ClassDoc(cls)["Attributes"]:
        names.update(name.strip() for name in entry.name.split(","))
    return names


@pytest.mark.parametrize("case", list(CASES))
def test_every_fitted_attribute_is_documented(case):
    digits = load_digits()
    X, y = digits.data[:300] / 16, digits.target[:300]
    est = CASES[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y) if isinstance(est, EncoderClassifier) else est.fit(X)
    cls = type(est)
    fitted = {name for name in vars(est) if name.endswith("_") and not name.startswith("_")}
    properties = {
        name
        for name in dir(cls)
        if name.endswith("_")
        and not name.startswith("_")
        and isinstance(getattr(cls, name), property)
    }
    missing = sorted((fitted | properties) - documented_attributes(cls))
    assert not missing, f"{cls.__name__} sets undocumented attributes {missing}"
