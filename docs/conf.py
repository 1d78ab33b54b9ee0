"""Sphinx configuration of skae's documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors); the
examples gallery runs every script in ``examples/``.
"""

import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
sys.path.insert(0, os.path.abspath(".."))

import skae  # noqa: E402

project = "skae"
author = "the skae developers"
copyright = "2026, the skae developers"
release = version = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",  # benchmarks/RESULTS.md and CHANGELOG.md, included as they are
]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
intersphinx_mapping = {}  # offline builds: no inventories fetched
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
}
nitpicky = False
suppress_warnings = ["ref.python", "ref.ref", "ref.class", "ref.obj", "ref.func"]
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_title = f"skae {release}"
# pages without subsections need no left sidebar
html_sidebars = {page: [] for page in ("index", "getting_started", "results", "changelog")}
templates_path = []

_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w*\\])([A-Za-z][A-Za-z0-9_]*[A-Za-z0-9]_)(?![`\w])")


def _literal_attributes(app, what, name, obj, options, lines):
    """Fitted attribute names (``n_features_in_``) outside backticks read to reST as link
    targets: set them as literals."""
    for i, line in enumerate(lines):
        if "`" not in line and "::" not in line:
            lines[i] = _TRAILING_UNDERSCORE.sub(r"``\1``", line)


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """scikit-learn's generated ``set_*_request`` methods: documented by scikit-learn."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-process-docstring", _literal_attributes)
    app.connect("autodoc-skip-member", _skip_metadata_requests)
