"""The benchmark program end to end, on a tiny MNIST-shaped file and a scratch results folder
(the real runs are long; these check that every table is measured and published)."""

import numpy as np
import pytest

import benchmarks.__main__ as bench
from benchmarks import common
from skae._engine.net import _cpu_has_bf16

# the tiny file has fewer rows than the benchmark's batch size; the clipping warning is expected
pytestmark = pytest.mark.filterwarnings("ignore:batch_size=.* is larger:UserWarning")


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A results folder and a README with a results block, in place of the repository's."""
    here = tmp_path / "benchmarks"
    (here / "results").mkdir(parents=True)
    (tmp_path / "README.md").write_text(
        "intro\n<!-- results:mnist-reconstruction -->\nold\n"
        "<!-- /results:mnist-reconstruction -->\nend\n"
    )
    monkeypatch.setattr(common, "HERE", here)
    monkeypatch.setattr(bench, "RESULTS_DIR", here / "results")
    monkeypatch.setattr(bench, "OUT_DIR", here / "out")
    monkeypatch.setattr(bench, "HERE", here)
    # the commit is read once, at import: read it again for the scratch folder
    monkeypatch.setattr(common, "CODE_AT_START", common.code_version())
    return tmp_path


@pytest.fixture
def small_mnist(tmp_path):
    rng = np.random.RandomState(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        X_train=rng.randint(0, 256, (120, 784), dtype=np.uint8),
        y_train=np.arange(120, dtype=np.uint8) % 10,
        X_test=rng.randint(0, 256, (60, 784), dtype=np.uint8),
        y_test=np.arange(60, dtype=np.uint8) % 10,
    )
    return path


FAST = [
    "--max-iter",
    "1",
    "--manifold-iter",
    "1",
    "--linear-iter",
    "2",
    "--pretrain-iter",
    "1",
    "--importance-samples",
    "2",
]


