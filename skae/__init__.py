"""skae: scikit-learn transformers that wrap PyTorch autoencoders."""

from .architectures import MLP, ConvNet
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
    "OutlierDetector",
    "SparseAE",
    "StackedAE",
    "VariationalAE",
]
__version__ = "0.2.0.dev0"  # the one place the version is written
