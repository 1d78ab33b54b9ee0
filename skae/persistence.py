"""Saving, loading and exporting fitted estimators.

Four ways, from the most to the least faithful:

* **pickle** (or joblib): everything, the optimizer's and the callbacks' state included, so
  ``warm_start`` and ``partial_fit`` carry on exactly. Loading a pickle runs code from the
  file: load only files you trust.
* **skops** (``skops.io.dumps`` / ``loads``): scikit-learn's recommended secure format.
  skae estimators give skops a portable state (``__getstate__``): the module's weights and
  the optimizer's state as numpy arrays, the history as lists and dicts; loading rebuilds
  the network from the estimator's parameters. ``skops.io.get_untrusted_types`` lists the
  types to trust; for skae's own estimators they are the estimator classes and
  :class:`~skae.MLP` / :class:`~skae.ConvNet` (:data:`SKOPS_TRUSTED_TYPES`). An estimator
  on a ``module`` of your own (a torch module with tensors, which skops cannot write) is
  refused with a ``TypeError`` that says so: use :func:`save` or pickle for it.
* :func:`save` / :func:`load` (``pip install skae[save]``): one ``.safetensors`` file, the
  arrays as tensors and everything else as JSON in its header. Loading executes no code
  from the file and builds only the classes ``save`` writes (:data:`SAVED_CLASSES`), with
  a skae estimator at the top; any other or altered file is an :class:`InvalidFileError`
  (a ``ValueError``) that says why. A ``module`` of your own is passed to :func:`load`
  again, and ``callbacks`` are not saved.
* :func:`export_onnx`: the encoder (``transform``) or the decoder (``inverse_transform``)
  as an ONNX graph for serving without Python (``pip install skae[onnx]``).

Every format records the skae version that wrote it; loading a different version warns
(:class:`InconsistentVersionWarning`). The skops and safetensors formats do not keep the
fitted copies of the pretrained layers (``StackedAE.pretrained_layers_``), nor the state of
the early-stopping and learning-rate callbacks: a continued fit starts them afresh. Models
load on any machine: a model trained on a GPU with ``device="cuda"`` runs on the CPU where
no GPU is present, with a warning.
"""

import importlib
import json
import os
import tempfile
import warnings

import numpy as np
import torch
from skorch.history import History

from ._version import __version__

FORMAT = "skae-estimator/1"

# Every class a skae file may name, and nothing else: skae's estimators (the only objects a
# file may hold at its top), the parts their parameters and fitted state are made of, and
# the few scikit-learn objects an estimator may hold (OutlierDetector's PCA, KernelPCA or
# pipeline). skops's trusted-type lists are the model: a class is built only by name from
# this table, never imported from a path the file spells.
ESTIMATORS = {
    "autoencoder": ["AutoEncoder", "LinearAE"],
    "denoising": ["DenoisingAE"],
    "regularized": ["ContractiveAE", "SparseAE"],
    "stacked": ["StackedAE"],
    "variational": ["VariationalAE"],
    "classifier": ["EncoderClassifier"],
    "outliers": ["OutlierDetector"],
}
PARTS = {
    "architectures": ["MLP", "ConvNet", "MLPEnsemble"],
    "detection": [
        "Calibrated",
        "CodeIsolation",
        "CodeNeighbours",
        "FeatureNeighbours",
        "Residual",
        "Tails",
    ],
}
SCIKIT_LEARN = [
    "sklearn.decomposition._pca.PCA",
    "sklearn.decomposition._kernel_pca.KernelPCA",
    "sklearn.preprocessing._data.KernelCenterer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.pipeline.Pipeline",
]


__all__ = [
    "InconsistentVersionWarning",
    "InvalidFileError",
    "SKOPS_TRUSTED_TYPES",
    "export_onnx",
    "load",
    "save",
]


def _paths(table):
    return [f"skae.{module}.{name}" for module, names in table.items() for name in names]


SAVED_ESTIMATORS = frozenset(_paths(ESTIMATORS))
SAVED_CLASSES = frozenset(_paths(ESTIMATORS) + _paths(PARTS) + SCIKIT_LEARN)

