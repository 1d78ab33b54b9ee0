"""One process of a data-parallel fit, as a user's script under ``torchrun`` would be.

``python -m torch.distributed.run --standalone --nproc_per_node=N tests/ddp_worker.py OUT
MODEL [--fail-rank R] [--other-data-rank R]`` fits MODEL (a name in ``MODELS``) on the
digits and writes what each rank fitted to ``OUT/rank<r>.npz``. tests/test_data_parallel.py
runs it and compares the ranks with each other and with a one-process fit (``fitted``).
"""

import argparse
import datetime
import os

import numpy as np
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skae import AutoEncoder, EncoderClassifier, OutlierDetector, StackedAE, VariationalAE
from skae.distributed import data_parallel

MODELS = {
    "autoencoder": lambda: AutoEncoder(
        n_components=4,
        hidden_layer_sizes=(32,),
        max_iter=8,
        batch_size=96,
        early_stopping=True,
        n_iter_no_change=3,
        learning_rate="adaptive",
        random_state=0,
    ),
    "unseeded": lambda: AutoEncoder(n_components=3, hidden_layer_sizes=(16,), max_iter=3),
    "classifier": lambda: EncoderClassifier(
        StackedAE(
            n_components=8, hidden_layer_sizes=(16,), pretrain_iter=2, max_iter=2, random_state=0
        ),
        max_iter=4,
        batch_size=64,
        random_state=0,
    ),
    # validation draws (the ELBO's samples) must be the same on every rank, or early
    # stopping and the adaptive schedule would decide apart
    "vae": lambda: VariationalAE(
        n_components=2,
        hidden_layer_sizes=(16,),
        max_iter=12,
        early_stopping=True,
        n_iter_no_change=2,
        learning_rate="adaptive",
        random_state=0,
    ),
    "detector": lambda: OutlierDetector(
        AutoEncoder(n_components=2, hidden_layer_sizes=(16,), max_iter=3)
    ),
    # which rows each rank trains on (column 0 of the data holds each row's number)
    "split": lambda: AutoEncoder(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=2,
        batch_size=100,
        early_stopping=False,
        callbacks=[RecordRows()],
        random_state=0,
    ),
}


class RecordRows(Callback):
    """The rows of this rank's training batches, by their number (column 0)."""

    def initialize(self):
        self.rows_ = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.rows_.append(np.asarray(batch[0][:, 0].detach().cpu(), dtype=np.int64))


def data():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:1000]).astype(np.float32), y[:1000]


def fitted(model, X, y):
    """What a fit leaves, as arrays: the codes, the loss curve, the number of epochs."""
    estimator = MODELS[model]()
    if isinstance(estimator, OutlierDetector):
        estimator.fit(X)
        return estimator, {
            "outputs": estimator.decision_function(X),
            "loss": np.asarray(estimator.autoencoder_.loss_curve_),
            "n_iter": estimator.autoencoder_.n_iter_,
        }
    if isinstance(estimator, EncoderClassifier):
        estimator.fit(X, np.array([f"digit {label}" for label in y]))  # labels of any type
        return estimator, {
            "outputs": estimator.predict_proba(X),
            "loss": np.asarray(estimator.loss_curve_),
            "n_iter": estimator.n_iter_,
        }
    if model == "split":
        X = X.copy()
        X[:, 0] = np.arange(len(X))  # digits' first pixel is blank: each row's number
        estimator.fit(X)
        (recorder,) = [c for _, c in estimator.net_.callbacks_ if isinstance(c, RecordRows)]
        return estimator, {"rows": np.concatenate(recorder.rows_), "n_rows": len(X)}
    estimator.fit(X)
    outputs = estimator.transform(X)
    return estimator, {
        "outputs": outputs,
        "loss": np.asarray(estimator.loss_curve_),
        "validation": np.asarray(getattr(estimator, "validation_scores_", [])),
        "n_iter": estimator.n_iter_,
    }


class FailAt(Callback):
    """Raise at the end of one epoch: a rank that fails mid-fit."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise RuntimeError(f"rank {dist.get_rank()} fails on purpose at epoch {self.epoch}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--other-data-rank", type=int, default=-1)
    parser.add_argument("--other-params-rank", type=int, default=-1)
    parser.add_argument("--independent", action="store_true", help="data_parallel(False)")
    parser.add_argument("--backend", default="gloo", choices=("gloo", "nccl"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group(args.backend, timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    if args.backend == "nccl":  # one GPU per rank
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    X, y = data()
    if rank == args.other_data_rank:
        X = X[::-1].copy()
    original = MODELS[args.model]
    if rank == args.fail_rank:
        MODELS[args.model] = lambda: original().set_params(callbacks=[FailAt(2)])
    if rank == args.other_params_rank:
        MODELS[args.model] = lambda: original().set_params(alpha=0.5)
    with data_parallel(not args.independent):
        _, result = fitted(args.model, X, y)
    np.savez(os.path.join(args.out, f"rank{rank}.npz"), **result)
    dist.barrier()  # no rank closes its connections while another still uses them
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
