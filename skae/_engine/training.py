"""From an estimator's training parameters to a trained skorch net.

Everything here takes the training settings as a frozen :class:`TrainingSettings` (the
parameters named in ``TRAINING_CONSTRAINTS``, resolved once per fit) and seeds by name
(``weights``, ``order``, ``split``, ``sampling``), so an estimator and the steps it runs
inside ``fit`` (a stacked autoencoder's pretraining) build their nets the same way without
sharing objects. It knows the estimators' parameters, not the estimators.
"""

import contextlib
import copy
import dataclasses
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from .._nn.modules import dropout_hooks
from ..distributed import world
from .net import DATA_PATHS, PRECISIONS, AutoEncoderNet, check_precision
from .tasks import EpochTasks, epoch_tasks

# Constraints of the training parameters every skae estimator has.
TRAINING_CONSTRAINTS = {
    "solver": [StrOptions({"adam", "lbfgs"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "learning_rate": [StrOptions({"constant", "adaptive", "cosine"})],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "early_stopping": ["boolean", StrOptions({"auto"})],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "device": [str, torch.device],
    "data_path": [StrOptions(set(DATA_PATHS))],
    "precision": [StrOptions(set(PRECISIONS))],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "callbacks": [None, list],
}


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """The training parameters of one fit, resolved once (``early_stopping`` as the fit
    decided it) and passed to every function of this module: a misspelt name is an
    ``AttributeError``, and a variant that trains differently (StackedAE's levels, a rebuilt
    net) makes a changed copy with :meth:`replace`. The fields are the estimators'
    parameters of the same names (``TRAINING_CONSTRAINTS``), and ``warmup_steps``, the
    steps over which Adam's step size warms up."""

    solver: str
    alpha: float
    batch_size: object  # "auto" or an int
    learning_rate_init: float
    learning_rate: str
    max_iter: int
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    tol: float
    device: object  # a str or a torch.device
    data_path: str
    precision: str
    random_state: object
    verbose: int
    warm_start: bool
    callbacks: object  # None or a list of skorch callbacks
    warmup_steps: int = 0

    @classmethod
    def of(cls, estimator, early_stopping, warmup_steps=0):
        """The settings of ``estimator``'s parameters, with ``early_stopping`` resolved."""
        values = {name: getattr(estimator, name) for name in TRAINING_CONSTRAINTS}
        return cls(**{**values, "early_stopping": early_stopping, "warmup_steps": warmup_steps})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# early_stopping="auto" holds out a validation split for fits on this many rows: on small
# tables a network of thousands of weights overfits within the default epoch budget (the
# defaults table of ``python -m benchmarks``: up to 1.5x PCA's held-out error on iris without
# it), while on large data every row is worth training on and an epoch is long.
AUTO_EARLY_STOPPING_ROWS = (50, 10_000)


def resolve_early_stopping(early_stopping, n_samples, chunked=False, n_held_out=None, n_classes=1):
    """The ``early_stopping`` parameter as a bool for a fit on ``n_samples`` rows.

    "auto" is True for a fit on 50 to 10,000 rows and False otherwise; a chunk of
    ``partial_fit`` (``chunked``) is not a data set to hold rows out of, and a stratified
    split of ``n_held_out`` rows must hold one of each of ``n_classes`` classes.
    """
    if early_stopping != "auto":
        return bool(early_stopping)
    low, high = AUTO_EARLY_STOPPING_ROWS
    stratifiable = n_held_out is None or n_held_out >= n_classes
    return not chunked and low <= n_samples <= high and stratifiable


# What the seeds of one training run are for, in the order they are drawn: the initial
# weights, the data order (and the noise drawn with it), early stopping's validation split,
# and the objective's own sampling (a VAE's reparameterisation).
SEED_NAMES = ("weights", "order", "split", "sampling")


def named_seeds(random_state, names=SEED_NAMES):
    """A seed for a torch generator per name, drawn from ``random_state`` in ``names``' order."""
    rng = check_random_state(random_state)
    values = rng.randint(np.iinfo(np.int32).max, size=len(names))
    return {name: int(value) for name, value in zip(names, values, strict=True)}


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; anything else is checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' to fall back to the CPU."
        )
    return str(parsed)


@contextlib.contextmanager
def lend_generator(net, device, seed):
    """Lend what samples in ``net`` a generator while it trains.

    An objective that samples (a VAE's reparameterisation) declares a ``generator``
    attribute, as does a module's :class:`~skae._nn.modules.Dropout`; they share a seeded
    generator on the training device during training and hold None otherwise, so the
    fitted net pickles without device state.
    """
    samplers = [net.criterion_, *dropout_hooks(net.module_)]
    samplers = [s for s in samplers if hasattr(s, "generator")]
    generator = torch.Generator(device=device).manual_seed(seed) if samplers else None
    for sampler in samplers:
        sampler.generator = generator
    # the engine reseeds it at every epoch from ``seed`` and the epoch's number
    net.sampling_ = (generator, seed)
    try:
        yield
    finally:
        net.sampling_ = None
        for sampler in samplers:
            sampler.generator = None


class CosineDecay:
    """Factor ``(1 + cos(pi * epoch / n_epochs)) / 2`` of the initial learning rate: from 1
    at the first epoch towards 0 at the last (a picklable ``lr_lambda`` for ``LambdaLR``)."""

    def __init__(self, n_epochs):
        self.n_epochs = n_epochs

    def __call__(self, epoch):
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.n_epochs) / self.n_epochs))


