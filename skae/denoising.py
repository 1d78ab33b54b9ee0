"""The denoising autoencoder: reconstruct the clean input from a corrupted one."""

from numbers import Real
from typing import ClassVar

from sklearn.utils._param_validation import Interval, StrOptions

from .autoencoder import AutoEncoder
from .noise import NOISES, Corruption


class DenoisingAE(AutoEncoder):
    """A deep autoencoder trained to reconstruct clean inputs from corrupted ones.

    Every training batch is corrupted afresh (drawn from the estimator's own generator) and
    the clean batch is the target (Vincent et al. 2008, 2010). Corruption is for training
    only: ``transform``, ``inverse_transform`` and ``score`` are deterministic and see the
    data as given.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code.
    noise : {"gaussian", "masking", "salt_and_pepper"}, default="gaussian"
        Additive Gaussian noise; masking (a fraction of inputs set to 0); salt-and-pepper (a
        fraction set to the training data's per-feature minimum or maximum).
    noise_level : float, default=0.2
        The Gaussian noise's standard deviation, or the fraction of inputs corrupted.
    **kwargs
        The parameters of :class:`AutoEncoder` (``hidden_layer_sizes``, ``loss``,
        ``max_iter``, ``random_state``, ...).

    Attributes
    ----------
    data_min_, data_max_ : ndarray of shape (n_features_in_,)
        The training data's per-feature range (the values salt-and-pepper noise writes).
    module_, net_, history_, loss_curve_, n_iter_, device_, n_features_in_
        As in :class:`AutoEncoder`.

    See Also
    --------
    AutoEncoder : The same network trained on clean inputs.
    StackedAE : Greedy layer-wise pretraining, with optional per-layer corruption.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAE
    >>> X = load_digits().data / 16
    >>> dae = DenoisingAE(n_components=8, noise="masking", noise_level=0.25, loss="bce",
    ...                   max_iter=10, random_state=0).fit(X)
    >>> dae.transform(X).shape
    (1797, 8)
    """

    _parameter_constraints: ClassVar[dict] = {
        **AutoEncoder._parameter_constraints,
        "noise": [StrOptions(set(NOISES))],
        "noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=None,
        *,
        module=None,
        noise="gaussian",
        noise_level=0.2,
        hidden_layer_sizes=(128,),
        activation="relu",
        loss="mse",
        solver="adam",
        batch_size="auto",
        learning_rate_init=1e-3,
        learning_rate="constant",
        max_iter=200,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        super().__init__(
            n_components,
            module=module,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            loss=loss,
            solver=solver,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
        )
        self.noise = noise
        self.noise_level = noise_level

    def _check_data(self, X):
        super()._check_data(X)
        if self.noise != "gaussian" and self.noise_level > 1:
            raise ValueError(
                f"noise_level={self.noise_level} is the fraction of inputs corrupted by "
                f"noise={self.noise!r} and must be at most 1."
            )

    def _init_module(self, X, seeds):
        # the range salt-and-pepper noise writes: the first fit's, kept by warm starts
        self.data_min_, self.data_max_ = X.min(axis=0), X.max(axis=0)
        return super()._init_module(X, seeds)

    def _corruption(self):
        return Corruption(self.noise, self.noise_level, self.data_min_, self.data_max_)
