"""
VariationalAE: generation and interpolation
===========================================

A :class:`~skae.VariationalAE` is a generative model (Kingma and Welling, 2014): its
``sample`` draws codes from the prior and decodes them into new images, its codes form a
smooth space in which the decodings of a segment between two digits morph one into the
other, and its ``log_likelihood`` estimates the held-out log-likelihood in nats by
importance sampling (Burda et al., 2016). Here beside a plain
:class:`~skae.AutoEncoder`, whose codes are not made for walking between.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoEncoder, VariationalAE
from skae.plotting import ImageGridDisplay

warnings.filterwarnings("ignore", category=ConvergenceWarning)

digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(digits.data / 16, digits.target, random_state=0)
vae = VariationalAE(n_components=8, hidden_layer_sizes=(128,), max_iter=150, random_state=0)
vae.fit(X_train)
ae = AutoEncoder(n_components=8, hidden_layer_sizes=(128,), loss="bce", max_iter=150)
ae.set_params(random_state=0).fit(X_train)
print("held-out ELBO (nats per image):", round(vae.score(X_test), 2))
print(
    "held-out log-likelihood, 50 importance samples (nats per image):",
    round(float(vae.log_likelihood(X_test, random_state=0).mean()), 2),
)

# %%
# New digits drawn from the prior.
ImageGridDisplay.from_samples(vae, n_rows=3, n_columns=10, image_shape=(8, 8), random_state=0)

# %%
# The decodings of the segment from a 0 to a 6 in each model's code space.
start, end = X_test[y_test == 0][0], X_test[y_test == 6][0]
ImageGridDisplay.from_interpolation(
    {"VariationalAE": vae, "AutoEncoder": ae}, start, end, n_steps=10, image_shape=(8, 8)
)
plt.show()
