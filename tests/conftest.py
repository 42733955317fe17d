"""Shared pytest fixtures for the ncbook tests.

Kept minimal on purpose (several modules' tests share it). The root ``conftest.py`` already puts
every test in FAST mode with the Agg backend; the same defaults are repeated here so that
``pytest tests/...`` run from another directory behaves the same. No global default dtype is set:
tests that need float64 ask for it explicitly.

Hypothesis runs under the ``ci`` profile unless ``HYPOTHESIS_PROFILE`` names another: derandomized
(the same examples on every run and machine) with no example database, so a run cannot fail by
luck or pass because of a file left by an earlier one. ``HYPOTHESIS_PROFILE=explore`` draws fresh
random examples (and more of them) to hunt for new failures.

``book_build`` builds the book once per test session (``scripts/build_book.py``, which reuses the
execution cache of an earlier ``make book``); every test of the built site or of the executed
chapters shares that one build.
"""

import fcntl
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ["NCBOOK_FAST"] = "1"  # tests always run small
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers on two cores: one thread each
    torch.set_num_threads(1)

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclass(frozen=True)
class BookBuild:
    """One run of ``scripts/build_book.py``: its exit status, its log and how long it took."""

    returncode: int
    log: str
    seconds: float


@pytest.fixture(scope="session")
def book_build() -> BookBuild:
    """Build the book once per session (FAST mode, warnings as errors, cached execution).

    With pytest-xdist every worker asks for it: the first builds (holding a lock), the others then
    find nothing changed and get the same build's log from ``scripts/build_book.py``.
    """
    t0 = time.perf_counter()
    (ROOT / "_build").mkdir(exist_ok=True)
    with open(ROOT / "_build" / ".ncbook-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_book.py")], cwd=ROOT,
                              capture_output=True, text=True, timeout=3600)
    return BookBuild(proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python, NumPy and torch before every test, so each test is reproducible on its own."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (seeds the legacy global RNG that old-style code draws from)
    torch.manual_seed(0)
    yield


@pytest.fixture(params=[0, 1, 2], ids=lambda s: f"seed{s}")
def gen(request) -> torch.Generator:
    """A CPU torch.Generator, parametrized over a few seeds ("several seeds" in the tests)."""
    return torch.Generator().manual_seed(request.param)


@pytest.fixture
def single_thread():
    """Run a test with one intra-op torch thread, then restore the previous setting.

    On a small, busy CPU the OpenMP thread pool costs far more than it saves on the tiny tensors of
    the math-core tests (a 6x3 cross-entropy went from 9 us to 6 ms of CPU with 2 threads).
    Use it per module: ``pytestmark = pytest.mark.usefixtures("single_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def splits():
    """Standardized digits, flat: 12 training and 5 test images a class (for the training-stack tests)."""
    from ncbook import data

    train_set, test_set = data.load_splits("digits", flat=True, test_fraction=0.2, seed=0)
    train_set = data.balanced_subset(train_set, 12)
    test_set = data.balanced_subset(test_set, 5)
    return data.standardize(train_set, test_set)


@pytest.fixture(scope="session")
def small_mlp():
    """A factory ``small_mlp(ds, arm="normalized", seed=0, **kw)`` of seeded 32-32 MLPs for ``ds``."""
    from ncbook import config, models

    def build(ds, arm="normalized", seed=0, **kw):
        config.seed_everything(seed)
        kw.setdefault("hidden", (32, 32))
        return models.build_model("mlp", num_classes=10, input_shape=ds.input_shape, arm=arm, **kw)

    return build
