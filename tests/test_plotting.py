"""The Display objects on the Agg backend: the data they hold and the artists they draw."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skae import AutoEncoder, LinearAE, VariationalAE
from skae.plotting import CodesDisplay, ImageGridDisplay, TrainingCurveDisplay

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32)[:600], y[:600]


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    ae = AutoEncoder(2, hidden_layer_sizes=(32,), max_iter=8, learning_rate="cosine")
    ae.set_params(random_state=0, early_stopping=True, n_iter_no_change=50)
    return {"PCA": PCA(2).fit(X), "AutoEncoder": ae.fit(X)}


def test_training_curves_hold_the_history(fitted):
    ae = fitted["AutoEncoder"]
    display = TrainingCurveDisplay.from_estimator(ae)
    assert_allclose(display.train_loss, ae.loss_curve_)
    assert_allclose(display.valid_loss, [-v for v in ae.validation_scores_])
    # the cosine schedule: the first epoch at learning_rate_init, then decaying
    assert display.learning_rate[0] == pytest.approx(ae.learning_rate_init)
    assert np.all(np.diff(display.learning_rate) < 0)
    assert set(display.lines_) == {"train", "valid", "learning_rate"}
    assert_allclose(display.lines_["train"].get_ydata(), ae.loss_curve_)
    assert_array_equal(display.lines_["train"].get_xdata(), np.arange(1, ae.n_iter_ + 1))
    assert display.ax_.get_yscale() == "log"
    assert display.lr_ax_ is not None and display.figure_ is display.ax_.figure
    assert "AutoEncoder (train)" in [t.get_text() for t in display.ax_.get_legend().get_texts()]


def test_training_curves_draw_on_a_given_axis_and_constant_rate(digits):
    X, _ = digits
    ae = AutoEncoder(2, hidden_layer_sizes=(16,), max_iter=3, early_stopping=False, random_state=0)
    ae.fit(X)
    fig, ax = plt.subplots()
    display = TrainingCurveDisplay.from_estimator(ae, ax=ax, name="mine", log_scale=False)
    assert display.ax_ is ax and display.figure_ is fig
    assert display.valid_loss is None and "valid" not in display.lines_
    assert_allclose(display.learning_rate, [ae.learning_rate_init] * 3)
    assert ax.get_yscale() == "linear"
    # a Display is its numbers: rebuilt from them, it draws the same
    again = TrainingCurveDisplay(display.train_loss, name="mine").plot()
    assert_allclose(again.lines_["train"].get_ydata(), display.lines_["train"].get_ydata())


def test_training_curves_refuse_an_estimator_without_history(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="no training history"):
        TrainingCurveDisplay.from_estimator(AutoEncoder(2, max_iter=0).fit(X))


def test_codes_side_by_side(fitted, digits):
    X, y = digits
    display = CodesDisplay.from_estimators(fitted, X, y)
    assert list(display.codes) == ["PCA", "AutoEncoder"]
    for name, model in fitted.items():
        assert_allclose(display.codes[name], model.transform(X))
        offsets = display.scatters_[name].get_offsets()
        assert_allclose(offsets, display.codes[name][:, :2], rtol=1e-6)
        assert_array_equal(display.scatters_[name].get_array(), y)
    assert [ax.get_title() for ax in display.axes_] == ["PCA", "AutoEncoder"]
    # the view leaves out the 0.5% most outlying codes at each end
    low = np.percentile(display.codes["PCA"][:, 0], 0.5)
    assert display.axes_[0].get_xlim()[0] < low < display.axes_[0].get_xlim()[1]


def test_codes_on_given_axes_and_bad_input(fitted, digits):
    X, _ = digits
    fig, axes = plt.subplots(1, 2)
    display = CodesDisplay.from_estimators(list(fitted.values()), X, ax=axes)
    assert display.axes_ == list(axes) and display.figure_ is fig
    with pytest.raises(ValueError, match="must hold 2 axes"):
        CodesDisplay.from_estimators(fitted, X, ax=axes[:1])
    with pytest.raises(ValueError, match="at least 2 components"):
        CodesDisplay({"one": np.zeros((5, 1))})


def test_reconstruction_grid(fitted, digits):
    X, _ = digits
    display = ImageGridDisplay.from_reconstructions(fitted, X, n_images=6)
    assert display.images.shape == (3, 6, 8, 8)
    assert_allclose(display.images[0], X[:6].reshape(6, 8, 8))
    pca = fitted["PCA"]
    assert_allclose(
        display.images[1], pca.inverse_transform(pca.transform(X[:6])).reshape(6, 8, 8), rtol=1e-5
    )
    assert display.row_labels == ["data", "PCA", "AutoEncoder"]
    grid = display.image_.get_array()
    assert grid.shape == (3 * 9 - 1, 6 * 9 - 1)
    assert_allclose(grid[:8, :8], X[0].reshape(8, 8))
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == display.row_labels


def test_samples_and_interpolation(digits):
    X, _ = digits
    vae = VariationalAE(2, loss="bce", hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    vae.fit(X)
    display = ImageGridDisplay.from_samples(vae, n_rows=2, n_columns=3, random_state=0)
    assert display.images.shape == (2, 3, 8, 8)
    assert_allclose(display.images.reshape(6, 64), vae.sample(6, random_state=0), rtol=1e-6)
    lae = LinearAE(2, random_state=0).fit(X)
    path = ImageGridDisplay.from_interpolation({"LinearAE": lae}, X[0], X[1], n_steps=5)
    assert path.images.shape == (1, 5, 8, 8)
    ends = lae.inverse_transform(lae.transform(X[:2]))
    assert_allclose(path.images[0, 0].ravel(), ends[0], rtol=1e-5, atol=1e-6)
    assert_allclose(path.images[0, -1].ravel(), ends[1], rtol=1e-5, atol=1e-6)
    # a linear decoder: the middle image is the mean of the ends
    assert_allclose(path.images[0, 2].ravel(), ends.mean(axis=0), rtol=1e-4, atol=1e-5)


def test_image_grid_errors(fitted, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="not a square image"):
        ImageGridDisplay.from_reconstructions([PCA(2).fit(X[:, :60])], X[:, :60])
    with pytest.raises(ValueError, match="holds 60 pixels"):
        ImageGridDisplay.from_reconstructions(fitted, X, image_shape=(6, 10))
    with pytest.raises(ValueError, match="no sample method"):
        ImageGridDisplay.from_samples(fitted["PCA"])
    with pytest.raises(ValueError, match="n_steps=1"):
        ImageGridDisplay.from_interpolation(fitted, X[0], X[1], n_steps=1)


def test_matplotlib_is_imported_only_to_plot():
    import subprocess
    import sys

    code = "import sys, skae, skae.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
