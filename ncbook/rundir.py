r"""Run folders: atomic files, checkpoints, the record of a run and the checks made before resuming.

A run folder holds three files:

* ``config.json``: what the run is (:func:`run_record`): training settings, model, data, notes,
  plus the runtime it last ran on (device, precision, library versions);
* ``metrics.json``: the evaluation records so far (a :class:`RunHistory`) and whether the run
  completed;
* ``checkpoint.pt``: the state to continue from (model, optimizers, RNG states, records).

Every file is written to a temporary file in the same folder and then ``os.replace``-d, so an
interruption never leaves a half-written file; the temporary file a hard kill can leave behind is
removed the next time the folder is opened (:meth:`RunDir.prepare`). Checkpoints hold only
tensors and plain types and are read with ``torch.load(weights_only=True)``.

Resuming compares the *identity* of the run (everything in ``config.json`` except
:data:`RESUME_FREE` training fields and the runtime), so that a run started on a GPU runtime in
bf16 can continue on a CPU runtime in float32, with a one-line note of what changed. A damaged
or incomplete folder gives a :class:`DamagedRunError` (a ``ValueError``) naming the file and what
to do: delete it, or start afresh with ``resume=False`` (``--no-resume`` on the command line).

Introduced in: chapter 08 (deep networks).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import tempfile
from pathlib import Path

import geoopt
import numpy as np
import torch

__all__ = [
    "CHECKPOINT_NAME",
    "CONFIG_NAME",
    "METRICS_NAME",
    "RESUME_FREE",
    "DamagedRunError",
    "RunHistory",
    "RunDir",
    "atomic_write",
    "write_json",
    "save_checkpoint",
    "load_checkpoint",
    "read_metrics",
    "read_config",
    "run_record",
    "identity_changes",
    "runtime_note",
    "rng_state",
    "set_rng_state",
]

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"
#: Training settings that may differ between a run and its continuation: they change where and how
#: fast the arithmetic runs, not which run it is.
RESUME_FREE = frozenset({"epochs", "progress", "device", "eval_batch_size", "num_threads", "precision", "bf16",
                         "channels_last", "compile"})
_CHECKPOINT_KEYS = ("epoch", "model", "optimizers", "rng", "history")
_WHAT_TO_DO = "delete it to start this run afresh, or pass resume=False (--no-resume on the command line)"


class DamagedRunError(ValueError):
    """A run folder whose files cannot be read or do not fit together."""


class RunHistory:
    """Evaluation records of a training run: one dict per evaluation, and columns by key.

    ``history["nc1"]`` is the list of NC1 values (one per evaluation), ``history["epoch"]`` the
    epochs they were taken at; ``history.records`` the raw list of dicts (what ``metrics.json``
    holds). ``completed`` is False when the run stopped early (``stop_after``).
    """

    def __init__(self, records=None, completed: bool = True):
        self.records = [dict(r) for r in (records or [])]
        self.completed = completed

    def __getitem__(self, key: str) -> list:
        """Return the values of metric ``key``, one per evaluation (:class:`KeyError` if there is none)."""
        if not self.records or key not in self.records[0]:
            raise KeyError(f"no metric {key!r}; available: {self.keys()}")
        return [r.get(key) for r in self.records]

    def __len__(self) -> int:
        """Return the number of evaluations."""
        return len(self.records)

    def keys(self) -> list:
        """Return the metric names (the keys of the first record; ``[]`` without records)."""
        return list(self.records[0]) if self.records else []

    def last(self) -> dict:
        """Return a copy of the last evaluation record (the final metrics); ``{}`` without records."""
        return dict(self.records[-1]) if self.records else {}

    def to_dict(self) -> dict:
        """Columns: ``{key: [value per evaluation]}``."""
        return {k: self[k] for k in self.keys()}

    def __repr__(self) -> str:
        """Show the number of evaluations and the main metrics of the last one."""
        last = self.last()
        shown = {k: last[k] for k in ("epoch", "loss", "acc", "nc1", "nc2", "nc3") if k in last}
        return f"RunHistory({len(self)} evaluations, last={shown})"


# ----------------------------------------------------------------------------------------------
# Atomic files
# ----------------------------------------------------------------------------------------------


def atomic_write(path, write) -> None:
    """Write via ``write(file_object)`` into a temp file in the same folder, then ``os.replace`` it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically (numpy scalars, 1-element tensors, paths allowed)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor) and o.numel() == 1:
        return o.item()
    if isinstance(o, (Path, torch.device, torch.dtype)):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _plain(obj):
    """Recursively turn tensors into plain ``torch.Tensor`` (no subclass) so weights_only can load them."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().as_subclass(torch.Tensor)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DamagedRunError(f"{path} is damaged (not valid JSON): {_WHAT_TO_DO}") from None


# ----------------------------------------------------------------------------------------------
# Checkpoints and metrics
# ----------------------------------------------------------------------------------------------


def save_checkpoint(path, state: dict) -> None:
    """Save ``state`` (tensors and plain types only) atomically with ``torch.save``."""
    state = _plain(state)
    atomic_write(Path(path), lambda fh: torch.save(state, fh))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    DamagedRunError
        An empty, truncated or foreign file (the message names it and says what to do).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise DamagedRunError(f"{path} is damaged (an empty file): {_WHAT_TO_DO}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - torch's own message can advise weights_only=False, which is unsafe
        raise DamagedRunError(f"{path} is damaged (truncated, or not a checkpoint written by ncbook): "
                              f"{_WHAT_TO_DO}") from None
    return state


def _check_training_state(path: Path, state) -> dict:
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise DamagedRunError(f"{path} is not a training checkpoint (missing {', '.join(missing)}): {_WHAT_TO_DO}")
    return state


def read_metrics(run_dir) -> RunHistory:
    """Read the :class:`RunHistory` stored in ``run_dir/metrics.json``."""
    data = _read_record(run_dir, METRICS_NAME, "records", list, "no list of records")
    return RunHistory(data["records"], completed=data.get("completed", True))


def read_config(run_dir) -> dict:
    """Read the record stored in ``run_dir/config.json`` (see :func:`run_record`)."""
    return _read_record(run_dir, CONFIG_NAME, "train", dict, "no training settings")


def _read_record(run_dir, name: str, key: str, kind: type, missing: str) -> dict:
    """Read the JSON object ``run_dir/name``, which must hold ``key`` of type ``kind`` (else it is damaged)."""
    path = Path(run_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"no {name} in {run_dir}")
    record = _read_json(path)
    if not isinstance(record, dict) or not isinstance(record.get(key), kind):
        raise DamagedRunError(f"{path} is damaged ({missing}): {_WHAT_TO_DO}")
    return record


# ----------------------------------------------------------------------------------------------
# What a run is, and what may change on resume
# ----------------------------------------------------------------------------------------------


def _dataset_record(ds):
    if ds is None:
        return None
    return {"name": ds.name, "requested": ds.requested, "N": len(ds), "input_shape": list(ds.input_shape),
            "num_classes": ds.num_classes, "info": ds.info}


def run_record(train_settings: dict, model, train_set, test_set=None, meta=None, runtime=None) -> dict:
    """Build the content of ``config.json``: identity of the run plus the runtime it ran on.

    ``train_settings`` is ``TrainConfig.to_dict()``; ``runtime`` a dict such as
    ``{"device": "cuda:0", "precision": "bf16"}`` (not compared on resume).
    """
    return {
        "train": dict(train_settings),
        "model": model.spec,
        "arm": model.arm,
        "dataset": _dataset_record(train_set),
        "test_dataset": _dataset_record(test_set),
        "meta": meta or {},
        "runtime": dict(runtime or {}),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "geoopt": geoopt.__version__,
                     "numpy": np.__version__},
    }


def _normalized(obj):
    return json.loads(json.dumps(obj, default=_json_default))


def identity_changes(old: dict, new: dict) -> list:
    """Names of the parts of the run's identity that differ between two records (empty: same run)."""
    diffs = [key for key in ("model", "arm", "dataset", "test_dataset", "meta")
             if _normalized(old.get(key)) != _normalized(new.get(key))]
    old_train = old.get("train", {})
    diffs += [f"train.{key}" for key, val in new["train"].items()
              if key not in RESUME_FREE and old_train.get(key) != val]
    return diffs