#: The types skops must be told to trust to load skae's estimators with built-in networks:
#: skae's own classes (skops trusts scikit-learn's), and the default OutlierDetector's
#: trees: ``skops.io.loads(blob, trusted=SKOPS_TRUSTED_TYPES)``.
SKOPS_TRUSTED_TYPES = sorted(p for p in SAVED_CLASSES if p.startswith("skae.")) + [
    "sklearn.tree._tree.Tree"
]


class InvalidFileError(ValueError):
    """A file that :func:`load` will not read: not written by :func:`save`, or altered."""


class InconsistentVersionWarning(UserWarning):
    """A saved estimator is loaded by a skae version other than the one that saved it."""


def check_version(saved, name):
    """Warn when ``saved`` (the version that wrote a file) is not this skae's."""
    if saved is not None and saved != __version__:
        warnings.warn(
            f"{name} was saved by skae {saved} and is loaded by skae {__version__}; the "
            "result may differ or break. Refit it, or load it with the version that saved it.",
            InconsistentVersionWarning,
            stacklevel=4,
        )


def _numpy(value):
    """Tensors to numpy arrays, in nested dicts and lists (an optimizer's state)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_numpy(v) for v in value)
    return value


def portable_net(net):
    """A skorch net's state as numbers: the module's weights, the optimizer's state (its
    integer keys as a list), the history and the batch size."""
    optimizer = net.optimizer_.state_dict()
    return {
        "module": _numpy(net.module_.state_dict()),
        "optimizer": {
            "state": [[key, _numpy(value)] for key, value in optimizer["state"].items()],
            "param_groups": optimizer["param_groups"],
        },
        "history": json.loads(json.dumps(list(net.history), default=float)),
        # parameters that training leaves as they are (a PCA start's linear maps)
        "frozen": [n for n, p in net.module_.named_parameters() if not p.requires_grad],
        "batch_size": int(net.batch_size),
    }


def rebuilt_net(saved, module, objective, settings, seeds, dtype):
    """The net of :func:`portable_net`'s state, around ``module`` (of the saved one's
    architecture), ready to run and to train on with the estimator's ``seeds``."""
    from ._engine.training import make_net

    weights = {name: torch.as_tensor(np.asarray(value)) for name, value in saved["module"].items()}
    module.load_state_dict(weights)
    frozen = set(saved.get("frozen", []))
    for name, parameter in module.named_parameters():
        parameter.requires_grad_(name not in frozen)
    net = make_net(module, objective, settings, seeds, 1, dtype=dtype)
    net.batch_size = saved["batch_size"]
    net.initialize()
    optimizer = saved["optimizer"]
    state = {
        int(key): {k: torch.as_tensor(np.asarray(v)) for k, v in value.items()}
        for key, value in optimizer["state"]
    }
    try:
        net.optimizer_.load_state_dict(
            {"state": state, "param_groups": [dict(g) for g in optimizer["param_groups"]]}
        )
    except (ValueError, KeyError, RuntimeError):
        pass  # another optimizer's state (a different torch): a continued fit restarts it
    net.history = History(saved["history"])
    net.module_.eval()
    return net


# --------------------------------------------------------------------------------------
# safetensors + JSON


def _allowed_class(path, allowed=SAVED_CLASSES):
    """The class named ``path``, if it is one of ``allowed`` (never another: no import of a
    module the file names)."""
    if not isinstance(path, str) or path not in allowed:
        raise InvalidFileError(
            f"the file names the class {path!r}, which skae.save never writes; skae.load "
            "builds only skae's estimators and the parts they are made of."
        )
    module_name, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def _class_path(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


class _Encoder:
    """JSON for everything but arrays, which go to a dict of named numpy arrays."""

    def __init__(self):
        self.arrays = {}

    def array(self, value):
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(value)
        return {"__array__": name}

    def __call__(self, value, where):
        from sklearn.base import BaseEstimator

        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                return self.array(value)
            return {"__strings__": value.tolist(), "dtype": value.dtype.str}
        if isinstance(value, torch.Tensor):
            return self.array(value.detach().cpu().numpy())
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, where) for v in value]}
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self(v, f"{where}.{k}") for k, v in value.items()}}
        if isinstance(value, torch.nn.Module):
            raise ValueError(
                f"{where} is a torch module of your own ({type(value).__name__}): its code "
                "cannot be saved without running code on loading. Pass it to "
                "skae.load(path, module=...) instead; save() leaves it out."
            )
        if isinstance(value, BaseEstimator) or type(value).__module__.startswith("skae."):
            state = dict(value.__getstate__() if hasattr(value, "__getstate__") else vars(value))
            if state.get("callbacks"):
                state["callbacks"] = None  # a user's callbacks are code: never saved
            return {"__object__": _class_path(value), "state": self(state, where)}
        raise ValueError(
            f"{where} holds a {type(value).__name__}, which skae.save cannot write as "
            "numbers and JSON; use pickle or skops."
        )


