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
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from . import config as _config
from . import data, models, train

__all__ = [
    "EXPERIMENTS",
    "PRESETS",
    "ExperimentResult",
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

# The released code's optimization settings (cjyaras/normalized-neural-collapse at 286f669:
# train.py defaults and experiments/*.sh).
_PAPER_TRAIN = {"batch_size": 128, "lr": 0.05, "momentum": 0.9, "lr_decay": 0.1, "lr_decay_period": 40,
                "weight_decay": 1e-4, "eval_every": 5, "seed": 0}

# Per study and preset: data, model, what varies, and training settings. Plain types only.
_SETTINGS = {
    ("fast-collapse", "offline"): {
        "dataset": "digits", "n_per_class": 100, "model": "mlp", "hidden": [256, 256, 256], "bias": False,
        "runs": [{"label": "normalized", "arm": "normalized", "tau": 1.0},
                 {"label": "regularized", "arm": "regularized"}],
        "test_metrics": False, "train": {**_PAPER_TRAIN, "epochs": 100}},
    ("fast-collapse", "paper"): {
        "dataset": "cifar100", "n_per_class": 30, "model": "resnet18", "bias": True,
        "runs": [{"label": "normalized", "arm": "normalized", "tau": 1.0},
                 {"label": "regularized", "arm": "regularized"}],
        "test_metrics": False, "train": {**_PAPER_TRAIN, "epochs": 100}},
    ("generalization", "offline"): {
        "dataset": "digits", "n_per_class": None, "model": "mlp", "hidden": [256, 256, 256], "bias": False,
        "runs": [{"label": "normalized", "arm": "normalized", "tau": 1.0},
                 {"label": "regularized", "arm": "regularized"}],
        "test_metrics": True, "train": {**_PAPER_TRAIN, "epochs": 100}},
    ("generalization", "paper"): {
        "dataset": "cifar100", "n_per_class": None, "model": "resnet18", "bias": True,
        "runs": [{"label": "normalized", "arm": "normalized", "tau": 1.0},
                 {"label": "regularized", "arm": "regularized"}],
        "test_metrics": True, "train": {**_PAPER_TRAIN, "epochs": 100}},
    ("temperature", "offline"): {
        "dataset": "digits", "n_per_class": 100, "model": "mlp", "hidden": [256, 256, 256], "bias": False,
        "runs": [{"label": f"tau={t:g}", "arm": "normalized", "tau": t} for t in (0.01, 0.1, 1.0, 5.0, 10.0, 100.0)],
        "test_metrics": False, "train": {**_PAPER_TRAIN, "epochs": 100}},
    ("temperature", "paper"): {
        "dataset": "cifar10", "n_per_class": None, "model": "resnet18", "bias": True,
        "runs": [{"label": f"tau={t:g}", "arm": "normalized", "tau": t}
                 for t in (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 100.0)],
        "test_metrics": False, "train": {**_PAPER_TRAIN, "epochs": 200}},
    ("width", "offline"): {
        "dataset": "digits", "n_per_class": 50, "model": "mlp", "bias": False, "random_labels": "train",
        "runs": [{"label": f"width={k}", "arm": "normalized", "tau": 1.0, "width": k} for k in (16, 64, 256, 1024)],
        "test_metrics": False, "train": {**_PAPER_TRAIN, "epochs": 100}},
    ("width", "paper"): {
        "dataset": "cifar10", "n_per_class": 200, "model": "resnet18vw", "bias": False, "random_labels": "train",
        "runs": [{"label": f"width={k}", "arm": "normalized", "tau": 1.0, "width": k} for k in (4, 8, 16, 32, 64)],
        "test_metrics": False, "train": {**_PAPER_TRAIN, "epochs": 200}},
}


def _fast(s: dict, name: str) -> dict:
    """Shrink a setting for FAST mode: a few epochs, a few examples per class, tiny models."""
    s = copy.deepcopy(s)
    s["train"].update(epochs=4, eval_every=2, lr_decay_period=3, batch_size=32)
    s["n_per_class"] = 8
    if s["model"] == "mlp":
        s["hidden"] = [32, 32]
    elif s["model"] in ("resnet18", "resnet50", "cnn"):
        s["model"], s["width"] = ("cnn", 4) if s["model"] == "cnn" else ("resnet18vw", 2)
    if name == "temperature":
        s["runs"] = [r for r in s["runs"] if r["tau"] in (0.1, 1.0, 10.0)]
    if name == "width":
        s["runs"] = s["runs"][:2]
        for r, k in zip(s["runs"], (16, 64) if s["model"] == "mlp" else (2, 4)):
            r["width"], r["label"] = k, f"width={k}"
    return s


def settings(name: str, preset: str = "offline", *, fast: bool | None = None) -> dict:
    """The settings a study runs with (a fresh dict of plain types; change it and pass it back as
    ``overrides`` to the study function)."""
    name = _check_name(name)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    s = copy.deepcopy(_SETTINGS[(name, preset)])
    fast = _config.is_fast() if fast is None else bool(fast)
    if fast:
        s = _fast(s, name)
    s.update(name=name, preset=preset, fast=fast)
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
        """A plain-text table of the final metrics of every run."""
        shown = [m for m in metrics_shown if all(m in c for c in self.runs.values())]
        if any("test_acc" in c for c in self.runs.values()):
            shown += [m for m in ("test_acc", "test_nc1") if all(m in c for c in self.runs.values())]
        width = max([len("run")] + [len(k) for k in self.runs]) + 2
        lines = ["run".ljust(width) + "epoch".rjust(6) + "".join(m.rjust(11) for m in shown)]
        for label, cols in self.runs.items():
            vals = "".join(_fmt(cols[m][-1]).rjust(11) for m in shown)
            lines.append(label.ljust(width) + str(cols["epoch"][-1]).rjust(6) + vals)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path) -> Path:
        """Write the result as JSON (atomically) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        train._write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path) -> ExperimentResult:
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


def _load_data(s: dict, strict: bool):
    """Train/test sets for the settings ``s`` (subset, random labels, standardization)."""
    flat = s["model"] == "mlp"
    rank, world = train._dist()
    quiet = rank != 0
    if world > 1 and rank != 0:
        torch.distributed.barrier()  # let rank 0 download first
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        tr, te = data.load_splits(s["dataset"], test_fraction=0.2, seed=s["train"]["seed"], flat=flat, strict=strict)
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    n = s.get("n_per_class")
    if n:
        counts = data.class_counts(tr)
        if min(counts) < n:
            if not quiet:
                print(f"ncbook.experiments: {tr.name} has only {min(counts)} training examples in its smallest class; "
                      f"using n_per_class={min(counts)} instead of {n}.")
            n = min(counts)
        tr = data.balanced_subset(tr, n, mode="first")
    rl = s.get("random_labels")
    if rl not in (None, False, "train", "both"):
        raise ValueError(f"random_labels must be None, 'train' or 'both', got {rl!r}")
    if rl:
        tr = data.random_labels(tr, seed=s["train"]["seed"])
        if rl == "both":
            te = data.random_labels(te, seed=s["train"]["seed"] + 1)
    tr, te = data.standardize(tr, te)
    return tr, te


def _build(s: dict, run: dict, ds: data.Dataset) -> models.NCNet:
    width = run.get("width", s.get("width"))
    hidden = s.get("hidden")
    if s["model"] == "mlp" and "width" in run:
        hidden = [run["width"]] * 3
    return models.build_model(s["model"], num_classes=ds.num_classes, input_shape=ds.input_shape, arm=run["arm"],
                              tau=run.get("tau", 1.0), bias=s.get("bias", False), width=width, hidden=hidden)


def _run_study(name: str, *, preset: str = "offline", dataset: str | None = None, model: str | None = None,
               epochs: int | None = None, device=None, out=None, fast: bool | None = None, seed: int | None = None,
               progress: bool = True, strict: bool = False, threads: int | None = None, compile: bool = False,
               overrides: dict | None = None, train_overrides: dict | None = None) -> ExperimentResult:
    s = settings(name, preset, fast=fast)
    for key, val in (overrides or {}).items():
        if key not in s and key not in ("width", "hidden", "random_labels"):
            raise ValueError(f"unknown setting {key!r}; known: {sorted(s)}")
        s[key] = copy.deepcopy(val)
    labels = [r.get("label") for r in s["runs"]]
    if not labels or None in labels or len(set(labels)) != len(labels):
        raise ValueError(f"every run needs a distinct 'label', got {labels}")
    if dataset is not None:
        if dataset not in data.DATASETS:
            raise ValueError(f"dataset must be one of {data.DATASETS}, got {dataset!r}")
        s["dataset"] = dataset
    if model is not None:
        if model not in models.MODELS:
            raise ValueError(f"model must be one of {models.MODELS}, got {model!r}")
        s["model"] = model
        if model == "resnet18vw" and name != "width":
            s.setdefault("width", 16)
    if epochs is not None:
        s["train"]["epochs"] = train.TrainConfig(epochs=epochs).epochs  # validates
    if seed is not None:
        s["train"]["seed"] = int(seed)
    s["train"].update(train_overrides or {})
    dev = _config.default_device(device)
    on_gpu = dev.type == "cuda"
    s["train"].update(device=str(dev), progress=bool(progress), channels_last=on_gpu and s["model"] != "mlp",
                      bf16=on_gpu, compile=bool(compile) and on_gpu)
    if threads is None:
        threads = 1 if dev.type == "cpu" else 0  # small CPU models: one thread is fastest (see TrainConfig)
    s["train"]["num_threads"] = int(threads)
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    rank, _ = train._dist()
    t0 = time.perf_counter()
    tr, te = _load_data(s, strict)
    s["data"] = {"train": tr.describe(), "test": te.describe()}
    cfg = train.TrainConfig.from_dict(s["train"])
    out_dir = Path(out) / name if out is not None else None
    runs, times = {}, {}
    for run_spec in s["runs"]:
        _config.seed_everything(cfg.seed)
        net = _build(s, run_spec, tr)
        run_dir = out_dir / run_spec["label"] if out_dir is not None else None
        hist = train.train(net, tr, test_set=te if s["test_metrics"] else None, config=cfg, run_dir=run_dir,
                           meta={"experiment": name, "preset": preset, "run": run_spec})
        runs[run_spec["label"]] = {k: v for k, v in hist.to_dict().items() if k != "time_s"}
        times[run_spec["label"]] = hist.last().get("time_s")
        if progress and rank == 0:
            last = hist.last()
            print(f"  {name} / {run_spec['label']}: epoch {last['epoch']}, loss {last['loss']:.4g}, "
                  f"acc {last['acc']:.4f}, NC1 {last['nc1']:.4g}, NC2 {last['nc2']:.4g}, NC3 {last['nc3']:.4g}")
    res = ExperimentResult(name=name, preset=preset, dataset=tr.name, requested_dataset=tr.requested, runs=runs,
                           settings=s, wall_time_s=round(time.perf_counter() - t0, 2),
                           out_dir=str(out_dir) if out_dir is not None else None, train_time_s=times)
    if out_dir is not None and rank == 0:
        res.save(out_dir / "result.json")
    return res


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
        channels-last (CNNs) and bf16 autocast; ``compile=True`` adds ``torch.compile``.
    out : path, optional
        Write ``out/<name>/<run>/`` run folders (config, metrics, checkpoints) and
        ``out/<name>/result.json``; rerunning with the same ``out`` resumes unfinished runs.
    fast : bool, optional
        FAST mode (default: ``ncbook.config.is_fast()``): seconds instead of minutes.
    seed : int, optional
    progress : bool
        tqdm bars and one line per finished run.
    threads : int, optional
        CPU threads for the run (default 1 on the CPU).
    overrides : dict, optional
        Replace entries of :func:`settings` (e.g. ``{"n_per_class": 30, "runs": [...]}``).
    train_overrides : dict, optional
        Replace :class:`ncbook.train.TrainConfig` fields (e.g. ``{"lr": 0.1}``).

    Returns
    -------
    ExperimentResult
"""


