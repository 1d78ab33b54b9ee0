"""skae's benchmark program: autoencoders beside PCA, and against the classic papers.

    python -m benchmarks                  # quick: scikit-learn's digits, a few minutes on 2 cores
    python -m benchmarks --mode full      # MNIST (--data PATH, or $SKAE_MNIST, or OpenML)
    python -m benchmarks --mode anomaly   # OutlierDetector vs scikit-learn's and pyod's
    python -m benchmarks --mode adbench --data ../shared/data/adbench   # real tabular data
    python -m benchmarks --mode variants --data ../shared/data/adbench  # variants vs PCA

quick: every skae autoencoder and PCA on standardised digits (1,400 train / 397 test) at 2,
10 and 30 components: held-out reconstruction error, trustworthiness, 5-NN and linear-probe
accuracy of the codes; an EncoderClassifier fine-tuned from a StackedAE; every variant at
its defaults against PCA on scikit-learn's small tables (``--mode variants`` adds ADBench's).
full: on MNIST, (1) Hinton & Salakhutdinov's reconstruction table (30-dim codes), (2) the
manifold comparison at 2, 10 and 30 components, (3) classification by a fine-tuned
pretrained encoder, (4) the VAE's importance-weighted test NLL on binarised MNIST. The speed
table is ``python -m benchmarks.speed``.

Each mode prints its tables, with the command, date, machine and versions, and writes them
with PNG figures to ``--out-dir`` (default ``benchmarks/out/``, ignored by git): a run
leaves the checkout clean. ``--publish`` writes to the committed ``benchmarks/results/``
instead, rebuilds ``benchmarks/RESULTS.md`` from every file there and refreshes README.md's
result blocks from them.
"""

import argparse
import os
import pathlib
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import skae
from skae.datasets import MNIST_ENV, load_mnist

from . import figures
from .common import provenance, publish
from .models import architectures, family
from .tables import (
    architecture_table,
    classification_table,
    defaults_table,
    density_table,
    manifold_table,
    reconstruction_table,
)

HERE = pathlib.Path(__file__).parent
RESULTS_DIR = HERE / "results"  # the committed results (--publish)
OUT_DIR = HERE / "out"  # a run's own results, ignored by git
DEFAULT_MNIST = HERE.parent.parent / "shared" / "data" / "mnist.npz"


def quick(args):
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data, digits.target, train_size=1400, random_state=0, stratify=digits.target
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    models_by_k = {
        k: family(k, bernoulli=False, max_iter=args.max_iter, hidden=(128,))
        for k in args.components
    }
    table, fitted = manifold_table(models_by_k, X_train, X_test, y_test)
    clf = skae.EncoderClassifier(
        skae.StackedAE(n_components=30, hidden_layer_sizes=(128,), random_state=0), random_state=0
    )
    classification = classification_table(clf, X_train, y_train, X_test, y_test, mnist=False)

    by_k = {
        k: architectures(
            k, input_shape=(1, 8, 8), hidden=(128,), max_iter=args.max_iter, loss="mse"
        )
        for k in args.components
    }
    architecture = architecture_table(by_k, X_train, X_test, y_test)

    defaults = defaults_table()

    k = min(args.components)
    figures.codes_2d(
        {"PCA": fitted["PCA", k], "AutoEncoder": fitted["AutoEncoder", k]},
        X_test,
        y_test,
        args.out_dir / "quick-codes-2d.png",
        f"digits test set, {k}-dim codes",
    )
    k = max(args.components)
    unscale = scaler.inverse_transform
    figures.reconstructions(
        {name: fitted[name, k] for name in models_by_k[k]},
        X_test,
        (8, 8),
        args.out_dir / "quick-reconstructions.png",
        unscale=unscale,
    )
    figures.loss_curves(
        {name: fitted[name, k] for name in models_by_k[k]},
        args.out_dir / "quick-loss-curves.png",
        f"digits, {k}-dim codes",
    )
    return [
        "## Quick: scikit-learn's digits",
        "### Manifold comparison (standardised digits, 1,400 train / 397 test)",
        (
            f"Every autoencoder: encoder 64-128-k, mirrored decoder, {args.max_iter} epochs at "
            "most (Adam), squared error, early stopping on a held-out tenth of the training "
            "rows (the default on 1,400 rows). Neighbour metrics on the test codes."
        ),
        "<!-- results:digits -->\n" + table + "\n<!-- /results:digits -->",
        "### Classification (digits)",
        classification,
        "### Architectures (digits as 1x8x8 images)",
        (
            f"AutoEncoder with the default MLP 64-128-k and with ConvNet(input_shape=(1, 8, 8)) "
            f"(stride-2 convolutions 1-32-64 channels, 8 -> 4 -> 2, a linear code layer; "
            f"transposed convolutions back), {args.max_iter} epochs at most (Adam), squared "
            "error on standardised pixels. Seconds per epoch: median of the fit's epochs."
        ),
        "<!-- results:digits-architectures -->\n"
        + architecture
        + "\n<!-- /results:digits-architectures -->",
        "### Defaults against PCA (scikit-learn's small tables)",
        (
            "`AutoEncoder(n_components=2, random_state=seed)`, every other parameter at "
            "its default, against `PCA(2)`: held-out reconstruction (a stratified 30% "
            "hold-out drawn with the same seed; the scaler fitted on the rest), and on "
            "digits the accuracy of 5-NN and LinearSVC trained on the training codes, "
            "scored on the held-out codes. Means over the seeds 0-4, with the worst "
            "split's error ratio and the number of splits on which the autoencoder's "
            "codes scored higher."
        ),
        "<!-- results:defaults -->\n" + defaults + "\n<!-- /results:defaults -->",
        *(
            section.replace("## ", "### ", 1) if section.startswith("## ") else section
            for section in variants(args, adbench=False)
        ),
        "Figures: `quick-codes-2d.png`, `quick-reconstructions.png`, `quick-loss-curves.png`.",
    ]


