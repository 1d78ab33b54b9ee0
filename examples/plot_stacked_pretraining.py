"""
StackedAE: greedy layer-wise pretraining, then fine-tuning
==========================================================

:class:`~skae.StackedAE` trains one shallow autoencoder per level of its stack, each on
the codes of the levels below (Hinton and Salakhutdinov, 2006; Bengio et al., 2007), then
fine-tunes the whole network end to end. Its ``pretrain_loss_curves_`` record each
level's training and ``loss_curve_`` the fine-tuning's, which starts from the pretrained
stack beside PCA's solution.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import StackedAE
from skae.metrics import reconstruction_error

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short budgets, on purpose

X_train, X_test = train_test_split(load_digits().data / 16, random_state=0)
stacked = StackedAE(
    n_components=8,
    hidden_layer_sizes=(128, 32),
    pretrain_iter=20,
    max_iter=60,
    random_state=0,
).fit(X_train)
print("held-out squared error per image:", round(reconstruction_error(stacked, X_test), 3))

# %%
# Each level's loss during pretraining (its own inputs: pixels for the first, codes above),
# then the fine-tuning of the deep network.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for level, curve in enumerate(stacked.pretrain_loss_curves_):
    axes[0].plot(range(1, len(curve) + 1), curve, label=f"level {level}")
axes[0].set_yscale("log")
axes[0].set_xlabel("pretraining epoch")
axes[0].set_ylabel("training loss")
axes[0].legend()
axes[1].plot(range(1, stacked.n_iter_ + 1), stacked.loss_curve_)
axes[1].set_xlabel("fine-tuning epoch")
axes[1].set_ylabel("training loss")
fig.tight_layout()
plt.show()
