"""What a training wrapper costs: skae vs a hand-written PyTorch loop vs skorch's defaults.

For each architecture (784-128-32 and 784-1000-500-250-30 on the first ``--n-samples``
MNIST images at ``--batch-size``; and a tiny 64-32-2 on scikit-learn's digits at batch 64
and one thread, where the per-step overhead is all there is; ReLU, linear code, squared
error) the same autoencoder is trained three ways, with the same module, data, batch size,
optimizer (Adam, lr 1e-3, torch's fused kernel on the CPU and CUDA, as skae's), loss and
floating-point mode (denormals flushed to zero on the CPU while training, as skae does), so
that the ratios are the wrappers' cost and nothing else:

1. a hand-written loop: data as one tensor on the device, a ``randperm`` per epoch, sliced
   batches, one device synchronisation per epoch;
2. ``skae.AutoEncoder`` (skorch underneath, with skae's device-resident batch iterator);
3. ``skorch.NeuralNet`` with its default ``DataLoader`` path and per-batch ``loss.item()``.

Each method runs ``1 + --epochs`` epochs; the first is dropped as warm-up and the median of
the rest is reported. Transform throughput (rows/s) of the fitted AutoEncoder is compared
with scikit-learn's PCA. Timings are only comparable as ratios taken in one run.

Three more tables: the mixed precisions the device has (``precision="bf16-mixed"`` on a CPU
with bfloat16 instructions; bf16 and ``"16-mixed"`` on CUDA), skae's and the hand loop's
under the same autocast; ``AutoEncoder()``'s defaults (PCA start, ``alpha``, early
stopping) on the tiny net, per step against the hand loop; and how an epoch's cost grows
with the rows (``--growth-rows``, MNIST rows drawn with replacement, both data paths) and
with the width of the hidden layer (``--growth-widths``).

Run from the repository root::

    python -m benchmarks.speed                      # CPU or CUDA, whichever "auto" finds
    python -m benchmarks.speed --device cuda --batch-size 256 64
    python -m benchmarks.speed --data /path/to/mnist.npz --threads 2

The tables, the device and the library versions are printed and written to ``--out``
(default ``benchmarks/out/speed-<device>.md``, ignored by git); ``--publish`` writes
``benchmarks/results/speed-<device>.md`` and refreshes RESULTS.md and README.md.
"""

import argparse
import contextlib
import copy
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import skorch
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

import skae
from skae._engine.denormals import flushed_denormals
from skae._engine.net import PRECISIONS, check_precision
from skae._engine.training import fused_adam, resolve_device
from skae._nn.likelihoods import Gaussian
from skae._nn.modules import init_weights, mlp_autoencoder

from .common import provenance, publish

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"  # the committed results (--publish)
OUT_DIR = REPO / "benchmarks" / "out"  # a run's own results, ignored by git
ARCHITECTURES = [((128,), 32), ((1000, 500, 250), 30)]
TINY = ((32,), 2)  # on digits (64 features), batch 64, one thread
TINY_EPOCHS = 40  # timed epochs of 29 steps each
LR = 1e-3
MIN_TIMED_EPOCHS = 5


def build_module(hidden, k, device, n_features=784):
    module = mlp_autoencoder(n_features, hidden, k, "relu")
    return init_weights(module, torch.Generator().manual_seed(0), "relu").to(device)