def _model_iter(parser, pairs):
    """``--model-iter``'s NAME=EPOCHS pairs as a dict, or the parser's error naming the bad one."""
    names = ("AutoEncoder", "StackedAE", "DenoisingAE")
    out = {}
    for pair in pairs:
        name, _, n = pair.partition("=")
        if name not in names or not n.isdigit() or int(n) < 1:
            parser.error(
                f"--model-iter takes NAME=EPOCHS with NAME one of {', '.join(names)} and "
                f"EPOCHS a positive integer; got {pair!r}"
            )
        out[name] = int(n)
    return out


def _reconstruction(args, data):
    X_train, X_test = data["X_train"], data["X_test"]

    def epochs(name):
        return args.model_iter.get(name, args.max_iter)

    deep = {
        "hidden_layer_sizes": (1000, 500, 250),
        "alpha": args.alpha,
        "loss": "bce",
        "random_state": 0,
        "batch_size": 256,
        "n_iter_no_change": args.patience,
        "learning_rate": args.schedule,
        "learning_rate_init": args.lr,
        "precision": args.precision,
    }
    models = {
        "PCA": family(30, bernoulli=True, max_iter=1, hidden=())["PCA"],
        "LinearAE": skae.LinearAE(n_components=30, max_iter=args.linear_iter, random_state=0),
        # Hinton & Salakhutdinov's network as it is: the plain MLP, not the PCA start
        "AutoEncoder": skae.AutoEncoder(
            30,
            module=skae.MLP(hidden_layer_sizes=(1000, 500, 250)),
            **{k: v for k, v in deep.items() if k != "hidden_layer_sizes"},
            max_iter=epochs("AutoEncoder"),
        ),
        "StackedAE": skae.StackedAE(
            30, pretrain_iter=max(1, epochs("StackedAE") // 5), **deep, max_iter=epochs("StackedAE")
        ),
        "DenoisingAE": skae.DenoisingAE(
            30, noise="masking", noise_level=0.1, **deep, max_iter=epochs("DenoisingAE")
        ),
    }
    paper = {
        "PCA": "13.87",
        "AutoEncoder": "3.00 (RBM-pretrained)",
        "StackedAE": "3.00 (RBM-pretrained)",
    }
    models = {name: m for name, m in models.items() if name in args.models}
    table, fitted = reconstruction_table(models, X_train, X_test, paper)
    figures.reconstructions(
        {n: fitted[n] for n in ("PCA", "AutoEncoder", "StackedAE") if n in fitted},
        X_test,
        (28, 28),
        args.out_dir / "full-reconstructions.png",
    )
    figures.loss_curves(fitted, args.out_dir / "full-loss-curves.png", "MNIST, 30-dim codes")
    overrides = "".join(
        f", {name} at most {args.model_iter[name]}" for name in models if name in args.model_iter
    )
    if "StackedAE" in models:
        pretraining = f"pretraining {models['StackedAE'].pretrain_iter} a layer"
        overrides += (
            f" ({pretraining})" if "StackedAE" in args.model_iter else f" (StackedAE {pretraining})"
        )
    return [
        "### 1. Reconstruction (Hinton & Salakhutdinov 2006, Fig. 2)",
        (
            f"Deep models 784-1000-500-250-30, ReLU, sigmoid output with cross-entropy, "
            f"Adam (learning rate {args.lr:g}, {args.schedule} schedule), L2 penalty "
            f"alpha={args.alpha:g}, batch 256, precision {args.precision}, at "
            f"most {args.max_iter} epochs{overrides}, stopping when the training loss "
            f"stalls for {args.patience}; LinearAE at most {args.linear_iter} EM "
            "iterations (float64). The paper's target: 3.00 for the deep autoencoder, "
            "ours (issue 10): within 45 minutes on 2 CPU cores."
        ),
        "<!-- results:mnist-reconstruction -->\n"
        + table
        + "\n<!-- /results:mnist-reconstruction -->",
    ]


def _manifold(args, data):
    X_test, y_test = data["X_test"], data["y_test"]
    manifold_models = {
        k: family(
            k,
            bernoulli=True,
            max_iter=args.manifold_iter,
            hidden=(500, 250),
            linear_iter=args.linear_iter,
        )
        for k in (2, 10, 30)
    }
    X_train = data["X_train"][: args.manifold_train]
    table, fitted = manifold_table(manifold_models, X_train, X_test, y_test)
    auto_batch = fitted["AutoEncoder", 2].net_.batch_size  # batch_size="auto" resolved
    figures.codes_2d(
        {"PCA": fitted["PCA", 2], "AutoEncoder": fitted["AutoEncoder", 2]},
        X_test,
        y_test,
        args.out_dir / "full-codes-2d.png",
        "MNIST test set, 2-dim codes (cf. Hinton & Salakhutdinov 2006, Fig. 3)",
    )
    return [
        "### 2. Manifold comparison (MNIST)",
        (
            f"Trained on the first {len(X_train)} images; autoencoders 784-500-250-k, "
            f"cross-entropy, batch_size='auto' ({auto_batch} rows here: "
            f"{-(-len(X_train) // auto_batch)} steps an epoch), at most {args.manifold_iter} "
            "epochs (LinearAE: at most "
            f"{args.linear_iter} EM iterations); reconstruction on the 10,000 test "
            "images, neighbour metrics on 2,000 of them."
        ),
        table,
    ]


def _classification(args, data):
    stacked = skae.StackedAE(
        10,
        hidden_layer_sizes=(500, 500, 2000),
        loss="bce",
        pretrain_iter=args.pretrain_iter,
        max_iter=0,
        precision=args.precision,
        random_state=0,
    )
    clf = skae.EncoderClassifier(
        stacked,
        precision=args.precision,
        dropout=args.dropout,
        input_dropout=args.input_dropout,
        max_iter=args.classifier_iter,
        n_iter_no_change=args.classifier_patience,
        batch_size=256,
        learning_rate=args.schedule,
        learning_rate_init=args.lr,
        random_state=0,
    )
    return [
        "### 3. Classification (MNIST)",
        (
            f"StackedAE 784-500-500-2000-10 pretrained layer by layer "
            f"({args.pretrain_iter} epochs each), then fine-tuned with the labels for at "
            f"most {args.classifier_iter} epochs, stopping when the training loss stalls for "
            f"{args.classifier_patience} (Adam, learning rate {args.lr:g}, "
            f"{args.schedule} schedule, dropout {args.dropout:g} on hidden units and "
            f"{args.input_dropout:g} on pixels, precision {args.precision}; Hinton & "
            "Salakhutdinov's classifier architecture)."
        ),
        classification_table(clf, data["X_train"], data["y_train"], data["X_test"], data["y_test"]),
    ]


def _density(args, data):
    rng = np.random.RandomState(0)
    X_train, X_test = data["X_train"], data["X_test"]
    # the test set is binarised once (seed 0); training redraws its bits every epoch
    binary_test = (rng.uniform(size=X_test.shape) < X_test).astype(np.float32)
    vae = skae.VariationalAE(
        50,
        hidden_layer_sizes=(200, 200),
        activation="tanh",
        loss="bce",
        binarize=True,
        max_iter=args.vae_iter,
        n_importance_samples=args.vae_objective_samples,
        batch_size=100,
        learning_rate=args.schedule,
        learning_rate_init=args.lr,
        precision=args.precision,
        random_state=0,
    )
    table, _ = density_table(vae, X_train, binary_test, args.importance_samples)
    return [
        "### 4. Density (binarised MNIST)",
        (
            "VAE 784-200-200-50 (tanh), trained on "
            + (
                "the ELBO"
                if args.vae_objective_samples == 1
                else f"the IWAE bound with {args.vae_objective_samples} samples per image"
            )
            + f" for at most {args.vae_iter} epochs (Adam, learning "
            f"rate {args.lr:g}, {args.schedule} schedule, batch 100, precision "
            f"{args.precision}), the decoder's output "
            "bias starting at the logit of the mean image. Dynamic binarisation "
            "(`binarize=True`: fresh Bernoulli draws of the training images every epoch), "
            "as Burda et al. 2016; the test images binarised once (seed 0)."
        ),
        table,
    ]


def _architectures(args, data):
    X_train = data["X_train"][: args.manifold_train]
    by_k = {
        k: architectures(
            k,
            input_shape=(1, 28, 28),
            hidden=(500, 250),
            max_iter=args.manifold_iter,
            loss="bce",
            batch_size=256,
        )
        for k in (2, 10, 30)
    }
    table = architecture_table(by_k, X_train, data["X_test"], data["y_test"])
    return [
        "### 5. Architectures (MNIST as 1x28x28 images)",
        (
            f"Trained on the first {len(X_train)} images; AutoEncoder with the MLP "
            f"784-500-250-k and with ConvNet(input_shape=(1, 28, 28)) (stride-2 "
            "convolutions 1-32-64 channels, 28 -> 14 -> 7, a linear code layer; "
            f"transposed convolutions back), cross-entropy, Adam 1e-3, batch 256, "
            f"{args.manifold_iter} epochs at most; reconstruction on the 10,000 test "
            "images, trustworthiness on 2,000 of them. Seconds per epoch: median."
        ),
        "<!-- results:mnist-architectures -->\n"
        + table
        + "\n<!-- /results:mnist-architectures -->",
    ]


FULL_TABLES = {1: _reconstruction, 2: _manifold, 3: _classification, 4: _density, 5: _architectures}


def full(args, write):
    """The MNIST tables in ``args.tables``; each is written to ``results/full-<n>.md`` with
    its own command as soon as it is measured, so one table can be re-run alone."""
    path = args.data
    if path is None and MNIST_ENV not in os.environ and DEFAULT_MNIST.is_file():
        path = DEFAULT_MNIST  # this workplace's copy, when no other is named
    mnist = load_mnist(path)
    data = {
        "X_train": mnist.X_train[: args.n_train],
        "y_train": mnist.y_train[: args.n_train],
        "X_test": mnist.X_test,
        "y_test": mnist.y_test,
    }
    heading = (
        f"## Full {{}}: MNIST ({len(data['X_train'])} train / {len(data['X_test'])} "
        f"test images, pixels in [0, 1], from {mnist.source})"
    )
    for number in args.tables:
        write(f"full-{number}", [heading.format(number), *FULL_TABLES[number](args, data)])


def anomaly(args):
    """The anomaly tables: digits and breast cancer, or with ``--data`` one-class MNIST."""
    from . import anomaly as bench

    seeds = list(range(args.seeds))
    setup = (
        "skae's detectors are `OutlierDetector()` at its defaults, and `OutlierDetector` on "
        "an autoencoder or on PCA with as many components (scored by its likelihood, PCA by "
        "its reconstruction error); pyod's AutoEncoder and VAE have the same layer sizes "
        "and pyod's defaults otherwise (10 and 30 epochs, batch 32, batch norm and dropout in "
        "the autoencoder); "
        f"skae's autoencoders train for at most {args.max_iter} epochs; {len(seeds)} seeds."
    )
    if args.data is not None:
        mnist = load_mnist(args.data)
        return "anomaly-mnist", [
            "## Anomaly detection: one-class MNIST",
            bench.__doc__.split("\n\n", 1)[1].strip(),
            setup + f" Trained on the first {args.n_train} training images' rows of each "
            "digit; autoencoders 784-128-16.",
            "<!-- results:anomaly-mnist -->\n"
            + bench.mnist_table(mnist, seeds, args.max_iter, args.n_train)
            + "\n<!-- /results:anomaly-mnist -->",
        ]
    return "anomaly", [
        "## Anomaly detection",
        bench.__doc__.split("\n\n", 1)[1].strip(),
        setup + " Encoders 64-8 on digits, 16-4 on breast cancer.",
        "### One-class digits (mean over the ten digits)",
        "<!-- results:anomaly-digits -->\n"
        + bench.digits_table(seeds, args.max_iter)
        + "\n<!-- /results:anomaly-digits -->",
        "### Breast cancer (benign inliers, a tenth of the malignant rows as outliers)",
        "<!-- results:anomaly-breast-cancer -->\n"
        + bench.breast_cancer_table(seeds, args.max_iter)
        + "\n<!-- /results:anomaly-breast-cancer -->",
    ]


def adbench(args):
    """The ADBench tables: every detector at its defaults on ADBench's tabular data sets."""
    from . import adbench as bench

    if args.data is None:
        raise FileNotFoundError(
            "--mode adbench needs --data: a folder of ADBench .npz files (arrays X and y), "
            "such as ../shared/data/adbench"
        )
    seeds = list(range(args.seeds))
    results = bench.evaluate(args.data, seeds)
    return "adbench", [
        "## Anomaly detection on real tables: ADBench",
        bench.__doc__.split("\n\n", 1)[1].strip(),
        f"Every detector at its defaults, {len(seeds)} seeds (the seed of the split and of "
        "the detector); figures are means over the seeds. The rank is a detector's place "
        "by ROC AUC on a data set (1 is the best; ties share their mean rank), averaged "
        "over the data sets; *worst* is its lowest ROC AUC; *below 0.5* counts the data "
        "sets where it ranks outliers worse than chance, and of those, the ones where "
        "IsolationForest reaches 0.6 (a data set that defeats every detector is not held "
        "against one). Seconds are fit + score, summed over data sets and seeds.",
        "<!-- results:adbench-summary -->\n"
        + bench.summary_table(results)
        + "\n<!-- /results:adbench-summary -->",
        "### ROC AUC per data set (mean over seeds; the best in bold)",
        "<!-- results:adbench -->\n"
        + bench.per_data_set_table(results)
        + "\n<!-- /results:adbench -->",
    ]


def variants(args, *, adbench=True):
    """Every variant at its defaults against PCA: scikit-learn's tables, and with
    ``--data`` (``adbench``) the ADBench tables too."""
    from . import variants as bench

    folder = args.data if adbench else None
    tag = "variants" if adbench else "quick-variants"  # one name per README block
    seeds = list(range(args.seeds))
    rows = bench.measure(adbench=folder, seeds=seeds, n_jobs=args.jobs)
    threads = f"{max(1, torch.get_num_threads() // args.jobs)} torch thread(s) per fit"
    where = "scikit-learn's digits, breast cancer, wine and iris" + (
        f" and the ADBench tables in `{pathlib.Path(folder).name}/`" if folder else ""
    )
    return [
        "## Every variant against PCA",
        bench.__doc__.split("\n\n", 1)[1].strip(),
        f"On {where}, {len(seeds)} splits (seeds {seeds[0]}-{seeds[-1]}); the ratio is the "
        "variant's held-out SSE over PCA's at the same width on the same split. *Worst* and "
        "*median* run over every case and split; a case is above 1.05 when its worst split "
        f"is. Fit seconds: {args.jobs} fit(s) at a time, {threads}.",
        f"<!-- results:{tag} -->\n" + bench.summary_table(rows) + f"\n<!-- /results:{tag} -->",
        "### Per case (worst split)",
        f"<!-- results:{tag}-cases -->\n"
        + bench.detail_table(rows)
        + f"\n<!-- /results:{tag}-cases -->",
        "### The variational autoencoder (digits)",
        "`VariationalAE(n_components=k, random_state=seed)` against `PCA(k)` on the same "
        "splits; a code unit is active when its posterior mean varies over the held-out "
        "rows (variance above 0.01, Burda et al. 2016).",
        f"<!-- results:{tag}-vae -->\n" + bench.vae_table(seeds) + f"\n<!-- /results:{tag}-vae -->",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode", choices=("quick", "full", "anomaly", "adbench", "variants"), default="quick"
    )
    parser.add_argument(
        "--data",
        type=pathlib.Path,
        default=None,
        help="MNIST .npz (full mode; default $SKAE_MNIST or ../shared/data), or a folder of "
        "ADBench .npz files (adbench mode)",
    )
    parser.add_argument("--components", type=int, nargs="+", default=[2, 10, 30])
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="epoch budget of each autoencoder (200, as the recipe of table 1)",
    )
    parser.add_argument(
        "--vae-iter", type=int, default=380, help="the VAE's epochs (full mode, table 4)"
    )
    parser.add_argument(
        "--classifier-iter",
        type=int,
        default=40,
        help="fine-tuning epochs of the classifier (full mode, table 3)",
    )
    parser.add_argument(
        "--classifier-patience",
        type=int,
        default=10,
        help="the classifier's n_iter_no_change: epochs of a stalled training loss before it "
        "stops (full mode, table 3)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=10,
        help="n_iter_no_change of table 1's deep models: epochs of a stalled training loss "
        "before one stops (full mode, table 1)",
    )
    parser.add_argument("--dropout", type=float, default=0.5, help="classifier (full mode)")
    parser.add_argument("--input-dropout", type=float, default=0.2, help="classifier (full)")
    parser.add_argument("--manifold-iter", type=int, default=10)
    parser.add_argument(
        "--linear-iter",
        type=int,
        default=500,
        help="EM iterations of the LinearAE on MNIST (full mode)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=1e-3,
        help="Adam's initial learning rate of the deep models (full mode)",
    )
    parser.add_argument(
        "--schedule",
        choices=("constant", "adaptive", "cosine"),
        default="cosine",
        help="their learning-rate schedule (full mode)",
    )
    parser.add_argument(
        "--precision",
        choices=("32-true", "bf16-mixed", "16-mixed"),
        default="32-true",
        help="the training precision of the deep models of tables 1, 3 and 4 (full mode)",
    )
    parser.add_argument(
        "--tables",
        type=int,
        nargs="+",
        choices=sorted(FULL_TABLES),
        default=sorted(FULL_TABLES),
        help="which MNIST tables (full mode)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.01,
        help="L2 penalty on the weights of the deep models of table 1 (full mode)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["PCA", "LinearAE", "AutoEncoder", "StackedAE", "DenoisingAE"],
        help="which models table 1 fits (full mode)",
    )
    parser.add_argument(
        "--model-iter",
        nargs="+",
        default=[],
        metavar="NAME=EPOCHS",
        help="epochs of one of table 1's models in place of --max-iter, e.g. StackedAE=100 "
        "(full mode)",
    )
    parser.add_argument("--pretrain-iter", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument(
        "--manifold-train",
        type=int,
        default=10000,
        help="training images of the manifold comparison (full mode)",
    )
    parser.add_argument(
        "--importance-samples",
        type=int,
        default=1000,
        help="importance samples of the VAE's test NLL estimate (full mode, table 4)",
    )
    parser.add_argument(
        "--vae-objective-samples",
        type=int,
        default=1,
        help="the VAE's training objective: 1 the ELBO, k > 1 the IWAE bound with k samples "
        "(full mode, table 4)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="processes of the variants table (each with an equal share of torch's threads)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds of the anomaly, adbench and variants modes (and of quick's variants table)",
    )
    parser.add_argument(
        "--out-dir",
        type=pathlib.Path,
        default=None,
        help="where the tables and figures go (default benchmarks/out/, ignored by git)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="write to the committed benchmarks/results/ and refresh RESULTS.md and README.md",
    )
    args = parser.parse_args(argv)
    if args.publish and args.out_dir is not None:
        parser.error("--publish writes to benchmarks/results/; it takes no --out-dir")
    args.out_dir = RESULTS_DIR if args.publish else (args.out_dir or OUT_DIR)
    args.max_iter = args.max_iter or 200
    args.model_iter = _model_iter(parser, args.model_iter)
    warnings.simplefilter("ignore", ConvergenceWarning)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    def write(name, sections):
        text = "\n\n".join([*sections, provenance(argv)]) + "\n"
        (args.out_dir / f"{name}.md").write_text(text)
        print(text)
        if args.publish:
            publish()
            print(f"written to {args.out_dir / name}.md, {HERE / 'RESULTS.md'} and README.md")
        else:
            print(f"written to {args.out_dir / name}.md (--publish: the committed results)")

    try:
        if args.mode == "quick":
            write("quick", quick(args))
        elif args.mode == "anomaly":
            write(*anomaly(args))
        elif args.mode == "adbench":
            write(*adbench(args))
        elif args.mode == "variants":
            write("variants", variants(args))
        else:
            full(args, write)
    except (FileNotFoundError, RuntimeError) as exc:
        parser.exit(1, f"error: {exc}\n")


if __name__ == "__main__":
    main()
