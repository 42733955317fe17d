"""Input validation shared by every public function of :mod:`ncbook`: one vocabulary.

Each checker takes the value and the **user's name for it** and raises a :class:`TypeError` (wrong
kind) or :class:`ValueError` (wrong value) whose message names that argument and what was
expected, so that a learner sees ``tau must be a finite number > 0`` instead of a NaN three calls
later or a deep torch traceback. Numbers may be Python or numpy scalars (``np.float32(1e-10)``,
``np.int64(3)``); bools are never numbers. The vocabulary:

* numbers: :func:`check_real` (interval), :func:`check_positive_real`, :func:`check_tolerance`
  (``>= 0``, optionally None), :func:`check_tau`, :func:`check_integer`, :func:`check_positive_int`;
* tensors: :func:`check_tensor` / :func:`as_tensor` (floating), :func:`check_finite`,
  :func:`check_matrix` (dimensions, nonempty, finite), :func:`check_points` and
  :func:`check_unit_rows` (rows on the sphere), :func:`check_blocks` (a tensor or tuple of them),
  :func:`check_scales` (per-block factors);
* shapes, dtype and device: :func:`check_same_shape`, :func:`check_compatible`,
  :func:`check_float_dtype`, :func:`check_dim` (``d >= K-1``);
* labels: :func:`check_labels`.

They are public so that every layer (the training side included) uses the same words.
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = [
    "as_tensor",
    "check_dim",
    "check_finite",
    "check_labels",
    "check_positive_int",
    "check_positive_real",
    "check_tau",
    "check_unit_rows",
    "check_matrix",
    "check_same_shape",
    "check_compatible",
    "check_float_dtype",
    "check_real",
    "check_tensor",
    "check_integer",
    "check_points",
    "check_tolerance",
    "check_scales",
    "check_blocks",
]

#: Tolerance on ``| ||x|| - 1 |`` for "this row is on the sphere", per dtype.
UNIT_TOL = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-4, torch.float64: 1e-8}


def check_tensor(x, name: str) -> torch.Tensor:
    """Return ``x`` if it is a floating-point tensor (any shape), else raise :class:`TypeError` naming ``name``.

    Same as :func:`as_tensor`.
    """
    return as_tensor(x, name)


def as_tensor(x, name: str) -> torch.Tensor:
    """Return ``x`` if it is a floating-point tensor, else raise :class:`TypeError`."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must have a floating dtype (float32/float64), got {x.dtype}")
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise :class:`ValueError` if ``x`` holds NaN or inf."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return x


