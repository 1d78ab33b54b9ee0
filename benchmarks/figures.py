"""PNG figures of the benchmark: 2-D codes, reconstructions, loss curves."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def codes_2d(models, X, y, path, title):
    """The 2-D codes of X for each model side by side, coloured by label (H&S Fig. 3)."""
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.6))
    for ax, (name, model) in zip(np.atleast_1d(axes), models.items(), strict=True):
        Z = model.transform(X)
        scatter = ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=3, alpha=0.7)
        # a few outlying codes would otherwise squeeze the manifold into a corner
        low, high = np.percentile(Z, [0.5, 99.5], axis=0)
        pad = 0.05 * (high - low)
        ax.set_xlim(low[0] - pad[0], high[0] + pad[0])
        ax.set_ylim(low[1] - pad[1], high[1] + pad[1])
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(scatter, ax=axes, ticks=range(10), label="digit")
    fig.suptitle(title)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def reconstructions(models, X, shape, path, n=10, unscale=None):
    """A grid: the first row the data, then one row of reconstructions per model."""
    unscale = unscale or (lambda a: a)
    rows = [("data", unscale(X[:n]))]
    rows += [(name, unscale(m.inverse_transform(m.transform(X[:n])))) for name, m in models.items()]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 1.0))
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(shape), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def loss_curves(models, path, title):
    """Training loss per epoch of every model that has one."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, model in models.items():
        curve = getattr(model, "loss_curve_", None)
        if curve:
            ax.plot(np.arange(1, len(curve) + 1), curve, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (per sample)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
