r"""Datasets for the deep-network chapters: offline by default, CIFAR when it can be had.

A :class:`Dataset` is a pair of tensors ``X`` (inputs, shape ``(N, ...)``, float32) and ``y``
(labels, shape ``(N,)``, int64) plus the name of what really ran (``dataset.name``) and a small
``info`` dict that records every transformation (subset, random labels, standardization,
fallback), so that a run can state what it trained on.

Offline datasets (no network, ever):

* ``"digits"``: scikit-learn's bundled handwritten digits, 1797 images of 8x8 pixels, 10 classes,
  as images ``(N, 1, 8, 8)`` or flat vectors ``(N, 64)``;
* ``"mnist1d"``: the MNIST-1D signals of Greydanus (2020), ``(N, 40)``, generated locally with
  ``mnist1d.data.make_dataset`` (which makes no network call; ``get_dataset`` would download).

CIFAR-10/100 come through torchvision, imported only inside :func:`load_cifar`. When torchvision
is missing or the download fails, one line says so and an offline dataset is used instead (or a
:class:`RuntimeError` is raised in strict mode).

Typical use::

    train, test = load_splits("digits", test_fraction=0.25, seed=0)
    train = balanced_subset(train, 50)            # first 50 images of each class
    train, test = standardize(train, test)        # statistics of the training set only
    for xb, yb in InMemoryLoader(train, batch_size=128, shuffle=True, seed=0, epoch=3):
        ...

Introduced in: chapter 01 (neural collapse) and chapter 08 (deep networks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from . import config
from ._checks import check_integer, check_positive_int, check_real

__all__ = [
    "Dataset",
    "DATASETS",
    "OFFLINE_DATASETS",
    "load_digits",
    "load_mnist1d",
    "load_cifar",
    "cifar_folder_problems",
    "CIFAR_MD5",
    "load_splits",
    "train_test_split",
    "balanced_subset",
    "random_labels",
    "standardize",
    "class_counts",
    "InMemoryLoader",
]

#: Names accepted by :func:`load_splits`.
OFFLINE_DATASETS = ("digits", "mnist1d")
DATASETS = OFFLINE_DATASETS + ("cifar10", "cifar100")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Inputs, labels and the record of where they came from.

    Attributes
    ----------
    X : Tensor, shape ``(N, ...)``, float32
        Inputs: ``(N, C, H, W)`` images, ``(N, d)`` vectors or signals.
    y : Tensor, shape ``(N,)``, int64
        Labels in ``[0, num_classes)``.
    name : str
        The dataset that really ran (``"digits"``, ``"mnist1d"``, ``"cifar10"``, ``"cifar100"``),
        which differs from ``requested`` after a fallback.
    num_classes : int
        Number of classes ``K`` (of the source dataset, even if a subset misses some).
    requested : str
        The dataset that was asked for.
    info : dict
        Plain-type record of what was done to the data (split, subset, random labels, ...).
    """

    X: torch.Tensor
    y: torch.Tensor
    name: str
    num_classes: int
    requested: str = ""
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        """Check the fields (types, shapes, labels in ``[0, num_classes)``); ``requested`` defaults to ``name``."""
        if not isinstance(self.X, torch.Tensor) or not torch.is_floating_point(self.X):
            raise TypeError("Dataset.X must be a floating-point torch.Tensor")
        if not isinstance(self.y, torch.Tensor) or self.y.dtype != torch.int64 or self.y.ndim != 1:
            raise TypeError("Dataset.y must be a 1-D int64 torch.Tensor")
        if self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"Dataset.X has {self.X.shape[0]} rows but y has {self.y.shape[0]} labels")
        if self.y.numel() and (int(self.y.min()) < 0 or int(self.y.max()) >= self.num_classes):
            raise ValueError(f"Dataset.y must hold labels in [0, {self.num_classes})")
        if not self.requested:
            object.__setattr__(self, "requested", self.name)

    def __len__(self) -> int:
        """Return the number of examples ``N``."""
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple:
        """Shape of one input, e.g. ``(1, 8, 8)`` or ``(40,)``."""
        return tuple(self.X.shape[1:])

    @property
    def device(self) -> torch.device:
        """Device that holds ``X`` (and ``y``)."""
        return self.X.device

    def replace(self, **changes) -> Dataset:
        """Return a copy with some fields changed; ``info`` entries given in ``changes['info']`` are merged."""
        if "info" in changes:
            changes["info"] = {**self.info, **changes["info"]}
        return dataclasses.replace(self, **changes)

    def to(self, device) -> Dataset:
        """Return the same data on ``device`` (``self`` when it is already there)."""
        device = torch.device(device)
        if self.X.device == device and self.y.device == device:
            return self
        return dataclasses.replace(self, X=self.X.to(device), y=self.y.to(device))

    def take(self, index) -> Dataset:
        """Return the rows ``index`` (a tensor or list of row numbers), with the same name and record."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.y.device)
        return dataclasses.replace(self, X=self.X[index], y=self.y[index])

    def describe(self) -> str:
        """One line: name, size, input shape, classes and what was done to it."""
        extra = ", ".join(f"{k}={v}" for k, v in self.info.items())
        fell = f" (requested {self.requested})" if self.requested != self.name else ""
        return f"{self.name}{fell}: N={len(self)}, input {self.input_shape}, K={self.num_classes}" + (
            f"; {extra}" if extra else ""
        )


def class_counts(ds: Dataset) -> list:
    """Count the examples of each class; return a list of length ``ds.num_classes``."""
    return torch.bincount(ds.y.cpu(), minlength=ds.num_classes).tolist()


# ----------------------------------------------------------------------------------------------
# Offline datasets
# ----------------------------------------------------------------------------------------------


def load_digits(*, flat: bool = False) -> Dataset:
    """scikit-learn's handwritten digits: 1797 images of 8x8 pixels with values in ``[0, 1]``.

    Parameters
    ----------
    flat : bool
        ``False`` gives images ``(1797, 1, 8, 8)``; ``True`` gives vectors ``(1797, 64)``.
    """
    X, y = _digits_tensors()
    X = X / 16.0  # pixel values are 0..16; the division makes a fresh tensor
    X = X if flat else X.reshape(-1, 1, 8, 8)
    return Dataset(X, y.clone(), "digits", 10, info={"flat": bool(flat)})


@functools.lru_cache(maxsize=1)
def _digits_tensors():
    # read the bundled CSV once per process (the sklearn loader takes ~0.1-1 s)
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    return torch.as_tensor(bunch.data, dtype=torch.float32), torch.as_tensor(bunch.target, dtype=torch.int64)


@contextlib.contextmanager
def _preserve_global_rng():
    """mnist1d seeds Python's and NumPy's global generators; put them back afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (global state on purpose)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002