AUTO_BATCH_MAX = 2048


def batch_size(settings, n_samples):
    if settings.solver == "lbfgs":
        return n_samples  # a quasi-Newton method needs the full-batch loss
    if settings.batch_size == "auto":
        # scikit-learn's MLP's 200, and ten steps per epoch on larger tables: an epoch's
        # count of steps (and its time, most of it per-step overhead on a CPU) stops
        # growing with the rows at 2,000, until batches reach 2,048 rows
        return min(n_samples, max(200, min(AUTO_BATCH_MAX, math.ceil(n_samples / 10))))
    if settings.batch_size > n_samples:
        warnings.warn(
            f"batch_size={settings.batch_size} is larger than the {n_samples} samples; "
            "it is clipped to the number of samples.",
            UserWarning,
            stacklevel=2,
        )
    return min(settings.batch_size, n_samples)


# torch's fused Adam (one vectorised kernel a parameter, on the CPU since torch 2.4) in
# place of its default on the CPU, the loop of one elementwise pass per operation: measured
# on the 784-1000-500-250-30 net, 60,000 MNIST images, batch 256, bf16-mixed, 2 cores, the
# first epochs take 1.73 s against 2.68. (Later in a fit the step grew slower still, through
# denormal arithmetic: see denormals.py.)
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def fused_adam(device):
    """``Adam``'s ``fused`` argument for ``device``: True on the CPU and CUDA, else torch's
    default (None)."""
    return torch.device(device).type in FUSED_ADAM_DEVICES or None


def optimizer(settings, device):
    """skorch's optimizer arguments; Adam is torch's fused kernel on the CPU and CUDA."""
    if settings.solver == "lbfgs":
        # torch's default history of 100 corrections: with scipy's 10 the linear AE
        # stalled near saddle subspaces (measured on digits, several seeds).
        return {
            "optimizer": torch.optim.LBFGS,
            "lr": 1.0,
            "optimizer__line_search_fn": "strong_wolfe",
            "optimizer__weight_decay": settings.alpha,  # the engine adds it to the loss
        }
    return {
        "optimizer": torch.optim.Adam,
        "lr": settings.learning_rate_init,
        "optimizer__weight_decay": settings.alpha,
        "optimizer__fused": fused_adam(device),
    }


def lr_schedule(settings, monitor):
    """skorch's LRScheduler for ``learning_rate``, or None (constant, or L-BFGS)."""
    if settings.solver == "lbfgs" or settings.learning_rate == "constant":
        return None
    if settings.learning_rate == "adaptive":
        return LRScheduler(
            ReduceLROnPlateau,
            monitor=monitor,
            factor=0.2,
            patience=1,
            threshold=settings.tol,
            threshold_mode="rel",
            event_name="learning_rate",
        )
    # last_epoch=-1: every call to fit starts its own cycle from learning_rate_init
    return LRScheduler(
        LambdaLR,
        lr_lambda=CosineDecay(max(settings.max_iter, 1)),
        last_epoch=-1,
        event_name="learning_rate",
    )


