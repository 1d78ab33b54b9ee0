"""
SparseAE: codes of units that are mostly off
============================================

:class:`~skae.SparseAE` with ``sparsity="kl"`` gives its code units a logistic activation
and penalises the KL divergence between each unit's mean activation over the data and a
small target (Ng's sparse autoencoder): each unit fires for a few digits and rests for the
others, so the code is a wide, sparse description. Here 32 units with a target of 0.05.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import SparseAE

warnings.filterwarnings("ignore", category=ConvergenceWarning)

digits = load_digits()
X, y = digits.data / 16, digits.target
sparse = SparseAE(32, sparsity="kl", sparsity_target=0.05, max_iter=100, random_state=0)
codes = sparse.fit(X).transform(X)
print("mean activation of the units:", codes.mean(axis=0).round(3)[:8], "...")
print("share of activations below 0.1:", round(float(np.mean(codes < 0.1)), 3))

# %%
# Left, every activation; right, each unit's mean activation for each digit: a unit is
# on for some digits and off for the rest.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].hist(codes.ravel(), bins=50)
axes[0].set_xlabel("activation")
axes[0].set_ylabel("count")
per_digit = np.stack([codes[y == d].mean(axis=0) for d in range(10)])
image = axes[1].imshow(per_digit, aspect="auto", cmap="viridis")
axes[1].set_xlabel("code unit")
axes[1].set_ylabel("digit")
fig.colorbar(image, ax=axes[1], label="mean activation")
fig.tight_layout()
plt.show()
