"""The documentation builds with warnings as errors, every example draws its figure, every
public name has its page, and the pages a user looks for are there.

Sphinx builds incrementally into ``docs/_build/html`` (ignored by git), and sphinx-gallery
reruns only the examples that changed: after ``.ci/run``'s own build of the docs this takes
seconds; from scratch, the examples' run time (about two minutes on 2 cores)."""

import html as html_module
import importlib
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("pydata_sphinx_theme")
pytest.importorskip("myst_parser")
pytest.importorskip("numpydoc")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
PUBLIC_MODULES = [
    "skae",
    "skae.plotting",
    "skae.persistence",
    "skae.distributed",
    "skae.metrics",
    "skae.datasets",
]


@pytest.fixture(scope="module")
def html():
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(HTML)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return HTML


def test_there_is_an_example_per_estimator_and_per_use():
    text = "\n".join(path.read_text() for path in EXAMPLES)
    for name in importlib.import_module("skae").__all__:
        if name not in ("MLP", "ConvNet", "MLPEnsemble"):  # networks, not estimators
            assert f"{name}(" in text, f"no example fits {name}"
    for use in ("RocCurveDisplay", "NearestNeighbors", "from_samples(", "from_interpolation("):
        assert use in text
    for use in ("ProgressBar", "partial_fit", "nn.Module", "PCA"):
        assert use in text


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_draws_a_figure(html, example):
    images = sorted((DOCS / "auto_examples" / "images").glob(f"sphx_glr_{example.stem}_*.png"))
    assert images, f"{example.name} drew no figure"
    page = (html / "auto_examples" / f"{example.stem}.html").read_text()
    assert images[0].name in page


def public_names():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, n, _ in public_names()], ids=lambda v: v
)
def test_every_public_name_has_a_page(html, module, name):
    page = html / "generated" / f"{module}.{name}.html"
    assert page.exists(), f"{module}.{name} has no page in the API reference"
    value = getattr(importlib.import_module(module), name)
    documented = inspect.isfunction(value) or (
        inspect.isclass(value) and not issubclass(value, Exception | Warning)
    )
    if documented and inspect.signature(value).parameters:
        assert "Parameters" in page.read_text(), f"{module}.{name}'s page lists no parameters"


@pytest.mark.parametrize(
    ("page", "words"),
    [
        ("index.html", ["Getting started", "User guide", "Examples", "API reference"]),
        ("getting_started.html", ["pip install", "python3 -m pytest", "ProgressBar"]),
        ("results.html", ["ADBench", "mean ROC AUC", "command"]),
        ("changelog.html", ["Changelog", "0.2.0"]),
    ],
)
def test_the_pages_a_user_looks_for(html, page, words):
    text = (html / page).read_text()
    assert "pydata-sphinx-theme" in text or "bd-main" in text  # the theme
    text = html_module.unescape(re.sub(r"<[^>]+>", "", text))  # what a reader sees
    for word in words:
        assert word in text, f"{page} does not mention {word!r}"
