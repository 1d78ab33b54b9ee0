"""
DenoisingAE: reconstructing the clean image from a corrupted one
================================================================

:class:`~skae.DenoisingAE` corrupts each training batch (by default Gaussian noise of half
each feature's standard deviation, ``noise_level="auto"``; masking and salt-and-pepper
noise too) and learns to reconstruct the clean input (Vincent et al., 2008). Here it is
fed noisy held-out digits beside a plain :class:`~skae.AutoEncoder` of the same width, at
four widths, and each reconstruction is compared with the clean digit. Like every variant
it starts at PCA's solution, and keeps that start where training does not beat it on its
held-out rows (``improved_on_start_``, printed).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder, DenoisingAE
from skae.plotting import ImageGridDisplay

X_train, X_test = train_test_split(load_digits().data, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
noise = np.random.default_rng(1).normal(size=X_test.shape)


def error(model, X):
    """Squared error of the reconstruction of X to the clean held-out digits, per image."""
    return float(((model.inverse_transform(model.transform(X)) - X_test) ** 2).sum(1).mean())


widths, errors, models = [4, 8, 16, 32], {"AutoEncoder": [], "DenoisingAE": []}, {}
for width in widths:
    plain = AutoEncoder(n_components=width, random_state=0).fit(X_train)
    denoising = DenoisingAE(n_components=width, random_state=0).fit(X_train)
    X_noisy = X_test + denoising.noise_level_ * noise
    errors["AutoEncoder"].append(error(plain, X_noisy))
    errors["DenoisingAE"].append(error(denoising, X_noisy))
    models[width] = plain, denoising
    print(
        f"width {width:2d}: AutoEncoder {errors['AutoEncoder'][-1]:5.1f}, DenoisingAE "
        f"{errors['DenoisingAE'][-1]:5.1f} (improved_on_start_={denoising.improved_on_start_})"
    )
noisy_error = float((((X_test + denoising.noise_level_ * noise) - X_test) ** 2).sum(1).mean())
print(f"the noisy inputs themselves: {noisy_error:.1f}")

# %%
# The error to the clean digits at each width.
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, values in errors.items():
    ax.plot(widths, values, marker="o", label=name)
ax.axhline(noisy_error, color="grey", linestyle=":", label="the noisy input")
ax.set_xscale("log", base=2)
ax.set_xticks(widths, [str(w) for w in widths])
ax.set_xlabel("code width")
ax.set_ylabel("squared error to the clean digit")
ax.legend()
fig.tight_layout()

# %%
# The noisy held-out digits (top) and their reconstructions at width 16, in pixels.
plain, denoising = models[16]
ImageGridDisplay.from_reconstructions(
    {"AutoEncoder": plain, "DenoisingAE": denoising},
    X_test + denoising.noise_level_ * noise,
    n_images=10,
    image_shape=(8, 8),
    unscale=scaler.inverse_transform,
)
plt.show()