def check_matrix(x, name: str, *, min_ndim: int = 2, max_ndim: int | None = None) -> torch.Tensor:
    """Return ``x`` if it is a finite floating tensor with ``min_ndim <= x.ndim <= max_ndim``, else raise.

    The tensor and its last axis must be nonempty.
    """
    x = as_tensor(x, name)
    if x.ndim < min_ndim or (max_ndim is not None and x.ndim > max_ndim):
        want = f"{min_ndim}" if max_ndim == min_ndim else f">= {min_ndim}"
        raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    if x.numel() == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name} must be nonempty, got shape {tuple(x.shape)}")
    return check_finite(x, name)


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise :class:`ValueError` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_compatible(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise :class:`TypeError` unless ``a`` and ``b`` share dtype and device."""
    if a.dtype != b.dtype or a.device != b.device:
        raise TypeError(
            f"{name_a} and {name_b} must share dtype and device, got {a.dtype}/{a.device} and {b.dtype}/{b.device}"
        )


def check_float_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """Return ``dtype`` after checking it is a floating torch dtype (``None`` is not accepted)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch dtype such as torch.float64, got {dtype!r}")
    return dtype


def check_unit_rows(x: torch.Tensor, name: str, tol: float | None = None) -> torch.Tensor:
    """Raise :class:`ValueError` unless every row (last axis) of ``x`` has unit Euclidean norm."""
    tol = UNIT_TOL.get(x.dtype, 1e-4) if tol is None else check_tolerance(tol, "tol")
    if x.numel() == 0:
        raise ValueError(f"{name} must be nonempty, got shape {tuple(x.shape)}")
    err = (torch.linalg.vector_norm(x, dim=-1) - 1).abs().max().item()
    if not err <= tol:  # also catches NaN, which compares False
        raise ValueError(
            f"{name} must have unit-norm rows (points on the sphere); largest | ||row|| - 1 | is {err:.3g}. "
            "Use ncbook.sphere.normalize first."
        )
    return x


def _is_real(v) -> bool:
    """Whether ``v`` is a real number; plain ``float`` and ``int`` skip the slower ABC check (hot in the solvers)."""
    return type(v) is float or type(v) is int or isinstance(v, numbers.Real)


def _is_integer(v) -> bool:
    """Whether ``v`` is an integer (``int`` first, then the ABC: numpy integers count)."""
    return type(v) is int or isinstance(v, numbers.Integral)


def check_positive_real(v, name: str) -> float:
    """Return ``v`` as a float after checking that it is a finite real number > 0 (numpy scalars accepted)."""
    if isinstance(v, bool) or not _is_real(v):
        raise TypeError(f"{name} must be a real number > 0, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v}")
    return v


def check_tau(tau) -> float:
    """Return ``tau`` as a float after checking that it is a finite real number > 0."""
    if isinstance(tau, torch.Tensor) and tau.numel() == 1 and not tau.is_complex() and tau.dtype != torch.bool:
        tau = tau.item()
    return check_positive_real(tau, "tau")


def check_positive_int(v, name: str, minimum: int = 1) -> int:
    """Return ``v`` as an int after checking it is an integer ``>= minimum``."""
    if isinstance(v, bool) or not _is_integer(v):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return int(v)


def check_integer(v, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``v`` as ``int`` if it is an integer (Python or numpy, not bool) in ``[minimum, maximum]``.

    A bound that is None means unbounded on that side.
    """
    if isinstance(v, bool) or not _is_integer(v):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    v = int(v)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v}")
    return v


def check_points(x, name: str, *, min_ndim: int = 1, max_ndim: int | None = None) -> torch.Tensor:
    """Points on a product of spheres: a finite floating tensor whose rows (last axis) have unit norm."""
    return check_unit_rows(check_matrix(x, name, min_ndim=min_ndim, max_ndim=max_ndim), name)


def check_dim(d: int, K: int) -> None:
    """Raise :class:`ValueError` unless ``d >= K - 1`` (a simplex ETF with K vectors exists in R^d)."""
    if d < K - 1:
        raise ValueError(f"d must be >= K - 1 for a simplex ETF to exist, got d={d}, K={K}")


def check_labels(y, N: int, K: int | None = None, name: str = "y") -> torch.Tensor:
    """Check integer labels of shape ``(N,)`` with values in ``[0, K)`` (``>= 0`` when ``K`` is None)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of int64 labels, got {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must have an integer dtype (int64), got {y.dtype}")
    if y.ndim != 1 or y.shape[0] != N:
        raise ValueError(f"{name} must have shape ({N},) to match the features, got {tuple(y.shape)}")
    if N and K is not None and (int(y.min()) < 0 or int(y.max()) >= K):
        raise ValueError(f"{name} must hold labels in [0, {K}), got range [{int(y.min())}, {int(y.max())}]")
    if N and K is None and int(y.min()) < 0:
        raise ValueError(f"{name} must hold labels >= 0, got a minimum of {int(y.min())}")
    return y.long()


def check_real(v, name: str, *, low: float | None = None, high: float | None = None, low_open: bool = False,
               high_open: bool = False) -> float:
    """Return ``v`` as a float after checking it is a finite real number in the given interval.

    Accepts Python and numpy numbers (not bools) and one-element real tensors. ``low``/``high``
    bound the interval (None: unbounded); ``low_open``/``high_open`` exclude the end point.
    """
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_complex() and v.dtype != torch.bool:
        v = v.item()
    if isinstance(v, bool) or not _is_real(v):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    v = float(v)
    ok = math.isfinite(v) and (low is None or (v > low if low_open else v >= low)) and (
        high is None or (v < high if high_open else v <= high))
    if not ok:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {v!r}")
    return v


def check_tolerance(v, name: str, *, allow_none: bool = False) -> float | None:
    """Return ``v`` as a float after checking it is a tolerance: a finite real number ``>= 0``.

    Numpy scalars are accepted; None is accepted (and returned) when ``allow_none``.
    """
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not (_is_real(v) or isinstance(v, torch.Tensor)):
        extra = " or None" if allow_none else ""
        raise TypeError(f"{name} must be a real number >= 0{extra}, got {type(v).__name__}")
    return check_real(v, name, low=0.0)


def check_scales(scales, m: int, name: str = "scales") -> tuple:
    """Per-block step factors: None (all 1) or a sequence of ``m`` finite numbers > 0; returns a tuple of floats."""
    if scales is None:
        return (1.0,) * m
    if isinstance(scales, (str, bytes)) or not isinstance(scales, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple of {m} positive numbers, got {type(scales).__name__}")
    if len(scales) != m:
        raise ValueError(f"{name} must have one entry per block ({m}), got {len(scales)}")
    return tuple(check_positive_real(s, f"{name}[{i}]") for i, s in enumerate(scales))


def check_blocks(points, name: str) -> tuple[tuple, bool]:
    """Return ``(tuple_of_tensors, was_single_tensor)`` for a tensor or a nonempty tuple/list of tensors.

    Every block must be a finite floating tensor with at least one axis.
    """
    if isinstance(points, torch.Tensor):
        return (check_matrix(points, name, min_ndim=1),), True
    if not isinstance(points, (tuple, list)) or len(points) == 0:
        raise TypeError(f"{name} must be a tensor or a nonempty tuple of tensors, got {type(points).__name__}")
    return tuple(check_matrix(p, f"{name}[{i}]", min_ndim=1) for i, p in enumerate(points)), False
