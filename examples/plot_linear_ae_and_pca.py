"""
LinearAE: the linear autoencoder solves PCA
===========================================

A linear autoencoder trained to its optimum spans the principal subspace (Baldi and
Hornik, 1989). :class:`~skae.LinearAE` solves it by EM steps on the data's covariance and
then rotates its basis onto the principal axes, so it reports ``components_``,
``explained_variance_`` and ``explained_variance_ratio_`` as
:class:`~sklearn.decomposition.PCA` does, and its codes are PCA's up to sign.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skae import LinearAE

X = load_digits().data / 16
pca = PCA(n_components=10).fit(X)
linear = LinearAE(n_components=10, random_state=0).fit(X)

# the cosines of the principal angles between the two subspaces: all 1 when they agree
cosines = np.linalg.svd(linear.components_ @ pca.components_.T, compute_uv=False)
print("smallest cosine between the subspaces:", round(float(cosines.min()), 6))
print("EM steps:", linear.n_iter_)
print("explained variance ratio, LinearAE:", linear.explained_variance_ratio_.round(4)[:5])
print("explained variance ratio, PCA:     ", pca.explained_variance_ratio_.round(4)[:5])

# %%
# The two spectra lie on each other, and so do the first components.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
k = np.arange(1, 11)
axes[0].bar(k - 0.2, pca.explained_variance_ratio_, width=0.4, label="PCA")
axes[0].bar(k + 0.2, linear.explained_variance_ratio_, width=0.4, label="LinearAE")
axes[0].set_xlabel("component")
axes[0].set_ylabel("explained variance ratio")
axes[0].legend()
codes_pca, codes_linear = pca.transform(X)[:, 0], linear.transform(X)[:, 0]
axes[1].scatter(codes_pca, codes_linear, s=3)
axes[1].set_xlabel("PCA, first code")
axes[1].set_ylabel("LinearAE, first code")
fig.tight_layout()
plt.show()
