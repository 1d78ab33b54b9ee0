"""
Training curves, checkpoints, samples and saving
================================================

A :class:`~skae.VariationalAE` is trained with skorch callbacks of your own: a
``Checkpoint`` that saves the best weights, then resumed from it with ``LoadInitState``.
Its training curves, samples from the prior and an interpolation between two digits are
drawn with the Display objects; the model is saved and loaded with
:func:`skae.persistence.save` / :func:`~skae.persistence.load` (no code is run on loading).
"""

import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from skorch.callbacks import Checkpoint, LoadInitState

from skae import VariationalAE
from skae.persistence import load, save
from skae.plotting import ImageGridDisplay, TrainingCurveDisplay

X = (load_digits().data / 16).astype("float32")
folder = Path(tempfile.mkdtemp())
checkpoint = Checkpoint(dirname=str(folder / "checkpoints"), monitor="train_loss_best")
vae = VariationalAE(
    8, loss="bce", max_iter=40, learning_rate="cosine", callbacks=[checkpoint], random_state=0
).fit(X)

# resume: the weights, optimizer and history of the best epoch, then 20 more epochs
resumed = VariationalAE(
    8,
    loss="bce",
    max_iter=20,
    callbacks=[checkpoint, LoadInitState(checkpoint)],
    random_state=0,
).fit(X)
print("epochs in the resumed history:", resumed.n_iter_)

TrainingCurveDisplay.from_estimator(vae)
ImageGridDisplay.from_samples(vae, n_rows=3, n_columns=8, random_state=0)
ImageGridDisplay.from_interpolation({"VAE": vae}, X[0], X[1], n_steps=8)

# %%
# Saving without pickle
save(vae, folder / "vae.safetensors")
loaded = load(folder / "vae.safetensors")
print("same codes:", np.allclose(loaded.transform(X), vae.transform(X)))