# The dtypes of string arrays a file may hold (numpy's unicode and bytes); never objects.
_STRING_KINDS = "US"


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if not isinstance(value, dict):
        raise InvalidFileError(f"an entry of type {type(value).__name__}")
    if set(value) == {"__array__"}:
        if value["__array__"] not in arrays:
            raise InvalidFileError(f"it refers to an array {value['__array__']!r} it lacks")
        return arrays[value["__array__"]]
    if set(value) == {"__strings__", "dtype"}:
        dtype = np.dtype(value["dtype"]) if isinstance(value["dtype"], str) else None
        if dtype is None or dtype.kind not in _STRING_KINDS:
            raise InvalidFileError(f"a string array of dtype {value['dtype']!r}")
        return np.array(value["__strings__"], dtype=dtype)
    if set(value) == {"__tuple__"} and isinstance(value["__tuple__"], list):
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if set(value) == {"__dict__"} and isinstance(value["__dict__"], dict):
        return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
    if set(value) == {"__object__", "state"}:
        cls = _allowed_class(value["__object__"])
        state = _decode(value["state"], arrays)
        if not isinstance(state, dict):
            raise InvalidFileError(f"the state of {value['__object__']} is not a dict")
        obj = cls.__new__(cls)
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(state)
        else:
            obj.__dict__.update(state)
        return obj
    raise InvalidFileError(f"an unknown entry {sorted(value)}")


def _without_user_parts(estimator):
    """The estimator's state with its own module (if a user's) and callbacks left out."""
    user_module = isinstance(getattr(estimator, "module", None), torch.nn.Module)
    if hasattr(estimator, "_portable_state"):
        state = dict(estimator._portable_state(omit_module=True))
    else:
        state = dict(estimator.__getstate__())
    if state.get("callbacks"):
        state["callbacks"] = None
    return state, user_module


def save(estimator, path):
    """Write a fitted (or unfitted) skae estimator to ``path`` as one ``.safetensors`` file.

    The arrays (the network's weights, the optimizer's state, fitted arrays such as
    ``components_``) are the file's tensors; the parameters, the history and the other
    fitted attributes are JSON in its header, with the skae version that wrote it. Loading
    (:func:`load`) executes no code from the file. The file is written to a temporary
    name and moved into place, so a failure leaves no partial file and keeps a previous one.

    A ``module`` of your own is not written (pass it to :func:`load` again), nor are
    ``callbacks``.

    Parameters
    ----------
    estimator : skae estimator
    path : str or path-like
    """
    from safetensors.numpy import save_file

    state, user_module = _without_user_parts(estimator)
    encoder = _Encoder()
    header = {
        "format": FORMAT,
        "skae_version": __version__,
        "class": _class_path(estimator),
        "user_module": user_module,
        "state": encoder(state, type(estimator).__name__),
    }
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, scratch = tempfile.mkstemp(dir=folder, prefix=".skae-", suffix=".tmp")
    os.close(handle)
    try:
        save_file(encoder.arrays, scratch, metadata={"skae": json.dumps(header)})
        os.replace(scratch, path)
    except BaseException:
        if os.path.exists(scratch):
            os.remove(scratch)
        raise


