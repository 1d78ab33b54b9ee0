"""Plots as scikit-learn Display objects: training curves, 2-D codes, image grids.

Each Display follows scikit-learn's pattern (:class:`~sklearn.metrics.RocCurveDisplay`): a
class method (``from_estimator``, ``from_estimators``, ...) computes what is drawn and calls
:meth:`plot`; the constructor takes that data, so a Display can be rebuilt from numbers
alone; :meth:`plot` draws on the given ``ax`` (or a new figure) and stores the artists and
``ax_`` / ``figure_``. matplotlib is imported only when plotting (``pip install skae[plot]``).

* :class:`TrainingCurveDisplay`: training and validation loss per epoch, and the learning
  rate, of a fitted skae estimator;
* :class:`CodesDisplay`: the 2-D codes of several fitted transformers side by side (PCA
  beside the autoencoders), coloured by label: the manifold comparison at a glance;
* :class:`ImageGridDisplay`: rows of images: reconstructions
  (:meth:`~ImageGridDisplay.from_reconstructions`), a VAE's samples
  (:meth:`~ImageGridDisplay.from_samples`), and an interpolation between two inputs
  through code space (:meth:`~ImageGridDisplay.from_interpolation`).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["CodesDisplay", "ImageGridDisplay", "TrainingCurveDisplay"]


def check_matplotlib_support(caller):
    """Raise an ImportError that says how to install matplotlib, if it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{caller} requires matplotlib: pip install matplotlib (or skae[plot])."
        ) from error


def _axes(ax, n=1, width=5.0, height=4.0):
    """``ax`` as a flat list of ``n`` axes, or a new figure's."""
    import matplotlib.pyplot as plt

    if ax is None:
        figure, ax = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
        return list(ax.ravel()), figure
    axes = list(np.ravel(ax))
    if len(axes) != n:
        raise ValueError(f"ax must hold {n} axes (one per panel); got {len(axes)}.")
    return axes, axes[0].figure


def _named(estimators):
    """Fitted estimators by name: a dict as given, a list named after the classes."""
    if isinstance(estimators, dict):
        return estimators
    return {type(e).__name__: e for e in estimators}