def user_callbacks(callbacks, taken):
    """Deep copies of a user's skorch callbacks as ``(name, callback)`` pairs; an unnamed one
    is named after its class (numbered if the name repeats), as skorch names them."""
    named = []
    names = set(taken)
    for item in callbacks or []:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, callback = item
        else:
            name, callback = None, item
        if not isinstance(callback, Callback):
            raise TypeError(
                f"callbacks must hold skorch callbacks or (name, callback) pairs; got {item!r}."
            )
        if name is None:
            base, name, i = type(callback).__name__, type(callback).__name__, 1
            while name in names:
                i += 1
                name = f"{base}_{i}"
        elif name in names:
            raise ValueError(
                f"callback name {name!r} is taken (skae's own: {sorted(taken)}, and the "
                "names before it); name yours differently."
            )
        names.add(name)
        named.append((name, copy.deepcopy(callback)))
    return named


class Stopper(EarlyStopping):
    """skorch's ``EarlyStopping``, which also records in each epoch's history whether its
    patience ran out (``stopped_early``): the estimator reads the run's outcome from the
    history, not from the callback's attributes.

    With ``load_best``, the best epoch's weights are kept as detached clones of the state
    dict's tensors where skorch deep-copies the state dict (measured on the 64-32-2 net: 43
    against 212 us, paid on every improving epoch; the same tensors either way)."""

    def on_epoch_end(self, net, **kwargs):
        load_best, best_epoch = self.load_best, self.best_epoch_
        self.load_best = False  # the capture is done below, without deepcopy
        try:
            super().on_epoch_end(net, **kwargs)
        finally:  # EarlyStopping stops training by raising KeyboardInterrupt
            self.load_best = load_best
            net.history.record("stopped_early", self.misses_ >= self.patience)
        if load_best and self.best_epoch_ != best_epoch:  # this epoch is the best so far
            state = net.module_.state_dict()
            best = type(state)((name, value.clone()) for name, value in state.items())
            best._metadata = getattr(state, "_metadata", None)  # for load_state_dict
            self.best_model_weights_ = best


def make_net(
    module,
    objective,
    settings,
    seeds,
    n_samples,
    *,
    dtype,
    corruption=None,
    resample=None,
    stratified=False,
):
    """An uninitialised :class:`~skae._engine.net.AutoEncoderNet` for ``module`` and
    ``objective``."""
    device = resolve_device(settings.device)
    monitor = "valid_loss" if settings.early_stopping else "train_loss"
    callbacks = [
        (
            "stopper",
            Stopper(
                monitor=monitor,
                patience=settings.n_iter_no_change,
                threshold=settings.tol,
                threshold_mode="rel",
                # (skorch's load_best needs an epoch to load: none with max_iter=0)
                load_best=settings.early_stopping and settings.max_iter > 0,
            ),
        ),
    ]
    schedule = lr_schedule(settings, monitor)
    if schedule is not None:
        callbacks.append(("lr_schedule", schedule))
    if settings.verbose:
        callbacks.append(("progress", ProgressBar()))
    callbacks += user_callbacks(settings.callbacks, [name for name, _ in callbacks] + ["fit_tasks"])
    # last, so that it sees each epoch after every other callback (see EpochTasks)
    callbacks.append(("fit_tasks", EpochTasks()))
    train_split = None
    if settings.early_stopping:
        train_split = ValidSplit(
            settings.validation_fraction, stratified=stratified, random_state=seeds["split"]
        )
    return AutoEncoderNet(
        module.to(dtype),
        criterion=objective,
        **optimizer(settings, device),
        max_epochs=settings.max_iter,
        batch_size=batch_size(settings, n_samples),
        iterator_train__shuffle=True,
        iterator_train__seed=seeds["order"],
        iterator_train__corruption=corruption,
        iterator_train__resample=resample,
        iterator_valid__resample=resample,
        iterator_valid__seed=seeds["order"],
        dataset=DATA_PATHS[settings.data_path],
        warmup_steps=settings.warmup_steps,
        precision=check_precision(settings.precision, settings.solver, device),
        dataset__dtype=dtype,
        train_split=train_split,
        callbacks=callbacks,
        verbose=settings.verbose,
        device=device,
    )


class _OutOfMemory(Exception):
    """The device ran out of memory while a net trained on ``data_path``."""

    def __init__(self, data_path):
        super().__init__(data_path)
        self.data_path = data_path


