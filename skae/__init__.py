"""skae: scikit-learn transformers that wrap PyTorch autoencoders."""

import sys as _sys

from . import persistence as persistence
from . import plotting as plotting
from ._version import __version__ as __version__
from .architectures import MLP, ConvNet, MLPEnsemble
from .autoencoder import AutoEncoder, LinearAE
from .classifier import EncoderClassifier
from .denoising import DenoisingAE
from .outliers import OutlierDetector
from .regularized import ContractiveAE, SparseAE
from .stacked import StackedAE
from .variational import VariationalAE

__all__ = [
    "AutoEncoder",
    "ContractiveAE",
    "ConvNet",
    "DenoisingAE",
    "EncoderClassifier",
    "LinearAE",
    "MLP",
    "MLPEnsemble",
    "OutlierDetector",
    "SparseAE",
    "StackedAE",
    "VariationalAE",
]

# The modules' paths before 0.2.0's layout (skae.engine, skae.modules, ...): pickles written
# then name their classes there, and keep loading through these aliases.
_MOVED_MODULES = {
    "engine": "_engine.net",
    "training": "_engine.training",
    "tasks": "_engine.tasks",
    "modules": "_nn.modules",
    "objectives": "_nn.objectives",
    "likelihoods": "_nn.likelihoods",
    "losses": "_nn.estimates",
    "noise": "_nn.noise",
}
for _old, _new in _MOVED_MODULES.items():
    _sys.modules.setdefault(f"{__name__}.{_old}", _sys.modules[f"{__name__}.{_new}"])
del _old, _new


def __getattr__(name):
    # ``import skae.engine; skae.engine.AutoEncoderNet``, as before the move
    if name in _MOVED_MODULES:
        return _sys.modules[f"{__name__}.{name}"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
