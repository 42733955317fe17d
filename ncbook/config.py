"""Run-time configuration: FAST mode, device choice, seeding, and where files are kept.

This is the only module that reads environment variables; chapters and other modules ask it.

``NCBOOK_FAST=1`` (CI, tests, the default offline build) shrinks problem sizes so that every
chapter executes in seconds on a CPU. Unset (Colab, a workstation) the chapters run the
paper-scale experiments.

Everything ``ncbook`` keeps on disk lives under one root, :func:`storage_root`:
``$NCBOOK_HOME`` when set, else ``~/.cache/ncbook``; :func:`set_storage_root` changes it for the
running process and, in Google Colab, :func:`use_google_drive` points it at your Drive so that
runs and downloads survive a disconnect::

    <root>/runs/<name>/...   run folders (config.json, metrics.json, checkpoint.pt), see runs_dir
    <root>/cache/<sub>/...   downloaded and generated data, see cache_dir ($NCBOOK_CACHE overrides)
"""

from __future__ import annotations

import importlib
import numbers
import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["is_fast", "pick", "default_device", "seed_everything", "storage_root", "set_storage_root", "runs_dir",
           "cache_dir", "use_google_drive", "in_colab", "rank_and_world", "REPO_URL"]

#: The one place that names the repository (used by the Colab setup cell and the docs).
REPO_URL = "https://github.com/ncbook-course/normalized-neural-collapse"

_TRUE = {"1", "true", "yes", "on"}
#: Largest seed accepted by :func:`seed_everything` (torch's generators take 64-bit seeds; NumPy's legacy
#: one takes the seed modulo 2**32).
MAX_SEED = 2**63 - 1
#: Where Google Drive is mounted in Colab.
DRIVE_MOUNT = "/content/drive"
_root_override: Path | None = None


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
    """Seed Python, NumPy and torch; return a CPU :class:`torch.Generator` seeded with ``seed``.

    ``seed`` must be an integer in ``[0, 2**63 - 1]`` (a ``ValueError`` names it otherwise).
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- seeding the legacy global RNG is the point here
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def check_seed(seed, name: str = "seed") -> int:
    """Return ``seed`` as an int after checking it is an integer in ``[0, MAX_SEED]``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [0, 2**63 - 1], got {type(seed).__name__}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, 2**63 - 1], got {seed}")
    return int(seed)


def rank_and_world() -> tuple:
    """``(rank, world_size)`` of ``torch.distributed``, or ``(0, 1)`` when it is not initialized."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


# ----------------------------------------------------------------------------------------------
# Where files are kept
# ----------------------------------------------------------------------------------------------


def storage_root() -> Path:
    """Return the one folder under which ``ncbook`` keeps runs and data (created if missing).

    In order: the folder given to :func:`set_storage_root` (or :func:`use_google_drive`),
    ``$NCBOOK_HOME``, ``~/.cache/ncbook``.
    """
    if _root_override is not None:
        root = _root_override
    elif os.environ.get("NCBOOK_HOME", "").strip():
        root = Path(os.environ["NCBOOK_HOME"]).expanduser()
    else:
        root = Path.home() / ".cache" / "ncbook"
    root.mkdir(parents=True, exist_ok=True)
    return root


def set_storage_root(path) -> Path:
    """Keep runs and data under ``path`` for the rest of this process (``None``: back to the default)."""
    global _root_override
    _root_override = None if path is None else Path(path).expanduser()
    return storage_root()


def _subfolder(base: Path, parts, what: str) -> Path:
    path = base
    for part in parts:
        part = str(part)
        if not part or part in (".", "..") or "/" in part or "\\" in part:
            raise ValueError(f"{what} names must be plain folder names (no '/', '..' or empty), got {part!r}")
        path = path / part
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir(*names: str) -> Path:
    """Folder for run directories: ``storage_root()/runs/<names...>`` (created if missing).

    Use stable names (``runs_dir("08_deep_networks", "offline")``) so that running the same
    code again finds and resumes its runs.
    """
    return _subfolder(storage_root() / "runs", names, "runs_dir")


def cache_dir(sub: str = "") -> Path:
    """Folder for downloaded and generated data: ``$NCBOOK_CACHE`` when set, else ``storage_root()/cache``."""
    env = os.environ.get("NCBOOK_CACHE", "").strip()
    root = Path(env).expanduser() if env else storage_root() / "cache"
    root.mkdir(parents=True, exist_ok=True)
    return _subfolder(root, [sub] if sub else [], "cache_dir")


def use_google_drive(folder: str = "ncbook") -> Path | None:
    """In Google Colab: mount Google Drive and keep runs and data in ``MyDrive/<folder>``.

    Outside Colab this does nothing (one line says so) and returns ``None``; nothing is mounted
    unless you call it. Call it before the runs start; rerunning a chapter then resumes its runs
    from Drive after a disconnect.
    """
    if not in_colab():
        print(f"ncbook.config.use_google_drive: not in Google Colab, nothing to do; files stay in {storage_root()}")
        return None
    # google.colab exists only inside Colab: looked up by name when called there, never imported elsewhere
    drive = importlib.import_module("google.colab.drive")
    drive.mount(DRIVE_MOUNT)
    root = set_storage_root(Path(DRIVE_MOUNT) / "MyDrive" / folder)
    print(f"ncbook: runs and data are kept in {root} (Google Drive)")
    return root
