"""A new variant in a few lines, through the documented hooks (skae.base.EXTENSION_POINTS),
and the list of hooks kept true: every hook skae's own variants override is on it."""

import pickle
from numbers import Real

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils._param_validation import Interval

import skae
from skae import AutoEncoder
from skae._nn.objectives import Reconstruction, weighted_mean
from skae.base import EXTENSION_POINTS


# --- the variant: an autoencoder whose codes are pulled towards 0 (under 40 lines) -------
class CodeDecay(Reconstruction):
    """The reconstruction loss plus ``decay`` times the codes' mean squared norm."""

    def __init__(self, likelihood, decay):
        super().__init__(likelihood)
        self.decay = decay

    def penalty(self, module, x, z, weight=None):
        return self.decay * weighted_mean((z**2).sum(dim=1), weight)


class CodeDecayAE(AutoEncoder):
    _parameter_constraints = {
        **AutoEncoder._parameter_constraints,
        "code_decay": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=None, *, code_decay=1.0, max_iter=200, random_state=None):
        super().__init__(n_components, max_iter=max_iter, random_state=random_state)
        self.code_decay = code_decay

    def _objective(self):
        return CodeDecay(self._likelihood, self.code_decay)


# --- its tests ---------------------------------------------------------------------------
def test_a_variant_in_a_few_lines_trains_its_objective(digits):
    X = digits[0][:500]
    free = CodeDecayAE(3, code_decay=0.0, max_iter=30, random_state=0).fit(X)
    pulled = CodeDecayAE(3, code_decay=1.0, max_iter=30, random_state=0).fit(X)
    norm = lambda est: float((est.transform(X) ** 2).sum(axis=1).mean())  # noqa: E731
    assert norm(pulled) < 0.5 * norm(free)
    # and it is an estimator like the others: cloned, pickled, validated
    assert clone(pulled).get_params()["code_decay"] == 1.0
    again = pickle.loads(pickle.dumps(pulled))
    np.testing.assert_allclose(again.transform(X), pulled.transform(X))
    with pytest.raises(ValueError, match="code_decay"):
        CodeDecayAE(code_decay=-1.0).fit(X)


def own_names(cls):
    """The names a class defines itself that one of its skae bases defines too."""
    bases = [b for b in cls.__mro__[1:] if b.__module__.startswith("skae.")]
    return {
        name
        for name in vars(cls)
        if name.startswith("_")
        and not name.startswith(("__", "_sklearn"))  # scikit-learn's own machinery
        and any(name in vars(base) for base in bases)
    }


@pytest.mark.parametrize(
    "cls",
    [
        getattr(skae, name)
        for name in skae.__all__
        if name not in ("MLP", "ConvNet", "MLPEnsemble", "OutlierDetector")
    ],
)
def test_every_hook_skaes_variants_override_is_documented(cls):
    assert own_names(cls) <= set(EXTENSION_POINTS), own_names(cls) - set(EXTENSION_POINTS)


def test_every_documented_hook_exists():
    for name in EXTENSION_POINTS:
        assert hasattr(AutoEncoder, name), name
