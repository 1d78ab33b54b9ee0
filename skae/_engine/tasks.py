"""scikit-learn's callbacks in skae's fits: the task tree that ``sklearn.callback`` sees.

scikit-learn 1.9 gives estimators a callback API (:mod:`sklearn.callback`):
``est.set_callbacks(ProgressBar())`` on an estimator that mixes in
``CallbackSupportMixin``, which reports each ``fit`` as a tree of *tasks* to the callbacks
(``on_fit_task_begin`` / ``on_fit_task_end``), and meta-estimators (``Pipeline``,
``GridSearchCV``) hang the trees of the estimators they fit under their own. Every skae
estimator takes part; its tasks are:

- an autoencoder's ``fit``: one subtask per epoch (``"epoch"``, ``max_iter`` at most),
  ``partial_fit`` one; :class:`~skae.StackedAE`'s first fit a subtask per pretrained
  level (``"pretrain level"``, each with its epochs) and one for the fine-tuning
  (``"fine-tune"``, with its epochs); :class:`~skae.LinearAE`'s EM one per EM step;
- :class:`~skae.EncoderClassifier`: the autoencoder's fit (``"fit autoencoder"``, when it
  is fitted here: its own tree hangs there), then the fine-tuning's epochs;
- :class:`~skae.OutlierDetector`: the model's fit (``"fit model"``, its tree under it), and
  the refit on the inliers (``"refit on inliers"``) with ``refit_inliers``.

An epoch's end hands the callbacks ``fitted_estimator``, a copy of the estimator that
transforms and scores with the weights of that epoch (so ``ScoringMonitor`` records a
score per epoch), and the task's data: ``X``, and as ``y`` the target of the training,
which for an autoencoder is ``X`` itself (what it learns to reproduce). A callback whose
``on_fit_task_end`` returns True at an epoch ends the training there, as skorch's
``EarlyStopping`` does: the model keeps the weights of that epoch (or the best held-out
epoch's, with early stopping).

With scikit-learn older than 1.9 the estimators work as before and ``set_callbacks`` says
what it needs; skorch's own ``callbacks=`` parameter works on every version.
"""

import contextlib
import copy
import inspect

import sklearn
from skorch.callbacks import Callback

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9

    class CallbackSupportMixin:
        """scikit-learn's callback API, which needs scikit-learn >= 1.9."""

        def set_callbacks(self, *callbacks):
            """Set scikit-learn callbacks (needs scikit-learn >= 1.9).

            Parameters
            ----------
            *callbacks : callback instances
                The callbacks to set.

            Returns
            -------
            self : estimator instance
                The estimator instance itself.
            """
            raise RuntimeError(
                f"set_callbacks needs scikit-learn >= 1.9 (sklearn.callback); this is "
                f"scikit-learn {sklearn.__version__}. skorch's callbacks (the callbacks= "
                "parameter) work with every version."
            )

        def _init_callback_context(self, task_name="fit", task_id=0, max_subtasks=0, **_):
            return _NO_CONTEXT


class _NoContext:
    """The callback context of a fit on scikit-learn < 1.9: every hook a no-op."""

    def subcontext(self, *args, **kwargs):
        return self

    def call_on_fit_task_begin(self, **kwargs):
        return self

    def call_on_fit_task_end(self, **kwargs):
        return False

    @contextlib.contextmanager
    def propagate_callback_context(self, sub_estimator):
        yield


_NO_CONTEXT = _NoContext()


def listening(estimator):
    """Whether any scikit-learn callback follows ``estimator``'s fit (its own or one a
    meta-estimator propagated to it)."""
    return bool(getattr(estimator, "_skl_callbacks", None))


def score_metadata(estimator, sample_weight):
    """The metadata of a task: the weights, where the estimator's ``score`` takes them
    (``ScoringMonitor`` passes the metadata on to it)."""
    score = getattr(estimator, "score", None)
    if sample_weight is None or score is None:
        return None
    if "sample_weight" not in inspect.signature(score).parameters:
        return None
    return {"sample_weight": sample_weight}


