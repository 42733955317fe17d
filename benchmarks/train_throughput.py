"""Training throughput of ncbook.train against a loop written the way the paper's code does it.

Both loops train the same network (ResNet18 by default, normalized arm, batch 128) on the same
CIFAR-shaped random tensors (3x32x32, 100 classes), in the same process, and the table reports
images per second and the ratio to the reference:

* ``reference``: the paper's style -- a CPU ``DataLoader`` over a ``TensorDataset`` (shuffled,
  no workers), float32, contiguous NCHW, ``.to(device)`` of every batch, ``torch.optim.SGD`` and
  a row renormalization of the classifier after every step (its projected SGD);
* ``ncbook fp32``: :class:`ncbook.train.Trainer` with the data kept on the device, float32;
* ``ncbook channels_last+bf16``: the same plus channels-last and the mixed precision the GPU supports
  (bf16 autocast, or fp16 with a gradient scaler before compute capability 8.0; CUDA only), and
  ``torch.compile`` of the backbone with ``--compile``;
* ``...+split_optimizer``: the same with ``TrainConfig(split_optimizer=True)`` (torch's
  multi-tensor SGD for the Euclidean parameters, geoopt for the sphere only).

Each variant runs ``--warmup`` untimed steps (cuDNN autotuning, compilation), then ``--steps``
timed steps between ``torch.cuda.synchronize()`` calls. The script always exits 0; a variant
that fails prints its error in the table.

Usage::

    python benchmarks/train_throughput.py                       # CPU: 2 timed steps per variant
    python benchmarks/train_throughput.py --device cuda --steps 100 --warmup 20 --compile
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ncbook import config, data, models, precision, train  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _dataset(n, num_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return data.Dataset(X, y, "random-cifar-shaped", num_classes)


def _model(args, ds):
    config.seed_everything(0)
    return models.build_model(args.model, num_classes=ds.num_classes, input_shape=ds.input_shape, arm=args.arm,
                              width=args.width, bias=True)


def run_reference(args, ds, device):
    """The paper's way: CPU DataLoader, fp32 NCHW, per-step .to(device), SGD + row renormalization."""
    net = _model(args, ds).to(device)
    net.train()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ds.X, ds.y), batch_size=args.batch_size,
                                         shuffle=True, drop_last=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    lam = 1e-4

    def step(x, y):
        x, y = x.to(device), y.to(device)
        logits, feats = net(x)
        loss = F.cross_entropy(logits, y)
        if args.arm == "regularized":
            loss = loss + lam / 2 * net.classifier_weight.pow(2).sum() + lam / 2 * feats.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():  # the paper's normalize_fc(), after every step
            w = net.classifier_weight
            w.copy_(F.normalize(w, dim=1))

    it = iter(loader)
    for _ in range(args.warmup):
        step(*next(it))
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(*next(it))
    _sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - t0)


def run_ncbook(args, ds, device, *, fast: bool, split: bool = False):
    cuda = device.type == "cuda"
    cfg = train.TrainConfig(batch_size=args.batch_size, device=str(device), progress=False, split_optimizer=split,
                            channels_last=fast and cuda, precision="auto" if fast else "fp32",
                            compile=fast and args.compile)
    trainer = train.Trainer(_model(args, ds), ds, cfg)
    if args.warmup:
        trainer.train_epoch(max_steps=args.warmup)  # ends with a sync (.item())
    _sync(device)
    t0 = time.perf_counter()
    trainer.train_epoch(max_steps=args.steps)
    _sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 50 on CUDA, 2 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 10 on CUDA, 0 on CPU)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--model", default="resnet18", choices=["resnet18", "resnet50", "resnet18vw"])
    p.add_argument("--width", type=int, default=None, help="ResNet base width (default 64)")
    p.add_argument("--arm", default="normalized", choices=list(models.ARMS))
    p.add_argument("--compile", action="store_true", help="also torch.compile the backbone in the 'ncbook fast' row")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    device = config.default_device(args.device)
    cuda = device.type == "cuda"
    args.steps = args.steps or (50 if cuda else 2)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 0)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        p.error("--steps and --batch-size must be >= 1 and --warmup >= 0")
    if args.model == "resnet18vw" and args.width is None:
        args.width = 16
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = True
    ds = _dataset((args.warmup + args.steps) * args.batch_size, 100)

    name = torch.cuda.get_device_name(device) if cuda else platform.processor() or platform.machine()
    print(f"device: {device} ({name}); torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"model {args.model}{'' if args.width is None else f' width {args.width}'}, arm {args.arm}, "
          f"batch {args.batch_size}, {args.warmup} warm-up + {args.steps} timed steps")
    variants = [("reference (paper style)", lambda: run_reference(args, ds, device)),
                ("ncbook fp32, data on device", lambda: run_ncbook(args, ds, device, fast=False))]
    if cuda:
        amp = precision.resolve("auto", device)  # bf16 on compute capability >= 8.0, fp16 + GradScaler below
        label = f"ncbook channels_last+{amp}" + ("+compile" if args.compile else "")
        variants.append((label, lambda: run_ncbook(args, ds, device, fast=True)))
        if args.arm == "normalized":
            variants.append((label + "+split_optimizer", lambda: run_ncbook(args, ds, device, fast=True, split=True)))
    rows, ref = [], None
    for label, fn in variants:
        try:
            ips = fn()
            if ref is None:
                ref = ips
            rows.append((label, f"{ips:10.1f}", f"{ips / ref:6.2f}x" if ref else "-"))
        except Exception as exc:  # noqa: BLE001 - report and go on: the table must always print
            traceback.print_exc(file=sys.stderr)
            rows.append((label, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:60] if str(exc) else ''}"))
        if cuda:
            torch.cuda.empty_cache()
    w = max(len(r[0]) for r in rows) + 2
    print(f"\n{'variant'.ljust(w)}{'images/s':>10}  vs reference")
    for label, ips, ratio in rows:
        print(f"{label.ljust(w)}{ips:>10}  {ratio}")
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as exc:  # argparse errors keep their code
        raise exc
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        code = 0
    sys.exit(code)
