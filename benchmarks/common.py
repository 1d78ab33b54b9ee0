"""Shared pieces of the benchmark scripts: timing, tables and the run's provenance."""

import datetime
import os
import pathlib
import platform
import re
import shlex
import subprocess
import sys
import time

import sklearn
import skorch
import torch

from skae._engine.net import _cpu_has_bf16


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def progress(message):
    """A line on stderr with the time, so a long run can be followed."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine():
    """The device the run used, in words."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name()}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    # the vector instructions torch's kernels use, and bfloat16's: two CPUs of one model
    # name may differ in both (AVX-512 BF16 halves a bf16-mixed epoch; AVX2 alone runs
    # float32 at about half AVX-512's speed), so a figure names them
    isa = torch.backends.cpu.get_cpu_capability()
    bf16 = "bf16" if _cpu_has_bf16() else "no bf16"
    return (
        f"CPU: {cpu} ({isa}, {bf16}), {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads"
    )


def command(argv=None, program="benchmarks"):
    """The command line that ran ``python -m <program>`` with ``argv`` (default: this
    process's), as a user would type it."""
    argv = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", program, *argv])


HERE = pathlib.Path(__file__).parent


def code_version():
    """The git commit the run's code came from, marked when the tree had uncommitted changes."""

    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:  # no git on this machine
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "not a git checkout"
    dirty = git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "skae",
        "benchmarks",
        ":(exclude)benchmarks/results",
        ":(exclude)benchmarks/RESULTS.md",
    )
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


# The code a run ran is the code it imported: read at the start, so that commits or edits
# made while a long run goes on do not change what its table says it measured.
CODE_AT_START = code_version()


def provenance(argv=None, program="benchmarks"):
    """Command, date, machine, versions and code, for the results file."""
    return "\n".join(
        [
            f"- command: `{command(argv, program)}`",
            f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"- machine: {machine()}",
            (
                f"- versions: python {platform.python_version()}, torch {torch.__version__}, "
                f"skorch {skorch.__version__}, scikit-learn {sklearn.__version__}"
            ),
            f"- code: {CODE_AT_START}",
        ]
    )


BLOCK = re.compile(r"<!-- results:(?P<name>[\w-]+) -->.*?<!-- /results:(?P=name) -->", re.DOTALL)


def publish():
    """Rebuild ``benchmarks/RESULTS.md`` from ``benchmarks/results/*.md`` and refresh each
    ``<!-- results:NAME -->`` block of README.md from the block of that name there, so no
    number in either is typed by hand."""
    parts = [p.read_text() for p in sorted((HERE / "results").glob("*.md"))]
    header = "# skae benchmark results\n\nBuilt from `benchmarks/results/*.md`.\n\n"
    (HERE / "RESULTS.md").write_text(header + "\n".join(parts))
    blocks = {m["name"]: m[0] for part in parts for m in BLOCK.finditer(part)}
    readme = HERE.parent / "README.md"
    text = BLOCK.sub(lambda m: blocks.get(m["name"], m[0]), readme.read_text())
    readme.write_text(text)
