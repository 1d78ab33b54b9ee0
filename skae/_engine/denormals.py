"""Denormal floats flushed to zero on the CPU while a net trains.

Weights and Adam's moments that decay towards zero pass through the denormal range (below
about 1.2e-38 in float32), where x86 arithmetic takes a slow path many times the normal
cost. Measured here (784-1000-500-250-30 network, 60,000 MNIST images, batch 256,
bf16-mixed, 2 cores): without flushing, an epoch grew from 1.7 s to 4.5 s over the first 30
epochs of a fit, with 13% of the weights and of Adam's first moments denormal by then, and
most of a long fit's time went to the optimiser's step; flushed, every epoch took 1.7 s.

``torch.set_flush_denormal`` sets the calling thread's mode only, and torch's OpenMP
threads keep the mode they started with, so :func:`flushed_denormals` sets it on each of
them too, through the OpenMP runtime torch loaded (libgomp, on Linux), and puts the previous
mode back on leaving. Where that runtime is not found, the calling thread alone flushes.
Numbers below the normal range become zero during training: changes below 1.2e-38, far
under Adam's ``eps`` (1e-8) and under float32's spacing near any weight of normal size.
"""

import contextlib
import ctypes
import os

import torch

_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def flushing():
    """Whether the calling thread flushes denormals (a denormal times one is zero)."""
    tiny = torch.tensor([1e-40], dtype=torch.float32)  # float32 whatever torch's default
    return (tiny * 1.0).item() == 0.0


def _team_flushes():
    """Whether torch's threads all flush: an elementwise product split among them."""
    tiny = torch.full(((1 << 18) * max(torch.get_num_threads(), 1),), 1e-40, dtype=torch.float32)
    return not bool((tiny * 1.0).count_nonzero())


def _openmp_runtimes():
    """The ``GOMP_parallel`` entry points of the libgomp copies loaded, torch's own first
    (scikit-learn and others bring copies of their own, each with its own threads)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return []
    here = os.path.dirname(torch.__file__)
    runs = []
    for path in sorted(paths, key=lambda path: (not path.startswith(here), path)):
        try:
            run = ctypes.CDLL(path).GOMP_parallel
        except (OSError, AttributeError):
            continue
        run.argtypes = [_CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        run.restype = None
        runs.append(run)
    return runs


_RUNTIME = []  # the runtime whose threads are torch's, once found


def set_flush_denormal(flag):
    """Set the mode on the calling thread and on each of torch's OpenMP threads; return
    whether those threads were reached (False: the calling thread only)."""
    if not torch.set_flush_denormal(flag):
        return False  # a CPU without the mode
    if torch.get_num_threads() == 1:
        return True
    callback = _CALLBACK(lambda _: torch.set_flush_denormal(flag))
    if _RUNTIME:
        _RUNTIME[0](callback, None, torch.get_num_threads(), 0)
        return True
    for run in _openmp_runtimes():  # each copy's threads, until torch's flush
        run(callback, None, torch.get_num_threads(), 0)
        if flag and _team_flushes():
            _RUNTIME.append(run)
            return True
    return False


@contextlib.contextmanager
def flushed_denormals(device):
    """Denormals flushed to zero inside the block when ``device`` is the CPU and they are not
    flushed already; the previous mode afterwards."""
    if torch.device(device).type != "cpu" or flushing():
        yield
        return
    set_flush_denormal(True)
    try:
        yield
    finally:
        set_flush_denormal(False)
