r"""Mixed precision for the training steps, chosen by what the device supports.

``precision="auto"`` resolves, per device, to

* ``"bf16"`` on CUDA GPUs of compute capability 8.0 or newer (Ampere, Hopper, ...): bfloat16
  autocast, whose exponent range is float32's, so no loss scaling is needed;
* ``"fp16"`` on older CUDA GPUs (e.g. the T4 of Colab's free tier, capability 7.5, which has fast
  float16 tensor cores but no fast bfloat16): float16 autocast with a
  :class:`torch.amp.GradScaler`, which multiplies the loss before ``backward`` so that small
  gradients do not underflow, and skips a step whose gradients overflowed;
* ``"fp32"`` on the CPU.

Evaluation always runs in float32 (see :mod:`ncbook.evaluation`). The precision is not part of
the identity of a run: a checkpoint written in bf16 on a GPU continues in float32 on a CPU.

Introduced in: chapter 08 (deep networks).
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "resolve", "autocast", "grad_scaler"]

#: Accepted values of ``TrainConfig.precision``.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve(precision: str, device) -> str:
    """Return the precision ``"fp32"``, ``"bf16"`` or ``"fp16"`` that ``precision`` means on ``device``."""
    if not isinstance(precision, str):
        raise TypeError(f"precision must be one of {PRECISIONS}, got {type(precision).__name__}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    major, _ = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def autocast(device, precision: str):
    """Context manager: autocast to ``precision`` (a resolved one) on ``device``, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=_DTYPES[precision])


def grad_scaler(device, precision: str):
    """Return a :class:`torch.amp.GradScaler` for fp16, ``None`` otherwise."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)
