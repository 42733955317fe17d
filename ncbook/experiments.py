r"""The paper's four deep-network studies, as functions and as a command line.

The four studies (name: what it compares; the paper setting used with ``preset="paper"``):

* ``fast-collapse``: normalized vs regularized arm, NC metrics over epochs; CIFAR-100, 30 per class, ResNet18.
* ``generalization``: the same with test-set metrics; CIFAR-100 (all), ResNet18.
* ``temperature``: the normalized arm for several inverse temperatures :math:`\tau`; CIFAR-10 (all), ResNet18.
* ``width``: the normalized arm with random labels, several widths; CIFAR-10, 200 per class, ResNet18VW.

Each function returns an :class:`ExperimentResult` holding the per-epoch history of every run
(one run per arm, temperature or width), the dataset that really ran and the settings used.

Presets:

* ``"offline"`` (default): an MLP on scikit-learn's digits (or mnist1d), CPU-friendly: each study
  takes minutes on two cores;
* ``"paper"``: the paper's data, networks, epochs and schedule (SGD, lr 0.05, momentum 0.9,
  StepLR x0.1 every 40 epochs, batch 128, :math:`\lambda` = 1e-4, metrics every 5 epochs), meant
  for a GPU. Without torchvision or a network connection, CIFAR falls back to digits (one line
  says so and the result records it).

FAST mode (``NCBOOK_FAST=1`` or ``fast=True``) shrinks epochs, data and models so that any study
runs in seconds; this is what the book executes at build time.

Command line::

    python -m ncbook.experiments fast-collapse
    python -m ncbook.experiments temperature --preset paper --device cuda --out runs/
    torchrun --nproc_per_node=4 -m ncbook.experiments generalization --preset paper --out runs/

Introduced in: chapter 08 (deep networks with normalized features).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import inspect
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from . import config, data, models, rundir, train

__all__ = [
    "EXPERIMENTS",
    "PRESETS",
    "RunSpec",
    "Study",
    "StudyOptions",
    "ExperimentResult",
    "study",
    "settings",
    "fast_collapse",
    "generalization",
    "temperature",
    "width",
    "run",
    "main",
]

EXPERIMENTS = ("fast-collapse", "generalization", "temperature", "width")
PRESETS = ("offline", "paper")

# The released code's optimization settings (train.py defaults and experiments/*.sh of
# cjyaras/normalized-neural-collapse at 286f669): TrainConfig's defaults, defined there once.
_PAPER_TRAIN = {k: getattr(train.TrainConfig(), k) for k in ("batch_size", "lr", "momentum", "lr_decay",
                                                             "lr_decay_period", "weight_decay", "eval_every", "seed")}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a study: its label, arm, tau and (for the width study) width."""

    label: str
    arm: str = "normalized"
    tau: float = 1.0
    width: int | None = None

    def to_dict(self) -> dict:
        """Return the run as a plain dict: ``label``, ``arm``, ``tau`` (normalized arm) and ``width`` (when set)."""
        d = {"label": self.label, "arm": self.arm}
        if self.arm == "normalized":
            d["tau"] = self.tau
        if self.width is not None:
            d["width"] = self.width
        return d


