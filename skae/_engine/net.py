"""The training engine: skorch's ``NeuralNet`` with two data paths of its own.

skorch supplies the loop (``fit_loop`` -> ``run_single_epoch`` -> ``train_step``), callbacks,
history, device handling and pickling. Two pieces of its default path are slow for the small,
dense arrays an autoencoder trains on, and only those are replaced:

* batches: skorch's ``DataLoader`` builds every batch from single-sample indexing and copies it
  to the device. Here either the whole array is moved once (:class:`DeviceTensors`, the
  resident path) and each batch is a slice or an index gather of tensors already there, or
  each batch is gathered from arrays left on the host, converted and moved on its own
  (:class:`HostArrays`, the streamed path, for data larger than the device); one batch
  iterator (:class:`TensorBatches`) draws the same batches in the same order from both;
* per-batch ``loss.item()``: it forces a device synchronisation per batch. Here the epoch's loss
  is summed on the device and read once per epoch;
* per-batch Python: skorch calls every callback at every batch, sets the train mode and
  builds an optimizer closure for each step. Here the batch events reach only the callbacks
  that define them, the mode is set once per epoch, and optimizers that need no closure
  (Adam) step without one; L-BFGS keeps skorch's closure.

The criterion is an *objective* (:mod:`skae._nn.objectives`): ``criterion(module, x, target)``
returns the batch loss, so a variant's loss can reach the module's ``encode``, ``decode`` or
``posterior`` (a Jacobian, a sampled code) whatever the architecture. ``train_step_single``
and ``validation_step`` are overridden to make that one call.

Tensors in, fitted module and history out; nothing here knows about scikit-learn estimators.
"""

import contextlib
import math
import mmap
import os

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PrintLog
from skorch.utils import TeeGenerator
from torch.utils.data import Dataset, Subset

from .. import distributed
from .._nn.start import decayed_parameters
from ..distributed import rank_seed
from .denormals import flushed_denormals

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def host_tensor(array, dtype=None):
    """A CPU tensor of ``array`` in ``dtype``: its memory shared where torch can, else one copy.

    torch cannot share a read-only buffer (a memmap) safely, nor negative strides (X[::-1]),
    nor another dtype: those are copied once, straight into the target dtype.
    """
    array = np.asarray(array)
    np_dtype = array.dtype if dtype is None else _NUMPY_DTYPES[dtype]
    if not (array.flags.writeable and array.flags.c_contiguous and array.dtype == np_dtype):
        array = np.array(array, dtype=np_dtype, order="C")
    return torch.from_numpy(array)


def _to_device(tensor, device):
    """``tensor`` on ``device``; from pinned memory without blocking the host on CUDA."""
    if torch.device(device).type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class DeviceTensors(Dataset):
    """The resident data path: arrays moved to ``device`` once, as ``dtype`` (``y`` as given).

    skorch calls ``dataset(X, y, **dataset__kwargs)``; ``y=None`` means the input is its own
    target, as in an autoencoder. ``sample_weight``, when given, is one weight per row (in
    ``dtype``). Batches are slices or gathers of the tensors on the device.
    """

    resident = True

    def __init__(self, X, y=None, device="cpu", dtype=torch.float32, sample_weight=None):
        self.device = torch.device(device)
        self.X = host_tensor(X, dtype).to(self.device)
        self.y = None if y is None else host_tensor(y).to(self.device)
        self.w = None
        if sample_weight is not None:
            self.w = host_tensor(sample_weight, dtype).to(self.device)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return tuple(t[i] for t in (self.X, self.y, self.w) if t is not None)

    def take(self, index):
        """``[X, y, w]`` at the rows ``index`` (a slice, or an index tensor on the device), on
        the device; ``y`` and ``w`` are None when not given."""
        return [None if t is None else t[index] for t in (self.X, self.y, self.w)]


class HostArrays(Dataset):
    """The streamed data path: arrays left where they are (a memmap stays on disk).

    Each batch is gathered from the host arrays, converted to ``dtype`` and moved to
    ``device`` on its own, so memory holds a batch, never a copy of X. The rows and their
    conversion are those of :class:`DeviceTensors`, so both paths train on the same numbers.
    """

    resident = False

    def __init__(self, X, y=None, device="cpu", dtype=torch.float32, sample_weight=None):
        self.device = torch.device(device)
        self.X, self.y, self.w, self.dtype = X, y, sample_weight, dtype

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return tuple(t[0] for t in self.take(np.array([i])) if t is not None)

    def take(self, index):
        """``[X, y, w]`` at the rows ``index`` (a slice, or an index tensor on the CPU), on
        the device; ``y`` and ``w`` are None when not given."""
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        arrays = [(self.X, self.dtype), (self.y, None), (self.w, self.dtype)]
        return [
            None if array is None else _to_device(host_tensor(array[index], dtype), self.device)
            for array, dtype in arrays
        ]