def runtime_note(old: dict, new: dict) -> str | None:
    """One line naming what changed in the runtime between two records, or None when nothing did."""
    before, after = old.get("runtime", {}), new.get("runtime", {})
    changed = [f"{k} {before[k]} -> {after[k]}" for k in after if k in before and before[k] != after[k]]
    return ", ".join(changed) or None


# ----------------------------------------------------------------------------------------------
# RNG states (as tensors and plain types, so weights_only can load them)
# ----------------------------------------------------------------------------------------------


def rng_state() -> dict:
    """Return the states of torch's, NumPy's and Python's global generators (and CUDA's when in use)."""
    np_state = np.random.get_state()  # noqa: NPY002 - the global generator is what we must restore
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_cached_gauss": float(np_state[4]),
        "python_version": int(py_state[0]),
        "python_state": torch.tensor(py_state[1], dtype=torch.int64),
        "python_gauss": py_state[2],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (the CUDA part only where CUDA is available)."""
    torch.set_rng_state(state["torch"].cpu())
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],  # noqa: NPY002
                         state["numpy_has_gauss"], state["numpy_cached_gauss"]))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python_state"].tolist()),
                     state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ----------------------------------------------------------------------------------------------
# The folder of one run
# ----------------------------------------------------------------------------------------------


class RunDir:
    """The folder of one run, or nothing at all (``path=None``: every write is skipped).

    Parameters
    ----------
    path : path or None
    writer : bool
        Whether this process writes files (rank 0 under ``torch.distributed``).
    """

    def __init__(self, path, *, writer: bool = True):
        self.path = None if path is None else Path(path)
        self.writer = bool(writer) and self.path is not None

    @property
    def checkpoint_path(self) -> Path | None:
        """Path of ``checkpoint.pt`` in the folder (None without a folder)."""
        return None if self.path is None else self.path / CHECKPOINT_NAME

    def prepare(self) -> None:
        """Create the folder and remove temporary files an interrupted write left behind."""
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def resume_state(self, record: dict) -> tuple:
        """``(state, note)`` to continue from, or ``(None, None)`` when there is no checkpoint.

        Raises :class:`DamagedRunError` for a damaged or incomplete folder and :class:`ValueError`
        when the folder holds a different run.
        """
        ckpt = self.checkpoint_path
        if ckpt is None or not ckpt.is_file():
            return None, None
        if not (self.path / CONFIG_NAME).is_file():
            raise DamagedRunError(f"{self.path} has {CHECKPOINT_NAME} but no {CONFIG_NAME}, so it cannot be checked "
                                  f"against this run: delete the folder to start afresh, or pass resume=False "
                                  f"(--no-resume on the command line)")
        old = read_config(self.path)
        diffs = identity_changes(old, record)
        if diffs:
            raise ValueError(f"{self.path} holds a run with a different configuration ({', '.join(diffs)}); "
                             "use another run_dir or resume=False (--no-resume)")
        state = _check_training_state(ckpt, load_checkpoint(ckpt, map_location="cpu"))
        return state, runtime_note(old, record)

    def write_config(self, record: dict) -> None:
        """Write ``record`` (see :func:`run_record`) as ``config.json``, if this process writes."""
        if self.writer:
            write_json(self.path / CONFIG_NAME, record)

    def save(self, state: dict, *, keep_copy: bool = False) -> None:
        """Write ``checkpoint.pt`` (and ``epoch_{e}.pt`` when ``keep_copy``)."""
        if not self.writer:
            return
        save_checkpoint(self.checkpoint_path, state)
        if keep_copy:
            save_checkpoint(self.path / f"epoch_{state['epoch']}.pt", state)

    def write_metrics(self, records: list, completed: bool) -> None:
        """Write the evaluation ``records`` and ``completed`` as ``metrics.json``, if this process writes."""
        if self.writer:
            write_json(self.path / METRICS_NAME, {"records": records, "completed": completed})
