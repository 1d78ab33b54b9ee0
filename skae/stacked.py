"""The stacked autoencoder: greedy layer-wise pretraining, then end-to-end fine-tuning."""

import contextlib
import copy
import functools
import tempfile
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._engine.net import map_batches
from ._engine.tasks import Task
from ._engine.training import fit_net, loss_curve, named_seeds
from ._nn.likelihoods import LIKELIHOODS
from ._nn.modules import AutoEncoderModule
from ._nn.noise import NOISES, Corruption
from ._nn.objectives import Reconstruction
from ._nn.start import linear_skips, start_at_pca
from .autoencoder import AutoEncoder


class StackedAE(AutoEncoder):
    """A deep autoencoder initialised by greedy layer-wise pretraining, then fine-tuned.

    The stack ``n_features -> *hidden_layer_sizes -> n_components`` is built one layer at a
    time (Hinton & Salakhutdinov 2006; Bengio et al. 2007): a shallow autoencoder
    ``n_features -> h1 -> n_features`` is trained on the data; its encoder is then fixed and
    the next shallow autoencoder ``h1 -> h2 -> h1`` is trained on its codes; and so on up to
    the code layer. The deep autoencoder, the same network as :class:`AutoEncoder`'s, takes
    encoder layer ``l`` and the decoder layer mirroring it from shallow autoencoder ``l``
    and is fine-tuned end to end. With ``pretrain_noise`` every shallow autoencoder is a
    denoising one: a stacked denoising autoencoder (Vincent et al. 2010).

    The bottom shallow autoencoder reconstructs the data with ``loss``; the ones above
    reconstruct the codes below them with squared error, through the activation their
    decoder layer has in the deep network; the top one has the deep network's linear code.
    The levels are the built-in networks' own: each hidden layer of :class:`MLP`, each
    convolution of :class:`ConvNet` (with its transposed convolution) and the code layer.
    A module of your own cannot be split into levels: it is an error.

    Parameters
    ----------
    n_components : int or None, default=None
        Size of the code. None: the code width of a module of your own, else 2. With a
        module of your own, any other value than its code width is an error.
    module : None, MLP, ConvNet or torch.nn.Module, default=None
        The network. None is the MLP of ``hidden_layer_sizes`` and ``activation``,
        started at PCA's solution with ``loss="mse"`` (``MLP(start="pca")``; see the user
        guide, "Every variant starts where PCA ends"); :class:`MLP` and :class:`ConvNet` are the
        built-in architectures, whose parameters
        are searchable as nested parameters (``module__channels``). A ``torch.nn.Module``
        of your own works on flat rows with ``encode(x) -> codes`` (2-D) and
        ``decode(codes) -> eta``, the output's natural parameter (the mean for
        ``loss="mse"``, the logits for ``loss="bce"``), and may add ``mean(eta)``. Each fit
        trains a deep copy that starts from its weights; parameters it creates lazily
        (``nn.LazyLinear``) are drawn from ``random_state``.
    hidden_layer_sizes : array-like of int, default=(128, 64)
        Widths of the default MLP encoder's hidden layers; the decoder uses them in
        reverse. Only with ``module=None``.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the default MLP's hidden layers. Only with ``module=None``.
    loss : {"mse", "bce"}, default="mse"
        The output distribution: "mse" is a Gaussian likelihood (squared error), "bce" a
        Bernoulli likelihood with a sigmoid output, for data in [0, 1].
    pretrain_iter : int, default=10
        Maximum number of epochs of each shallow autoencoder; 0 skips pretraining (the
        deep network starts from random weights, as :class:`AutoEncoder`'s). Pretraining
        uses the training parameters below, ``max_iter`` and ``warm_start`` aside.
    pretrain_noise : {"gaussian", "masking", "salt_and_pepper"} or None, default=None
        Corruption of each shallow autoencoder's input during pretraining (as in
        :class:`DenoisingAE`, drawn afresh for every batch; salt-and-pepper writes each
        layer's input range). None pretrains plain autoencoders. Fine-tuning is noiseless.
    pretrain_noise_level : float, default=0.0
        The Gaussian noise's standard deviation, or the fraction of inputs corrupted.

    solver : {"adam", "lbfgs"}, default="adam"
        The optimizer: Adam on mini-batches, or L-BFGS (strong Wolfe line search) on the
        full batch, where ``batch_size`` and ``learning_rate_init`` are not used.
    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (not the biases), as in scikit-learn's
        MLP: ``alpha / 2 * ||W||^2`` joins the mean per-sample loss (Adam's
        ``weight_decay``).
    batch_size : int or "auto", default="auto"
        Mini-batch size; "auto" is ``min(200, n_samples)`` up to 2,000 rows and a tenth of
        the rows beyond (at most 2,048), so that an epoch of a larger table is ten steps,
        not hundreds.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    learning_rate : {"constant", "adaptive", "cosine"}, default="constant"
        Adam's learning-rate schedule, per epoch. "constant" keeps ``learning_rate_init``;
        "adaptive" divides it by 5 each time two consecutive epochs fail to improve the
        monitored loss by ``tol`` (relative), as scikit-learn's MLP does for SGD; "cosine"
        decays it from ``learning_rate_init`` to 0 along half a cosine over ``max_iter``
        epochs, anew in each call to ``fit``. Not used by L-BFGS.
    max_iter : int, default=200
        Maximum number of epochs (passes over the data; for L-BFGS, steps of up to 20
        iterations). Of the fine-tuning; 0 keeps the pretrained weights.
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the data, stop when its loss has not improved by
        ``tol`` (relative) for ``n_iter_no_change`` epochs, and restore the best weights.
        Without it, training stops when the training loss stalls in the same way. "auto"
        holds out for a ``fit`` on 50 to 10,000 rows, where a network overfits small
        tables, and trains on every row otherwise (a first ``partial_fit`` never holds
        out); ``early_stopping_`` says what a fit did.
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before stopping.
    tol : float, default=1e-4
        Relative improvement of the monitored loss that counts as progress.
    device : str or torch.device, default="auto"
        Where to train: "auto" picks CUDA when available, else the CPU.
    data_path : {"auto", "resident", "streamed"}, default="auto"
        How the training data reach the device. "resident" moves X there once and slices
        batches on the device (the fastest); "streamed" leaves X where it is (a memmap
        stays on disk) and moves one batch at a time, so memory holds a batch, never a
        copy of X; "auto" streams when X is memory-mapped or when its copy in the training
        precision would take more than half of the device's free memory (of the available
        RAM on the CPU). Both paths train on the same batches in the same order, with the
        same noise: on the CPU the same fit, bit for bit. ``data_path_`` records the path
        taken.
    precision : {"32-true", "bf16-mixed", "16-mixed"}, default="32-true"
        The arithmetic of training, by Lightning's and accelerate's names. "32-true" is
        float32 throughout. "bf16-mixed" runs the forward pass and the loss under
        ``torch.autocast`` in bfloat16 (the weights, their gradients and Adam's state stay
        float32), on a CPU with bfloat16 instructions (AVX-512 BF16 or AMX) or a CUDA device
        that has them; "16-mixed" runs it in float16 with a gradient scaler, on CUDA only.
        Either needs ``solver="adam"``; a device without the arithmetic is refused with an
        error that says so. ``transform`` and the other outputs are computed in float32 (or
        float64 for float64 input) whatever the training precision.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling (and any noise) through local torch generators;
        the global seeds are never touched. An int gives bit-identical results on the CPU.
    verbose : int, default=0
        1 prints a progress bar and a line per epoch; 0 is silent.
    warm_start : bool, default=False
        Continue training the fitted module on the next call to ``fit``.
    callbacks : list of skorch callbacks or (name, callback) pairs, default=None
        Callbacks of your own (checkpointing, gradient clipping, logging), run beside skae's
        own (``stopper``, ``lr_schedule``, ``progress``) during training. Each fit runs deep
        copies of them, so clones and repeated fits never share their state; the fitted
        copies are in ``net_.callbacks_``.

    Attributes
    ----------
    pretrained_layers_ : list of torch.nn.Module
        The shallow autoencoders as pretraining left them (on the CPU), bottom first, each
        with ``encode`` and ``decode``.
    pretrain_loss_curves_ : list of list of float
        Each shallow autoencoder's mean training loss per epoch, bottom first.
    module_ : torch.nn.Module
        The fitted network (a trained copy of ``module``), with ``encode`` and ``decode``.
    net_ : skae._engine.net.AutoEncoderNet
        The skorch net that trained it (its ``history`` is ``history_``).
    history_ : skorch.history.History
        One dict per epoch: ``train_loss``, ``valid_loss`` (with early stopping), ``dur``.
    loss_curve_ : list of float
        Mean fine-tuning loss per epoch (per-sample loss summed over features).
    early_stopping_ : bool
        Whether the fit held rows out for early stopping (``early_stopping`` resolved).
    validation_scores_ : list of float
        Minus the validation loss per epoch, with early stopping.
    best_validation_score_ : float
        The best of ``validation_scores_``, with early stopping.
    best_loss_ : float
        The lowest training loss of an epoch (``min(loss_curve_)``), without early
        stopping.
    improved_on_start_ : bool
        With early stopping and the default network: whether training beat the PCA start
        on the held-out rows by more than two standard errors of the per-row gains in
        reconstruction; if not, the fitted network is the start, PCA's solution.
    n_iter_ : int
        Number of epochs run.
    device_ : str
        The device it was trained on.
    data_path_ : {"resident", "streamed"}
        The data path training took (see ``data_path``).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when X had string column names.

    See Also
    --------
    AutoEncoder : The same network trained from random weights.
    DenoisingAE : A denoising autoencoder trained in one piece.
    EncoderClassifier : Supervised fine-tuning of a pretrained encoder.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skae import StackedAE
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> sae = StackedAE(n_components=8, hidden_layer_sizes=(32, 16), pretrain_iter=5,
    ...                 max_iter=10, random_state=0).fit(X)
    >>> len(sae.pretrain_loss_curves_), sae.transform(X).shape
    (3, (1797, 8))
    """

    _parameter_constraints: ClassVar[dict] = {
        **AutoEncoder._parameter_constraints,
        "pretrain_iter": [Interval(Integral, 0, None, closed="left")],
        "pretrain_noise": [None, StrOptions(set(NOISES))],
        "pretrain_noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=None,
        *,
        module=None,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        loss="mse",
        pretrain_iter=10,
        pretrain_noise=None,
        pretrain_noise_level=0.0,
        solver="adam",
        alpha=0.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        learning_rate="constant",
        max_iter=200,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        data_path="auto",
        precision="32-true",
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
    ):
        super().__init__(
            n_components,
            module=module,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            loss=loss,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            data_path=data_path,
            precision=precision,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            callbacks=callbacks,
        )
        self.pretrain_iter = pretrain_iter
        self.pretrain_noise = pretrain_noise
        self.pretrain_noise_level = pretrain_noise_level

    def _fit_task(self, X, sample_weight, *, name, n_epochs, first_fit):
        """The first fit's subtasks are the pretrained levels, then the fine-tuning."""
        if not first_fit:
            return super()._fit_task(
                X, sample_weight, name=name, n_epochs=n_epochs, first_fit=first_fit
            )
        # one level per hidden layer and the code layer (unknown for another network)
        levels = len(np.atleast_1d(self.hidden_layer_sizes)) + 1 if self.module is None else None
        return Task.root(
            self,
            X,
            X,
            sample_weight=sample_weight,
            name=name,
            max_subtasks=None if levels is None else levels + 1,
        )

    @contextlib.contextmanager
    def _training_task(self, task, first_fit, n_epochs):
        if not first_fit:
            yield task
            return
        fine_tuning = task.child("fine-tune", n_epochs)
        yield fine_tuning
        fine_tuning.end(lambda: {"net_": self.net_, "device_": self.device_})

    def _check_data(self, X):
        super()._check_data(X)
        if self.pretrain_noise not in (None, "gaussian") and self.pretrain_noise_level > 1:
            raise ValueError(
                f"pretrain_noise_level={self.pretrain_noise_level} is the fraction of inputs "
                f"corrupted by pretrain_noise={self.pretrain_noise!r} and must be at most 1."
            )

    def _layer_corruption(self, inputs):
        if self.pretrain_noise is None:
            return None
        return Corruption(
            self.pretrain_noise, self.pretrain_noise_level, inputs.min(axis=0), inputs.max(axis=0)
        )

    def _initialize_weights(self, module, X, generator, sample_weight=None, task=None):
        """Greedy layer-wise pretraining: each level's shallow autoencoder trained in turn
        (on the rows weighted by ``sample_weight``).

        The shallow autoencoder of level ``l`` is made of the deep module's own encoder block
        ``l`` and the decoder block mirroring it (shared, not copied), initialised from a
        seed of its own and trained on the codes of the fixed blocks below; the deep module
        is then the pretrained stack.
        """
        architecture = self._architecture()
        blocks = architecture.blocks(module)
        layer_seeds = torch.randint(2**31 - 1, (len(blocks),), generator=generator).tolist()
        # Pretraining is an initialisation with a fixed budget of epochs: the stack's
        # training settings, pretrain_iter epochs, never continued.
        # the user's callbacks follow the deep network's fine-tuning, not the levels'
        settings = self._settings().replace(
            max_iter=self.pretrain_iter, warm_start=False, callbacks=None
        )
        inputs, layers, curves = X, [], []
        with tempfile.TemporaryDirectory(prefix="skae-codes-") as scratch:
            for depth, ((encoder, decoder), seed) in enumerate(
                zip(blocks, layer_seeds, strict=True)
            ):
                shallow = AutoEncoderModule(encoder, decoder)
                seeds = named_seeds(seed)
                architecture.init_weights(shallow, torch.Generator().manual_seed(seeds["weights"]))
                likelihood = self._likelihood if depth == 0 else LIKELIHOODS["mse"]
                # a subtask of the fit per level, its epochs under it (the deep network is
                # not fitted yet: no fitted_estimator for the callbacks)
                level = None
                if task is not None:
                    level = task.child("pretrain level", self.pretrain_iter, inputs, inputs)
                net = fit_net(
                    shallow,
                    Reconstruction(likelihood),
                    inputs,
                    None,
                    settings,
                    seeds,
                    dtype=self._torch_dtype,
                    corruption=self._layer_corruption(inputs),
                    sample_weight=sample_weight,
                    task=level,
                    fitted=False,
                )
                if level is not None:
                    level.end()
                if depth < len(blocks) - 1:
                    # The fixed encoder's codes, computed on the device, feed the next level;
                    # when the data were streamed, the codes go to a file as well.
                    out = None
                    if net.data_path_ == "streamed":
                        out = functools.partial(
                            np.lib.format.open_memmap, f"{scratch}/codes-{depth}.npy", mode="w+"
                        )
                    inputs = map_batches(
                        shallow.encode, inputs, net.device, self._torch_dtype, out=out
                    )
                layers.append(copy.deepcopy(shallow).cpu())  # fine-tuning goes on in place
                curves.append(loss_curve(net.history))
            del inputs  # the codes' file is deleted with its folder
        self.pretrained_layers_, self.pretrain_loss_curves_ = layers, curves
        if linear_skips(module) is not None:
            # MLP(start="pca"), the default: PCA's linear maps beside the pretrained stacks,
            # whose last layers start at zero, so that fine-tuning starts at PCA's solution
            # with the pretrained features below them
            module = start_at_pca(module, X, generator, sample_weight=sample_weight)
        return module