class Task:
    """One task of a fit in scikit-learn's callback tree: its context and its data.

    ``Task.root(estimator, ...)`` opens the estimator's fit task (call it inside the fit, as
    ``_init_callback_context`` requires), ``task.child(name, ...)`` a subtask, and
    ``task.end(...)`` closes it. ``y`` is the training target (``X`` for an autoencoder).
    """

    def __init__(self, estimator, context, X=None, y=None, metadata=None):
        self.estimator = estimator
        self.context = context
        self.X, self.y, self.metadata = X, y, metadata

    @classmethod
    def root(cls, estimator, X, y=None, *, sample_weight=None, name="fit", max_subtasks=0):
        context = estimator._init_callback_context(task_name=name, max_subtasks=max_subtasks)
        task = cls(estimator, context, X, y, score_metadata(estimator, sample_weight))
        return task.begin()

    @property
    def listening(self):
        return listening(self.estimator)

    def begin(self):
        self.context.call_on_fit_task_begin(
            estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata
        )
        return self

    def child(self, name, max_subtasks=0, X=None, y=None):
        """A subtask, begun; its data default to this task's."""
        context = self.context.subcontext(task_name=name, max_subtasks=max_subtasks)
        X, y = (self.X, self.y) if X is None else (X, y)
        return Task(self.estimator, context, X, y, self.metadata).begin()

    def end(self, fitted=None):
        """End the task; ``fitted``, a dict of fitted attributes (or a callable returning
        one, called only if a callback asks for ``fitted_estimator``), makes the estimator
        as it is at this point. Returns whether a callback asks to stop."""
        return self.context.call_on_fit_task_end(
            estimator=self.estimator,
            X=self.X,
            y=self.y,
            metadata=self.metadata,
            reconstruction_attributes=fitted,
        )

    @contextlib.contextmanager
    def nested(self, name, sub_estimator):
        """A subtask ``name`` in which ``sub_estimator`` is fitted: its own task tree hangs
        there, and the callbacks that propagate (``ProgressBar``) reach it, as scikit-learn's
        ``Pipeline`` nests its steps."""
        task = Task(self.estimator, self.context.subcontext(task_name=name), self.X, self.y)
        task.metadata = self.metadata
        with task.context.propagate_callback_context(sub_estimator):
            task.begin()
            yield
            task.end()


class NetSnapshot:
    """What an estimator reads of its skorch net to transform and score, as the net is
    now: a copy of the module (in eval mode), its device and its history so far."""

    def __init__(self, net):
        self.module_ = copy.deepcopy(net.module_).eval()
        self.device = net.device
        self.history = copy.deepcopy(net.history)


def fitted_at(net):
    """The fitted attributes of an estimator whose net is ``net`` at this point, for the
    callbacks' ``fitted_estimator`` (a callable: the copy is made only if one is asked)."""
    return lambda: {"net_": NetSnapshot(net), "device_": net.device}


class EpochTasks(Callback):
    """A skorch callback that reports each epoch to scikit-learn's callbacks: a subtask
    of ``task`` per epoch; a callback that asks to stop ends the training after that
    epoch, by skorch's stop signal (``KeyboardInterrupt`` at an epoch's end, which
    :class:`~skae._engine.net.AutoEncoderNet` tells apart from a user's interrupt).

    ``task`` is set for the duration of one training (``training``), and None otherwise,
    so that a fitted net holds no data and no context.
    """

    def __init__(self, fitted=True):
        self.fitted = fitted
        self.task = None

    def initialize(self):
        self.epoch_ = None
        return self

    @contextlib.contextmanager
    def training(self, task, fitted=True):
        if task is None or not task.listening:
            yield
            return
        self.task, self.fitted, self.epoch_ = task, fitted, None
        try:
            yield
        finally:
            self.task = self.epoch_ = None

    def on_epoch_begin(self, net, **kwargs):
        if self.task is not None:
            self.epoch_ = self.task.child("epoch")

    def _end_epoch(self, net):
        epoch, self.epoch_ = self.epoch_, None
        return epoch.end(fitted_at(net) if self.fitted else None)

    def on_epoch_end(self, net, **kwargs):
        if self.epoch_ is not None and self._end_epoch(net):
            raise KeyboardInterrupt  # skorch's stop signal, after EpochTimer closed the epoch

    def on_train_end(self, net, **kwargs):
        # an epoch that another callback stopped in its on_epoch_end (EarlyStopping)
        if self.epoch_ is not None:
            self._end_epoch(net)

    def __getstate__(self):
        return {**self.__dict__, "task": None, "epoch_": None}


def epoch_tasks(net, task, fitted=True):
    """A context in which each epoch of ``net`` is a subtask of ``task`` (a net built
    before skae had its :class:`EpochTasks` reports none)."""
    callback = dict(net.callbacks_).get("fit_tasks")
    if callback is None:
        return contextlib.nullcontext()
    return callback.training(task, fitted)
