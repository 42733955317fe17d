"""Shared pytest fixtures for the ncbook tests.

Kept minimal on purpose (several modules' tests share it). The root ``conftest.py`` already puts
every test in FAST mode with the Agg backend; the same defaults are repeated here so that
``pytest tests/...`` run from another directory behaves the same. No global default dtype is set:
tests that need float64 ask for it explicitly.
"""

import os
import random

os.environ["NCBOOK_FAST"] = "1"  # tests always run small
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


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