@dataclasses.dataclass(frozen=True)
class Study:
    """What one study runs, as data: the data set, the network, the runs and the training settings.

    ``train`` holds :class:`ncbook.train.TrainConfig` fields; ``hidden`` the MLP widths;
    ``width`` the channel width of ``resnet18vw``/``cnn``; ``random_labels`` is ``None``,
    ``"train"`` or ``"both"``.
    """

    dataset: str
    model: str
    runs: tuple
    train: dict
    n_per_class: int | None = None
    hidden: tuple | None = None
    bias: bool = False
    width: int | None = None
    random_labels: str | None = None
    test_metrics: bool = False

    def to_dict(self) -> dict:
        """Plain types (what :func:`settings` returns, without name/preset/fast)."""
        d = {"dataset": self.dataset, "n_per_class": self.n_per_class, "model": self.model}
        if self.hidden is not None:
            d["hidden"] = list(self.hidden)
        if self.width is not None:
            d["width"] = self.width
        d["bias"] = self.bias
        if self.random_labels is not None:
            d["random_labels"] = self.random_labels
        d.update(runs=[r.to_dict() for r in self.runs], test_metrics=self.test_metrics, train=dict(self.train))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Study:
        """Back from :meth:`to_dict` (extra keys such as ``name`` are ignored; runs are checked)."""
        runs = tuple(_run_spec(r) for r in d["runs"])
        labels = [r.label for r in runs]
        if not labels or len(set(labels)) != len(labels):
            raise ValueError(f"every run needs a distinct 'label', got {labels}")
        rl = d.get("random_labels")
        if rl not in (None, False, "train", "both"):
            raise ValueError(f"random_labels must be None, 'train' or 'both', got {rl!r}")
        hidden = d.get("hidden")
        return cls(dataset=d["dataset"], model=d["model"], runs=runs, train=dict(d["train"]),
                   n_per_class=d.get("n_per_class"), hidden=tuple(hidden) if hidden is not None else None,
                   bias=bool(d.get("bias", False)), width=d.get("width"), random_labels=rl or None,
                   test_metrics=bool(d.get("test_metrics", False)))

    def shrunk(self, name: str) -> Study:
        """Return the FAST-mode version: a few epochs, a few examples per class, tiny models."""
        model, width, hidden = self.model, self.width, self.hidden
        if model == "mlp":
            hidden = (32, 32)
        elif model in ("resnet18", "resnet50", "cnn"):
            model, width = ("cnn", 4) if model == "cnn" else ("resnet18vw", 2)
        runs = self.runs
        if name == "temperature":
            runs = tuple(r for r in runs if r.tau in (0.1, 1.0, 10.0))
        if name == "width":
            runs = tuple(dataclasses.replace(r, width=k, label=f"width={k}")
                         for r, k in zip(runs[:2], (16, 64) if model == "mlp" else (2, 4)))
        train = {**self.train, "epochs": 4, "eval_every": 2, "lr_decay_period": 3, "batch_size": 32}
        return dataclasses.replace(self, model=model, width=width, hidden=hidden, runs=runs, train=train,
                                   n_per_class=8)


def _run_spec(r) -> RunSpec:
    if isinstance(r, RunSpec):
        return r
    if not isinstance(r, dict) or not r.get("label"):
        raise ValueError(f"every run needs a distinct 'label', got {r!r}")
    unknown = set(r) - {"label", "arm", "tau", "width"}
    if unknown:
        raise ValueError(f"unknown run keys {sorted(unknown)}; known: ['arm', 'label', 'tau', 'width']")
    return RunSpec(label=str(r["label"]), arm=r.get("arm", "normalized"), tau=r.get("tau", 1.0), width=r.get("width"))


_MLP = (256, 256, 256)
_ARMS = (RunSpec("normalized", "normalized", 1.0), RunSpec("regularized", "regularized"))
_STUDIES = {
    ("fast-collapse", "offline"): Study("digits", "mlp", _ARMS, {**_PAPER_TRAIN, "epochs": 100}, n_per_class=100,
                                        hidden=_MLP),
    ("fast-collapse", "paper"): Study("cifar100", "resnet18", _ARMS, {**_PAPER_TRAIN, "epochs": 100}, n_per_class=30,
                                      bias=True),
    ("generalization", "offline"): Study("digits", "mlp", _ARMS, {**_PAPER_TRAIN, "epochs": 100}, hidden=_MLP,
                                         test_metrics=True),
    ("generalization", "paper"): Study("cifar100", "resnet18", _ARMS, {**_PAPER_TRAIN, "epochs": 100}, bias=True,
                                       test_metrics=True),
    ("temperature", "offline"): Study(
        "digits", "mlp", tuple(RunSpec(f"tau={t:g}", tau=t) for t in (0.01, 0.1, 1.0, 5.0, 10.0, 100.0)),
        {**_PAPER_TRAIN, "epochs": 100}, n_per_class=100, hidden=_MLP),
    ("temperature", "paper"): Study(
        "cifar10", "resnet18",
        tuple(RunSpec(f"tau={t:g}", tau=t) for t in (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 100.0)),
        {**_PAPER_TRAIN, "epochs": 200}, bias=True),
    ("width", "offline"): Study(
        "digits", "mlp", tuple(RunSpec(f"width={k}", width=k) for k in (16, 64, 256, 1024)),
        {**_PAPER_TRAIN, "epochs": 100}, n_per_class=50, random_labels="train"),
    ("width", "paper"): Study(
        "cifar10", "resnet18vw", tuple(RunSpec(f"width={k}", width=k) for k in (4, 8, 16, 32, 64)),
        {**_PAPER_TRAIN, "epochs": 200}, n_per_class=200, random_labels="train"),
}


