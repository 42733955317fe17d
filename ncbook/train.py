r"""A plain torch training loop for the paper's two arms, with NC metrics, checkpoints and resume.

* ``arm="normalized"`` (features on the sphere of radius :math:`\tau`, classifier rows on the unit
  sphere): cross-entropy only, every parameter optimized by ``geoopt.optim.RiemannianSGD``; the
  classifier's ``ManifoldParameter`` takes Riemannian steps (project the gradient, move,
  retract) and the Euclidean parameters take ordinary SGD steps.
* ``arm="regularized"`` (features and classifier free): ``torch.optim.SGD`` on

  .. math:: \mathcal{L} = \mathrm{CE} + \frac{\lambda}{2}\|W\|_F^2
            + \frac{\lambda}{2}\,\frac{1}{B}\sum_{i \in \text{batch}} \|h_i\|^2,

  with :math:`\lambda` = ``weight_decay``, no weight decay on the backbone and none on the
  classifier bias (if any).

Differences from the paper's released code (``generalized_model.py``), on purpose:

1. its ``step()`` renormalizes the classifier rows after **every** optimizer step, in both arms,
   so its "regularized" baseline also had unit-norm classifier rows; here the regularized arm's
   classifier is left free, as the method it stands for says;
2. its feature penalty sums :math:`\|h_i\|^2` over the batch while the cross-entropy is a mean,
   so its effective :math:`\lambda_H` grows with the batch size; here both are means;
3. its normalized arm takes a Euclidean SGD step and then renormalizes the rows (projected SGD);
   here geoopt takes Riemannian steps (the two agree to first order without momentum).

geoopt's momentum differs from ``torch.optim.SGD`` in one detail: its buffer starts at the first
gradient and is then updated with that gradient again, so the very first step is
:math:`(1+\mu)` times torch's (see ``TrainConfig.split_optimizer``).

The learning-rate schedule is ``StepLR``'s (multiply by ``lr_decay`` every ``lr_decay_period``
epochs), computed from the epoch number so that a resumed run needs no scheduler state.

Every ``eval_every`` epochs (and at epoch 0 and the last epoch) the model is evaluated in eval
mode on the whole training set (and the test set when given): mean cross-entropy, accuracy and
NC1-NC3 from :class:`ncbook.metrics.ClassStats` accumulated over batches, with :math:`W` the
classifier weight. Under ``torchrun`` (DistributedDataParallel) the statistics are summed over
ranks before the metrics are computed, so they are exact, not averages of per-rank values; each
rank's loss is scaled so that DDP's gradient average is the gradient of the global-batch mean, and
on CUDA BatchNorm becomes ``SyncBatchNorm`` (``TrainConfig.sync_bn``).

A run directory holds ``config.json``, ``metrics.json`` (rewritten after every evaluation) and
``checkpoint.pt``; every file is written to a temporary file in the same folder and then
``os.replace``-d, so an interruption never leaves a half-written file. Checkpoints hold only
tensors and plain types (state dicts, RNG states as tensors, numbers) and are read with
``torch.load(weights_only=True)``. Resuming with the same configuration continues exactly where
the run stopped: on a CPU with a fixed seed the final metrics equal those of an uninterrupted run
(the data order of epoch ``e`` depends only on ``(seed, e)``, see
:class:`ncbook.data.InMemoryLoader`).

Introduced in: chapter 01 (neural collapse) and chapter 08 (deep networks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import geoopt
import numpy as np
import torch
import torch.nn.functional as F

from . import config as _config
from . import metrics
from .data import Dataset, InMemoryLoader
from .models import NCNet

__all__ = [
    "TrainConfig",
    "History",
    "Trainer",
    "train",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "read_metrics",
    "CHECKPOINT_NAME",
    "METRIC_KEYS",
]

CHECKPOINT_NAME = "checkpoint.pt"
#: Keys of an evaluation record that depend only on the computation (not on the wall clock).
METRIC_KEYS = ("epoch", "lr", "train_objective", "loss", "acc", "nc1", "nc2", "nc2_means", "nc3", "nc3_centered",
               "test_loss", "test_acc", "test_nc1", "test_nc2", "test_nc2_means", "test_nc3", "test_nc3_centered")


@dataclasses.dataclass
class TrainConfig:
    r"""Settings of a training run (the defaults of the released code,
    ``train.py`` and ``experiments/*.sh`` of ``cjyaras/normalized-neural-collapse`` at ``286f669``).

    Attributes
    ----------
    epochs : int
        Number of passes over the training set.
    batch_size : int
        Global mini-batch size (split across ranks under DDP).
    lr, momentum : float
        SGD step size and momentum (paper: 0.05 and 0.9).
    lr_decay, lr_decay_period : float, int
        ``StepLR``: multiply the step size by ``lr_decay`` every ``lr_decay_period`` epochs
        (paper: 0.1 every 40).
    weight_decay : float
        :math:`\lambda` of the regularized arm, on :math:`W` and on the features (paper: 1e-4).
        Unused by the normalized arm.
    eval_every : int
        Evaluate (and record) every this many epochs, plus epoch 0 and the last epoch.
    checkpoint_every : int
        Write ``checkpoint.pt`` every this many epochs (0: at every evaluation).
    keep_checkpoints : bool
        Also keep ``epoch_{e}.pt`` at every checkpoint (the paper saved weights every 5 epochs).
    eval_batch_size : int
    seed : int
        Seeds Python/NumPy/torch before the run and fixes the data order.
    shuffle : bool
        Shuffle the training set every epoch. The paper's full-dataset loader did not shuffle;
        its subset loader did.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    channels_last, bf16, compile : bool
        Speed options for CUDA: channels-last memory format, bfloat16 autocast of the training
        steps (evaluation stays float32), ``torch.compile`` of the backbone.
    progress : bool
        tqdm progress bars.
    num_threads : int
        If > 0, ``torch.set_num_threads`` for the duration of the run (restored afterwards).
        Small models on a CPU often run fastest with 1 thread, and much faster than with
        several on a machine whose cores are busy.
    split_optimizer : bool
        Normalized arm only: give the Euclidean parameters to ``torch.optim.SGD`` (its multi-tensor
        update launches far fewer GPU kernels than geoopt's per-parameter loop) and only the
        sphere parameters to ``geoopt.optim.RiemannianSGD``. The updates are the same except the
        first momentum step: geoopt's buffer starts at :math:`g_0` and is then updated with
        :math:`g_0` again, so its first step is :math:`(1 + \mu)\,\eta\, g_0` where torch's is
        :math:`\eta g_0`. Off by default (every parameter through geoopt).
    sync_bn : bool
        Under DDP on CUDA, convert BatchNorm layers to ``SyncBatchNorm`` so that the batch
        statistics are those of the global batch, as on one GPU (ignored on the CPU, where
        ``SyncBatchNorm`` is not available).
    """

    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    lr_decay: float = 0.1
    lr_decay_period: int = 40
    weight_decay: float = 1e-4
    eval_every: int = 5
    checkpoint_every: int = 0
    keep_checkpoints: bool = False
    eval_batch_size: int = 1024
    seed: int = 0
    shuffle: bool = True
    device: str = "auto"
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    progress: bool = True
    num_threads: int = 0
    split_optimizer: bool = False
    sync_bn: bool = True

    def __post_init__(self):
        for name in ("epochs", "lr_decay_period", "eval_every", "checkpoint_every", "num_threads"):
            v, low = getattr(self, name), 0 if name in ("epochs", "checkpoint_every", "num_threads") else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        for name in ("batch_size", "eval_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("lr", "momentum", "lr_decay", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict, rejecting unknown keys with a clear message."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)


class History:
    """Evaluation records of a run: one dict per evaluation, and columns by key.

    ``history["nc1"]`` is the list of NC1 values (one per evaluation), ``history["epoch"]`` the
    epochs they were taken at; ``history.records`` the raw list of dicts (what ``metrics.json``
    holds). ``completed`` is False when the run stopped early (``stop_after``).
    """

    def __init__(self, records=None, completed: bool = True):
        self.records = [dict(r) for r in (records or [])]
        self.completed = completed

    def __getitem__(self, key: str) -> list:
        if not self.records or key not in self.records[0]:
            raise KeyError(f"no metric {key!r}; available: {self.keys()}")
        return [r.get(key) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list:
        return list(self.records[0]) if self.records else []

    def last(self) -> dict:
        """The last evaluation record (the final metrics)."""
        return dict(self.records[-1]) if self.records else {}

    def to_dict(self) -> dict:
        """Columns: ``{key: [value per evaluation]}``."""
        return {k: self[k] for k in self.keys()}

    def __repr__(self) -> str:
        last = self.last()
        shown = {k: last[k] for k in ("epoch", "loss", "acc", "nc1", "nc2", "nc3") if k in last}
        return f"History({len(self)} evaluations, last={shown})"


# ----------------------------------------------------------------------------------------------
# Small utilities: distributed info, atomic files, RNG states
# ----------------------------------------------------------------------------------------------


def _dist():
    """(rank, world_size) of torch.distributed, or (0, 1) when it is not initialized."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _atomic_write(path: Path, write) -> None:
    """Write via ``write(file_object)`` into a temp file in the same folder, then ``os.replace``."""
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


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    _atomic_write(path, lambda fh: fh.write(text.encode()))


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


def _rng_state() -> dict:
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


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],  # noqa: NPY002
                         state["numpy_has_gauss"], state["numpy_cached_gauss"]))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python_state"].tolist()),
                     state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, state: dict) -> None:
    """Save ``state`` (tensors and plain types only) atomically with ``torch.save``."""
    state = _plain(state)
    _atomic_write(Path(path), lambda fh: torch.save(state, fh))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def read_metrics(run_dir) -> History:
    """The :class:`History` stored in ``run_dir/metrics.json``."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json in {run_dir}")
    data = json.loads(path.read_text())
    return History(data["records"], completed=data.get("completed", True))


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@torch.no_grad()
def evaluate(model: NCNet, ds: Dataset, *, batch_size: int = 1024, device=None, bf16: bool = False,
             memory_format=None) -> dict:
    r"""Loss, accuracy and NC metrics of ``model`` on ``ds``, in eval mode.

    The features of every batch are added to a :class:`ncbook.metrics.ClassStats` (float64); under
    ``torch.distributed`` each rank sees a contiguous block of ``ds`` and the sums are reduced
    over ranks, so every rank returns the metrics of the whole set.

    Returns
    -------
    dict
        ``loss`` (mean cross-entropy), ``acc``, ``nc1``, ``nc2`` (of the classifier :math:`W`),
        ``nc2_means`` (of the centered class means), ``nc3`` (the paper-code version, uncentered
        means), ``nc3_centered``, all floats (see :meth:`ncbook.metrics.ClassStats.report`).
    """
    if not isinstance(model, NCNet):
        raise TypeError(f"model must be an ncbook.models.NCNet, got {type(model).__name__}")
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be an ncbook.data.Dataset, got {type(ds).__name__}")
    if ds.num_classes != model.num_classes:
        raise ValueError(f"the dataset has {ds.num_classes} classes but the model has {model.num_classes} outputs")
    device = next(model.parameters()).device if device is None else torch.device(device)
    rank, world = _dist()
    was_training = model.training
    model.eval()
    loader = InMemoryLoader(ds, batch_size, device=device, rank=rank, world_size=world, partition="block",
                            memory_format=memory_format)
    stats = metrics.ClassStats(model.num_classes, model.feature_dim, dtype=torch.float64, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # CE sum, correct, count
    for x, y in loader:
        with _autocast(device, bf16):
            logits, feats = model(x)
        logits = logits.float()
        sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
        sums[1] += (logits.argmax(1) == y).sum()
        sums[2] += y.numel()
        stats.update(feats.double(), y)
    if world > 1:
        torch.distributed.all_reduce(sums)
    stats.all_reduce()
    model.train(was_training)
    W = model.classifier_weight.detach().double()
    out = {"loss": (sums[0] / sums[2]).item(), "acc": (sums[1] / sums[2]).item()}
    out.update(_nc_metrics(stats, W))
    return out


def _nc_metrics(stats, W) -> dict:
    return {k: float(v) for k, v in stats.report(W).items()}


# ----------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------


class Trainer:
    """Training state of one run: model, optimizer, schedule, loaders, history.

    Most users call :func:`train`; the class exposes the pieces (``train_epoch``,
    ``evaluate_all``, ``state_dict``) for notebooks and the throughput benchmark.

    Parameters
    ----------
    model : NCNet
        Freshly built (its ``arm`` selects the optimizer and the loss).
    train_set : Dataset
    cfg : TrainConfig
    test_set : Dataset, optional
    """

    def __init__(self, model: NCNet, train_set: Dataset, cfg: TrainConfig, *, test_set: Dataset | None = None):
        if not isinstance(model, NCNet):
            raise TypeError(f"model must be an ncbook.models.NCNet (see ncbook.models.build_model), "
                            f"got {type(model).__name__}")
        if not isinstance(train_set, Dataset):
            raise TypeError(f"train_set must be an ncbook.data.Dataset, got {type(train_set).__name__}")
        if test_set is not None and not isinstance(test_set, Dataset):
            raise TypeError(f"test_set must be an ncbook.data.Dataset or None, got {type(test_set).__name__}")
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
        for name, ds in (("train_set", train_set), ("test_set", test_set)):
            if ds is None:
                continue
            if ds.num_classes != model.num_classes:
                raise ValueError(f"{name} has {ds.num_classes} classes but the model has {model.num_classes} outputs")
            if model.input_shape is not None and ds.input_shape != model.input_shape:
                raise ValueError(f"{name} inputs have shape {ds.input_shape} but the model expects {model.input_shape}")
        self.cfg = cfg
        self.rank, self.world = _dist()
        device = _config.default_device(cfg.device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self.memory_format = torch.channels_last if (cfg.channels_last and train_set.X.ndim == 4) else None
        model.to(device)
        if self.memory_format is not None:
            model.to(memory_format=self.memory_format)
        if self.world > 1 and cfg.sync_bn and device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the BN children in place
        if cfg.compile:
            model.backbone.compile()  # in place: state_dict keys stay the same
        self.model = model
        self.net = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            self.net = DDP(model, device_ids=ids)
        # the data moves to the device (and memory format) once, not per step or per evaluation
        self.train_set, self.test_set = self._place(train_set), self._place(test_set)
        self.loader = InMemoryLoader(self.train_set, cfg.batch_size, shuffle=cfg.shuffle, seed=cfg.seed,
                                     rank=self.rank, world_size=self.world)
        if len(self.loader) == 0:
            raise ValueError(f"train_set has {len(train_set)} rows, too few for {self.world} ranks")
        params = list(model.parameters())
        if model.arm == "regularized":
            self.optimizers = [torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)]
        elif cfg.split_optimizer:
            sphere = [p for p in params if isinstance(p, geoopt.ManifoldParameter)]
            flat = [p for p in params if not isinstance(p, geoopt.ManifoldParameter)]
            self.optimizers = [geoopt.optim.RiemannianSGD(sphere, lr=cfg.lr, momentum=cfg.momentum),
                               torch.optim.SGD(flat, lr=cfg.lr, momentum=cfg.momentum)]
        else:
            self.optimizers = [geoopt.optim.RiemannianSGD(params, lr=cfg.lr, momentum=cfg.momentum)]
        self.epoch = 0  # epochs completed
        self.history = History()
        self.train_time = 0.0

    def _place(self, ds):
        if ds is None:
            return None
        X = ds.X.to(self.device)
        if self.memory_format is not None:
            X = X.contiguous(memory_format=self.memory_format)
        return dataclasses.replace(ds, X=X, y=ds.y.to(self.device))

    def lr_at(self, epoch: int) -> float:
        """Step size of epoch ``epoch`` (1-based): ``lr * lr_decay ** ((epoch - 1) // lr_decay_period)``,
        the schedule of ``torch.optim.lr_scheduler.StepLR`` stepped once per epoch, written in closed
        form so that it depends on the epoch number only."""
        c = self.cfg
        return c.lr * c.lr_decay ** ((int(epoch) - 1) // c.lr_decay_period)

    # -- one epoch --------------------------------------------------------------------------
    def _objective(self, logits, feats, y, n_global):
        """Loss of this rank's part of a global batch, scaled so that DDP's gradient average
        equals the gradient of the global-batch mean."""
        scale = self.world / n_global
        loss = F.cross_entropy(logits.float(), y, reduction="sum") * scale
        if self.model.arm == "regularized" and self.cfg.weight_decay > 0:
            lam = self.cfg.weight_decay
            W = self.model.classifier.weight
            loss = loss + 0.5 * lam * W.float().pow(2).sum()
            loss = loss + 0.5 * lam * feats.float().pow(2).sum() * scale
        return loss

    def train_epoch(self, progress=None, max_steps: int | None = None) -> float:
        """Run one epoch (epoch number ``self.epoch + 1``) at the step size :meth:`lr_at` gives.

        ``max_steps`` cuts the epoch short (for benchmarks; a run never uses it). Returns the
        mean over the epoch's steps of the training objective of the global batch (the running
        loss of the training mode, before each step).
        """
        self.net.train()
        self.loader.set_epoch(self.epoch + 1)
        lr = self.lr_at(self.epoch + 1)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = lr
        total = torch.zeros((), device=self.device)
        steps = 0
        t0 = time.perf_counter()
        for x, y, n_global in self.loader.batches():
            if max_steps is not None and steps >= max_steps:
                break
            with _autocast(self.device, self.cfg.bf16):
                logits, feats = self.net(x)
            loss = self._objective(logits, feats, y, n_global)
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in self.optimizers:
                opt.step()
            total += loss.detach()
            steps += 1
            if progress is not None:
                progress.update(1)
        self.epoch += 1
        if self.world > 1:
            # each rank's term is scaled so that their average is the global-batch objective
            torch.distributed.all_reduce(total)
            total /= self.world
        mean = (total / max(steps, 1)).item()  # one sync per epoch
        self.train_time += time.perf_counter() - t0
        if not math.isfinite(mean):
            raise FloatingPointError(f"the training loss became {mean} at epoch {self.epoch}; lower lr")
        return mean

    # -- evaluation ---------------------------------------------------------------------------
    def _sync_buffers(self):
        # BatchNorm running statistics differ between ranks after training; use rank 0's.
        if self.world > 1:
            for b in self.model.buffers():
                torch.distributed.broadcast(b, 0)

    def evaluate_all(self, train_objective=None) -> dict:
        """Evaluate on the training set (and the test set), append the record to the history."""
        self._sync_buffers()
        # evaluation in float32 even when training in bf16: collapsed features differ by less than
        # bf16's rounding (~4e-3 relative), which would put a floor under NC1
        kw = {"batch_size": self.cfg.eval_batch_size, "device": self.device, "bf16": False}
        # lr: the step size used during the epoch just finished (the initial one at epoch 0)
        rec = {"epoch": self.epoch, "lr": self.lr_at(max(self.epoch, 1)), "train_objective": train_objective}
        rec.update(evaluate(self.model, self.train_set, **kw))
        if self.test_set is not None:
            rec.update({f"test_{k}": v for k, v in evaluate(self.model, self.test_set, **kw).items()})
        rec["time_s"] = round(self.train_time, 4)
        self.history.records.append(rec)
        return rec

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "rng": _rng_state(),
            "history": self.history.records,
            "train_time": self.train_time,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError("the checkpoint was written with a different optimizer setup (split_optimizer)")
        for opt, st in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(st)
        _set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.history = History(state["history"])
        self.train_time = float(state.get("train_time", 0.0))



# ----------------------------------------------------------------------------------------------
# The run: train() with a run directory
# ----------------------------------------------------------------------------------------------

#: Config fields that may change between a run and its resumption.
_RESUME_FREE = {"epochs", "progress", "device", "eval_batch_size", "num_threads"}


def _run_config(cfg: TrainConfig, model: NCNet, train_set: Dataset, test_set, meta) -> dict:
    def ds_record(ds):
        return None if ds is None else {"name": ds.name, "requested": ds.requested, "N": len(ds),
                                        "input_shape": list(ds.input_shape), "num_classes": ds.num_classes,
                                        "info": ds.info}
    return {
        "train": cfg.to_dict(),
        "model": model.spec,
        "arm": model.arm,
        "dataset": ds_record(train_set),
        "test_dataset": ds_record(test_set),
        "meta": meta or {},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "geoopt": geoopt.__version__,
                     "numpy": np.__version__},
    }


def _config_mismatch(old: dict, new: dict) -> list:
    diffs = []
    for key in ("model", "arm", "dataset", "test_dataset", "meta"):
        if json.loads(json.dumps(old.get(key), default=_json_default)) != json.loads(
                json.dumps(new.get(key), default=_json_default)):
            diffs.append(key)
    for key, val in new["train"].items():
        if key not in _RESUME_FREE and old.get("train", {}).get(key) != val:
            diffs.append(f"train.{key}")
    return diffs


def train(model: NCNet, train_set: Dataset, *, test_set: Dataset | None = None, config: TrainConfig | None = None,
          run_dir=None, resume: bool = True, stop_after: int | None = None, callback=None, meta: dict | None = None,
          **overrides) -> History:
    """Train ``model`` on ``train_set`` and return its :class:`History` of evaluations.

    Parameters
    ----------
    model : NCNet
        From :func:`ncbook.models.build_model`; its ``arm`` selects loss and optimizer. Build it
        after seeding (e.g. ``ncbook.config.seed_everything``) for a reproducible start.
    train_set, test_set : Dataset
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``; keyword ``overrides`` replace single fields
        (``train(model, ds, epochs=20, lr=0.1)``).
    run_dir : path, optional
        Folder for ``config.json``, ``metrics.json`` and ``checkpoint.pt``; nothing is written
        when None.
    resume : bool
        If ``run_dir`` holds a checkpoint of a run with the same configuration, continue it
        (a different configuration raises :class:`ValueError`). ``False`` starts afresh.
    stop_after : int, optional
        Stop (with a checkpoint) once this many epochs are completed; ``History.completed`` is
        then False. Used to simulate an interruption.
    callback : callable, optional
        ``callback(epoch, record_or_None, trainer)`` after every epoch. If it raises
        ``KeyboardInterrupt`` the completed epoch is checkpointed first, then the exception
        propagates.
    meta : dict, optional
        Plain-type notes stored in ``config.json`` (and compared on resume).

    Returns
    -------
    History
    """
    cfg = config if config is not None else TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(cfg).__name__}")
    if overrides:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 0):
        raise ValueError(f"stop_after must be an integer >= 0 or None, got {stop_after!r}")
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(model, train_set, test_set, cfg, run_dir, resume, stop_after, callback, meta)
    finally:
        torch.set_num_threads(threads)


def _train(model, train_set, test_set, cfg, run_dir, resume, stop_after, callback, meta) -> History:
    rank, _ = _dist()
    _config.seed_everything(cfg.seed)
    trainer = Trainer(model, train_set, cfg, test_set=test_set)
    run_cfg = _run_config(cfg, model, train_set, test_set, meta)
    main = rank == 0
    ckpt_path = None
    if run_dir is not None:
        run_dir = Path(run_dir)
        ckpt_path = run_dir / CHECKPOINT_NAME
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
        if resume and ckpt_path.is_file():
            old = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
            diffs = _config_mismatch(old, run_cfg)
            if diffs:
                raise ValueError(f"{run_dir} holds a run with a different configuration ({', '.join(diffs)}); "
                                 "use another run_dir or resume=False")
            trainer.load_state_dict(load_checkpoint(ckpt_path, map_location=trainer.device))
        if main:
            _write_json(run_dir / "config.json", run_cfg)

    def checkpoint():
        if ckpt_path is None or not main:
            return
        state = trainer.state_dict()
        save_checkpoint(ckpt_path, state)
        if cfg.keep_checkpoints:
            save_checkpoint(run_dir / f"epoch_{trainer.epoch}.pt", state)

    def write_metrics(completed):
        if run_dir is not None and main:
            _write_json(run_dir / "metrics.json", {"records": trainer.history.records, "completed": completed})

    def is_eval_epoch(e):
        return e == 0 or e % cfg.eval_every == 0 or e == cfg.epochs

    def is_ckpt_epoch(e):
        return e % (cfg.checkpoint_every or cfg.eval_every) == 0 or e == cfg.epochs

    # epoch 0 (or a resumed run whose last record is missing)
    if not trainer.history.records or trainer.history.records[-1]["epoch"] != trainer.epoch:
        if is_eval_epoch(trainer.epoch):
            trainer.evaluate_all()
            write_metrics(False)
    bar = None
    if cfg.progress and main and trainer.epoch < cfg.epochs:
        from tqdm.auto import tqdm

        desc = f"{model.arm}" + (f" tau={model.tau:g}" if model.tau is not None else "")
        bar = tqdm(total=(cfg.epochs - trainer.epoch) * len(trainer.loader), desc=desc, unit="step", leave=False)
    completed = True
    try:
        while trainer.epoch < cfg.epochs:
            if stop_after is not None and trainer.epoch >= stop_after:
                completed = False
                checkpoint()
                break
            try:
                objective = trainer.train_epoch(progress=bar)
            except KeyboardInterrupt:
                if main:
                    print(f"interrupted during epoch {trainer.epoch + 1}; the last checkpoint is in {run_dir}")
                raise
            rec = None
            if is_eval_epoch(trainer.epoch):
                rec = trainer.evaluate_all(objective)
                write_metrics(False)
                if bar is not None:
                    bar.set_postfix(epoch=trainer.epoch, loss=f"{rec['loss']:.3g}", acc=f"{rec['acc']:.3f}",
                                    nc1=f"{rec['nc1']:.3g}")
            if is_ckpt_epoch(trainer.epoch):
                checkpoint()
            if callback is not None:
                try:
                    callback(trainer.epoch, rec, trainer)
                except KeyboardInterrupt:
                    checkpoint()
                    raise
    finally:
        if bar is not None:
            bar.close()
    trainer.history.completed = completed
    write_metrics(completed)
    return trainer.history
