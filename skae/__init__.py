"""skae: scikit-learn transformers that wrap PyTorch autoencoders."""

from .autoencoder import AutoEncoder, LinearAE

__all__ = ["AutoEncoder", "LinearAE"]
__version__ = "0.1.0"