def study(name: str, preset: str = "offline", *, fast: bool | None = None) -> Study:
    """Return the :class:`Study` that ``name`` runs with ``preset`` (shrunk in FAST mode)."""
    name = _check_name(name)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    fast = config.is_fast() if fast is None else bool(fast)
    s = _STUDIES[(name, preset)]
    return s.shrunk(name) if fast else s


def settings(name: str, preset: str = "offline", *, fast: bool | None = None) -> dict:
    """Return the settings a study runs with, as a fresh dict of plain types.

    Change it and pass it back as ``overrides`` to the study function.
    """
    fast = config.is_fast() if fast is None else bool(fast)
    s = study(name, preset, fast=fast).to_dict()
    s.update(name=_check_name(name), preset=preset, fast=fast)
    return s


def _check_name(name: str) -> str:
    name = str(name).replace("_", "-").lower()
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")
    return name


# ----------------------------------------------------------------------------------------------
# Result
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ExperimentResult:
    """What a study produced.

    Attributes
    ----------
    name, preset : str
    dataset : str
        The dataset that really ran (e.g. ``"digits"`` after a CIFAR fallback).
    requested_dataset : str
    runs : dict
        ``{label: {metric: [value per evaluation]}}``, e.g. ``runs["normalized"]["nc1"]``; every
        run has an ``"epoch"`` column.
    settings : dict
        The settings used (see :func:`settings`), plus the data description.
    wall_time_s : float
        Whole study, data loading included.
    out_dir : str or None
        Where the run folders were written.
    train_time_s : dict
        ``{label: seconds spent in training steps}`` (evaluation excluded).
    """

    name: str
    preset: str
    dataset: str
    requested_dataset: str
    runs: dict
    settings: dict
    wall_time_s: float = 0.0
    out_dir: str | None = None
    train_time_s: dict = dataclasses.field(default_factory=dict)

    @property
    def labels(self) -> list:
        """Labels of the runs, in the order of ``runs``."""
        return list(self.runs)

    def final(self, metric: str = "nc1") -> dict:
        """``{label: value of metric at the last evaluation}``."""
        self._check_metric(metric)
        return {label: cols[metric][-1] for label, cols in self.runs.items()}

    def _check_metric(self, metric):
        first = next(iter(self.runs.values()), {})
        if metric not in first:
            raise KeyError(f"no metric {metric!r}; available: {sorted(first)}")

    def compare(self, metric: str = "nc1", a: str | None = None, b: str | None = None) -> dict:
        """Compare two runs epoch by epoch: how often ``metric`` of ``a`` is below that of ``b``.

        Returns ``{"epochs", "a", "b", "a_values", "b_values", "a_below_b" (count), "n" (epochs
        compared, epoch 0 excluded), "final": (a_last, b_last)}``. Defaults: the first two runs.
        """
        self._check_metric(metric)
        labels = self.labels
        a = labels[0] if a is None else a
        b = labels[1] if b is None else b
        for lab in (a, b):
            if lab not in self.runs:
                raise KeyError(f"no run {lab!r}; runs: {labels}")
        ea, eb = self.runs[a]["epoch"], self.runs[b]["epoch"]
        common = [e for e in ea if e in eb and e > 0]
        va = [self.runs[a][metric][ea.index(e)] for e in common]
        vb = [self.runs[b][metric][eb.index(e)] for e in common]
        below = sum(x < y for x, y in zip(va, vb))
        return {"metric": metric, "epochs": common, "a": a, "b": b, "a_values": va, "b_values": vb,
                "a_below_b": below, "n": len(common), "final": (va[-1], vb[-1]) if common else (None, None)}

    def table(self, metrics_shown=("loss", "acc", "nc1", "nc2", "nc3")) -> str:
        """Format the final metrics of every run as a plain-text table."""
        shown = [m for m in metrics_shown if all(m in c for c in self.runs.values())]
        if any("test_acc" in c for c in self.runs.values()):
            shown += [m for m in ("test_acc", "test_nc1") if all(m in c for c in self.runs.values())]
        width = max([len("run")] + [len(k) for k in self.runs]) + 2
        lines = ["run".ljust(width) + "epoch".rjust(6) + "".join(m.rjust(11) for m in shown)]
        for label, cols in self.runs.items():
            vals = "".join(_fmt(cols[m][-1]).rjust(11) for m in shown)
            lines.append(label.ljust(width) + str(cols["epoch"][-1]).rjust(6) + vals)
        return "\n".join(lines)

    def frame(self, metrics_shown=None):
        """Return the final metrics of every run as a :class:`pandas.DataFrame`, one row per run.

        Columns: ``epoch`` and ``metrics_shown`` (default: every metric the runs share, in the
        order of the records; ``time_s`` is not among them). Index: the run labels.
        """
        import pandas as pd  # noqa: PLC0415 - pandas is needed only for tables

        shared = [m for m in next(iter(self.runs.values()), {}) if all(m in c for c in self.runs.values())]
        shown = [m for m in (shared if metrics_shown is None else metrics_shown) if m != "epoch"]
        for m in shown:
            self._check_metric(m)
        rows = {label: {"epoch": cols["epoch"][-1], **{m: cols[m][-1] for m in shown}}
                for label, cols in self.runs.items()}
        df = pd.DataFrame.from_dict(rows, orient="index", columns=["epoch", *shown])
        df.index.name = "run"
        return df

    def to_dict(self) -> dict:
        """Return the result as a dict of plain types (what :meth:`save` writes)."""
        return dataclasses.asdict(self)

    def save(self, path) -> Path:
        """Write the result as JSON (atomically) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rundir.write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path) -> ExperimentResult:
        """Read a result that :meth:`save` wrote to ``path``."""
        return cls(**json.loads(Path(path).read_text()))


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


# ----------------------------------------------------------------------------------------------
# Running a study
# ----------------------------------------------------------------------------------------------


def _load_data(st: Study, seed: int, strict: bool):
    """Train/test sets of the study ``st`` (subset, random labels, standardization)."""
    rank, world = config.rank_and_world()
    quiet = rank != 0
    if world > 1 and rank != 0:
        torch.distributed.barrier()  # let rank 0 download first
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        tr, te = data.load_splits(st.dataset, test_fraction=0.2, seed=seed, flat=st.model == "mlp", strict=strict)
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    if st.n_per_class:
        tr = data.balanced_subset(tr, _available_per_class(tr, st.n_per_class, quiet), mode="first")
    if st.random_labels:
        tr = data.random_labels(tr, seed=seed)
        if st.random_labels == "both":
            te = data.random_labels(te, seed=seed + 1)
    return data.standardize(tr, te)


def _available_per_class(tr: data.Dataset, n: int, quiet: bool) -> int:
    smallest = min(data.class_counts(tr))
    if smallest < n and not quiet:
        print(f"ncbook.experiments: {tr.name} has only {smallest} training examples in its smallest class; "
              f"using n_per_class={smallest} instead of {n}.")
    return min(n, smallest)


def _build(st: Study, run: RunSpec, ds: data.Dataset) -> models.NCNet:
    width = run.width if run.width is not None else st.width
    hidden = [run.width] * 3 if st.model == "mlp" and run.width is not None else st.hidden
    return models.build_model(st.model, num_classes=ds.num_classes, input_shape=ds.input_shape, arm=run.arm,
                              tau=run.tau, bias=st.bias, width=width, hidden=hidden)


@dataclasses.dataclass
class StudyOptions:
    """How to run a study: the keyword arguments of the study functions.

    These are the keyword arguments of :func:`fast_collapse`, :func:`generalization`,
    :func:`temperature` and :func:`width` (their one definition, defaults included).
    """

    preset: str = "offline"
    dataset: str | None = None
    model: str | None = None
    epochs: int | None = None
    device: str | None = None
    out: str | Path | None = None
    fast: bool | None = None
    seed: int | None = None
    progress: bool = True
    strict: bool = False
    threads: int | None = None
    compile: bool = False
    resume: bool = True
    overrides: dict | None = None
    train_overrides: dict | None = None


def _apply_overrides(s: dict, opts: StudyOptions, name: str) -> dict:
    """Apply the options' overrides, dataset, model, epochs and seed to the settings dict ``s``; return it."""
    for key, val in (opts.overrides or {}).items():
        if key not in s and key not in ("width", "hidden", "random_labels"):
            raise ValueError(f"unknown setting {key!r}; known: {sorted(s)}")
        s[key] = copy.deepcopy(val)
    _apply_choices(s, opts, name)
    if opts.epochs is not None:
        s["train"]["epochs"] = train.TrainConfig(epochs=opts.epochs).epochs  # validates
    if opts.seed is not None:
        s["train"]["seed"] = config.check_seed(opts.seed)
    s["train"].update(opts.train_overrides or {})
    return s