def load_mnist1d(*, num_samples: int = 5000, seed: int = 42, cache: bool = True) -> Dataset:
    """MNIST-1D signals ``(num_samples, 40)``, 10 classes, generated offline.

    Uses ``mnist1d.data.make_dataset(get_dataset_args())`` with ``num_samples`` and ``seed``
    changed; that function only does NumPy/SciPy work (``mnist1d.data.get_dataset`` is the one
    that downloads, and it is not used). mnist1d's own 80/20 split is undone (train then test
    rows, in that order) so that :func:`train_test_split` can split it like every other dataset.
    Generation takes a few seconds, so the result is cached as ``.npz`` under
    :func:`ncbook.config.cache_dir` unless ``cache=False``. The global Python/NumPy random
    states are restored after generation (mnist1d reseeds them).
    """
    num_samples = check_positive_int(num_samples, "num_samples", minimum=10)
    seed = check_integer(seed, "seed", minimum=0, maximum=2**32 - 1)  # mnist1d seeds NumPy's legacy generator
    path = None
    if cache:
        path = config.cache_dir("mnist1d") / f"mnist1d_n{num_samples}_seed{seed}.npz"
        if path.exists():
            with np.load(path) as z:
                return _mnist1d_dataset(z["x"], z["y"], num_samples, seed)
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_mnist1d needs the 'mnist1d' package: pip install mnist1d") from exc
    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    with _preserve_global_rng():
        raw = make_dataset(args)
    x = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float32)
    y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64)
    if path is not None:
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, x=x, y=y)
        os.replace(tmp, path)
    return _mnist1d_dataset(x, y, num_samples, seed)