class SquaredError(torch.nn.Module):
    """skorch's criterion interface, ``criterion(y_pred, y_true)``: skae's squared error."""

    def forward(self, y_pred, y_true):
        return Gaussian().loss(y_pred, y_true).mean()


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def autocast(device, precision):
    """The hand loop's context for skae's ``precision`` (autocast, as skae's)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def hand_loop(
    X_np,
    hidden,
    k,
    batch_size,
    n_epochs,
    device,
    precision="32-true",
    module=None,
    weight_decay=0.0,
):
    """Epoch durations and the last epoch's mean loss of a plain PyTorch loop (under
    autocast for a mixed ``precision``, with a gradient scaler for float16), on the plain
    MLP or on ``module`` (any network whose forward pass is the reconstruction), with
    Adam's coupled ``weight_decay`` on every parameter."""
    if module is None:
        module = build_module(hidden, k, device, X_np.shape[1])
    optimizer = torch.optim.Adam(
        module.parameters(), lr=LR, weight_decay=weight_decay, fused=fused_adam(device)
    )
    X = torch.as_tensor(X_np, dtype=torch.float32, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    scaler = torch.amp.GradScaler(torch.device(device).type) if precision == "16-mixed" else None
    with flushed_denormals(device):  # skae's floating-point mode while it trains
        epochs = [
            _hand_epoch(X, module, optimizer, generator, batch_size, device, precision, scaler)
            for _ in range(n_epochs)
        ]
    return [duration for duration, _ in epochs], (epochs[-1][1] if epochs else float("nan"))


def _hand_epoch(X, module, optimizer, generator, batch_size, device, precision, scaler):
    """One epoch of the hand loop: its duration and mean loss."""
    squared_error = Gaussian().loss
    sync(device)
    start = time.perf_counter()
    order = torch.randperm(len(X), generator=generator, device=device)
    # Summed on the device like skae does, so the only difference is the wrapper.
    total = torch.zeros((), dtype=torch.float64, device=device)
    for i in range(0, len(X), batch_size):
        xb = X[order[i : i + batch_size]]
        with autocast(device, precision):
            batch_loss = squared_error(module(xb), xb).mean().float()
        optimizer.zero_grad()
        if scaler is None:
            batch_loss.backward()
            optimizer.step()
        else:
            scaler.scale(batch_loss).backward()
            scaler.step(optimizer)
            scaler.update()
        total += batch_loss.detach() * len(xb)
    sync(device)
    return time.perf_counter() - start, total.item() / len(X)


def skae_fit(X, hidden, k, batch_size, n_epochs, device, **params):
    ae = skae.AutoEncoder(
        n_components=k,
        module=skae.MLP(hidden_layer_sizes=hidden, activation="relu"),  # the hand loop's
        alpha=0.0,
        loss="mse",
        batch_size=batch_size,
        max_iter=n_epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        early_stopping=False,  # every row trains, as in the hand loop
        device=device,
        random_state=0,
    ).set_params(**params)
    with warnings.catch_warnings():
        # max_iter is reached on purpose.
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    return list(ae.history_[:, "dur"]), ae.history_[-1, "train_loss"], ae


def defaults_fit(X, hidden, k, batch_size, n_epochs, device):
    """``AutoEncoder()`` at its defaults on the same network (a PCA start, its warm-up,
    ``alpha``, early stopping's held-out rows): seconds per training step, median epoch."""
    ae = skae.AutoEncoder(
        n_components=k,
        hidden_layer_sizes=hidden,
        batch_size=batch_size,
        max_iter=n_epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        device=device,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    steps = ae.history_[-1, "train_batch_count"]
    return statistics.median(list(ae.history_[1:, "dur"])) / steps, ae


def precisions(device):
    """The mixed precisions skae can train in on ``device``."""
    available = []
    for precision in ("bf16-mixed", "16-mixed"):
        try:
            available.append(check_precision(precision, "adam", device))
        except ValueError:
            pass
    return available


def growth_epochs(X, hidden, k, batch_size, device, data_path, n_epochs=3):
    """Median epoch time of skae's AutoEncoder (the speed table's settings) on X."""
    durations, _, _ = skae_fit(X, hidden, k, batch_size, n_epochs, device, data_path=data_path)
    return statistics.median(durations[1:])


def skorch_default(X, hidden, k, batch_size, n_epochs, device):
    net = skorch.NeuralNet(
        module=build_module(hidden, k, device, X.shape[1]),
        criterion=SquaredError(),
        optimizer=torch.optim.Adam,
        optimizer__fused=fused_adam(device),
        lr=LR,
        batch_size=batch_size,
        max_epochs=n_epochs,
        train_split=None,
        device=device,
        verbose=0,
        iterator_train__shuffle=True,
    )
    torch.manual_seed(0)  # skorch's DataLoader shuffles with the global RNG
    with flushed_denormals(device):
        net.fit(X, X)
    return list(net.history[:, "dur"]), net.history[-1, "train_loss"]


def contractive_epochs(X, batch_size, n_epochs, device):
    """Median epoch time of AutoEncoder and ContractiveAE (random projections, and exact)
    on the 784-500-250-30 MLP, whose encoder has no closed-form Jacobian norm."""
    common = {
        "n_components": 30,
        "alpha": 0.0,
        "loss": "mse",
        "batch_size": batch_size,
        "tol": 0.0,
        "n_iter_no_change": 10**6,
        "early_stopping": False,
        "device": device,
        "random_state": 0,
    }
    module = skae.MLP(hidden_layer_sizes=(500, 250))
    models = {
        "AutoEncoder": (skae.AutoEncoder(module=module, max_iter=n_epochs, **common)),
        'ContractiveAE, jacobian="projection" (default here)': skae.ContractiveAE(
            module=module, max_iter=n_epochs, **common
        ),
        'ContractiveAE, jacobian="exact"': skae.ContractiveAE(
            module=module, jacobian="exact", max_iter=2, **common
        ),
    }
    times = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, model in models.items():
            durations = list(model.fit(X).history_[:, "dur"])
            times[name] = statistics.median(durations[1:] if len(durations) > 2 else durations)
    return times


def best_rate(fn, X, repeats=3):
    """Rows per second of ``fn(X)``, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(X)
        best = min(best, time.perf_counter() - start)
    return len(X) / best


def device_name(device):
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} logical cores, torch threads: {torch.get_num_threads()}"


def load_mnist(path, n_samples):
    if not path.is_file():
        sys.exit(
            f"error: MNIST not found at {path}; pass --data PATH to an .npz holding "
            "X_train (uint8, 60000 x 784), or set SKAE_MNIST."
        )
    with np.load(path) as data:
        if "X_train" not in data:
            sys.exit(f"error: {path} has no array 'X_train'; pass --data PATH to MNIST .npz.")
        return (data["X_train"][:n_samples] / 255.0).astype(np.float32)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed", description=__doc__.split("\n")[0]
    )
    default_data = os.environ.get("SKAE_MNIST", str(REPO.parent / "shared/data/mnist.npz"))
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(default_data),
        help="MNIST .npz with X_train (default: $SKAE_MNIST or %(default)s)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--n-samples", type=int, default=20000)
    parser.add_argument(
        "--epochs", type=int, default=6, help="timed epochs per method, after one warm-up epoch"
    )
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256])
    parser.add_argument(
        "--growth-rows",
        type=int,
        nargs="*",
        default=[10_000, 100_000, 1_000_000],
        help="rows of the cost-growth table (MNIST rows drawn with replacement); none: no table",
    )
    parser.add_argument(
        "--growth-widths",
        type=int,
        nargs="*",
        default=[64, 256, 1024, 4096],
        help="hidden widths of the cost-growth table (784-width-32); none: no table",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads; torch's default when omitted",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown output (default: benchmarks/out/speed-<device>.md)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="write to the committed benchmarks/results/ and refresh RESULTS.md and README.md",
    )
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.epochs < 1 or args.n_samples < 1:
        sys.exit("error: --epochs and --n-samples must be at least 1.")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    X = load_mnist(args.data, args.n_samples)
    n_epochs = 1 + args.epochs
    if args.publish and args.out is not None:
        sys.exit("error: --publish writes to benchmarks/results/; it takes no --out.")
    out = (
        args.out or (RESULTS_DIR if args.publish else OUT_DIR) / f"speed-{device.split(':')[0]}.md"
    )

    def median(durations):
        return statistics.median(durations[1:])  # the first epoch is warm-up

    rows, loss_rows, transform_rows, loss_gaps = [], [], [], []
    precision_rows, defaults_rows = [], []
    mixed = precisions(device)
    digits = (load_digits().data / 16.0).astype(np.float32)
    cases = [
        (hidden, k, X, batch_size, n_epochs, args.threads)
        for hidden, k in ARCHITECTURES
        for batch_size in args.batch_size
    ]
    cases.append((*TINY, digits, 64, 1 + TINY_EPOCHS, 1))
    default_threads = torch.get_num_threads()
    for hidden, k, data, batch_size, epochs, threads in cases:
        torch.set_num_threads(threads or default_threads)
        name = "-".join(str(s) for s in (data.shape[1], *hidden, k))
        steps = -(-len(data) // batch_size)
        print(f"{name}, batch {batch_size}: ", end="", file=sys.stderr, flush=True)
        hand, hand_loss = hand_loop(data, hidden, k, batch_size, epochs, device)
        print("hand ", end="", file=sys.stderr, flush=True)
        ours, ours_loss, ae = skae_fit(data, hidden, k, batch_size, epochs, device)
        print("skae ", end="", file=sys.stderr, flush=True)
        default, default_loss = skorch_default(data, hidden, k, batch_size, epochs, device)
        print("skorch", file=sys.stderr, flush=True)
        t_hand, t_ours, t_default = median(hand), median(ours), median(default)
        rows.append(
            f"| {name} | {len(data)} | {batch_size} | {torch.get_num_threads()} | "
            f"{t_hand:.3f} | {t_ours:.3f} | {t_default:.3f} | "
            f"{1e6 * t_hand / steps:,.0f} / {1e6 * t_ours / steps:,.0f} | "
            f"{t_ours / t_hand:.2f} | {t_default / t_hand:.2f} |"
        )
        loss_rows.append(
            f"| {name} | {batch_size} | {hand_loss:.3f} | {ours_loss:.3f} | {default_loss:.3f} |"
        )
        losses = (hand_loss, ours_loss, default_loss)
        loss_gaps.append((max(losses) - min(losses)) / max(abs(v) for v in losses))
        if data is not X:  # the tiny net: AutoEncoder()'s defaults, and a hand loop on its network
            per_step, fitted = defaults_fit(data, hidden, k, batch_size, epochs, device)
            same, _ = hand_loop(
                data,
                hidden,
                k,
                batch_size,
                epochs,
                device,
                module=copy.deepcopy(fitted.module_),
                weight_decay=fitted.alpha,
            )
            hand_step, same_step = t_hand / steps, median(same) / steps
            defaults_rows.append(
                f"| {name} | {batch_size} | {1e6 * hand_step:,.0f} | {1e6 * same_step:,.0f} "
                f"| {1e6 * t_ours / steps:,.0f} | {1e6 * per_step:,.0f} "
                f"| {per_step / same_step:.2f} |"
            )
        if data is X and batch_size == args.batch_size[0]:
            for precision in mixed:
                print(f"{name}, {precision}: ", end="", file=sys.stderr, flush=True)
                hand_p, hand_p_loss = hand_loop(
                    data, hidden, k, batch_size, epochs, device, precision
                )
                ours_p, ours_p_loss, _ = skae_fit(
                    data, hidden, k, batch_size, epochs, device, precision=precision
                )
                print("done", file=sys.stderr, flush=True)
                t_hand_p, t_ours_p = median(hand_p), median(ours_p)
                precision_rows.append(
                    f"| {name} | {precision} | {t_hand:.3f} | {t_hand_p:.3f} | {t_ours:.3f} "
                    f"| {t_ours_p:.3f} | {t_ours / t_ours_p:.2f} | {t_ours_p / t_hand_p:.2f} "
                    f"| {ours_loss:.3f} / {ours_p_loss:.3f} |"
                )
            pca = PCA(n_components=k, random_state=0).fit(X)
            ae_rate, pca_rate = best_rate(ae.transform, X), best_rate(pca.transform, X)
            transform_rows.append(
                f"| {name} | {ae_rate:,.0f} | {pca_rate:,.0f} | {ae_rate / pca_rate:.2f} |"
            )
    torch.set_num_threads(default_threads)
    print("ContractiveAE", file=sys.stderr, flush=True)
    contractive = contractive_epochs(X, args.batch_size[0], n_epochs, device)
    base = contractive["AutoEncoder"]
    contractive_rows = [
        f"| {name} | {seconds:.3f} | {seconds / base:.2f} |"
        for name, seconds in contractive.items()
    ]
    (hidden, k), batch = ARCHITECTURES[0], args.batch_size[0]
    rng = np.random.RandomState(0)
    rows_rows, width_rows = [], []
    for n_rows in args.growth_rows:
        print(f"growth: {n_rows} rows", file=sys.stderr, flush=True)
        data = X[rng.randint(len(X), size=n_rows)]
        resident = growth_epochs(data, hidden, k, batch, device, "resident")
        streamed = growth_epochs(data, hidden, k, batch, device, "streamed")
        rows_rows.append(
            f"| {n_rows:,} | {resident:.3f} | {streamed:.3f} "
            f"| {1e4 * resident / n_rows:.4f} | {1e4 * streamed / n_rows:.4f} |"
        )
        del data
    for width in args.growth_widths:
        print(f"growth: width {width}", file=sys.stderr, flush=True)
        seconds = growth_epochs(X, (width,), k, batch, device, "resident")
        n_params = 2 * (784 * width + width * k) + 2 * width + k + 784
        width_rows.append(
            f"| 784-{width}-{k} | {n_params:,} | {seconds:.3f} | {1e6 * seconds / n_params:.3f} |"
        )

    lines = [
        f"# Training speed: skae vs a hand-written loop vs skorch defaults ({device})",
        "",
        (
            f"Median epoch time over {args.epochs} timed epochs ({TINY_EPOCHS} for the tiny "
            f"net; one warm-up epoch dropped), Adam lr {LR:g}, squared error, ReLU; MNIST "
            "rows on MNIST, the tiny 64-32-2 net on scikit-learn's digits (/16). Per step: "
            "the median epoch over its number of steps."
        ),
        "",
    ]
    if args.epochs < MIN_TIMED_EPOCHS:
        lines += [
            (
                f"**Warning: only {args.epochs} timed epochs (fewer than "
                f"{MIN_TIMED_EPOCHS}); the medians are not reliable.**"
            ),
            "",
        ]
    tag = f"speed-{device.split(':')[0]}"
    lines += [
        f"<!-- results:{tag} -->",
        (
            "| model | rows | batch | threads | hand-written loop (s) | skae (s) "
            "| skorch default (s) | per step, hand / skae (us) | skae / hand "
            "| skorch default / hand |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        f"<!-- /results:{tag} -->",
        "",
        (
            "Transform throughput on the same data (rows/s, best of 3; the AutoEncoder's "
            "includes the copy to and from the device):"
        ),
        "",
        "| model | skae AutoEncoder (rows/s) | PCA (rows/s) | AutoEncoder / PCA |",
        "|---|---|---|---|",
        *transform_rows,
        "",
        (
            f"The contractive penalty's cost: epoch time of the 784-500-250-30 MLP (no "
            f"closed form for its Jacobian norm) on the same {len(X)} images, batch "
            f"{args.batch_size[0]} (exact: the second of two epochs):"
        ),
        "",
        "| model | epoch (s) | / AutoEncoder |",
        "|---|---|---|",
        *contractive_rows,
        "",
        (
            "Mixed precision (the precisions this device has; skae's `precision`, the hand "
            "loop under the same `torch.autocast`), median epoch (s), and skae's last "
            "training loss in float32 / in the mixed precision:"
        ),
        "",
        (
            "| model | precision | hand, float32 | hand, mixed | skae, float32 | skae, mixed "
            "| skae float32 / mixed | skae / hand, mixed | skae's loss, float32 / mixed |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
        *(precision_rows or ["| (none: this device has no mixed precision skae trains in) |"]),
        "",
        (
            "`AutoEncoder()`'s defaults on the tiny net (PCA start with its 200-step warm-up, "
            "`alpha=0.01`, early stopping's held-out tenth and its validation pass each epoch), "
            "per training step (us, the median epoch over its steps), against the hand loop on "
            "the plain MLP, the hand loop on the defaults' own network (its PCA start's linear "
            "maps beside the stacks) with Adam's `weight_decay=alpha` on every parameter, and "
            "skae with the hand loop's settings; the ratio is the defaults' against the hand "
            "loop on the same network:"
        ),
        "",
        (
            "| model | batch | hand loop, plain MLP | hand loop, the defaults' network "
            "| skae, hand's settings | skae, defaults | defaults / hand, same network |"
        ),
        "|---|---|---|---|---|---|---|",
        *defaults_rows,
        "",
    ]
    if rows_rows:
        lines += [
            (
                f"How an epoch's cost grows with the rows: skae's 784-{hidden[0]}-{k} at batch "
                f"{batch}, MNIST rows drawn with replacement, median of 2 timed epochs, both "
                "data paths (per 10,000 rows: flat where the cost is linear):"
            ),
            "",
            (
                "| rows | resident (s) | streamed (s) | resident per 10,000 rows "
                "| streamed per 10,000 rows |"
            ),
            "|---|---|---|---|---|",
            *rows_rows,
            "",
        ]
    if width_rows:
        lines += [
            (
                f"And with the width: 784-width-{k} on the {len(X)} rows, batch {batch}, "
                "resident (per million parameters: flat where the cost is linear in them):"
            ),
            "",
            "| model | parameters | epoch (s) | per million parameters (s) |",
            "|---|---|---|---|",
            *width_rows,
            "",
        ]
    lines += [
        (
            "Sanity check, mean training loss of the last epoch (SSE per image; the three "
            "train the same model on the same data, and the largest relative gap between "
            f"them, over the rows, is {max(loss_gaps):.2g}):"
        ),
        "",
        "| model | batch | hand-written loop | skae | skorch default |",
        "|---|---|---|---|---|",
        *loss_rows,
        "",
        f"- device: {device} ({device_name(device)})",
        f"- numpy {np.__version__}",
        provenance(argv, "benchmarks.speed"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if args.publish:
        publish()
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