def fast_collapse(**kwargs) -> ExperimentResult:
    return _run_study("fast-collapse", **kwargs)


def generalization(**kwargs) -> ExperimentResult:
    return _run_study("generalization", **kwargs)


def temperature(**kwargs) -> ExperimentResult:
    return _run_study("temperature", **kwargs)


def width(**kwargs) -> ExperimentResult:
    return _run_study("width", **kwargs)


fast_collapse.__doc__ = """Normalized vs regularized arm on a small balanced training set: which collapses faster.

    The paper's ``fastcollapse.sh`` (CIFAR-100, first 30 images per class, ResNet18, 100 epochs,
    tau = 1). Compare with ``result.compare("nc1")``.
""" + _COMMON_DOC
generalization.__doc__ = """Normalized vs regularized arm on the whole training set, with test-set metrics.

    The paper's ``generalize.sh`` (CIFAR-100, ResNet18, 100 epochs). Test metrics are in
    ``result.runs[label]["test_acc"]``, ``["test_nc1"]``, ...
""" + _COMMON_DOC
temperature.__doc__ = """The normalized arm for several inverse temperatures tau.

    The paper's ``temperature.sh`` (CIFAR-10, ResNet18, tau in {0.001, ..., 100}, 200 epochs).
""" + _COMMON_DOC
width.__doc__ = """The normalized arm with random labels, for several network widths.

    The paper's ``width.sh`` (CIFAR-10, 200 per class, random labels, ResNet18 with channels
    k, 2k, 4k, 8k for k in {4, 8, 16, 32, 64}, 200 epochs). Random labels are applied to the
    training set only (the paper's code relabelled the test set too). Offline: an MLP with three
    hidden layers of width k.
""" + _COMMON_DOC

_FUNCS = {"fast-collapse": fast_collapse, "generalization": generalization, "temperature": temperature,
          "width": width}


def run(name: str, **kwargs) -> ExperimentResult:
    """Run the study ``name`` (one of ``EXPERIMENTS``) with the keyword arguments of the study functions."""
    return _FUNCS[_check_name(name)](**kwargs)


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
    """Entry point of ``python -m ncbook.experiments``; returns the exit status."""
    args = _parser().parse_args(argv)
    device, started = _init_distributed(args.device)
    rank, world = train._dist()
    try:
        t0 = time.perf_counter()
        res = run(args.name, preset=args.preset, dataset=args.dataset, model=args.model, epochs=args.epochs,
                  device=device, out=args.out, fast=True if args.fast else None, seed=args.seed,
                  progress=not args.no_progress, strict=args.strict, threads=args.threads, compile=args.compile,
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