def _apply_choices(s: dict, opts: StudyOptions, name: str) -> None:
    """Set the options' dataset and model in ``s``, checked against what ncbook has."""
    if opts.dataset is not None:
        if opts.dataset not in data.DATASETS:
            raise ValueError(f"dataset must be one of {data.DATASETS}, got {opts.dataset!r}")
        s["dataset"] = opts.dataset
    if opts.model is not None:
        if opts.model not in models.MODELS:
            raise ValueError(f"model must be one of {models.MODELS}, got {opts.model!r}")
        s["model"] = opts.model
        if opts.model == "resnet18vw" and name != "width":
            s.setdefault("width", 16)


def _runtime_settings(s: dict, opts: StudyOptions) -> torch.device:
    """Device-dependent training settings (not part of a run's identity: see ncbook.rundir)."""
    dev = config.default_device(opts.device)
    on_gpu = dev.type == "cuda"
    threads = opts.threads if opts.threads is not None else (1 if dev.type == "cpu" else 0)  # see TrainConfig
    s["train"].update(device=str(dev), progress=opts.progress, channels_last=on_gpu and s["model"] != "mlp",
                      compile=bool(opts.compile) and on_gpu, num_threads=threads)
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    return dev


def _run_study(name: str, opts: StudyOptions) -> ExperimentResult:
    s = _apply_overrides(settings(name, opts.preset, fast=opts.fast), opts, name)
    st = Study.from_dict(s)
    s["runs"] = [r.to_dict() for r in st.runs]
    _runtime_settings(s, opts)
    rank, _ = config.rank_and_world()
    t0 = time.perf_counter()
    cfg = train.TrainConfig.from_dict(s["train"])
    tr, te = _load_data(st, cfg.seed, opts.strict)
    s["data"] = {"train": tr.describe(), "test": te.describe()}
    out_dir = Path(opts.out) / name if opts.out is not None else None
    runs, times = {}, {}
    for spec in st.runs:
        hist = _train_one(name, opts, st, spec, cfg, tr, te, out_dir)
        runs[spec.label] = {k: v for k, v in hist.to_dict().items() if k != "time_s"}
        times[spec.label] = hist.last().get("time_s")
        if opts.progress and rank == 0:
            print(_summary_line(name, spec.label, hist.last()))
    res = ExperimentResult(name=name, preset=opts.preset, dataset=tr.name, requested_dataset=tr.requested,
                           runs=runs, settings=s, wall_time_s=round(time.perf_counter() - t0, 2),
                           out_dir=str(out_dir) if out_dir is not None else None, train_time_s=times)
    if out_dir is not None and rank == 0:
        res.save(out_dir / "result.json")
    return res