class TrainingCurveDisplay:
    """Training curves: the loss per epoch (training and, with early stopping, validation)
    and the learning rate on a second axis.

    Build it with :meth:`from_estimator`; the constructor takes the numbers.

    Parameters
    ----------
    train_loss : array-like of shape (n_epochs,)
        Mean training loss per epoch.
    valid_loss : array-like of shape (n_epochs,) or None
        Validation loss per epoch (early stopping), or None.
    learning_rate : array-like of shape (n_epochs,) or None
        The learning rate of each epoch, or None.
    name : str, default=None
        The estimator's name, for the legend.

    Attributes
    ----------
    lines_ : dict of matplotlib Line2D
        ``"train"``, ``"valid"`` and ``"learning_rate"`` lines (those drawn).
    ax_ : matplotlib Axes
        The loss axis.
    lr_ax_ : matplotlib Axes or None
        The learning rate's twin axis.
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoEncoder
    >>> from skae.plotting import TrainingCurveDisplay
    >>> X = load_digits().data / 16
    >>> ae = AutoEncoder(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> display = TrainingCurveDisplay.from_estimator(ae)
    >>> len(display.train_loss)
    5
    """

    def __init__(self, train_loss, valid_loss=None, learning_rate=None, name=None):
        self.train_loss = np.asarray(train_loss, dtype=float)
        self.valid_loss = None if valid_loss is None else np.asarray(valid_loss, dtype=float)
        self.learning_rate = (
            None if learning_rate is None else np.asarray(learning_rate, dtype=float)
        )
        self.name = name

    @classmethod
    def from_estimator(cls, estimator, *, name=None, ax=None, log_scale=True, show_lr=True):
        """Plot the training curves of a fitted skae estimator (its ``history_``).

        Parameters
        ----------
        estimator : fitted skae estimator
            One trained by gradient steps (its ``history_`` records the epochs).
        name : str, default=None
            For the legend; the class name by default.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure by default.
        log_scale : bool, default=True
            A logarithmic loss axis.
        show_lr : bool, default=True
            Draw the learning rate on a twin axis (off to compare several estimators on
            one ``ax``).

        Returns
        -------
        display : TrainingCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator)
        history = getattr(estimator, "history_", None)
        if history is None or not len(history):
            raise ValueError(
                f"{type(estimator).__name__} has no training history to plot (history_ is "
                "empty: max_iter=0, or an estimator not trained by epochs)."
            )
        epochs = list(history)
        valid = [e.get("valid_loss") for e in epochs]
        rates = [e.get("learning_rate") for e in epochs]
        if all(r is None for r in rates) and hasattr(estimator, "learning_rate_init"):
            solver = getattr(estimator, "solver", "adam")
            if solver == "adam":  # a constant rate: skorch records no event
                rates = [estimator.learning_rate_init] * len(epochs)
        display = cls(
            train_loss=[e["train_loss"] for e in epochs],
            valid_loss=None if all(v is None for v in valid) else valid,
            learning_rate=None if any(r is None for r in rates) else rates,
            name=name or type(estimator).__name__,
        )
        return display.plot(ax=ax, log_scale=log_scale, show_lr=show_lr)

    def plot(self, ax=None, *, log_scale=True, show_lr=True):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure by default.
        log_scale : bool, default=True
            A logarithmic loss axis.
        show_lr : bool, default=True
            Draw the learning rate (when known) on a twin axis.

        Returns
        -------
        display : TrainingCurveDisplay
            ``self``, with ``ax_``, ``figure_``, ``lines_`` and ``lr_ax_`` set.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        (ax,), figure = _axes(ax, width=6.0)
        epochs = np.arange(1, len(self.train_loss) + 1)
        label = self.name or "model"
        self.lines_ = {"train": ax.plot(epochs, self.train_loss, label=f"{label} (train)")[0]}
        if self.valid_loss is not None:
            self.lines_["valid"] = ax.plot(
                epochs, self.valid_loss, "--", label=f"{label} (validation)"
            )[0]
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (per sample)")
        if log_scale and np.all(self.train_loss > 0):
            ax.set_yscale("log")
        self.lr_ax_ = None
        if self.learning_rate is not None and show_lr:
            self.lr_ax_ = ax.twinx()
            self.lines_["learning_rate"] = self.lr_ax_.plot(
                epochs, self.learning_rate, ":", color="grey", label="learning rate"
            )[0]
            self.lr_ax_.set_ylabel("learning rate")
        # every loss curve on ax (several estimators may share it), and the learning rate
        handles = ax.get_lines() + ([] if self.lr_ax_ is None else self.lr_ax_.get_lines())
        ax.legend(handles, [h.get_label() for h in handles], fontsize=8)
        self.ax_, self.figure_ = ax, figure
        return self


class CodesDisplay:
    """The 2-D codes of several fitted transformers side by side, coloured by label.

    Build it with :meth:`from_estimators`; the constructor takes the codes.

    Parameters
    ----------
    codes : dict of str to ndarray of shape (n_samples, 2)
        Each transformer's codes, by name.
    y : array-like of shape (n_samples,) or None
        The labels that colour the points.

    Attributes
    ----------
    scatters_ : dict of matplotlib PathCollection
        One scatter per transformer.
    axes_ : list of matplotlib Axes
        One panel per transformer.
    figure_ : matplotlib Figure
    """

    def __init__(self, codes, y=None):
        self.codes = {name: np.asarray(Z) for name, Z in codes.items()}
        for name, Z in self.codes.items():
            if Z.ndim != 2 or Z.shape[1] < 2:
                raise ValueError(
                    f"the codes of {name!r} have shape {Z.shape}; a 2-D plot needs at least "
                    "2 components (the first two are drawn)."
                )
        self.y = None if y is None else np.asarray(y)

    @classmethod
    def from_estimators(cls, estimators, X, y=None, *, ax=None, clip=0.5):
        """Plot the first two components of ``transform(X)`` for each fitted transformer.

        Parameters
        ----------
        estimators : dict of str to fitted transformer, or list of them
            The transformers (PCA beside the autoencoders), by name; a list is named after
            the classes.
        X : array-like of shape (n_samples, n_features)
            The data to encode.
        y : array-like of shape (n_samples,), default=None
            Labels to colour the points by.
        ax : array of matplotlib Axes, default=None
            One per transformer; a new figure by default.
        clip : float, default=0.5
            Percent of the codes left outside the view at each end of each axis, so that
            a few outlying codes do not squeeze the manifold into a corner.

        Returns
        -------
        display : CodesDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimators")
        estimators = _named(estimators)
        codes = {}
        for name, estimator in estimators.items():
            check_is_fitted(estimator)
            codes[name] = np.asarray(estimator.transform(X))
        return cls(codes, y).plot(ax=ax, clip=clip)

    def plot(self, ax=None, *, clip=0.5, cmap="tab10"):
        """Draw one panel per transformer.

        Parameters
        ----------
        ax : array of matplotlib Axes, default=None
            One per transformer; a new figure by default.
        clip : float, default=0.5
            Percent of the codes left outside the view at each end of each axis.
        cmap : str, default="tab10"
            The colour map of the labels.

        Returns
        -------
        display : CodesDisplay
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        axes, figure = _axes(ax, len(self.codes), width=4.5, height=4.2)
        self.scatters_ = {}
        for panel, (name, Z) in zip(axes, self.codes.items(), strict=True):
            colours = {} if self.y is None else {"c": self.y, "cmap": cmap}
            self.scatters_[name] = panel.scatter(Z[:, 0], Z[:, 1], s=3, **colours)
            if len(Z) and clip:
                low, high = np.percentile(Z[:, :2], [clip, 100 - clip], axis=0)
                pad = 0.05 * np.maximum(high - low, 1e-12)
                panel.set_xlim(low[0] - pad[0], high[0] + pad[0])
                panel.set_ylim(low[1] - pad[1], high[1] + pad[1])
            panel.set_title(name)
            panel.set_xticks([])
            panel.set_yticks([])
        if self.y is not None and np.issubdtype(self.y.dtype, np.number):
            figure.colorbar(next(iter(self.scatters_.values())), ax=axes, label="label")
        self.axes_, self.figure_ = axes, figure
        return self


class ImageGridDisplay:
    """Rows of images drawn as one grid: reconstructions, samples, interpolations.

    Build it with :meth:`from_reconstructions`, :meth:`from_samples` or
    :meth:`from_interpolation`; the constructor takes the images.

    Parameters
    ----------
    images : ndarray of shape (n_rows, n_columns, height, width)
        The images, grey levels.
    row_labels : list of str, default=None
        One label per row.

    Attributes
    ----------
    image_ : matplotlib AxesImage
        The grid, drawn as one image.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    """

    def __init__(self, images, row_labels=None):
        images = np.asarray(images, dtype=float)
        if images.ndim != 4:
            raise ValueError(
                f"images must have shape (n_rows, n_columns, height, width); got {images.shape}."
            )
        self.images = images
        self.row_labels = list(row_labels) if row_labels is not None else None
        if self.row_labels is not None and len(self.row_labels) != len(images):
            raise ValueError(f"{len(self.row_labels)} row labels for {len(images)} rows of images.")

    @staticmethod
    def _shaped(rows, image_shape):
        rows = np.asarray(rows, dtype=float)
        if image_shape is None:
            side = int(round(np.sqrt(rows.shape[-1])))
            if side * side != rows.shape[-1]:
                raise ValueError(
                    f"{rows.shape[-1]} features are not a square image; pass image_shape."
                )
            image_shape = (side, side)
        image_shape = tuple(image_shape)
        if int(np.prod(image_shape)) != rows.shape[-1]:
            raise ValueError(
                f"image_shape={image_shape} holds {int(np.prod(image_shape))} pixels, but the "
                f"rows have {rows.shape[-1]} features."
            )
        return rows.reshape(*rows.shape[:-1], *image_shape)

    @classmethod
    def from_reconstructions(
        cls, estimators, X, *, n_images=10, image_shape=None, unscale=None, ax=None
    ):
        """The first ``n_images`` rows of X, and below them each transformer's
        reconstruction ``inverse_transform(transform(X))``.

        Parameters
        ----------
        estimators : dict of str to fitted transformer, or list of them
        X : array-like of shape (n_samples, n_features)
        n_images : int, default=10
        image_shape : tuple of int, default=None
            ``(height, width)``; None for square images.
        unscale : callable, default=None
            Maps rows back to pixel values (a scaler's ``inverse_transform``).
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : ImageGridDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_reconstructions")
        estimators = _named(estimators)
        X = np.asarray(X)[:n_images]
        unscale = unscale or (lambda a: a)
        rows, labels = [unscale(X)], ["data"]
        for name, estimator in estimators.items():
            check_is_fitted(estimator)
            rows.append(unscale(estimator.inverse_transform(estimator.transform(X))))
            labels.append(name)
        return cls(cls._shaped(rows, image_shape), labels).plot(ax=ax)

    @classmethod
    def from_samples(
        cls, estimator, *, n_rows=4, n_columns=10, image_shape=None, random_state=None, ax=None
    ):
        """Draws from a fitted generative model's ``sample`` (a VariationalAE).

        Parameters
        ----------
        estimator : fitted estimator with ``sample(n_samples, random_state=)``
        n_rows, n_columns : int, default=4, 10
        image_shape : tuple of int, default=None
        random_state : int or None, default=None
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : ImageGridDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_samples")
        check_is_fitted(estimator)
        if not callable(getattr(estimator, "sample", None)):
            raise ValueError(
                f"{type(estimator).__name__} has no sample method: samples need a generative "
                "model such as VariationalAE."
            )
        draws = np.asarray(estimator.sample(n_rows * n_columns, random_state=random_state))
        draws = draws.reshape(n_rows, n_columns, -1)
        return cls(cls._shaped(draws, image_shape)).plot(ax=ax)

    @classmethod
    def from_interpolation(
        cls, estimators, x_start, x_end, *, n_steps=10, image_shape=None, unscale=None, ax=None
    ):
        """Decodings of the codes on the segment between the codes of two inputs: one row
        per transformer, from ``x_start`` (left) to ``x_end`` (right).

        Parameters
        ----------
        estimators : dict of str to fitted transformer, or list of them
        x_start, x_end : array-like of shape (n_features,)
        n_steps : int, default=10
            Points on the segment, its ends included.
        image_shape : tuple of int, default=None
        unscale : callable, default=None
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : ImageGridDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_interpolation")
        estimators = _named(estimators)
        if n_steps < 2:
            raise ValueError(f"n_steps={n_steps} must be at least 2 (the two ends).")
        ends = np.stack([np.ravel(x_start), np.ravel(x_end)])
        unscale = unscale or (lambda a: a)
        t = np.linspace(0.0, 1.0, n_steps)[:, None]
        rows, labels = [], []
        for name, estimator in estimators.items():
            check_is_fitted(estimator)
            start, end = np.asarray(estimator.transform(ends), dtype=float)
            path = ((1 - t) * start + t * end).astype(ends.dtype, copy=False)
            rows.append(unscale(estimator.inverse_transform(path)))
            labels.append(name)
        return cls(cls._shaped(rows, image_shape), labels).plot(ax=ax)

    def plot(self, ax=None, *, cmap="gray_r", gap=1):
        """Draw the images as one grid, a row label on the left of each row.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        cmap : str, default="gray_r"
        gap : int, default=1
            Blank pixels between images.

        Returns
        -------
        display : ImageGridDisplay
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        n_rows, n_columns, height, width = self.images.shape
        (ax,), figure = _axes(ax, width=0.9 * n_columns, height=1.0 * n_rows)
        step_y, step_x = height + gap, width + gap
        grid = np.full((n_rows * step_y - gap, n_columns * step_x - gap), np.nan)
        for r in range(n_rows):
            for c in range(n_columns):
                grid[r * step_y : r * step_y + height, c * step_x : c * step_x + width] = (
                    self.images[r, c]
                )
        self.image_ = ax.imshow(grid, cmap=cmap, interpolation="nearest")
        ax.set_xticks([])
        if self.row_labels is not None:
            ax.set_yticks([r * step_y + (height - 1) / 2 for r in range(n_rows)])
            ax.set_yticklabels(self.row_labels, fontsize=8)
        else:
            ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        self.ax_, self.figure_ = ax, figure
        return self