def _is_memory_mapped(array):
    """Whether ``array`` (or an array it views) lies in a memory-mapped file."""
    while array is not None:
        if isinstance(array, np.memmap | mmap.mmap):
            return True
        array = getattr(array, "base", None)
    return False


def _available_host_memory():
    """Bytes the operating system can give without swapping (MemAvailable), if it says."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits_on_device(X, device, dtype, share=0.5):
    """Whether the resident path suits ``X``: its copy in ``dtype`` takes at most ``share`` of
    the device's free memory. A memory-mapped X on the CPU is streamed: it was put on disk to
    stay there."""
    device = torch.device(device)
    nbytes = math.prod(np.shape(X)) * torch.empty((), dtype=dtype).element_size()
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes <= share * free
    if device.type != "cpu":
        return True  # no way to ask (MPS): the resident path, as before
    if _is_memory_mapped(X):
        return False
    available = _available_host_memory()
    return available is None or nbytes <= share * available


def auto_dataset(X, y=None, device="cpu", dtype=torch.float32, sample_weight=None):
    """:class:`DeviceTensors` when X fits on the device (:func:`fits_on_device`), else
    :class:`HostArrays`."""
    path = DeviceTensors if fits_on_device(X, device, dtype) else HostArrays
    return path(X, y, device=device, dtype=dtype, sample_weight=sample_weight)


# The ``data_path`` parameter's values: the dataset class each one uses.
DATA_PATHS = {"auto": auto_dataset, "resident": DeviceTensors, "streamed": HostArrays}


class TensorBatches:
    """Mini-batches of a :class:`DeviceTensors` or :class:`HostArrays` (or a ``Subset`` of
    one, as skorch's ``ValidSplit`` returns).

    Yields ``(X_input, target)``, or ``(X_input, target, weight)`` when the data carry sample
    weights: the target is ``y`` when labels were given, else the clean ``X``;
    ``corruption(X, generator)``, when given, makes the input (a denoising autoencoder's
    noise, fresh for every batch). ``seed`` fixes the generators that draw the shuffling
    (where the rows are indexed: the device for resident data, the CPU for streamed data)
    and the corruption (where the batch is); on the CPU they are one and the same, so the
    two data paths see the same batches, the same noise, in the same order. A fit never
    touches torch's global RNG. ``resample(X, generator)``, when given, redraws the batch
    itself before anything else (dynamic binarisation: fresh bits every epoch), and is the
    target as well as the input. The next batch is fetched (on CUDA, copied without blocking
    from pinned memory) before the current one is handed over.
    """

    def __init__(
        self, dataset, batch_size, shuffle=False, seed=None, corruption=None, resample=None
    ):
        base, index = (
            (dataset.dataset, dataset.indices) if isinstance(dataset, Subset) else (dataset, None)
        )
        self.base = base
        index_device = base.device if base.resident else torch.device("cpu")
        self.index = None if index is None else torch.as_tensor(index, device=index_device)
        self.n = len(base) if index is None else len(self.index)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.corruption = corruption
        self.resample = resample
        self.generator = torch.Generator(device=index_device)
        same = index_device == base.device
        self.noise_generator = self.generator if same else torch.Generator(device=base.device)
        self.shard = (0, 1)
        self.reseed(seed)

    def set_shard(self, rank, world_size):
        """Yield only rows ``rank, rank + world_size, ...`` of each batch (data-parallel
        training, :mod:`skae.distributed`); the batches and their order stay those of the
        whole data, and this rank's noise comes from a generator of its own."""
        self.shard = (rank, world_size)
        if world_size > 1 and self.noise_generator is self.generator:
            self.noise_generator = torch.Generator(device=self.base.device)

    def reseed(self, seed):
        """Restart the generators from ``seed`` (None: fresh nondeterministic ones)."""
        rank, world_size = self.shard
        for generator in {id(g): g for g in (self.generator, self.noise_generator)}.values():
            if seed is None:
                generator.seed()
            elif world_size > 1 and generator is self.noise_generator:
                generator.manual_seed(rank_seed(seed, rank))
            else:
                generator.manual_seed(int(seed))

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    def _order(self):
        if self.shuffle:
            perm = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
            return perm if self.index is None else self.index[perm]
        return self.index  # None: contiguous slices, no gather needed

    def _batches(self):
        order = self._order()
        rank, world_size = self.shard
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            if world_size > 1:
                rows = (
                    torch.arange(start, stop, device=self.generator.device)
                    if order is None
                    else order[start:stop]
                )
                yield self.base.take(rows[rank::world_size])
            else:
                yield self.base.take(slice(start, stop) if order is None else order[start:stop])

    def __iter__(self):
        batches = self._batches()
        following = next(batches, None)
        while following is not None:
            (X, y, weight), following = following, next(batches, None)
            if self.resample is not None:
                X = self.resample(X, self.noise_generator)
            target = X if y is None else y
            if self.corruption is not None:
                X = self.corruption(X, self.noise_generator)
            yield (X, target) if weight is None else (X, target, weight)


# Training arithmetic by Lightning's names: the autocast dtype of each mixed precision.
PRECISIONS = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _cpu_has_bf16():
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX): without them
    autocast emulates bfloat16, slower than float32. True where torch cannot tell."""
    probes = [
        getattr(torch.cpu, name, None)
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    probes = [probe for probe in probes if probe is not None]
    return not probes or any(probe() for probe in probes)


def check_precision(precision, solver, device):
    """``precision`` if the solver and the device can train in it, else a ValueError that
    says what is missing."""
    if precision == "32-true":
        return precision
    if solver != "adam":
        raise ValueError(
            f"precision={precision!r} is for Adam's mini-batch steps; solver={solver!r} "
            "trains in full precision. Use solver='adam', or precision='32-true'."
        )
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        raise ValueError(
            f"precision={precision!r} is supported on the CPU and on CUDA devices, not on "
            f"{kind!r}; use precision='32-true'."
        )
    if precision == "16-mixed" and kind != "cuda":
        raise ValueError(
            "precision='16-mixed' (float16 with a gradient scaler) needs a CUDA device; "
            "on the CPU use precision='bf16-mixed'."
        )
    if precision == "bf16-mixed":
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(
                f"precision='bf16-mixed' needs bfloat16 arithmetic, which the CUDA device "
                f"{torch.cuda.get_device_name(torch.device(device))!r} lacks; use "
                "precision='16-mixed'."
            )
        if kind == "cpu" and not _cpu_has_bf16():
            raise ValueError(
                "precision='bf16-mixed' needs a CPU with bfloat16 instructions (AVX-512 BF16 "
                "or AMX), which this one lacks: torch would emulate them, slower than "
                "float32. Use precision='32-true'."
            )
    return precision


class AutoEncoderNet(NeuralNet):
    """skorch's ``NeuralNet`` with the device-resident data path, one sync per epoch, and an
    objective as criterion (``criterion(module, x, target) -> loss``).

    ``warmup_steps``: Adam's step size rises linearly over a fit's first steps (a start
    at a good solution, PCA's, is not thrown away by Adam's first sign-like steps).

    ``precision`` (one of :data:`PRECISIONS`): "bf16-mixed" and "16-mixed" compute the
    training and validation losses under ``torch.autocast`` (parameters, gradients and the
    optimizer's state stay in the module's dtype); "16-mixed" scales the loss with a
    ``torch.amp.GradScaler`` (``scaler_``), which unscales the gradients before the
    callbacks that listen to them (clipping) and skips a step whose gradients overflowed.

    The epoch's mean loss is recorded as ``train_loss`` / ``valid_loss`` in ``history``; a
    non-finite epoch loss stops training with a ``FloatingPointError`` instead of leaving a
    silently broken module.
    """

    def __init__(
        self,
        *args,
        warmup_steps=0,
        precision="32-true",
        dataset=DeviceTensors,
        iterator_train=TensorBatches,
        iterator_valid=TensorBatches,
        **kwargs,
    ):
        super().__init__(
            *args,
            dataset=dataset,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            **kwargs,
        )
        self.warmup_steps = warmup_steps
        self.precision = precision

    scaler_ = None  # float16's gradient scaler, made at the first step (see precision)

    def _autocast(self):
        """The context the losses are computed in: autocast for a mixed precision."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=dtype)

    def _scaler(self):
        if self.precision != "16-mixed":
            return None
        if self.scaler_ is None:
            self.scaler_ = torch.amp.GradScaler(torch.device(self.device).type)
        return self.scaler_

    def get_default_callbacks(self):
        # skorch's PassthroughScoring averages per-batch losses read with ``.item()``; the
        # epoch loss is recorded directly by ``run_single_epoch`` instead. PrintLog formats
        # its table every epoch whatever ``verbose`` says (147 us an epoch, measured): it is
        # there only when the table is printed.
        callbacks = [("epoch_timer", EpochTimer())]
        if self.verbose:
            callbacks.append(("print_log", PrintLog()))
        return callbacks

    def fit_loop(self, X, y=None, epochs=None, *, sample_weight=None, **fit_params):
        """skorch's loop, on a dataset built here: ``sample_weight`` (one weight per row of
        X) travels with the data (see :meth:`get_dataset`) and weighs each row's loss."""
        self.interrupted_ = False
        self.world_size_ = distributed.world()[1]
        if self.world_size_ > 1:
            distributed.broadcast_module(self.module_)  # the same start on every rank
        dataset = self.get_dataset(X, y, sample_weight=sample_weight)
        try:
            # y again for the validation split's stratification (skorch passes it on)
            with flushed_denormals(self.device):
                return super().fit_loop(dataset, y, epochs, **fit_params)
        except KeyboardInterrupt:
            # skorch's callbacks stop training by raising KeyboardInterrupt at an epoch's
            # end (EarlyStopping), once EpochTimer has closed the epoch's record ("dur").
            # Anything else is a user's interrupt in mid-epoch: the caller learns of it
            # (skorch's partial_fit swallows it), and the cut epoch leaves no record.
            if len(self.history) and "dur" not in self.history[-1]:
                self.interrupted_ = True
                self.history.pop()
            raise
        finally:
            self.trained_params_ = None

    # the state of the run in progress, reset by fit_loop and run_single_epoch
    interrupted_ = False  # a user's interrupt cut the last epoch (see fit_loop)
    data_path_ = None  # the data path of the last fit_loop: "resident" or "streamed"
    steps_taken_ = 0  # optimizer steps of this fit so far (the warm-up's clock)
    grad_listeners_ = None  # the callbacks that listen to on_grad_computed, per epoch
    world_size_ = 1  # processes training together (see fit_loop and skae.distributed)
    trained_params_ = None  # data-parallel: the parameters whose gradients are all-reduced

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; in data-parallel training, the training batches' share of this
        rank (full-batch L-BFGS is not split: every rank computes the whole batch)."""
        iterator = super().get_iterator(dataset, training=training)
        full_batch = isinstance(self.optimizer_, torch.optim.LBFGS)
        if training and self.world_size_ > 1 and not full_batch and hasattr(iterator, "set_shard"):
            iterator.set_shard(*distributed.world())
        return iterator

    def criterion_on(self, batch):
        """The objective on a batch ``(x, target)`` or ``(x, target, weight)``."""
        x, target, *weight = batch
        if weight:
            return self.criterion_(self.module_, x, target, weight=weight[0])
        return self.criterion_(self.module_, x, target)

    def train_step_single(self, batch, **fit_params):
        with self._autocast():
            loss = self.criterion_on(batch)
        loss = loss.float() if loss.dtype in (torch.bfloat16, torch.float16) else loss
        if self.penalty_:
            weights = decayed_parameters(self.module_)  # the rule of Adam's groups too
            loss = loss + 0.5 * self.penalty_ * sum(w.pow(2).sum() for w in weights)
        scaler = self._scaler()
        (loss if scaler is None else scaler.scale(loss)).backward()
        return {"loss": loss, "y_pred": None}

    def train_step(self, batch, **fit_params):
        """One optimizer step. Optimizers that evaluate the loss once per step (Adam) step
        without a closure; ``on_grad_computed`` reaches only the callbacks that define it
        (gradient clipping), with the same arguments as in skorch."""
        if isinstance(self.optimizer_, torch.optim.LBFGS):
            self._set_training(True)  # skorch's closure path: L-BFGS re-evaluates the loss
            return super().train_step(batch, **fit_params)
        self.optimizer_.zero_grad(set_to_none=True)
        if self.world_size_ > 1:
            # data-parallel: this rank's rows of the batch, then the whole batch's gradient
            n_rows = len(batch[0])
            step = (
                self.train_step_single(batch, **fit_params)
                if n_rows
                else {"loss": torch.zeros((), device=self.device), "y_pred": None}
            )
            if self.trained_params_ is None:  # once per fit: the same on every rank
                params = [p for group in self.optimizer_.param_groups for p in group["params"]]
                self.trained_params_ = distributed.trained_params(params)
            step["loss"], step["size"] = distributed.all_reduce_step(
                self.trained_params_, step["loss"], n_rows
            )
        else:
            step = self.train_step_single(batch, **fit_params)
        taken = self.steps_taken_
        self.steps_taken_ = taken + 1
        scaler = self._scaler()
        if scaler is not None:
            scaler.unscale_(self.optimizer_)  # the true gradients, for listeners and the step
        listeners = self.grad_listeners_
        if listeners is None:  # a step outside run_single_epoch
            listeners = self._listeners("on_grad_computed")
        if listeners:
            named = TeeGenerator(self.get_all_learnable_params())
            for callback in listeners:
                callback.on_grad_computed(self, named_parameters=named, batch=batch, training=True)
        if taken < self.warmup_steps:
            # linear warm-up of the step size over the first warmup_steps steps of a fit,
            # on top of whatever the epoch's schedule set
            rates = [group["lr"] for group in self.optimizer_.param_groups]
            for group in self.optimizer_.param_groups:
                group["lr"] = group["lr"] * (taken + 1) / self.warmup_steps
            self._optimizer_step(scaler)
            for group, rate in zip(self.optimizer_.param_groups, rates, strict=True):
                group["lr"] = rate
        else:
            self._optimizer_step(scaler)
        return step

    def _optimizer_step(self, scaler):
        if scaler is None:
            self.optimizer_.step()
        else:  # skips the step if the gradients overflowed, and adapts the scale
            scaler.step(self.optimizer_)
            scaler.update()

    def _listeners(self, event):
        """The callbacks that define ``event`` (skorch's base ``Callback`` does nothing)."""
        return [
            callback
            for _, callback in self.callbacks_
            if getattr(type(callback), event, None) is not getattr(Callback, event)
        ]

    penalty_ = 0.0  # L-BFGS's L2 penalty (see get_params_for_optimizer)

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's optimizer arguments, with ``weight_decay`` (``alpha``) applied to the
        parameters of :func:`~skae._nn.start.decayed_parameters` only (the weight matrices
        but a PCA start's linear maps), the rule L-BFGS's penalty follows too."""
        named_parameters = list(named_parameters)
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        decay = kwargs.pop("weight_decay", 0.0)
        self.penalty_ = 0.0
        if decay and self.optimizer is torch.optim.LBFGS:
            # no weight_decay in torch's L-BFGS: the penalty joins the loss it evaluates
            self.penalty_ = decay
            return args, kwargs
        if not decay:
            return args, kwargs
        shrunk = {id(p) for p in decayed_parameters(self.module_)}
        groups = []
        for group in args[0]:  # skorch's parameter groups, each split in two
            params = list(group["params"])
            for decayed in (True, False):
                chosen = [p for p in params if (id(p) in shrunk) == decayed]
                if chosen:
                    rate = group.get("weight_decay", decay) if decayed else 0.0
                    groups.append({**group, "params": chosen, "weight_decay": rate})
        return (groups,), kwargs

    def validation_step(self, batch, **fit_params):
        with torch.no_grad(), self._autocast():
            loss = self.criterion_on(batch)
        loss = loss.float() if loss.dtype in (torch.bfloat16, torch.float16) else loss
        return {"loss": loss, "y_pred": None}

    sampling_ = None  # (generator, seed) lent by training to what samples (VAE, dropout)

    def _reseed(self, iterator, epoch):
        """Every training epoch's data order, noise and sampling come from the seeds and the
        epoch's number alone: a continuation (warm start, partial_fit, a fit resumed from a
        checkpoint) draws what an uninterrupted fit would, and never replays an epoch."""
        seed = self.get_params_for("iterator_train").get("seed")
        if seed is not None and hasattr(iterator, "reseed"):
            iterator.reseed(seed + epoch)
        if self._lent_sampling():
            generator, sampling_seed = self.sampling_
            # data-parallel: each rank samples for its own rows; unsplit (L-BFGS), every
            # rank computes the same batch and draws alike
            rank, world_size = getattr(iterator, "shard", (0, 1))
            seed = sampling_seed + epoch
            generator.manual_seed(rank_seed(seed, rank) if world_size > 1 else seed)

    def _reseed_validation(self, epoch):
        """Data-parallel: every rank evaluates the whole validation split, with the same
        draws (a VAE's samples, a random projection), so the ranks see one validation loss
        and take the same early-stopping and schedule decisions."""
        if self.world_size_ > 1 and self._lent_sampling():
            generator, sampling_seed = self.sampling_
            generator.manual_seed(rank_seed(sampling_seed + epoch, self.world_size_))

    def _lent_sampling(self):
        return self.sampling_ is not None and self.sampling_[0] is not None

    def get_dataset(self, X, y=None, sample_weight=None):
        """The data path's dataset of X, y and ``sample_weight`` (a dataset as it is)."""
        if isinstance(X, Dataset):
            return X
        params = self.get_params_for("dataset")
        path = self.dataset
        if path is auto_dataset:  # decided here, so that data_path_ is known if it fails
            resident = fits_on_device(X, self.device, params.get("dtype", torch.float32))
            if self.world_size_ > 1:  # one path for all, so that all draw the same order
                resident = distributed.all_true(resident)
            path = DeviceTensors if resident else HostArrays
        self.data_path_ = "resident" if path.resident else "streamed"
        return path(X, y, device=self.device, sample_weight=sample_weight, **params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        # float64 so thousands of batches sum without rounding drift (MPS has no float64)
        acc_dtype = torch.float32 if torch.device(self.device).type == "mps" else torch.float64
        total = torch.zeros((), dtype=acc_dtype, device=self.device)
        n_samples = batch_count = 0
        # The batch events cost Python per step: they are sent (with the net's own hooks,
        # which open a batch record in the history) only when a callback listens.
        listening = self._listeners("on_batch_begin") or self._listeners("on_batch_end")
        self.grad_listeners_ = self._listeners("on_grad_computed")
        if training:
            # the steps taken so far, from the history: where a warm-up stands, also after
            # a checkpoint's history was loaded (skorch's LoadInitState) or a copy restored
            self.steps_taken_ = sum(e.get("train_batch_count", 0) for e in self.history[:-1])
            self._reseed(iterator, epoch=len(self.history) - 1)
        else:
            self._reseed_validation(epoch=len(self.history) - 1)
        self._set_training(training)
        for batch in iterator:
            if listening:
                self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = step.get("size", len(batch[0]))  # the whole batch's, data-parallel
            total += step["loss"].detach() * size
            n_samples += size
            if listening:
                self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        n_samples = int(round(float(n_samples)))
        if not listening:
            # one record for the epoch in place of one per batch, for skorch's callbacks
            # that read the last batch's (Checkpoint names its files from it)
            self.history.new_batch()
            self.history.record_batch(prefix + "_size", n_samples)
        self.history.record(prefix + "_batch_count", batch_count)
        loss = total.item() / max(n_samples, 1)  # the epoch's only device synchronisation
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"Training diverged: the {prefix} loss is {loss} at epoch "
                f"{len(self.history)}. Scale the input (e.g. StandardScaler) or lower "
                f"learning_rate_init."
            )
        self.history.record(prefix + "_loss", loss)
        # the "<prefix>_loss_best" flag skorch's scoring records, which Checkpoint monitors
        earlier = [e.get(prefix + "_loss") for e in self.history[:-1]]
        best = min((v for v in earlier if v is not None), default=math.inf)
        self.history.record(prefix + "_loss_best", bool(loss < best))


def map_batches(fn, X, device, dtype=torch.float32, batch_size=4096, out=None):
    """Apply ``fn`` to ``X`` (an array) in chunks on ``device``; return an array.

    Each chunk is converted to ``dtype`` and moved on its own, and its result written into
    the output array: memory holds the output and one chunk, never a copy of X. ``out``, a
    callable ``(shape=, dtype=) -> array`` (a memmap, say), makes the output array.
    """
    make_out, out = out or np.empty, None
    with torch.inference_mode():
        for start in range(0, max(len(X), 1), batch_size):
            x = _to_device(host_tensor(X[start : start + batch_size], dtype), device)
            result = fn(x).cpu().numpy()
            if out is None:
                out = make_out(shape=(len(X), *result.shape[1:]), dtype=result.dtype)
            out[start : start + len(result)] = result
    return out
