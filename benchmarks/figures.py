"""PNG figures of the benchmark, drawn by skae's Display objects (:mod:`skae.plotting`)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from skae.plotting import CodesDisplay, ImageGridDisplay, TrainingCurveDisplay


def _save(figure, path):
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def codes_2d(models, X, y, path, title):
    """The 2-D codes of X for each model side by side, coloured by label (H&S Fig. 3)."""
    display = CodesDisplay.from_estimators(models, X, y)
    display.figure_.suptitle(title)
    _save(display.figure_, path)


def reconstructions(models, X, shape, path, n=10, unscale=None):
    """A grid: the first row the data, then one row of reconstructions per model."""
    display = ImageGridDisplay.from_reconstructions(
        models, X, n_images=n, image_shape=shape, unscale=unscale
    )
    _save(display.figure_, path)


def loss_curves(models, path, title):
    """Training loss per epoch of every model that has one, on one axis."""
    figure, ax = plt.subplots(figsize=(6, 4))
    for name, model in models.items():
        if getattr(model, "loss_curve_", None):
            TrainingCurveDisplay.from_estimator(model, name=name, ax=ax, show_lr=False)
    ax.set_title(title)
    _save(figure, path)