def _train_one(name, opts, st, spec, cfg, tr, te, out_dir):
    config.seed_everything(cfg.seed)
    net = _build(st, spec, tr)
    return train.train(net, tr, test_set=te if st.test_metrics else None, config=cfg,
                       run_dir=out_dir / spec.label if out_dir is not None else None, resume=opts.resume,
                       meta={"experiment": name, "preset": opts.preset, "run": spec.to_dict()},
                       label=f"{name}: {spec.label}")


def _summary_line(name: str, label: str, last: dict) -> str:
    return (f"  {name} / {label}: epoch {last['epoch']}, loss {last['loss']:.4g}, acc {last['acc']:.4f}, "
            f"NC1 {last['nc1']:.4g}, NC2 {last['nc2']:.4g}, NC3 {last['nc3']:.4g}")


_COMMON_DOC = """
    Parameters
    ----------
    preset : {"offline", "paper"}
        Offline: MLP on digits, CPU, minutes. Paper: the paper's CIFAR/ResNet setting (GPU).
    dataset : {"digits", "mnist1d", "cifar10", "cifar100"}, optional
        Override the preset's dataset. CIFAR falls back to digits when it cannot be had
        (``strict=True`` raises instead); ``result.dataset`` says what ran.
    model : {"mlp", "cnn", "resnet18", "resnet50", "resnet18vw"}, optional
        Override the preset's network.
    epochs : int, optional
        Override the number of epochs.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ... (default: CUDA when available). On CUDA the loop uses
        channels-last (CNNs) and the mixed precision the GPU supports (see
        :mod:`ncbook.precision`); ``compile=True`` adds ``torch.compile``.
    out : path, optional
        Write ``out/<name>/<run>/`` run folders (config, metrics, checkpoints) and
        ``out/<name>/result.json``; rerunning with the same ``out`` resumes unfinished runs
        (also on another device). ``ncbook.config.runs_dir(...)`` gives a folder under the
        storage root.
    fast : bool, optional
        FAST mode (default: ``ncbook.config.is_fast()``): seconds instead of minutes.
    seed : int, optional
    progress : bool
        tqdm bars and one line per finished run.
    threads : int, optional
        CPU threads for the run (default 1 on the CPU).
    strict : bool
        Raise instead of falling back to digits when CIFAR cannot be had.
    compile : bool
    resume : bool
        Continue the runs found in ``out`` (``False``: start them afresh).
    overrides : dict, optional
        Replace entries of :func:`settings` (e.g. ``{"n_per_class": 30, "runs": [...]}``).
    train_overrides : dict, optional
        Replace :class:`ncbook.train.TrainConfig` fields (e.g. ``{"lr": 0.1}``).

    Returns
    -------
    ExperimentResult
"""


