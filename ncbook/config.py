"""Run-time configuration: FAST mode, device choice, seeding, data and cache folders.

This is the only module that reads environment variables; chapters and other modules ask it.

``NCBOOK_FAST=1`` (CI, tests, the default offline build) shrinks problem sizes so that every
chapter executes in seconds on a CPU. Unset (Colab, a workstation) the chapters run the
paper-scale experiments.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["is_fast", "pick", "default_device", "seed_everything", "cache_dir", "in_colab", "REPO_URL"]

#: The one place that names the repository (used by the Colab setup cell and the docs).
REPO_URL = "https://github.com/ncbook-course/normalized-neural-collapse"

_TRUE = {"1", "true", "yes", "on"}


def is_fast() -> bool:
    """Return True when ``NCBOOK_FAST`` is set to a true value (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get("NCBOOK_FAST", "").strip().lower() in _TRUE


def pick(fast, full):
    """Return ``fast`` in FAST mode and ``full`` otherwise.

    Examples
    --------
    >>> epochs = pick(fast=3, full=200)
    """
    return fast if is_fast() else full


def in_colab() -> bool:
    """Return True inside Google Colab."""
    return "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ


def default_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve a device request: ``None``/``"auto"`` gives CUDA when available, else CPU.

    ``"gpu"`` is accepted as an alias of ``"cuda"``. Asking for CUDA on a machine without it
    raises :class:`ValueError` rather than failing later inside torch.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "gpu":
        device = "cuda"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch.cuda.is_available() is False")
    return dev


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU :class:`torch.Generator` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- seeding the legacy global RNG is the point here
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cache_dir(sub: str = "") -> Path:
    """Folder for downloaded data and run outputs: ``$NCBOOK_CACHE`` or ``~/.cache/ncbook``."""
    root = Path(os.environ.get("NCBOOK_CACHE", Path.home() / ".cache" / "ncbook"))
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True)
    return path
