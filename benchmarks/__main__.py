"""skae's main benchmark: autoencoders beside PCA on scikit-learn's digits.

    python -m benchmarks            # digits, a few minutes on 2 CPU cores

For each code size, every model is fitted on 1,400 standardised digits and scored on the
other 397: squared reconstruction error summed over the 64 pixels, averaged over the test
images (SSE per image), and per pixel (MSE). The table is printed and written, with the
command, date, machine and versions, to ``benchmarks/RESULTS.md``.
"""

import argparse
import pathlib
import warnings

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skae import AutoEncoder, LinearAE

from .common import markdown_table, provenance, timed

RESULTS = pathlib.Path(__file__).with_name("RESULTS.md")


def models(n_components, random_state):
    return {
        "PCA": PCA(n_components=n_components),
        "LinearAE": LinearAE(n_components=n_components, random_state=random_state),
        "AutoEncoder": AutoEncoder(n_components=n_components, random_state=random_state),
    }


def reconstruction_table(components, random_state=0):
    digits = load_digits()
    X = StandardScaler().fit_transform(digits.data)
    X_train, X_test = X[:1400], X[1400:]
    rows = []
    for k in components:
        for name, model in models(k, random_state).items():
            _, seconds = timed(model.fit, X_train)
            error = ((model.inverse_transform(model.transform(X_test)) - X_test) ** 2).sum(1)
            epochs = getattr(model, "n_iter_", "")
            rows.append([name, k, f"{error.mean():.3f}", f"{error.mean() / X.shape[1]:.4f}",
                         epochs, f"{seconds:.1f}"])
    header = ["model", "n_components", "test SSE per image", "test MSE per pixel",
              "epochs", "fit (s)"]
    return markdown_table(header, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)

    table = reconstruction_table(args.components)
    sections = [
        "# skae benchmark results",
        "## Reconstruction of held-out digits (standardised; 1,400 train / 397 test)",
        table,
        provenance(),
    ]
    text = "\n\n".join(sections) + "\n"
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
