"""
ContractiveAE: codes that small changes of the input barely move
================================================================

:class:`~skae.ContractiveAE` adds to the reconstruction loss the squared Frobenius norm of
the encoder's Jacobian (Rifai et al., 2011), by default at 5% of the reconstruction loss
of its start (``contraction="auto"``): the codes change little when the input moves off
the data's manifold. The sensitivity of the codes is measured here from the outside, by
``transform`` alone: how far the code of a held-out digit moves, per unit of a small
random step of its pixels.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder, ContractiveAE
from skae.metrics import reconstruction_error

X_train, X_test = train_test_split(load_digits().data, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

models = {
    "AutoEncoder": AutoEncoder(n_components=10, random_state=0),
    "ContractiveAE": ContractiveAE(n_components=10, random_state=0),
}
step = np.random.default_rng(0).normal(size=X_test.shape)
step *= 1e-3 / np.linalg.norm(step, axis=1, keepdims=True)
sensitivity = {}
for name, model in models.items():
    model.fit(X_train)
    moved = model.transform(X_test + step) - model.transform(X_test)
    sensitivity[name] = np.linalg.norm(moved, axis=1) / 1e-3
    print(
        f"{name}: median sensitivity {np.median(sensitivity[name]):.2f}, "
        f"held-out squared error {reconstruction_error(model, X_test):.1f}"
    )

# %%
# The distribution of the sensitivity over the held-out digits.
fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0, max(s.max() for s in sensitivity.values()), 40)
for name, values in sensitivity.items():
    ax.hist(values, bins=bins, alpha=0.6, label=name)
ax.set_xlabel("|change of the code| / |change of the input|")
ax.set_ylabel("held-out digits")
ax.legend()
fig.tight_layout()
plt.show()
