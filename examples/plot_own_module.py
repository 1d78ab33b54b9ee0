"""
A network of your own
=====================

Every skae estimator trains any ``torch.nn.Module`` with an ``encode`` and a ``decode``
method: here a tied-weights autoencoder (the decoder uses the transpose of the encoder's
weights), trained as a denoising autoencoder, and the built-in convolutional network on the
digits as 1x8x8 images. The reconstructions are drawn with
:class:`~skae.plotting.ImageGridDisplay`.
"""

import torch
from sklearn.datasets import load_digits
from torch import nn

from skae import AutoEncoder, ConvNet, DenoisingAE
from skae.plotting import ImageGridDisplay


class TiedAE(nn.Module):
    """x -> tanh(W x + b) -> W^T z + c."""

    def __init__(self, n_features=64, n_components=8):
        super().__init__()
        self.encoder = nn.Linear(n_features, n_components)
        self.bias = nn.Parameter(torch.zeros(n_features))

    def encode(self, x):
        return torch.tanh(self.encoder(x))

    def decode(self, z):
        return z @ self.encoder.weight + self.bias


X = (load_digits().data / 16).astype("float32")
tied = DenoisingAE(module=TiedAE(), noise_level=0.2, max_iter=60, random_state=0).fit(X)
conv = AutoEncoder(
    8, module=ConvNet(input_shape=(1, 8, 8), channels=(16, 32)), max_iter=30, random_state=0
).fit(X)
print("codes:", tied.transform(X[:3]).shape, conv.transform(X[:3]).shape)
display = ImageGridDisplay.from_reconstructions({"tied": tied, "conv": conv}, X, n_images=8)
