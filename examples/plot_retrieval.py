"""
Retrieval by nearest neighbours in code space
=============================================

An autoencoder's codes are a compact index: similar images get nearby codes, so a
:class:`~sklearn.neighbors.NearestNeighbors` search on them retrieves look-alikes at a
fraction of the pixels' dimension (Hinton and Salakhutdinov, 2006, retrieved documents
this way). Here 12 codes per digit against 12 principal components, scored by how often a
query's five nearest held-out neighbours show the same digit.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder

warnings.filterwarnings("ignore", category=ConvergenceWarning)

digits = load_digits()
X_base, X_query, y_base, y_query = train_test_split(
    digits.data, digits.target, test_size=0.2, random_state=0
)
models = {
    "PCA": make_pipeline(MinMaxScaler(), PCA(12)),
    "AutoEncoder": make_pipeline(MinMaxScaler(), AutoEncoder(12, max_iter=150, random_state=0)),
}
neighbours = {}
for name, model in models.items():
    codes = model.fit(X_base).transform(X_base)
    index = NearestNeighbors(n_neighbors=5).fit(codes)
    _, neighbours[name] = index.kneighbors(model.transform(X_query))
    precision = np.mean(y_base[neighbours[name]] == y_query[:, None])
    print(f"{name:12s} precision at 5: {precision:.3f}")

# %%
# Six queries (left column) and their five nearest neighbours in the autoencoder's codes.
fig, axes = plt.subplots(6, 6, figsize=(5, 5))
for row, query in enumerate(range(6)):
    images = [X_query[query]] + [X_base[i] for i in neighbours["AutoEncoder"][query]]
    for col, image in enumerate(images):
        axes[row, col].imshow(image.reshape(8, 8), cmap="gray_r")
        axes[row, col].set_axis_off()
axes[0, 0].set_title("query", fontsize=8)
axes[0, 3].set_title("nearest codes", fontsize=8)
fig.tight_layout()
plt.show()
