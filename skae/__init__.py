"""skae: scikit-learn transformers that wrap PyTorch autoencoders."""

from .autoencoder import AutoEncoder, LinearAE
from .denoising import DenoisingAE

__all__ = ["AutoEncoder", "DenoisingAE", "LinearAE"]
__version__ = "0.1.0"