def fit_net(
    module,
    objective,
    X,
    y,
    settings,
    seeds,
    *,
    dtype,
    corruption=None,
    resample=None,
    stratified=False,
    epochs=None,
    sample_weight=None,
    task=None,
    fitted=True,
):
    """Train ``module`` on ``X`` (and ``y``, each row weighted by ``sample_weight`` when
    given) from scratch for ``epochs`` (default: the settings' ``max_iter``); return the
    trained net.

    Each epoch is a subtask of ``task`` (a :class:`~skae._engine.tasks.Task`) for scikit-learn's
    callbacks, given the estimator as it is at that epoch's end when ``fitted``.

    A device out-of-memory error on the resident path chosen by ``data_path="auto"`` starts
    again, from the same initial weights, on the streamed path, with a warning; any other
    is raised as a ``MemoryError`` that says what to change.
    """
    # only "auto" may start again, and then from the same initial weights
    initial = copy.deepcopy(module.state_dict()) if settings.data_path == "auto" else None

    def train(settings):
        net = make_net(
            module,
            objective,
            settings,
            seeds,
            len(X),
            dtype=dtype,
            corruption=corruption,
            resample=resample,
            stratified=stratified,
        )
        try:
            net.initialize()
            with (
                lend_generator(net, net.device, seeds["sampling"]),
                epoch_tasks(net, task, fitted),
            ):
                net.partial_fit(X, y, epochs=epochs, sample_weight=sample_weight)
        except torch.OutOfMemoryError as error:
            # the path the net took when the device ran out, for the caller to decide on
            raise _OutOfMemory(net.data_path_) from error
        return net

    try:
        net = train(settings)
        if net.interrupted_:
            warnings.warn(
                f"Training was interrupted (KeyboardInterrupt) after {len(net.history)} "
                "complete epochs; the model keeps the weights of the last step taken.",
                UserWarning,
                stacklevel=3,
            )
    except _OutOfMemory as oom:
        error, device = oom.__cause__, resolve_device(settings.device)
        # data-parallel: one rank cannot start again alone while the others train on
        if initial is None or oom.data_path != "resident" or world()[1] > 1:
            raise MemoryError(
                f"{device} ran out of memory while training (data_path="
                f"{settings.data_path!r}, batch_size={settings.batch_size!r}): lower "
                "batch_size, use a smaller network, or set data_path='streamed' so that "
                f"only one batch at a time is on the device. torch said: {error}"
            ) from error
        warnings.warn(
            f"{device} ran out of memory with the data resident on it; training again from "
            "the same initial weights with data_path='streamed' (one batch at a time).",
            ResourceWarning,
            stacklevel=3,
        )
        module.load_state_dict(initial)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        try:
            net = train(settings.replace(data_path="streamed"))
        except _OutOfMemory as again:
            raise MemoryError(
                f"{device} ran out of memory while training even with data_path='streamed' "
                "(one batch at a time on the device): lower batch_size or use a smaller "
                f"network. torch said: {again.__cause__}"
            ) from again.__cause__
    net.module_.eval()
    return net


def continue_net(net, X, y, seeds, epochs=None, sample_weight=None, task=None):
    """Train a fitted net further for ``epochs`` (default: its ``max_epochs``), each epoch a
    subtask of ``task``; return the number of epochs run.

    An interrupt (KeyboardInterrupt) is raised again, for the caller to restore the model as
    it was before the call. ``warm_start`` (``epochs=None``) starts a new learning-rate
    cycle, as ``fit`` promises; ``partial_fit`` (one epoch per call) carries the schedule on
    from the epochs run. The data order and the sampling noise of every epoch come from the
    seeds and the epoch's number (``AutoEncoderNet._reseed``), so a continuation never
    replays the first call's and goes on as an uninterrupted fit would.
    """
    before = len(net.history)
    schedule = dict(net.callbacks_).get("lr_schedule")
    # skorch's LRScheduler passes its extra attributes (last_epoch) to the policy
    restart = getattr(schedule, "last_epoch", None)
    decay = getattr(schedule, "lr_lambda", None)
    if epochs is None and isinstance(decay, CosineDecay):
        decay.n_epochs = max(net.max_epochs, 1)  # the new cycle spans this call's max_iter
    if epochs is not None and restart is not None:
        schedule.last_epoch = before - 1
    try:
        with lend_generator(net, net.device, seeds["sampling"]), epoch_tasks(net, task):
            net.partial_fit(X, y, epochs=epochs, sample_weight=sample_weight)
        if net.interrupted_:
            # a continuation never leaves a half-updated model: the caller puts the
            # previous one back (see NeuralNetMixin._train)
            raise KeyboardInterrupt
    finally:
        if epochs is not None and restart is not None:
            schedule.last_epoch = restart
    net.module_.eval()
    return len(net.history) - before


def loss_curve(history):
    """The training loss per epoch recorded in a skorch ``History``."""
    return list(history[:, "train_loss"]) if len(history) else []
