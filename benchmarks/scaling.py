"""Beyond one process: a hyperparameter search on joblib's backends, and data-parallel
training with torchrun, on this machine.

1. **Search.** A 12-candidate ``GridSearchCV`` (3-fold) of ``AutoEncoder`` on min-max scaled
   digits, run with ``n_jobs=1``, loky with 2 workers, a Dask ``LocalCluster`` of 2
   single-threaded workers, and Ray's joblib backend with 2 CPUs (when Ray is installed).
   Each backend's wall time, and the largest difference of its mean test scores from
   ``n_jobs=1``'s.
2. **Data-parallel training.** ``AutoEncoder`` 784-1000-500-250-30 on the first
   ``--n-samples`` MNIST images (or digits' 64-256-128-10 without ``--data``), batch 256:
   median seconds per epoch of one process (1 thread, and all threads) against
   ``torchrun --nproc_per_node=2`` (1 thread each; the gloo backend).

Run from the repository root::

    python -m benchmarks.scaling [--data ../shared/data/mnist.npz] [--publish]

Writes ``benchmarks/out/scaling.md`` (``--publish``: ``benchmarks/results/scaling.md`` and
RESULTS.md).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder

from .common import markdown_table, progress, provenance, publish

REPO = Path(__file__).resolve().parents[1]
GRID = {
    "n_components": [2, 4, 8],
    "alpha": [0.0, 0.01],
    "hidden_layer_sizes": [(32,), (64,)],
}  # 12 candidates


def _search(n_jobs):
    model = AutoEncoder(max_iter=30, early_stopping=False, random_state=0)
    return GridSearchCV(model, GRID, cv=3, n_jobs=n_jobs)


def search_rows(X):
    """(backend, workers, seconds, largest score difference from n_jobs=1) per backend."""
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []

    def timed(name, workers, run):
        progress(f"search: {name}")
        start = time.perf_counter()
        search = run()
        seconds = time.perf_counter() - start
        scores = search.cv_results_["mean_test_score"]
        reference = rows[0][-1] if rows else scores
        gap = float(np.max(np.abs(scores - reference)))
        rows.append([name, workers, f"{seconds:.1f}", f"{gap:.1e}", scores])

    timed("n_jobs=1", 1, lambda: _search(1).fit(X))
    timed("loky", 2, lambda: _search(2).fit(X))
    try:
        import distributed
    except ImportError:
        distributed = None
    if distributed is not None:
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster),
        ):

            def dask():
                with joblib.parallel_backend("dask"):
                    return _search(-1).fit(X)

            timed("Dask LocalCluster", 2, dask)
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        ray = None
    if ray is not None:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        register_ray()

        def on_ray():
            with joblib.parallel_backend("ray"):
                return _search(-1).fit(X)

        try:
            timed("Ray", 2, on_ray)
        finally:
            ray.shutdown()
    return [row[:-1] for row in rows]


def epoch_data(data, n_samples):
    if data:
        with np.load(data) as f:
            X = f["X_train"][:n_samples].reshape(-1, 784).astype(np.float32) / 255
        return X, (1000, 500, 250), 30
    X = MinMaxScaler().fit_transform(load_digits().data).astype(np.float32)
    return X, (256, 128), 10


def epoch_seconds(history):
    return statistics.median(history[1:, "dur"])  # the first epoch is a warm-up


def train(X, hidden, k, epochs):
    ae = AutoEncoder(
        n_components=k,
        hidden_layer_sizes=hidden,
        max_iter=epochs,
        batch_size=256,
        early_stopping=False,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    return ae


def worker(args):
    """One rank of the torchrun measurement (``--worker``)."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    X, hidden, k = epoch_data(args.data, args.n_samples)
    ae = train(X, hidden, k, args.epochs)
    if dist.get_rank() == 0:
        Path(args.worker).write_text(
            json.dumps({"seconds": epoch_seconds(ae.history_), "loss": ae.loss_curve_[-1]})
        )
    dist.barrier()
    dist.destroy_process_group()


def training_rows(args):
    X, hidden, k = epoch_data(args.data, args.n_samples)
    shape = "-".join(map(str, [X.shape[1], *hidden, k]))
    rows = []
    for threads in (1, torch.get_num_threads()):
        progress(f"training: 1 process, {threads} thread(s)")
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            ae = train(X, hidden, k, args.epochs)
        finally:
            torch.set_num_threads(previous)
        rows.append(
            [f"1 process x {threads} thread(s)", shape, len(X), f"{epoch_seconds(ae.history_):.2f}"]
            + [f"{ae.loss_curve_[-1]:.4f}"]
        )
    progress("training: torchrun, 2 processes x 1 thread")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "rank0.json"
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "benchmarks.scaling",
            "--worker",
            str(out),
            "--epochs",
            str(args.epochs),
            "--n-samples",
            str(args.n_samples),
        ] + (["--data", args.data] if args.data else [])
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=REPO)
        result = json.loads(out.read_text())
    rows.append(
        ["torchrun, 2 processes x 1 thread", shape, len(X), f"{result['seconds']:.2f}"]
        + [f"{result['loss']:.4f}"]
    )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="mnist.npz for the training rows (default: digits)")
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per training run")
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    # training first: the search's Dask and Ray processes may outlive their shutdown a while
    training = training_rows(args)
    print(markdown_table(["run", "network", "rows", "s per epoch", "loss"], training), flush=True)
    X = MinMaxScaler().fit_transform(load_digits().data)
    search = search_rows(X)
    text = "\n\n".join(
        [
            "## Scaling: searches on joblib's backends, data-parallel training",
            provenance(argv, "benchmarks.scaling"),
            (
                "A 12-candidate `GridSearchCV` (3-fold, 36 fits) of `AutoEncoder(max_iter=30)` "
                "on min-max scaled digits; the score gap is the largest difference of a "
                "candidate's mean test score from `n_jobs=1`'s."
            ),
            "<!-- results:scaling-search -->\n"
            + markdown_table(
                ["backend", "workers", "wall time (s)", "score gap to n_jobs=1"], search
            )
            + "\n<!-- /results:scaling-search -->",
            (
                "Data-parallel training: median seconds per epoch (batch 256, the first epoch "
                f"dropped) over {args.epochs} epochs, and the last epoch's training loss."
            ),
            "<!-- results:scaling-training -->\n"
            + markdown_table(
                ["run", "network", "rows", "s per epoch", "last training loss"], training
            )
            + "\n<!-- /results:scaling-training -->",
        ]
    )
    print(text)
    directory = REPO / "benchmarks" / ("results" if args.publish else "out")
    directory.mkdir(exist_ok=True)
    (directory / "scaling.md").write_text(text + "\n")
    if args.publish:
        publish()


if __name__ == "__main__":
    main()
