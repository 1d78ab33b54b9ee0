"""Input corruption for denoising autoencoders: pure torch, drawn from a given generator."""

import numpy as np
import torch

NOISES = ("gaussian", "masking", "salt_and_pepper")


class Corruption:
    """Corrupt a batch: ``Corruption(noise, level)(X, generator) -> X_tilde``.

    Parameters
    ----------
    noise : {"gaussian", "masking", "salt_and_pepper"}
        Additive Gaussian noise with standard deviation ``level``; masking sets a fraction
        ``level`` of the inputs to 0; salt-and-pepper sets a fraction ``level`` of the inputs
        to ``low`` or ``high`` with equal probability (Vincent et al. 2010).
    level : float or array-like of shape (n_features,)
        The standard deviation (one for every feature, or one per feature), or the
        fraction of inputs corrupted.
    low, high : array-like or float, default=0.0, 1.0
        The values salt-and-pepper noise writes (per feature or scalars): the data's range.
    """

    def __init__(self, noise, level, low=0.0, high=1.0):
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}; got {noise!r}.")
        self.noise = noise
        self.level = level
        self.low = low
        self.high = high

    def _uniform(self, x, generator):
        return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_level_tensor"}

    def _level_on(self, x):
        """``level`` as a tensor on ``x``'s device and dtype, made once, not per batch (a
        per-feature level would be a host-to-device copy at every step)."""
        cached = self.__dict__.get("_level_tensor")
        if cached is None or cached.device != x.device or cached.dtype != x.dtype:
            cached = torch.as_tensor(self.level, dtype=x.dtype, device=x.device)
            self._level_tensor = cached
        return cached

    def __call__(self, x, generator):
        if not np.any(self.level):
            return x
        if self.noise == "gaussian":
            eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return x + self._level_on(x) * eps
        hit = self._uniform(x, generator) < self.level
        if self.noise == "masking":
            return x.masked_fill(hit, 0.0)
        low = torch.as_tensor(self.low, dtype=x.dtype, device=x.device)
        high = torch.as_tensor(self.high, dtype=x.dtype, device=x.device)
        salt = self._uniform(x, generator) < 0.5
        return torch.where(hit, torch.where(salt, high, low), x)


def binarize(x, generator):
    """Dynamic binarisation: each value in [0, 1] becomes 1 with that probability, afresh
    at every call (every epoch's batch), drawn from ``generator``."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (u < x).to(x.dtype)