def _study_function(name: str, doc: str):
    """Make the public function of study ``name``: keyword arguments are the fields of :class:`StudyOptions`."""

    def run_it(**options) -> ExperimentResult:
        try:
            opts = StudyOptions(**options)
        except TypeError:
            known = [f.name for f in dataclasses.fields(StudyOptions)]
            unknown = sorted(set(options) - set(known))
            raise TypeError(f"unknown argument(s) {unknown} of {run_it.__name__}; known: {known}") from None
        return _run_study(name, opts)

    run_it.__name__ = run_it.__qualname__ = name.replace("-", "_")
    run_it.__doc__ = doc + _COMMON_DOC
    run_it.__signature__ = inspect.Signature(
        [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
         for f in dataclasses.fields(StudyOptions)], return_annotation="ExperimentResult")
    return run_it


fast_collapse = _study_function("fast-collapse", """Normalized vs regularized arm on a small balanced training set.

    Which arm collapses faster.

    The released code's ``experiments/fastcollapse.sh`` (CIFAR-100, first 30 images per class, ResNet18, 100 epochs,
    tau = 1). Compare with ``result.compare("nc1")``.
""")
generalization = _study_function("generalization", """Normalized vs regularized arm on the whole training set.

    With test-set metrics.

    The released code's ``experiments/generalize.sh`` (CIFAR-100, ResNet18, 100 epochs). Test metrics are in
    ``result.runs[label]["test_acc"]``, ``["test_nc1"]``, ...
""")
temperature = _study_function("temperature", """The normalized arm for several values of the inverse temperature tau.

    The released code's ``experiments/temperature.sh`` (CIFAR-10, ResNet18, tau in {0.001, ..., 100}, 200 epochs).
""")
width = _study_function("width", """The normalized arm with random labels, for several network widths.

    The released code's ``experiments/width.sh`` (CIFAR-10, 200 per class, random labels, ResNet18 with channels
    k, 2k, 4k, 8k for k in {4, 8, 16, 32, 64}, 200 epochs). Random labels are applied to the
    training set only (the paper's code relabelled the test set too). Offline: an MLP with three
    hidden layers of width k.
""")

