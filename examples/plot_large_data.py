"""
Data larger than memory
=======================

Two ways to train on more data than memory holds. A memory-mapped array is streamed, a
batch at a time (``data_path="streamed"``, chosen by ``"auto"`` for a memmap); or
``partial_fit`` is called on chunks from any source (files, a database, the blocks of a
Dask array), one epoch per call.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skae import AutoEncoder, LinearAE

X = (load_digits().data / 16).astype("float32")
folder = Path(tempfile.mkdtemp())
np.save(folder / "X.npy", X)
X_disk = np.load(folder / "X.npy", mmap_mode="r")  # stays on disk

ae = AutoEncoder(8, max_iter=20, random_state=0).fit(X_disk)
print("data path:", ae.data_path_)

# chunks from a stream: each call is one epoch of Adam for AutoEncoder, and one
# accumulation of the moments (then an exact solve) for LinearAE
stream_ae = AutoEncoder(8, random_state=0)
lae = LinearAE(8, random_state=0)
for epoch in range(5):
    for start in range(0, len(X), 500):
        chunk = X_disk[start : start + 500]
        stream_ae.partial_fit(chunk)
        if epoch == 0:
            lae.partial_fit(chunk)
print("epochs seen by the streamed autoencoder:", stream_ae.n_iter_)
print("LinearAE explained variance ratio:", lae.explained_variance_ratio_.sum().round(3))

# %%
# The training loss of both: the memmap's fit, epoch by epoch, and the stream's, chunk by
# chunk (four chunks make one pass over the data).
n_chunks = len(range(0, len(X), 500))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(1, ae.n_iter_ + 1), ae.loss_curve_, label="fit on the memmap (streamed)")
passes = np.arange(1, stream_ae.n_iter_ + 1) / n_chunks
ax.plot(passes, stream_ae.loss_curve_, label="partial_fit on chunks")
ax.set_xlabel("passes over the data")
ax.set_ylabel("training loss")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()
plt.show()
