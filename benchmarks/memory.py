"""Memory and speed of skae's two data paths: a memmap larger than memory budgets, and MNIST.

    python -m benchmarks.memory                       # a 4 GiB float32 memmap in a temp folder
    python -m benchmarks.memory --gib 1 --data PATH   # smaller; MNIST from PATH

1. On a float32 memmap of ``--gib`` GiB made on the fly (random rows, in a temporary folder
   deleted afterwards), the peak anonymous memory (``RssAnon`` in ``/proc/self/status``,
   which the memmap's file pages do not count against) above the level before the call,
   of ``fit`` (one epoch, streamed: ``data_path="auto"`` streams a memmap) and of
   ``transform``, with the seconds taken.
2. The streamed path's median epoch time against the resident path's on 20,000 MNIST
   images, with each fit's last epoch's loss and whether the two are equal (they are the
   same computation on the CPU, so a difference is a finding, printed as such).

Writes ``benchmarks/results/memory-<device>.md`` and refreshes README's block.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import skae
from skae._engine.training import resolve_device

from .common import markdown_table, progress, provenance, publish

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"  # the committed results (--publish)
OUT_DIR = REPO / "benchmarks" / "out"  # a run's own results, ignored by git


def rss_anon():
    """This process's anonymous resident memory in bytes (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_anon_above_start(fn, *args, interval=0.002):
    """``(result, seconds, peak RssAnon above its level before the call)``, sampled."""
    start_level = rss_anon()
    peak = [start_level or 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon() or 0)
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn(*args)
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    peak[0] = max(peak[0], rss_anon() or 0)
    return result, seconds, peak[0] - (start_level or 0)


def make_memmap(folder, gib, n_features, seed=0):
    """A float32 .npy memmap of ``gib`` GiB: rows near a 16-dimensional subspace, plus noise."""
    n_rows = int(gib * 2**30) // (4 * n_features)
    path = Path(folder) / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((16, n_features)).astype(np.float32)
    for start in range(0, n_rows, 65536):
        stop = min(start + 65536, n_rows)
        codes = rng.standard_normal((stop - start, 16), dtype=np.float32)
        X[start:stop] = codes @ basis + 0.1 * rng.standard_normal(
            (stop - start, n_features), dtype=np.float32
        )
    X.flush()
    del X
    return np.load(path, mmap_mode="r")


def large_data_rows(args, device):
    with tempfile.TemporaryDirectory(prefix="skae-memory-") as folder:
        progress(f"writing a {args.gib:g} GiB memmap")
        X = make_memmap(folder, args.gib, args.n_features)
        ae = skae.AutoEncoder(
            n_components=16,
            hidden_layer_sizes=(64,),
            batch_size=args.batch_size,
            max_iter=1,
            early_stopping=False,
            device=device,
            random_state=0,
        )
        progress(f"fit, one epoch over {X.shape[0]:,} rows")
        _, fit_s, fit_peak = peak_anon_above_start(ae.fit, X)
        progress("transform")
        Z, transform_s, transform_peak = peak_anon_above_start(ae.transform, X)
        rows = [
            ["fit (1 epoch)", ae.data_path_, f"{fit_peak / 2**20:.0f}", "0", f"{fit_s:.1f}"],
            [
                "transform",
                ae.data_path_,
                f"{transform_peak / 2**20:.0f}",
                f"{Z.nbytes / 2**20:.0f}",
                f"{transform_s:.1f}",
            ],
        ]
        shape = X.shape
        del X, Z
    return shape, rows


def path_speed_rows(args, device):
    with np.load(args.data) as data:
        X = (data["X_train"][: args.n_mnist] / 255.0).astype(np.float32)
    rows = []
    for path in ("resident", "streamed"):
        progress(f"MNIST, {path}")
        ae = skae.AutoEncoder(
            n_components=30,
            hidden_layer_sizes=(500, 250),
            loss="bce",
            batch_size=256,
            max_iter=args.epochs + 1,
            data_path=path,
            early_stopping=False,
            device=device,
            random_state=0,
            tol=0.0,
        ).fit(X)
        durations = list(ae.history_[:, "dur"])[1:]  # the first epoch is warm-up
        rows.append((path, statistics.median(durations), ae.loss_curve_[-1]))
    resident = rows[0][1]
    table = [
        [path, f"{seconds:.3f}", f"{seconds / resident:.2f}", f"{loss:.4f}"]
        for path, seconds, loss in rows
    ]
    return table, [loss for _, _, loss in rows]


def losses_agreement(losses):
    """What the last losses of the paths' fits show, in words: equal, or how far apart."""
    spread = max(losses) - min(losses)
    if spread == 0:
        return "the last epoch's losses are equal to the last bit"
    return f"the last epoch's losses differ by {spread:.3g} (relative {spread / max(losses):.2g})"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--gib", type=float, default=4.0, help="size of the memmap (GiB)")
    parser.add_argument("--n-features", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/mnist.npz")
    parser.add_argument("--n-mnist", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs after a warm-up")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: benchmarks/out/<tag>.md (ignored by git)"
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="write to the committed benchmarks/results/ and refresh RESULTS.md and README.md",
    )
    args = parser.parse_args(argv)
    if rss_anon() is None:
        parser.exit(1, "error: RssAnon is read from /proc/self/status: Linux only.\n")
    if not args.data.is_file():
        parser.exit(1, f"error: MNIST not found at {args.data}; pass --data PATH.\n")
    device = resolve_device(args.device)
    warnings.simplefilter("ignore", ConvergenceWarning)

    shape, memory = large_data_rows(args, device)
    speed, losses = path_speed_rows(args, device)
    tag = f"memory-{device.split(':')[0]}"
    text = (
        "\n\n".join(
            [
                f"# Data larger than memory ({device})",
                (
                    f"A float32 memmap of {shape[0]:,} x {shape[1]} ({args.gib:g} GiB) made on "
                    "the fly; "
                    "AutoEncoder 256-64-16, batch "
                    f"{args.batch_size}, `data_path='auto'`. Peak anonymous memory (RssAnon, "
                    "sampled every 2 ms) above its level before the call; the memmap's file pages "
                    "do not count against it, the output does."
                ),
                f"<!-- results:{tag} -->\n"
                + markdown_table(
                    [
                        "call",
                        "data path",
                        "peak RssAnon above start (MiB)",
                        "output (MiB)",
                        "seconds",
                    ],
                    memory,
                )
                + f"\n<!-- /results:{tag} -->",
                (
                    f"The two paths on {args.n_mnist:,} MNIST images, AutoEncoder 784-500-250-30, "
                    f"cross-entropy, batch 256: median of {args.epochs} epochs after a warm-up "
                    f"({losses_agreement(losses)})."
                ),
                f"<!-- results:{tag}-paths -->\n"
                + markdown_table(
                    ["data path", "seconds per epoch", "/ resident", "last epoch's loss"], speed
                )
                + f"\n<!-- /results:{tag}-paths -->",
                f"- device: {device}\n" + provenance(argv, "benchmarks.memory"),
            ]
        )
        + "\n"
    )
    if args.publish and args.out is not None:
        sys.exit("error: --publish writes to benchmarks/results/; it takes no --out.")
    out = args.out or (RESULTS_DIR if args.publish else OUT_DIR) / f"{tag}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if args.publish:
        publish()
    print(text)


if __name__ == "__main__":
    main()