_FUNCS = {"fast-collapse": fast_collapse, "generalization": generalization, "temperature": temperature,
          "width": width}


def run(name: str, **options) -> ExperimentResult:
    """Run the study ``name`` (one of ``EXPERIMENTS``) with the keyword arguments of the study functions."""
    return _FUNCS[_check_name(name)](**options)


run.__signature__ = inspect.Signature(
    [inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="str"),
     *inspect.signature(fast_collapse).parameters.values()], return_annotation="ExperimentResult")


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ncbook.experiments",
                                description="Run one of the paper's deep-network studies and print a summary.")
    p.add_argument("name", choices=EXPERIMENTS)
    p.add_argument("--preset", choices=PRESETS, default="offline")
    p.add_argument("--dataset", choices=data.DATASETS, default=None)
    p.add_argument("--model", choices=models.MODELS, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--out", default=None, help="folder for run directories and result.json (resumable)")
    p.add_argument("--fast", action="store_true", help="FAST mode: tiny sizes, seconds")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default 1 on the CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbone (CUDA)")
    p.add_argument("--split-optimizer", action="store_true",
                   help="normalized arm: torch SGD for the Euclidean parameters, geoopt only for the sphere")
    p.add_argument("--strict", action="store_true", help="fail instead of falling back when CIFAR is unavailable")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if --out holds these runs")
    return p


def _init_distributed(device):
    """Join the process group started by torchrun (WORLD_SIZE/LOCAL_RANK are torchrun's protocol)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not torch.distributed.is_available() or torch.distributed.is_initialized():
        return device, False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = torch.cuda.is_available() and (device is None or str(device).startswith(("cuda", "gpu", "auto")))
    if want_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    torch.distributed.init_process_group("nccl" if want_cuda else "gloo")
    return (device or "cpu"), True


def main(argv=None) -> int:
    """Entry point of ``python -m ncbook.experiments``; returns the exit status.

    A bad argument or a damaged run folder prints one line (``error: ...``) to stderr and
    returns 2; an interruption returns 130.
    """
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _main(args) -> int:
    device, started = _init_distributed(args.device)
    rank, world = config.rank_and_world()
    try:
        t0 = time.perf_counter()
        res = run(args.name, preset=args.preset, dataset=args.dataset, model=args.model, epochs=args.epochs,
                  device=device, out=args.out, fast=True if args.fast else None, seed=args.seed,
                  progress=not args.no_progress, strict=args.strict, threads=args.threads, compile=args.compile,
                  resume=not args.no_resume,
                  train_overrides={"split_optimizer": True} if args.split_optimizer else None)
        if rank == 0:
            _print_summary(res, time.perf_counter() - t0, world)
    finally:
        if started:
            torch.distributed.destroy_process_group()
    return 0


def _print_summary(res: ExperimentResult, seconds: float, world: int) -> None:
    s = res.settings
    fell = f" (requested {res.requested_dataset})" if res.requested_dataset != res.dataset else ""
    print(f"\n{res.name} [{res.preset}{', FAST' if s['fast'] else ''}] on {res.dataset}{fell}, model {s['model']}, "
          f"{s['train']['epochs']} epochs, device {s['train']['device']}" + (f" x {world} ranks" if world > 1 else ""))
    print(f"train set: {s['data']['train']}")
    print(res.table())
    if res.name in ("fast-collapse", "generalization"):
        for metric in ("nc1", "nc2", "nc3"):
            c = res.compare(metric, "normalized", "regularized")
            if c["n"]:
                print(f"{metric.upper()}: normalized below regularized at {c['a_below_b']} of {c['n']} evaluation "
                      f"epochs; final {c['final'][0]:.4g} vs {c['final'][1]:.4g}")
    if res.out_dir:
        print(f"results: {res.out_dir}/result.json")
    print(f"wall time: {seconds:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
