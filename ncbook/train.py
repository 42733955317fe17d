r"""The training loop of the paper's two arms, with NC metrics, checkpoints and resume.

:func:`train` runs one training run: it seeds, builds a :class:`Trainer` (model, optimizers,
loader, precision), resumes from the run folder when it holds the same run
(:mod:`ncbook.rundir`), then alternates epochs, evaluations (:mod:`ncbook.evaluation`) and
checkpoints. The objective and the optimizers of each arm are in :mod:`ncbook.objective`, the
choice of mixed precision in :mod:`ncbook.precision`.

Differences from the paper's released code (``generalized_model.py``), on purpose:

1. its ``step()`` renormalizes the classifier rows after **every** optimizer step, in both arms,
   so its "regularized" baseline also had unit-norm classifier rows; here the regularized arm's
   classifier is left free, as the method it stands for says;
2. its feature penalty sums :math:`\|h_i\|^2` over the batch while the cross-entropy is a mean,
   so its effective :math:`\lambda_H` grows with the batch size; here both are means;
3. its normalized arm takes a Euclidean SGD step and then renormalizes the rows (projected SGD);
   here geoopt takes Riemannian steps (the two agree to first order without momentum).

The learning-rate schedule is ``StepLR``'s (multiply by ``lr_decay`` every ``lr_decay_period``
epochs), computed from the epoch number so that a resumed run needs no scheduler state. Every
``eval_every`` epochs (and at epoch 0 and the last epoch) the model is evaluated in eval mode on
the whole training set (and the test set when given). Under ``torchrun``
(DistributedDataParallel) each rank's loss is scaled so that DDP's gradient average is the
gradient of the global-batch mean, and on CUDA BatchNorm becomes ``SyncBatchNorm``
(``TrainConfig.sync_bn``). A model with BatchNorm never gets a training batch of one row: such a
last batch is merged into the one before it.

Resuming continues exactly where the run stopped: on a CPU with a fixed seed the final metrics
equal those of an uninterrupted run (the data order of epoch ``e`` depends only on ``(seed, e)``,
see :class:`ncbook.data.InMemoryLoader`). The device and the precision may change on resume (a
run started on a GPU runtime continues on a CPU one); one line says what changed.

Introduced in: chapter 01 (neural collapse) and chapter 08 (deep networks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings

import torch

from . import config, objective, precision
from ._checks import check_integer, check_positive_real, check_real
from .data import Dataset, InMemoryLoader
from .evaluation import EVAL_BATCH_SIZE, check_model_data, evaluate
from .models import NCNet
from .rundir import (
    CHECKPOINT_NAME,
    DamagedRunError,
    RunDir,
    RunHistory,
    load_checkpoint,
    read_metrics,
    rng_state,
    run_record,
    save_checkpoint,
    set_rng_state,
)

__all__ = ["TrainConfig", "RunHistory", "Trainer", "train", "METRIC_KEYS"]

# Re-exported for chapters and scripts that use them through ncbook.train.
_REEXPORTED = (CHECKPOINT_NAME, evaluate, load_checkpoint, read_metrics, save_checkpoint)

#: Largest ``TrainConfig.num_threads`` accepted.
MAX_THREADS = 1024
#: Keys of an evaluation record that depend only on the computation (not on the wall clock).
METRIC_KEYS = ("epoch", "lr", "train_objective", "loss", "acc", "nc1", "nc2", "nc2_means", "nc3", "nc3_centered",
               "test_loss", "test_acc", "test_nc1", "test_nc2", "test_nc2_means", "test_nc3", "test_nc3_centered")


def __getattr__(name):
    if name == "History":  # the old name, which rgd.History also had
        warnings.warn("ncbook.train.History is now ncbook.train.RunHistory", DeprecationWarning, stacklevel=2)
        return RunHistory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclasses.dataclass
class TrainConfig:
    r"""Settings of a training run, with the defaults of the released code.

    The defaults are those of ``train.py`` and ``experiments/*.sh`` of
    ``cjyaras/normalized-neural-collapse`` at ``286f669``.

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
    precision : {"auto", "fp32", "bf16", "fp16"}
        Arithmetic of the training steps (evaluation stays float32); ``"auto"`` is bf16 on CUDA
        GPUs of compute capability >= 8.0, fp16 with a gradient scaler on older ones, float32 on
        the CPU (see :mod:`ncbook.precision`). Not part of the identity of a run.
    channels_last, compile : bool
        Speed options for CUDA: channels-last memory format, ``torch.compile`` of the backbone.
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
    eval_batch_size: int = EVAL_BATCH_SIZE
    seed: int = 0
    shuffle: bool = True
    device: str = "auto"
    channels_last: bool = False
    precision: str = "auto"
    compile: bool = False
    progress: bool = True
    num_threads: int = 0
    split_optimizer: bool = False
    sync_bn: bool = True

    def __post_init__(self):
        """Check every setting (type and range) and convert numbers to ``int``/``float``; raise naming a bad one."""
        for name in ("epochs", "checkpoint_every"):
            setattr(self, name, check_integer(getattr(self, name), name, minimum=0))
        for name in ("batch_size", "eval_batch_size", "lr_decay_period", "eval_every"):
            setattr(self, name, check_integer(getattr(self, name), name, minimum=1))
        # OpenMP crashes on absurd thread counts
        self.num_threads = check_integer(self.num_threads, "num_threads", minimum=0, maximum=MAX_THREADS)
        self.lr = check_positive_real(self.lr, "lr")
        self.momentum = check_real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.lr_decay = check_real(self.lr_decay, "lr_decay", low=0.0)
        self.weight_decay = check_real(self.weight_decay, "weight_decay", low=0.0)
        self.seed = config.check_seed(self.seed, "seed")
        precision.resolve(self.precision, "cpu")  # validates the name
        self._check_switches()

    def _check_switches(self) -> None:
        for name in ("keep_checkpoints", "shuffle", "channels_last", "compile", "progress", "split_optimizer",
                     "sync_bn"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(self.device).__name__}")

    def evaluates_at(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (completed epochs) is followed by an evaluation."""
        return epoch == 0 or epoch % self.eval_every == 0 or epoch == self.epochs

    def checkpoints_at(self, epoch: int) -> bool:
        """Whether a checkpoint is written after epoch ``epoch``."""
        return epoch % (self.checkpoint_every or self.eval_every) == 0 or epoch == self.epochs

    def to_dict(self) -> dict:
        """Return the settings as a dict (``dataclasses.asdict``); :meth:`from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict, rejecting unknown keys with a clear message."""
        names = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        if "bf16" in d:  # written by ncbook before `precision` existed
            d.setdefault("precision", "bf16" if d.pop("bf16") else "fp32")
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)



# ----------------------------------------------------------------------------------------------
# Trainer: the state of one run and one epoch of it
# ----------------------------------------------------------------------------------------------


def _check_trainer_inputs(model, train_set, test_set, cfg) -> None:
    if not isinstance(model, NCNet):
        raise TypeError(f"model must be an ncbook.models.NCNet (see ncbook.models.build_model), "
                        f"got {type(model).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    check_model_data(model, train_set, "train_set")
    if test_set is not None:
        check_model_data(model, test_set, "test_set")


def _training_device(request) -> torch.device:
    device = config.default_device(request)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class Trainer:
    """Training state of one run: model, optimizers, schedule, loader, precision, history.

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
        _check_trainer_inputs(model, train_set, test_set, cfg)
        self.cfg = cfg
        self.rank, self.world = config.rank_and_world()
        self.device = _training_device(cfg.device)
        self.precision = precision.resolve(cfg.precision, self.device)
        self.memory_format = torch.channels_last if (cfg.channels_last and train_set.X.ndim == 4) else None
        self.model = self._place_model(model)
        self.net = self._distributed(model)
        # the data moves to the device (and memory format) once, not per step or per evaluation
        self.train_set, self.test_set = self._place(train_set), self._place(test_set)
        if model.has_batchnorm and min(cfg.batch_size, len(train_set)) < 2 * self.world:
            raise ValueError(f"batch_size and the rows of train_set must be >= {2 * self.world} for a model with "
                             f"BatchNorm (2 rows per rank), got {cfg.batch_size} and {len(train_set)}")
        self.loader = InMemoryLoader(self.train_set, cfg.batch_size, shuffle=cfg.shuffle, seed=cfg.seed,
                                     rank=self.rank, world_size=self.world, min_rows=2 if model.has_batchnorm else 1)
        if len(self.loader) == 0:
            raise ValueError(f"train_set has {len(train_set)} rows, too few for {self.world} ranks")
        self.optimizers = objective.build_optimizers(model, lr=cfg.lr, momentum=cfg.momentum,
                                                     split=cfg.split_optimizer)
        self.scaler = precision.grad_scaler(self.device, self.precision)
        self.epoch = 0  # epochs completed
        self.history = RunHistory()
        self.train_time = 0.0

    @property
    def runtime(self) -> dict:
        """Where and how the arithmetic runs (recorded in ``config.json``, free to change on resume)."""
        return {"device": str(self.device), "precision": self.precision, "world_size": self.world}

    def _place_model(self, model: NCNet) -> NCNet:
        model.to(self.device)
        if self.memory_format is not None:
            model.to(memory_format=self.memory_format)
        if self.world > 1 and self.cfg.sync_bn and self.device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the BN children in place
        if self.cfg.compile:
            model.backbone.compile()  # in place: state_dict keys stay the same
        return model

    def _distributed(self, model: NCNet):
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: PLC0415 - only under torchrun

        return DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _place(self, ds):
        if ds is None:
            return None
        X = ds.X.to(self.device)
        if self.memory_format is not None:
            X = X.contiguous(memory_format=self.memory_format)
        return dataclasses.replace(ds, X=X, y=ds.y.to(self.device))

    def lr_at(self, epoch: int) -> float:
        """Step size of epoch ``epoch`` (1-based), see :func:`ncbook.objective.step_lr`."""
        c = self.cfg
        return objective.step_lr(epoch, c.lr, c.lr_decay, c.lr_decay_period)

    # -- one epoch --------------------------------------------------------------------------
    def _step(self, x, y, n_global) -> torch.Tensor:
        """One optimizer step on a batch; returns the (unscaled) objective before the step."""
        with precision.autocast(self.device, self.precision):
            logits, feats = self.net(x)
        loss = objective.batch_loss(self.model, logits, feats, y, n_global=n_global, world_size=self.world,
                                    weight_decay=self.cfg.weight_decay)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            for opt in self.optimizers:
                opt.step()
        else:  # fp16: scale the loss so small gradients survive; skip steps whose gradients overflowed
            self.scaler.scale(loss).backward()
            for opt in self.optimizers:
                self.scaler.step(opt)
            self.scaler.update()
        return loss.detach()

    def train_epoch(self, progress=None, max_steps: int | None = None) -> float:
        """Run one epoch (epoch number ``self.epoch + 1``) at the step size :meth:`lr_at` gives.

        ``max_steps`` cuts the epoch short (for benchmarks; a run never uses it). Returns the
        mean over the epoch's steps of the training objective of the global batch (the running
        loss of the training mode, before each step).
        """
        self.net.train()
        self.loader.set_epoch(self.epoch + 1)
        objective.set_lr(self.optimizers, self.lr_at(self.epoch + 1))
        total = torch.zeros((), device=self.device)
        steps = 0
        t0 = time.perf_counter()
        for x, y, n_global in self.loader.batches():
            if max_steps is not None and steps >= max_steps:
                break
            total += self._step(x, y, n_global)
            steps += 1
            if progress is not None:
                progress.update(1)
        self.epoch += 1
        mean = self._epoch_mean(total, steps)
        self.train_time += time.perf_counter() - t0
        return mean

    def _epoch_mean(self, total: torch.Tensor, steps: int) -> float:
        if self.world > 1:
            # each rank's term is scaled so that their average is the global-batch objective
            torch.distributed.all_reduce(total)
            total /= self.world
        mean = (total / max(steps, 1)).item()  # one sync per epoch
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
        kw = {"batch_size": self.cfg.eval_batch_size, "device": self.device}
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
        """Return what a checkpoint holds: epoch, model, optimizers, RNG states, history and training time.

        The fp16 gradient scaler's state is included when there is one; :meth:`load_state_dict` reads it back.
        """
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "rng": rng_state(),
            "history": self.history.records,
            "train_time": self.train_time,
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (what ``state_dict()`` returned, possibly written on another device or precision)."""
        self.model.load_state_dict(state["model"])
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError("the checkpoint was written with a different optimizer setup (split_optimizer)")
        for opt, st in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(st)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.history = RunHistory(state["history"])
        self.train_time = float(state.get("train_time", 0.0))


# ----------------------------------------------------------------------------------------------
# The run: train() with a run directory
# ----------------------------------------------------------------------------------------------


def train(model: NCNet, train_set: Dataset, *, test_set: Dataset | None = None, config: TrainConfig | None = None,
          run_dir=None, resume: bool = True, stop_after: int | None = None, callback=None, meta: dict | None = None,
          label: str | None = None, **overrides) -> RunHistory:
    """Train ``model`` on ``train_set`` and return its :class:`RunHistory` of evaluations.

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
        Folder for ``config.json``, ``metrics.json`` and ``checkpoint.pt``
        (:mod:`ncbook.rundir`); nothing is written when None.
    resume : bool
        If ``run_dir`` holds a checkpoint of the same run, continue it (a different run raises
        :class:`ValueError`, a damaged folder :class:`ncbook.rundir.DamagedRunError`).
        ``False`` starts afresh.
    stop_after : int, optional
        Stop (with a checkpoint) once this many epochs are completed; ``RunHistory.completed`` is
        then False. Used to simulate an interruption.
    callback : callable, optional
        ``callback(epoch, record_or_None, trainer)`` after every epoch. If it raises
        ``KeyboardInterrupt`` the completed epoch is checkpointed first, then the exception
        propagates.
    meta : dict, optional
        Plain-type notes stored in ``config.json`` (and compared on resume).
    label : str, optional
        What the progress bar says (default: the arm and tau).

    Returns
    -------
    RunHistory
    """
    cfg = _config_with(config, overrides)
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    if stop_after is not None:
        check_integer(stop_after, "stop_after", minimum=0)
    run = _Run(model, train_set, test_set, cfg, RunDir(run_dir, writer=_is_writer()), meta)
    with _torch_threads(cfg.num_threads):
        run.open(resume)
        return run.execute(stop_after, callback, label)


def _config_with(cfg, overrides: dict) -> TrainConfig:
    cfg = cfg if cfg is not None else TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(cfg).__name__}")
    return TrainConfig.from_dict({**cfg.to_dict(), **overrides}) if overrides else cfg


def _is_writer() -> bool:
    return config.rank_and_world()[0] == 0


@contextlib.contextmanager
def _torch_threads(n: int):
    """``torch.set_num_threads(n)`` for the duration (``n = 0``: leave it), restored afterwards."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, desc: str):
    """Yield a ``tqdm.auto`` bar labelled ``desc`` that disappears when done, or None.

    In a notebook the bar's widget is shown through a display handle and replaced by an empty
    output when it closes, so a saved notebook keeps no stale "0%| | 0/800" text.
    """
    if not enabled or total <= 0:
        yield None
        return
    from tqdm.auto import tqdm  # noqa: PLC0415 - tqdm is needed only when a bar is shown

    notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)  # tqdm.auto chose the widget bar
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, **({"display": False} if notebook else {}))
    handle = None
    if notebook:
        from IPython.display import display  # noqa: PLC0415 - only inside a notebook kernel

        handle = display(bar.container, display_id=True)
    try:
        yield bar
    finally:
        bar.close()
        if handle is not None:
            handle.update({"text/plain": ""}, raw=True)


class _Run:
    """One call of :func:`train`: a trainer, its run folder, and the epoch loop."""

    def __init__(self, model, train_set, test_set, cfg: TrainConfig, folder: RunDir, meta):
        config.seed_everything(cfg.seed)
        self.cfg, self.folder = cfg, folder
        self.trainer = Trainer(model, train_set, cfg, test_set=test_set)
        self.record = run_record(cfg.to_dict(), model, train_set, test_set, meta, runtime=self.trainer.runtime)

    def open(self, resume: bool) -> None:
        """Prepare the folder, continue from its checkpoint when asked, write ``config.json``."""
        self.folder.prepare()
        if resume:
            state, note = self.folder.resume_state(self.record)
            if state is not None:
                self._restore(state)
                if note and self.folder.writer:
                    print(f"ncbook.train: resuming {self.folder.path} at epoch {self.trainer.epoch}; {note}")
        self.folder.write_config(self.record)

    def _restore(self, state: dict) -> None:
        try:
            self.trainer.load_state_dict(state)
        except (KeyError, RuntimeError, TypeError) as exc:
            raise DamagedRunError(f"{self.folder.checkpoint_path} does not fit this run "
                                  f"({type(exc).__name__}): delete it to start this run afresh, or pass "
                                  "resume=False (--no-resume on the command line)") from None

    def execute(self, stop_after, callback, label) -> RunHistory:
        t, cfg = self.trainer, self.cfg
        last = t.history.records[-1]["epoch"] if t.history.records else None
        if last != t.epoch and cfg.evaluates_at(t.epoch):  # epoch 0, or a resumed run missing its record
            self._evaluate()
        desc = label or (t.model.arm + (f" tau={t.model.tau:g}" if t.model.tau is not None else ""))
        total = (cfg.epochs - t.epoch) * len(t.loader)
        with _progress_bar(cfg.progress and _is_writer(), total, desc) as bar:
            completed = self._loop(bar, stop_after, callback)
        t.history.completed = completed
        self.folder.write_metrics(t.history.records, completed)
        return t.history

    def _loop(self, bar, stop_after, callback) -> bool:
        """Epochs until the last one (True) or until ``stop_after`` (False)."""
        while self.trainer.epoch < self.cfg.epochs:
            if stop_after is not None and self.trainer.epoch >= stop_after:
                self._checkpoint()
                return False
            record = self._epoch(bar)
            if self.cfg.checkpoints_at(self.trainer.epoch):
                self._checkpoint()
            if callback is not None:
                self._call(callback, record)
        return True

    def _epoch(self, bar):
        try:
            value = self.trainer.train_epoch(progress=bar)
        except KeyboardInterrupt:
            if _is_writer():
                print(f"interrupted during epoch {self.trainer.epoch + 1}; the last checkpoint is in "
                      f"{self.folder.path}")
            raise
        if not self.cfg.evaluates_at(self.trainer.epoch):
            return None
        rec = self._evaluate(value)
        if bar is not None:
            bar.set_postfix(epoch=rec["epoch"], loss=f"{rec['loss']:.3g}", acc=f"{rec['acc']:.3f}",
                            nc1=f"{rec['nc1']:.3g}")
        return rec

    def _evaluate(self, train_objective=None) -> dict:
        rec = self.trainer.evaluate_all(train_objective)
        self.folder.write_metrics(self.trainer.history.records, False)
        return rec

    def _checkpoint(self) -> None:
        if self.folder.writer:
            self.folder.save(self.trainer.state_dict(), keep_copy=self.cfg.keep_checkpoints)

    def _call(self, callback, record) -> None:
        try:
            callback(self.trainer.epoch, record, self.trainer)
        except KeyboardInterrupt:
            self._checkpoint()
            raise
