"""The engine: skorch's net, the training loop's settings and the scikit-learn task tree.

It knows torch, skorch and scikit-learn's callback protocol, and no estimator: an estimator
resolves its :class:`~skae._engine.training.TrainingSettings` and hands a module, an
objective and its data to :func:`~skae._engine.training.fit_net`.
"""
