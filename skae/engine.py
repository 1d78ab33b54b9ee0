"""The training engine: skorch's ``NeuralNet`` with a data path that stays on the device.

skorch supplies the loop (``fit_loop`` -> ``run_single_epoch`` -> ``train_step``), callbacks,
history, device handling and pickling. Two pieces of its default path are slow for the small,
dense arrays an autoencoder trains on, and only those are replaced:

* batches: skorch's ``DataLoader`` builds every batch from single-sample indexing and copies it
  to the device. Here the whole array is moved once (:class:`DeviceTensors`) and each batch is
  a slice or an index gather of tensors already there (:class:`TensorBatches`);
* per-batch ``loss.item()``: it forces a device synchronisation per batch. Here the epoch's loss
  is summed on the device and read once per epoch.

The criterion is an *objective* (:mod:`skae.objectives`): ``criterion(module, x, target)``
returns the batch loss, so a variant's loss can reach the module's ``encode``, ``decode`` or
``posterior`` (a Jacobian, a sampled code) whatever the architecture. ``train_step_single``
and ``validation_step`` are overridden to make that one call.

Tensors in, fitted module and history out; nothing here knows about scikit-learn estimators.
"""

import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PrintLog
from torch.utils.data import Dataset, Subset


def _to_tensor(array, dtype, device):
    if not isinstance(array, torch.Tensor):
        # torch cannot share a read-only buffer (a memmap, say) safely: copy it instead.
        # torch also refuses negative strides (X[::-1]).
        array = np.require(array, requirements=["W", "C"])
    return torch.as_tensor(array, dtype=dtype, device=device)


class DeviceTensors(Dataset):
    """Arrays moved to ``device`` once, as ``dtype`` (and ``y`` as given, for labels).

    skorch calls ``dataset(X, y, **dataset__kwargs)``; ``y=None`` means the input is its own
    target, as in an autoencoder.
    """

    def __init__(self, X, y=None, device="cpu", dtype=torch.float32):
        self.X = _to_tensor(X, dtype, device)
        self.y = None if y is None else _to_tensor(y, None, device)

    @property
    def tensors(self):
        return (self.X,) if self.y is None else (self.X, self.y)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)


class TensorBatches:
    """Mini-batches of a :class:`DeviceTensors` (or a ``Subset`` of one, as skorch's
    ``ValidSplit`` returns) by slicing on the device.

    Yields ``(X_input, target)``: the target is ``y`` when labels were given, else the clean
    ``X``; ``corruption(X, generator)``, when given, makes the input (a denoising autoencoder's
    noise, fresh for every batch). ``seed`` fixes a generator on the data's device that draws
    the shuffling and the corruption, so a fit never touches torch's global RNG.
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=None, corruption=None):
        if isinstance(dataset, Subset):
            base = dataset.dataset
            self.index = torch.as_tensor(dataset.indices, device=base.X.device)
        else:
            base, self.index = dataset, None
        self.tensors = base.tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.corruption = corruption
        self.generator = torch.Generator(device=base.X.device)
        self.reseed(seed)

    def reseed(self, seed):
        """Restart the generator from ``seed`` (None: a fresh nondeterministic one)."""
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def __len__(self):
        n = len(self.tensors[0]) if self.index is None else len(self.index)
        return math.ceil(n / self.batch_size)

    def _order(self):
        device = self.tensors[0].device
        if self.shuffle:
            n = len(self.tensors[0]) if self.index is None else len(self.index)
            perm = torch.randperm(n, generator=self.generator, device=device)
            return perm if self.index is None else self.index[perm]
        return self.index  # None: contiguous slices, no gather needed

    def __iter__(self):
        order = self._order()
        n = len(self.tensors[0]) if order is None else len(order)
        for start in range(0, n, self.batch_size):
            if order is None:
                batch = [t[start : start + self.batch_size] for t in self.tensors]
            else:
                idx = order[start : start + self.batch_size]
                batch = [t[idx] for t in self.tensors]
            X = batch[0]
            target = batch[1] if len(batch) > 1 else X
            if self.corruption is not None:
                X = self.corruption(X, self.generator)
            yield X, target


class AutoEncoderNet(NeuralNet):
    """skorch's ``NeuralNet`` with the device-resident data path, one sync per epoch, and an
    objective as criterion (``criterion(module, x, target) -> loss``).

    The epoch's mean loss is recorded as ``train_loss`` / ``valid_loss`` in ``history``; a
    non-finite epoch loss stops training with a ``FloatingPointError`` instead of leaving a
    silently broken module.
    """

    def __init__(
        self,
        *args,
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

    def get_default_callbacks(self):
        # skorch's PassthroughScoring averages per-batch losses read with ``.item()``; the
        # epoch loss is recorded directly by ``run_single_epoch`` instead.
        return [("epoch_timer", EpochTimer()), ("print_log", PrintLog())]

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        x, target = batch
        loss = self.criterion_(self.module_, x, target)
        loss.backward()
        return {"loss": loss, "y_pred": None}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        x, target = batch
        with torch.no_grad():
            loss = self.criterion_(self.module_, x, target)
        return {"loss": loss, "y_pred": None}

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training)
        seed = self.get_params_for("iterator_train").get("seed")
        if training and seed is not None and len(self.history):
            # A warm-started continuation must not replay the first call's order and noise.
            iterator.reseed(seed + len(self.history))
        return iterator

    def get_dataset(self, X, y=None):
        if isinstance(X, Dataset):
            return X
        return self.dataset(X, y, device=self.device, **self.get_params_for("dataset"))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        # float64 so thousands of batches sum without rounding drift (MPS has no float64)
        acc_dtype = torch.float32 if torch.device(self.device).type == "mps" else torch.float64
        total = torch.zeros((), dtype=acc_dtype, device=self.device)
        n_samples = batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = len(batch[0])
            total += step["loss"].detach() * size
            n_samples += size
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)
        loss = total.item() / max(n_samples, 1)  # the epoch's only device synchronisation
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"Training diverged: the {prefix} loss is {loss} at epoch "
                f"{len(self.history)}. Scale the input (e.g. StandardScaler) or lower "
                f"learning_rate_init."
            )
        self.history.record(prefix + "_loss", loss)


def map_batches(fn, X, device, dtype=torch.float32, batch_size=4096):
    """Apply ``fn`` to ``X`` (an array) in chunks on ``device``; return an array.

    The input goes to the device once (as ``dtype``) and the result comes back once.
    """
    X = _to_tensor(X, dtype, device)
    with torch.inference_mode():
        out = torch.cat([fn(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    return out.cpu().numpy()
