"""Data-parallel training with :mod:`torch.distributed`.

Launched with ``torchrun --nproc_per_node=N script.py`` (or any launcher that starts N
processes and calls :func:`torch.distributed.init_process_group`), every process runs the
same script on the same data, and each skae ``fit`` or ``partial_fit`` trains data-parallel
as soon as the default process group has more than one process:

- the processes agree first: rank 0's seeds are used everywhere (so ``random_state=None``
  works too), its initial weights are broadcast, and a rank whose estimator or data differ
  (other parameters; another shape, other rows) makes every rank raise the same
  ``ValueError``. Ranks that should fit estimators of their own do it within
  ``with data_parallel(False):``;
- every epoch's batches are those of a one-process fit with the same ``batch_size`` (the
  global batch); rank ``r`` computes rows ``r, r + N, r + 2N, ...`` of each, and one
  all-reduce per step sums the gradients, each rank's weighted by its share of the
  batch, so every rank takes the step of the whole batch;
- the epoch's losses, and the validation loss (each rank evaluates the whole held-out
  split), are therefore the same on every rank: early stopping, the learning-rate
  schedule and the best epoch are decided on global figures, and the fitted estimators
  are identical. Save from one rank (``if torch.distributed.get_rank() == 0: ...``).

The random draws of training (denoising noise, a VAE's samples, dropout) come from
generators seeded per rank, so they differ from a one-process fit's draws while having the
same distribution; validation draws are the same on every rank. Without random draws the
fit matches a one-process fit up to the order of floating-point sums, except for what
depends on the batch as a whole beyond its mean loss: ``SparseAE(sparsity="kl")`` penalises
the mean activation of each rank's rows, a noisier estimate than the whole batch's.
Full-batch solvers (L-BFGS, LinearAE's EM) are not split: every rank runs the same
computation, with the same draws, on the whole data.

Processes share nothing but these collectives, so the data may live where every node can
read it (a memmap on shared storage: each rank reads only its rows of each batch). A rank
that fails ends the job (``torchrun`` stops the others); a rank that hangs is bounded by
the process group's ``timeout``.
"""

import contextlib
import contextvars
from numbers import Number

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["data_parallel", "world"]

_ENABLED = contextvars.ContextVar("skae_data_parallel", default=True)


@contextlib.contextmanager
def data_parallel(enabled=True):
    """Within ``with data_parallel(False):``, fits in a process group train alone.

    For ranks that fit estimators of their own (another candidate, another shard of a
    search) while a process group exists; data-parallel training is the default. The
    setting holds in the calling thread (a context variable: threads started inside do not
    inherit it).

    Parameters
    ----------
    enabled : bool, default=True
        Whether fits in the block train together with the process group's other ranks.

    Yields
    ------
    None
    """
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def world():
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` outside one or
    within ``data_parallel(False)``."""
    if _ENABLED.get() and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _fingerprint(X):
    """A cheap summary of X that differs, in practice, between different data."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":  # labels: strings, objects
        X = np.unique(X, return_inverse=True)[1]
    n = len(X)
    sample = np.asarray(X[:: max(1, n // 64)][:64], dtype=np.float64)
    return (tuple(np.shape(X)), float(np.nansum(sample)), float(np.nansum(sample**2)))


def _settings(estimator):
    """The estimator's class and the parameters that shape its training: numbers,
    strings and tuples (not ``verbose``: a rank may report alone; not ``device``: each
    rank its GPU; nor objects such as callbacks, which ranks may hold of their own)."""
    plain = (Number, str, tuple)
    params = estimator.get_params(deep=False)
    return type(estimator).__name__, sorted(
        (name, repr(value))
        for name, value in params.items()
        if isinstance(value, plain) and name not in ("verbose", "device")
    )


def agree(estimator, seeds, X, y=None):
    """Rank 0's ``seeds`` on every rank, after checking that every rank fits the same
    estimator on the same data.

    Outside a process group of several processes, ``seeds`` unchanged.
    """
    rank, size = world()
    if size == 1:
        return seeds
    data = (_fingerprint(X), None if y is None else _fingerprint(y))
    everyone = [None] * size
    dist.all_gather_object(everyone, (_settings(estimator), data, seeds))
    hint = " Fits of their own on each rank go inside skae.distributed.data_parallel(False)."
    differing = [r for r, theirs in enumerate(everyone) if theirs[0] != everyone[0][0]]
    if differing:
        raise ValueError(
            f"Data-parallel training needs the same estimator on every rank: ranks "
            f"{differing} fit a {everyone[differing[0]][0][0]} with other parameters than "
            f"rank 0's {everyone[0][0][0]}." + hint
        )
    differing = [r for r, theirs in enumerate(everyone) if theirs[1] != everyone[0][1]]
    if differing:
        raise ValueError(
            f"Data-parallel training needs the same X (and y) on every rank: ranks "
            f"{differing} passed data that differ from rank 0's (shape {everyone[0][1][0][0]}). "
            "Pass every process the whole data set; skae splits each batch between ranks." + hint
        )
    return everyone[0][2]


def all_true(flag):
    """Whether ``flag`` holds on every rank."""
    if world()[1] == 1:
        return bool(flag)
    # NCCL reduces CUDA tensors only (the device torch.cuda.set_device chose)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([int(bool(flag))], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def broadcast_module(module):
    """Rank 0's parameters and buffers on every rank."""
    rank, size = world()
    if size == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def all_reduce_step(params, loss, n_rows):
    """Make each rank's gradients and loss, of the mean over its ``n_rows`` rows of the
    batch, those of the mean over the whole batch (all ranks' rows); return
    ``(loss, rows in the batch)``, both 0-d tensors (no synchronisation with a device).
    One all-reduce of one flat buffer per step."""
    params = list(params)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    device, dtype = (params[0].device, params[0].dtype) if params else (loss.device, loss.dtype)
    flat = torch.cat(
        [g.reshape(-1).to(dtype) * n_rows for g in grads]
        + [loss.detach().reshape(1).to(device, dtype) * n_rows]
        + [torch.full((1,), float(n_rows), device=device, dtype=dtype)]
    )
    dist.all_reduce(flat)
    total = flat[-1]
    flat = flat[:-1] / total.clamp_min(1)
    offset = 0
    for p, g in zip(params, grads, strict=True):
        count = g.numel()
        p.grad = flat[offset : offset + count].view_as(p).to(p.dtype)
        offset += count
    return flat[offset], total.to(torch.float64)


def trained_params(params):
    """The parameters that get a gradient on some rank (after a first backward pass):
    those without on every rank (frozen, unused by the objective) are left out of the
    all-reduce, so the optimizer skips them as in a one-process step."""
    params = list(params)
    if not params:
        return params
    used = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    dist.all_reduce(used, op=dist.ReduceOp.MAX)
    return [p for p, u in zip(params, used.tolist(), strict=True) if u]


def rank_seed(seed, rank):
    """A seed for rank ``rank``'s own random draws, from the run's ``seed``."""
    return int(np.random.SeedSequence([int(seed), rank]).generate_state(1)[0])