def test_full_mode_writes_each_table_with_its_command(scratch, small_mnist):
    bench.main(["--mode", "full", "--publish", "--data", str(small_mnist), *FAST])
    results = scratch / "benchmarks" / "results"
    for number, title in [
        (1, "Reconstruction"),
        (2, "Manifold comparison"),
        (3, "Classification"),
        (4, "Density"),
    ]:
        text = (results / f"full-{number}.md").read_text()
        assert f"## Full {number}: MNIST (120 train / 60 test images" in text
        assert f"### {number}. {title}" in text
        assert (
            f"- command: `python -m benchmarks --mode full --publish --data {small_mnist}" in text
        )
        assert "- code: not a git checkout" in text
    for figure in ("full-reconstructions", "full-loss-curves", "full-codes-2d"):
        assert (results / f"{figure}.png").stat().st_size > 0
    table = (results / "full-1.md").read_text()
    for model in ("PCA", "LinearAE", "AutoEncoder", "StackedAE", "DenoisingAE"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {model} | "))
        assert float(row.split("|")[2]) > 0  # a measured test SSE
    readme = (scratch / "README.md").read_text()
    assert "old" not in readme and "| AutoEncoder | " in readme and readme.endswith("end\n")
    combined = (scratch / "benchmarks" / "RESULTS.md").read_text()
    assert combined.index("## Full 1") < combined.index("## Full 4")


def test_one_table_can_be_rerun_alone(scratch, small_mnist):
    results = scratch / "benchmarks" / "results"
    (results / "full-1.md").write_text("## Full 1: kept\n")
    bench.main(["--mode", "full", "--publish", "--data", str(small_mnist), "--tables", "4", *FAST])
    assert (results / "full-1.md").read_text() == "## Full 1: kept\n"
    assert "### 4. Density" in (results / "full-4.md").read_text()
    assert not (results / "full-2.md").exists()


def test_model_iter_sets_one_models_epochs_in_table_1(scratch, small_mnist):
    bench.main(
        ["--mode", "full", "--data", str(small_mnist), "--tables", "1", *FAST]
        + ["--models", "PCA", "AutoEncoder", "StackedAE", "--model-iter", "StackedAE=5"]
    )
    table = (scratch / "benchmarks" / "out" / "full-1.md").read_text()
    assert "at most 1 epochs, StackedAE at most 5 (pretraining 1 a layer)" in table
    epochs = {
        line.split("|")[1].strip(): line.split("|")[4].strip()
        for line in table.splitlines()
        if line.startswith("| ") and "Stacked" in line or line.startswith("| AutoEncoder |")
    }
    assert epochs == {"AutoEncoder": "1", "StackedAE": "5"}


@pytest.mark.parametrize("pair", ["StackedAE", "StackedAE=0", "PCA=3", "AutoEncoder=x"])
def test_model_iter_rejects_a_bad_pair(scratch, small_mnist, pair, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--mode", "full", "--data", str(small_mnist), "--model-iter", pair])
    assert exit_info.value.code == 2
    assert "--model-iter takes NAME=EPOCHS" in capsys.readouterr().err


def test_missing_data_is_a_clear_exit(scratch, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--mode", "full", "--data", str(tmp_path / "nope.npz")])
    assert exit_info.value.code == 1
    assert "No MNIST file at" in capsys.readouterr().err


def test_speed_benchmark_times_the_three_loops(scratch, small_mnist):
    from benchmarks import speed

    out = scratch / "speed.md"
    speed.main(
        [
            "--data",
            str(small_mnist),
            "--n-samples",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--growth-rows",
            "100",
            "300",
            "--growth-widths",
            "16",
            "--out",
            str(out),
        ]
    )
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 784-")]
    assert len(rows) >= 2
    hand, ours, default = (float(cell) for cell in rows[0].split("|")[5:8])
    assert hand > 0 and ours > 0 and default > 0
    tiny = [line for line in table.splitlines() if line.startswith("| 64-32-2 | 1797 | 64 | 1 |")]
    assert len(tiny) == 1
    contractive = [line for line in table.splitlines() if line.startswith("| ContractiveAE")]
    assert len(contractive) == 2 and all(float(c.split("|")[2]) > 0 for c in contractive)
    assert "largest relative gap between them, over the rows, is" in table
    assert "should be close" not in table
    # AutoEncoder()'s defaults on the tiny net, per step against the hand loop
    defaults = [
        line
        for line in table.splitlines()
        if line.startswith("| 64-32-2 | 64 |") and line.count("|") == 8
    ]
    assert len(defaults) == 1 and float(defaults[0].split("|")[-2]) > 0
    # the mixed precisions this machine has (bf16 on a CPU with its instructions)
    mixed = [line for line in table.splitlines() if "| bf16-mixed |" in line]
    assert len(mixed) == (2 if _cpu_has_bf16() else 0)
    # cost against rows (both data paths) and against width
    growth = [line for line in table.splitlines() if line.startswith(("| 100 |", "| 300 |"))]
    assert len(growth) == 2 and all(float(line.split("|")[3]) > 0 for line in growth)
    assert len([line for line in table.splitlines() if line.startswith("| 784-16-32 |")]) == 1


def test_anomaly_mode_ranks_every_detector(scratch):
    bench.main(["--mode", "anomaly", "--seeds", "1", "--max-iter", "2"])
    text = (scratch / "benchmarks" / "out" / "anomaly.md").read_text()
    for detector in (
        "skae AutoEncoder",
        "skae VariationalAE",
        "PCA reconstruction",
        "IsolationForest",
        "OneClassSVM",
    ):
        rows = [line for line in text.splitlines() if line.startswith(f"| {detector} | ")]
        assert len(rows) == 2  # digits and breast cancer
        assert all(0.5 < float(row.split("|")[2].split("±")[0]) <= 1 for row in rows)


def test_memory_benchmark_states_what_it_measured(scratch, small_mnist):
    from benchmarks import memory

    out = scratch / "memory.md"
    memory.main(
        ["--gib", "0.002", "--n-features", "16", "--batch-size", "64", "--data", str(small_mnist)]
        + ["--n-mnist", "64", "--epochs", "1", "--out", str(out)]
    )
    text = out.read_text()
    assert "| streamed |" in text and "| resident |" in text
    # the agreement of the two paths' losses is measured, not asserted in the text
    assert "the last epoch's losses are equal" in text or "losses differ by" in text
    assert "bit-identical" not in text


def test_losses_agreement_reports_a_difference():
    from benchmarks.memory import losses_agreement

    assert losses_agreement([1.5, 1.5]) == "the last epoch's losses are equal to the last bit"
    assert "differ by 0.5" in losses_agreement([1.5, 2.0])


def test_a_run_without_publish_leaves_the_committed_results_alone(scratch, small_mnist):
    readme = (scratch / "README.md").read_text()
    bench.main(["--mode", "full", "--data", str(small_mnist), "--tables", "4", *FAST])
    out = scratch / "benchmarks" / "out"
    assert "### 4. Density" in (out / "full-4.md").read_text()
    assert list((scratch / "benchmarks" / "results").iterdir()) == []
    assert not (scratch / "benchmarks" / "RESULTS.md").exists()
    assert (scratch / "README.md").read_text() == readme


def test_the_variants_table_compares_every_variant_with_pca(tmp_path):
    """The variants benchmark on iris and a tiny ADBench-shaped folder: one row per
    variant, every case in the per-case table, the ratio to PCA as measured."""
    from benchmarks import variants

    rng = np.random.RandomState(0)
    np.savez(tmp_path / "1_tiny.npz", X=rng.rand(60, 8), y=(rng.rand(60) < 0.1).astype(int))
    rows = variants.measure(
        ["AutoEncoder", "SparseAE"],
        adbench=tmp_path,
        seeds=[0],
        only={"iris", "1_tiny"},
        params={v: {"max_iter": 2} for v in ("AutoEncoder", "SparseAE")},
    )
    cases = {r[:3] for r in rows}
    assert ("1_tiny", "StandardScaler", 2) in cases  # a quarter of 8 features is 2
    assert ("iris", "MinMaxScaler", 2) in cases
    summary = variants.summary_table(rows)
    assert summary.count("\n") == 3  # header, rule, two variants
    for *_, sse, pca, seconds in rows:
        assert sse > 0 and pca > 0 and seconds >= 0
    detail = variants.detail_table(rows)
    assert len(detail.splitlines()) == 2 + len(cases)