def _mnist1d_dataset(x, y, num_samples, seed):
    return Dataset(torch.as_tensor(x), torch.as_tensor(y), "mnist1d", 10,
                   info={"num_samples": num_samples, "generator_seed": seed})


# ----------------------------------------------------------------------------------------------
# CIFAR (optional, needs torchvision or already-extracted files)
# ----------------------------------------------------------------------------------------------

_CIFAR = {
    "cifar10": {"folder": "cifar-10-batches-py", "train": [f"data_batch_{i}" for i in range(1, 6)],
                "test": ["test_batch"], "key": b"labels", "K": 10, "tv": "CIFAR10"},
    "cifar100": {"folder": "cifar-100-python", "train": ["train"], "test": ["test"],
                 "key": b"fine_labels", "K": 100, "tv": "CIFAR100"},
}

#: MD5 of every extracted batch file, as published with the archives (and checked by torchvision).
CIFAR_MD5 = {
    "cifar10": {"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
                "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e"},
    "cifar100": {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"},
}
_VERIFIED = ".ncbook-verified.json"  # sizes and mtimes of files whose MD5 was checked, to skip rehashing


def _md5(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 - an integrity check against published sums, not security
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cifar_folder_problems(name: str, root) -> list:
    """List what is wrong with the extracted CIFAR folder under ``root`` (a list of strings).

    The list is ``[]`` when every batch file is there with its published MD5; a missing folder is
    one problem.
    """
    folder = Path(root) / _CIFAR[name]["folder"]
    if not folder.is_dir():
        return [f"no folder {folder.name}"]
    try:
        seen = json.loads((folder / _VERIFIED).read_text())
    except (OSError, ValueError):
        seen = {}
    problems, ok = [], {}
    for fname, md5 in CIFAR_MD5[name].items():
        path = folder / fname
        if not path.is_file():
            problems.append(f"{fname} is missing")
            continue
        stamp = [path.stat().st_size, path.stat().st_mtime_ns]
        if seen.get(fname) != stamp and _md5(path) != md5:
            problems.append(f"{fname} has the wrong checksum")
            continue
        ok[fname] = stamp
    if not problems:
        with contextlib.suppress(OSError):
            (folder / _VERIFIED).write_text(json.dumps(ok))
    return problems


def _read_cifar_folder(name: str, root: Path):
    """Read the extracted python-pickle batches directly (no torchvision needed)."""
    spec = _CIFAR[name]
    folder = root / spec["folder"]
    out = []
    for part in ("train", "test"):
        xs, ys = [], []
        for fname in spec[part]:
            with open(folder / fname, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[spec["key"]], dtype=np.int64))
        out.append((np.concatenate(xs), np.concatenate(ys)))
    return out


def _cifar_parts(name: str, root: Path, download: bool):
    """Return the arrays of a checked folder; a damaged folder is removed and downloaded again."""
    folder = root / _CIFAR[name]["folder"]
    if folder.is_dir():
        problems = cifar_folder_problems(name, root)
        if not problems:
            return _read_cifar_folder(name, root)
        print(f"ncbook.data: the {name} files in {folder} are damaged ({'; '.join(problems)}); "
              f"removing them{' and downloading again' if download else ''}.")
        shutil.rmtree(folder)
    parts = _read_cifar_torchvision(name, root, download)
    cifar_folder_problems(name, root)  # records the checked files, so the next load skips the MD5s
    return parts


def _read_cifar_torchvision(name: str, root: Path, download: bool):
    import torchvision  # noqa: F401  (lazy: torchvision is optional)
    from torchvision import datasets

    cls = getattr(datasets, _CIFAR[name]["tv"])
    out = []
    for train in (True, False):
        tv = cls(root=str(root), train=train, download=download)
        out.append((np.asarray(tv.data, dtype=np.uint8).transpose(0, 3, 1, 2), np.asarray(tv.targets, np.int64)))
    return out


def load_cifar(name: str = "cifar10", *, root=None, download: bool = True, strict: bool = False,
               fallback: str = "digits", fallback_test_fraction: float = 0.2, seed: int = 0):
    """CIFAR-10/100 train and test sets as ``(N, 3, 32, 32)`` float32 in ``[0, 1]``.

    Already-extracted files under ``root`` are checked against their published MD5 sums (once;
    later loads compare sizes and modification times) and read directly; a damaged or incomplete
    folder is removed, with one line saying so. Otherwise torchvision is imported here (never at
    module level) and asked to download (it checks the archive's MD5 and fetches it again when it
    is damaged). If that is impossible (torchvision
    missing, no network, a broken archive) one line is printed and the ``fallback`` offline
    dataset is returned instead, split by :func:`train_test_split`; its ``requested`` field
    keeps the CIFAR name and ``info['fallback_reason']`` says why. With ``strict=True`` a
    :class:`RuntimeError` is raised instead.

    Parameters
    ----------
    name : {"cifar10", "cifar100"}
    root : path, optional
        Data folder; default ``ncbook.config.cache_dir("data")``.
    download : bool
        Let torchvision download when the files are not there.
    strict : bool
        Raise instead of falling back.
    fallback : {"digits", "mnist1d"}
        Offline dataset used when CIFAR cannot be had.

    Returns
    -------
    (Dataset, Dataset)
        Train and test sets.
    """
    name = str(name).lower()
    if name not in _CIFAR:
        raise ValueError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
    if fallback not in OFFLINE_DATASETS:
        raise ValueError(f"fallback must be one of {OFFLINE_DATASETS}, got {fallback!r}")
    root = Path(root) if root is not None else config.cache_dir("data")
    try:
        parts = _cifar_parts(name, root, download)
    except Exception as exc:  # noqa: BLE001 - any failure here means "no CIFAR"; we say which
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        if isinstance(exc, ImportError):
            reason = "torchvision is not installed"
        if strict:
            raise RuntimeError(f"{name} is not available ({reason}) and strict=True") from exc
        print(f"ncbook.data: {name} is not available ({reason}); using the offline dataset '{fallback}' instead.")
        train, test = load_splits(fallback, test_fraction=fallback_test_fraction, seed=seed)
        record = {"fallback_reason": reason}
        return (train.replace(requested=name, info=record), test.replace(requested=name, info=record))
    K = _CIFAR[name]["K"]
    out = []
    for split, (x, y) in zip(("train", "test"), parts):
        X = torch.from_numpy(x).to(torch.float32).div_(255.0)
        out.append(Dataset(X, torch.from_numpy(y), name, K, info={"split": split}))
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Splits, subsets, labels, scaling
# ----------------------------------------------------------------------------------------------


def _check_dataset(ds, name="ds"):
    if not isinstance(ds, Dataset):
        raise TypeError(f"{name} must be an ncbook.data.Dataset, got {type(ds).__name__}")
    return ds


def train_test_split(ds: Dataset, test_fraction: float = 0.2, *, seed: int = 0):
    """Stratified, seeded split: each class contributes ``round(test_fraction * n_k)`` test rows.

    The order of rows within each part follows the original order (so that "the first n of each
    class" stays meaningful after the split).

    Returns
    -------
    (Dataset, Dataset)
        Train and test sets, with ``info['split']`` set.
    """
    _check_dataset(ds)
    test_fraction = check_real(test_fraction, "test_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    seed = config.check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    y = ds.y.cpu()
    is_test = torch.zeros(len(ds), dtype=torch.bool)
    for k in range(ds.num_classes):
        idx = torch.nonzero(y == k).flatten()
        n_test = int(round(test_fraction * idx.numel()))
        if idx.numel() >= 2:
            n_test = min(max(n_test, 1), idx.numel() - 1)  # keep every class on both sides
        is_test[idx[torch.randperm(idx.numel(), generator=g)[:n_test]]] = True
    rec = {"test_fraction": float(test_fraction), "split_seed": int(seed)}
    train = ds.take(torch.nonzero(~is_test).flatten()).replace(info={**rec, "split": "train"})
    test = ds.take(torch.nonzero(is_test).flatten()).replace(info={**rec, "split": "test"})
    return train, test


def load_splits(name: str = "digits", *, test_fraction: float = 0.2, seed: int = 0, flat: bool = False,
                strict: bool = False, fallback: str = "digits", root=None, download: bool = True):
    """Train and test sets of a named dataset, the one entry point used by the experiments.

    ``"digits"`` and ``"mnist1d"`` are split by :func:`train_test_split` (stratified, seeded);
    CIFAR keeps its official 50k/10k split (see :func:`load_cifar` for the fallback rules).
    ``flat=True`` flattens image inputs to vectors (for an MLP).
    """
    name = str(name).lower()
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if name in _CIFAR:
        train, test = load_cifar(name, root=root, download=download, strict=strict, fallback=fallback,
                                 fallback_test_fraction=test_fraction, seed=seed)
    else:
        full = load_digits() if name == "digits" else load_mnist1d()
        train, test = train_test_split(full, test_fraction, seed=seed)
    if flat and train.X.ndim > 2:
        train = train.replace(X=train.X.flatten(1), info={"flat": True})
        test = test.replace(X=test.X.flatten(1), info={"flat": True})
    return train, test


def balanced_subset(ds: Dataset, n_per_class: int, *, mode: str = "first", seed: int = 0) -> Dataset:
    """``n_per_class`` examples of every class, returned class by class in the original order.

    ``mode="first"`` keeps the first ``n_per_class`` examples of each class, as the paper's code
    does (its ``SubsetRandomSampler`` only randomizes the order they are visited in);
    ``mode="random"`` draws them with a seeded generator. A class with fewer examples raises
    :class:`ValueError`, so a subset is always exactly balanced.
    """
    _check_dataset(ds)
    n = check_positive_int(n_per_class, "n_per_class")
    if mode not in ("first", "random"):
        raise ValueError(f"mode must be 'first' or 'random', got {mode!r}")
    g = torch.Generator().manual_seed(config.check_seed(seed))
    y = ds.y.cpu()
    keep = []
    for k in range(ds.num_classes):
        idx = torch.nonzero(y == k).flatten()
        if idx.numel() < n:
            raise ValueError(f"class {k} of {ds.name} has only {idx.numel()} examples, fewer than n_per_class={n}")
        pick = idx[:n] if mode == "first" else torch.sort(idx[torch.randperm(idx.numel(), generator=g)[:n]]).values
        keep.append(pick)
    index = torch.sort(torch.cat(keep)).values  # keep the original order across classes
    rec = {"n_per_class": n, "subset_mode": mode}
    if mode == "random":
        rec["subset_seed"] = int(seed)
    return ds.take(index).replace(info=rec)


def random_labels(ds: Dataset, *, seed: int = 0) -> Dataset:
    """Replace the labels by a seeded random permutation of themselves.

    Permuting the label vector keeps the class counts, so a balanced set stays balanced (the
    NC metrics assume it) while the link between an input and its label is destroyed. Apply it
    to the training set only: a test set with random labels measures nothing. The paper's code
    (``datasets.py``) applied the random relabelling to the test set as well; the experiments
    here relabel the training set only unless asked (``random_labels="both"``).
    """
    _check_dataset(ds)
    seed = config.check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(ds), generator=g).to(ds.y.device)
    return ds.replace(y=ds.y[perm], info={"random_labels": True, "label_seed": int(seed)})


def standardize(train: Dataset, *others: Dataset, per_channel: bool = True, eps: float = 1e-6):
    """Shift and scale inputs with the training set's mean and standard deviation.

    With ``per_channel=True`` and image inputs ``(N, C, ...)`` one mean/std per channel is used
    (the paper's per-channel ``Normalize``); otherwise a single scalar pair. The test sets in
    ``others`` use the training statistics.

    Returns
    -------
    tuple of Dataset
        ``(train, *others)`` standardized, each with ``info['standardized'] = True``.
    """
    _check_dataset(train, "train")
    for i, o in enumerate(others):
        _check_dataset(o, f"others[{i}]")
        if o.input_shape != train.input_shape:
            raise ValueError(f"others[{i}] has input shape {o.input_shape}, train has {train.input_shape}")
    X = train.X
    if per_channel and X.ndim >= 3:
        dims = [0] + list(range(2, X.ndim))
        shape = (1, X.shape[1]) + (1,) * (X.ndim - 2)
        mean, std = X.mean(dim=dims).reshape(shape), X.std(dim=dims).reshape(shape)
    else:
        mean, std = X.mean(), X.std()
    std = std.clamp_min(eps)
    rec = {"standardized": True}
    return tuple(d.replace(X=(d.X - mean.to(d.X.device)) / std.to(d.X.device), info=rec) for d in (train, *others))


# ----------------------------------------------------------------------------------------------
# Loader
# ----------------------------------------------------------------------------------------------


class InMemoryLoader:
    """Mini-batches from tensors that already sit in memory (on the CPU or on the GPU).

    No worker processes, no copies per step: the whole dataset is moved to ``device`` once and
    batches are index selections. The order of epoch ``e`` is a function of ``(seed, e)`` only,
    so a resumed run visits the data in the same order as an uninterrupted one without saving
    any loader state (set the epoch with ``set_epoch``, as with ``DistributedSampler``).

    With ``world_size > 1`` (``partition="interleave"``, for training) every rank draws the same
    global permutation and batch ``b`` of rank ``r`` is ``global_batch_b[r::world_size]``; a
    final global batch with fewer rows than ranks is skipped so that every rank runs the same
    number of steps. ``partition="block"`` (for evaluation) gives rank ``r`` the ``r``-th
    contiguous block of the (unshuffled) order instead, so each row is seen exactly once over
    all ranks; ranks may then run different numbers of batches.

    Parameters
    ----------
    ds : Dataset
    batch_size : int
        Global batch size (summed over ranks).
    shuffle : bool
    seed : int
    device : str or torch.device, optional
    rank, world_size : int
        This process's shard (defaults: a single process).
    epoch : int
        Epoch whose order is produced by the next iteration.
    partition : {"interleave", "block"}
        How the rows are shared between ranks (see above).
    memory_format : torch.memory_format, optional
        E.g. ``torch.channels_last`` for 4-D image inputs.
    min_rows : int
        ``"interleave"`` only: a final global batch that would give a rank fewer than ``min_rows``
        rows is merged into the batch before it (BatchNorm in training mode needs 2 rows).
    """

    def __init__(self, ds: Dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0, device=None,
                 rank: int = 0, world_size: int = 1, epoch: int = 0, partition: str = "interleave",
                 memory_format=None, min_rows: int = 1):
        _check_dataset(ds)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.min_rows = check_positive_int(min_rows, "min_rows")
        self.world_size = check_positive_int(world_size, "world_size")
        self.rank = check_integer(rank, "rank", minimum=0, maximum=self.world_size - 1)
        if partition not in ("interleave", "block"):
            raise ValueError(f"partition must be 'interleave' or 'block', got {partition!r}")
        self.partition = partition
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), int(epoch)
        device = ds.device if device is None else torch.device(device)
        X = ds.X.to(device)
        if memory_format is not None and X.ndim == 4:
            X = X.contiguous(memory_format=memory_format)
        self.X, self.y = X, ds.y.to(device)
        self.N = len(ds)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch whose order (with ``shuffle``) the next iteration produces."""
        self.epoch = int(epoch)

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.N)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.N, generator=g)

    def __len__(self) -> int:
        """Return the number of batches this rank gets in one pass."""
        if self.partition == "block":
            n = torch.tensor_split(torch.arange(self.N), self.world_size)[self.rank].numel()
            return -(-n // self.batch_size)
        return len(self._global_bounds())

    def _global_bounds(self) -> list:
        """``(start, stop)`` of each global batch of the ``"interleave"`` partition."""
        bounds = [(a, min(a + self.batch_size, self.N)) for a in range(0, self.N, self.batch_size)]
        short = len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < self.min_rows * self.world_size
        if self.min_rows > 1 and short:
            bounds[-2:] = [(bounds[-2][0], self.N)]  # too small for BatchNorm: merge into the previous batch
        return [(a, b) for a, b in bounds if b - a >= self.world_size]

    def batches(self):
        """Yield ``(x, y, n_global)``: this rank's batch and the size of the global batch it is part of."""
        order = self._order()
        if self.partition == "block":
            order = torch.tensor_split(order, self.world_size)[self.rank]
            for start in range(0, order.numel(), self.batch_size):
                idx = order[start:start + self.batch_size].to(self.X.device)
                yield self.X[idx], self.y[idx], idx.numel()
            return
        for start, stop in self._global_bounds():
            batch = order[start:stop]
            idx = batch[self.rank::self.world_size].to(self.X.device)
            yield self.X[idx], self.y[idx], batch.numel()

    def __iter__(self):
        """Yield this rank's batches ``(x, y)``: ``x`` of shape ``(B, ...)``, ``y`` int64 ``(B,)``."""
        for x, y, _ in self.batches():
            yield x, y
