"""skae: scikit-learn transformers that wrap PyTorch autoencoders."""

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