def load(path, *, module=None, device=None):
    """Read an estimator written by :func:`save`; no code from the file is executed.

    Parameters
    ----------
    path : str or path-like
    module : torch.nn.Module, default=None
        The ``module`` parameter of an estimator fitted on a module of your own (an
        unfitted instance of the same architecture); its weights come from the file.
    device : str, default=None
        Where the model runs (``set_params(device=...)``); None keeps the saved parameter
        (a missing GPU falls back to the CPU, with a warning).

    Returns
    -------
    estimator : skae estimator
    """
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = os.fspath(path)
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
    except OSError:
        raise  # a missing or unreadable file, as open() says it
    except Exception as exc:  # safetensors' own errors: a truncated or foreign file
        raise InvalidFileError(f"{path} is not a valid skae file: {exc}") from exc
    if "skae" not in metadata:
        raise InvalidFileError(f"{path} is not a file written by skae.save (no skae header).")
    try:
        header = json.loads(metadata["skae"])
    except ValueError as exc:
        raise InvalidFileError(f"{path} is not a valid skae file: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise InvalidFileError(f"{path} has format {found!r}; this skae reads {FORMAT}.")
    if header.get("user_module") and module is None:
        raise ValueError(
            f"{path} holds a model fitted on a module of your own; pass an unfitted "
            "instance of it: skae.load(path, module=MyModule(...))."
        )
    try:
        return _build(header, load_file(path), module, device)
    except InvalidFileError as exc:
        raise InvalidFileError(f"{path} is not a valid skae file: {exc}") from exc
    except Warning:
        raise  # a warning the caller turned into an error (-W error): not the file's fault
    except Exception as exc:
        # a state that does not fit its class (an altered header): refused, not half-built
        raise InvalidFileError(
            f"{path} is not a valid skae file: its contents do not make a "
            f"{header.get('class')!r} ({type(exc).__name__}: {exc})"
        ) from exc


def _build(header, arrays, module, device):
    """The estimator a valid header and its arrays describe."""
    cls = _allowed_class(header.get("class"), SAVED_ESTIMATORS)
    if not isinstance(header.get("skae_version"), str):
        raise InvalidFileError("its header has no skae version")
    check_version(header["skae_version"], cls.__name__)
    state = _decode(header.get("state"), arrays)
    if not isinstance(state, dict):
        raise InvalidFileError("its state is not a dict")
    if header.get("user_module"):
        state["module"] = module
    if device is not None:
        state["device"] = device
    state["_skae_version"] = __version__  # checked above, against the file's header
    estimator = cls.__new__(cls)
    estimator.__setstate__(state)
    return estimator


# --------------------------------------------------------------------------------------
# ONNX


class _Encode(torch.nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        from ._nn.modules import encode

        return encode(self.module, x)


class _Decode(torch.nn.Module):
    def __init__(self, module, mean):
        super().__init__()
        self.module = module
        self.mean = mean

    def forward(self, z):
        return self.mean(self.module, self.module.decode(z))


def export_onnx(estimator, path, *, method="transform", opset_version=None):
    """Export a fitted autoencoder's encoder or decoder as an ONNX graph.

    The graph takes a float32 batch of any size (``"X"``, shape ``(n, n_features_in_)``
    for the encoder, ``(n, n_components)`` for the decoder) and returns what ``transform``
    or ``inverse_transform`` return in float32. Needs ``onnx`` and ``onnxscript``
    (``pip install skae[onnx]``); ``onnxruntime`` runs the graph.

    Parameters
    ----------
    estimator : fitted skae autoencoder
    path : str or path-like
    method : {"transform", "inverse_transform"}, default="transform"
    opset_version : int, default=None
        The ONNX opset; None lets torch choose.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    if method not in ("transform", "inverse_transform"):
        raise ValueError(f"method must be 'transform' or 'inverse_transform'; got {method!r}.")
    if not hasattr(estimator, "inverse_transform") or not hasattr(estimator, "module_"):
        raise ValueError(
            f"{type(estimator).__name__} is not a skae autoencoder with an encoder and a "
            "decoder to export."
        )
    import copy

    module = copy.deepcopy(estimator.module_).cpu().float().eval()
    if method == "transform":
        graph, width = _Encode(module), estimator.n_features_in_
    else:
        graph, width = _Decode(module, estimator._mean), estimator._n_features_out
    graph.eval()
    example = torch.zeros(2, width)
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        graph,
        (example,),
        dynamic_shapes=({0: batch},),
        input_names=["X"],
        output_names=["Y"],
        opset_version=opset_version,
        dynamo=True,
        verbose=False,
    )
    program.save(os.fspath(path))
