r"""Derivative checks by numbers: Taylor-remainder slopes along a retraction curve.

Let :math:`c(t) = R_x(t u)` be a retraction curve through a point :math:`x` with unit tangent
direction :math:`u`. If ``grad`` is the Riemannian gradient of :math:`f`, then

.. math:: E_1(t) = \big| f(c(t)) - f(x) - t\,\langle \operatorname{grad} f(x), u\rangle \big| = O(t^2),

so on a log-log plot :math:`E_1` against :math:`t` has slope 2; a wrong gradient leaves a first-order
term and slope 1. With a second-order retraction (the sphere's normalization retraction is one) and
a correct Riemannian Hessian,

.. math:: E_2(t) = \big| f(c(t)) - f(x) - t\,\langle g, u\rangle
          - \tfrac{t^2}{2} \langle u, \operatorname{Hess} f(x)[u]\rangle \big| = O(t^3),

slope 3; forgetting the curvature term of the Riemannian Hessian leaves slope 2 away from critical
points. The functions here **return** the fitted slope with the step sizes and remainders (so a test
can assert on it and the book can plot it); they print and plot nothing.

A point ``x`` is a tensor, or a tuple of tensors for a product manifold such as the UFM point
``(W, H)``; functions ``f(x)``, ``grad(x)`` and ``hess_vec(x, u)`` receive the point in that same
form. The retraction acts on each component.

Introduced in: chapter 02 (optimization on the sphere). pymanopt has the same idea in
``pymanopt.tools.diagnostics`` (``check_gradient``, ``check_hessian``), which plots instead of returning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

import numpy as np
import torch

from . import sphere
from ._checks import (
    as_tensor,
    check_finite,
    check_positive_int,
    check_positive_real,
    check_real,
    check_tolerance,
    check_unit_rows,
)

__all__ = [
    "TaylorCheck",
    "check_gradient",
    "check_hessian",
    "check_retraction",
    "fd_directional_derivative",
    "fd_second_derivative",
    "fit_slope",
    "default_steps",
]

Point = Union[torch.Tensor, tuple]

#: The named retractions: ``"sphere"`` (normalization, second order), ``"exp"`` (exponential map)
#: and ``"euclidean"`` (:math:`x + u`, for checks in flat space).
RETRACTIONS = ("sphere", "exp", "euclidean")


def default_steps(num: int = 41, lo: float = 1e-8, hi: float = 1.0) -> np.ndarray:
    """Step sizes ``t``, log-spaced from ``lo`` to ``hi`` (5 per decade by default)."""
    num = check_positive_int(num, "num", minimum=5)
    lo, hi = check_positive_real(lo, "lo"), check_positive_real(hi, "hi")
    if not lo < hi:
        raise ValueError(f"lo must be < hi, got lo={lo}, hi={hi}")
    return np.logspace(math.log10(lo), math.log10(hi), num)


@dataclass(frozen=True)
class TaylorCheck:
    """Outcome of a Taylor-remainder check.

    Attributes
    ----------
    slope : float
        Least-squares slope of ``log10(remainders)`` against ``log10(steps)`` over the fitted points;
        ``inf`` when every remainder is at round-off level (the model is exact along the curve).
    expected : float
        The slope a correct derivative gives (2 for a gradient, 3 for a Hessian or a second-order retraction).
    steps, remainders : ndarray, shape ``(num,)``
        Step sizes ``t`` and remainders ``E(t)``, ready for ``plt.loglog(steps, remainders)``.
    fitted : ndarray of bool, shape ``(num,)``
        Which points entered the fit: the smallest steps whose remainders stand clear of round-off.
    intercept : float
        Intercept of the fitted line in log10 units.
    floor : float
        Round-off floor: remainders at or below it were not fitted.
    tol : float
        ``passed`` means ``slope >= expected - tol``.
    """

    slope: float
    expected: float
    steps: np.ndarray = field(repr=False)
    remainders: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    intercept: float = float("nan")
    floor: float = 0.0
    tol: float = 0.25

    @property
    def passed(self) -> bool:
        """True when the slope is at least ``expected - tol`` (a larger slope is a vanishing leading term)."""
        return bool(self.slope >= self.expected - self.tol)

    def fitted_line(self) -> np.ndarray:
        """Return the fitted power law ``10**intercept * steps**slope``, shaped like ``steps``.

        Entries where the law was not fitted are NaN.
        """
        line = np.full_like(self.steps, np.nan)
        if np.isfinite(self.slope):
            line[self.fitted] = 10.0 ** self.intercept * self.steps[self.fitted] ** self.slope
        return line


# ---------------------------------------------------------------------------------------------
# points, directions and retractions on products
# ---------------------------------------------------------------------------------------------

def _parts(x, name: str) -> tuple[list[torch.Tensor], bool]:
    """Split a point or tangent vector into its component tensors; remember whether it was a tuple."""
    if isinstance(x, torch.Tensor):
        parts, is_tuple = [x], False
    elif isinstance(x, (tuple, list)) and len(x) > 0:
        parts, is_tuple = list(x), True
    else:
        raise TypeError(f"{name} must be a torch.Tensor or a nonempty tuple of tensors, got {type(x).__name__}")
    for i, p in enumerate(parts):
        label = f"{name}[{i}]" if is_tuple else name
        as_tensor(p, label)
        if p.numel() == 0:
            raise ValueError(f"{label} must be nonempty, got shape {tuple(p.shape)}")
        check_finite(p, label)
        if p.dtype != parts[0].dtype or p.device != parts[0].device:
            raise TypeError(f"every component of {name} must share dtype and device")
    return parts, is_tuple


def _pack(parts: list[torch.Tensor], is_tuple: bool):
    return tuple(parts) if is_tuple else parts[0]


def _like(v, x_parts: list[torch.Tensor], is_tuple: bool, name: str) -> list[torch.Tensor]:
    """Check that ``v`` has the structure, shapes, dtype and device of the point."""
    if is_tuple and isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a tuple of {len(x_parts)} tensors like the point x, got a single tensor")
    if not is_tuple and not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor like the point x, got {type(v).__name__}")
    parts, _ = _parts(v, name)
    if len(parts) != len(x_parts):
        raise ValueError(f"{name} must have {len(x_parts)} components like the point x, got {len(parts)}")
    for i, (p, q) in enumerate(zip(parts, x_parts)):
        label = f"{name}[{i}]" if is_tuple else name
        if p.shape != q.shape:
            raise ValueError(f"{label} must have shape {tuple(q.shape)} like the point x, got {tuple(p.shape)}")
        if p.dtype != q.dtype or p.device != q.device:
            raise TypeError(
                f"{label} must have dtype {q.dtype} on {q.device} like the point x, got {p.dtype}/{p.device}"
            )
    return parts


def _inner(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(sum((p * q).sum() for p, q in zip(a, b)))


def _resolve(retraction, project):
    """Return ``(retract(x_part, u_part), project(x_part, u_part), on_sphere)`` for a retraction spec."""
    if isinstance(retraction, str):
        if retraction not in RETRACTIONS:
            raise ValueError(f"retraction must be one of {RETRACTIONS} or a callable, got {retraction!r}")
        if retraction == "euclidean":
            retr, proj, on_sphere = (lambda x, u: x + u), (lambda x, u: u), False
        else:
            retr = sphere.retract if retraction == "sphere" else sphere.exp_map
            proj, on_sphere = sphere.project, True
        if project is not None:
            proj = project
        return retr, proj, on_sphere
    if not callable(retraction):
        raise TypeError(f"retraction must be one of {RETRACTIONS} or a callable, got {type(retraction).__name__}")
    if project is not None and not callable(project):
        raise TypeError(f"project must be a callable (x, u) -> tangent vector, got {type(project).__name__}")
    return retraction, project, False


def _direction(direction, x_parts, is_tuple, proj, generator) -> list[torch.Tensor]:
    """Return the unit-norm tangent direction: the given one (normalized), or a random projected Gaussian."""
    if direction is None:
        if proj is None:
            raise ValueError("direction must be given when retraction is a callable and project is None")
        parts = [proj(p, torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)) for p in x_parts]
    else:
        parts = _like(direction, x_parts, is_tuple, "direction")
    norm = math.sqrt(_inner(parts, parts))
    if not norm > 0:
        raise ValueError("direction must be a nonzero tangent vector")
    return [p / norm for p in parts]


def _curve(x_parts, u_parts, retr):
    return lambda t: [retr(p, t * q) for p, q in zip(x_parts, u_parts)]


def _value(f, x, name="f") -> float:
    v = f(x)
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"{name} must return a scalar, got a tensor of shape {tuple(v.shape)}")
        v = v.item()
    try:
        v = float(v)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must return a real scalar, got {type(v).__name__}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name} returned a non-finite value ({v})")
    return v


def _check_steps(steps) -> np.ndarray:
    if steps is None:
        return default_steps()
    try:
        s = np.asarray(steps, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("steps must be a 1-D sequence of positive numbers") from exc
    if s.ndim != 1 or s.size < 5:
        raise ValueError(f"steps must be a 1-D sequence of at least 5 step sizes, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0) or np.any(np.diff(s) <= 0):
        raise ValueError("steps must be finite, positive and strictly increasing")
    return s


def _setup(f, x, retraction, project, direction, generator, steps, callables):
    for name, fn in callables.items():
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    x_parts, is_tuple = _parts(x, "x")
    retr, proj, on_sphere = _resolve(retraction, project)
    if on_sphere:
        for i, p in enumerate(x_parts):
            check_unit_rows(p, f"x[{i}]" if is_tuple else "x")
    u_parts = _direction(direction, x_parts, is_tuple, proj, generator)
    return x_parts, is_tuple, retr, u_parts, _check_steps(steps)


# ---------------------------------------------------------------------------------------------
# slope fitting
# ---------------------------------------------------------------------------------------------

def fit_slope(steps, remainders, *, floor: float = 0.0, decades: float = 1.0):
    r"""Fit the slope of ``log10|remainders|`` against ``log10(steps)`` in the asymptotic range.

    The asymptotic regime is at small ``t``, but the smallest remainders drown in round-off. The fit
    starts at the first of three consecutive steps whose remainders exceed ``floor`` and covers the
    next ``decades`` decades of steps. It stops early where the (signed) remainder changes sign or
    falls back under the floor: there two terms of the expansion cancel and the log-log curve dips.
    At least 3 points are fitted.

    Parameters
    ----------
    steps : 1-D array, increasing
    remainders : 1-D array, signed or absolute
    floor : float, round-off level
    decades : float, width of the fitted range

    Returns
    -------
    slope, intercept : float
        ``inf`` and ``nan`` when no run of 3 points clears the floor (the model is exact up to round-off).
    fitted : ndarray of bool
        The points used.
    """
    t = _check_steps(steps)
    try:
        r = np.asarray(remainders, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("remainders must be a 1-D sequence of numbers") from exc
    if r.shape != t.shape:
        raise ValueError(f"remainders must have the shape of steps {t.shape}, got {r.shape}")
    floor = check_tolerance(floor, "floor")
    decades = check_real(decades, "decades", low=0.0, high=300.0, low_open=True)
    e, sign = np.abs(r), np.sign(r)
    fitted = np.zeros(t.shape, dtype=bool)
    above = e > floor
    runs = [i for i in range(t.size - 2) if above[i] and above[i + 1] and above[i + 2]]
    if not runs:
        return math.inf, math.nan, fitted
    start = runs[0]
    stop = start + 1
    while (stop < t.size and t[stop] <= t[start] * 10.0 ** decades * (1 + 1e-9)
           and above[stop] and sign[stop] == sign[start]):
        stop += 1
    stop = max(stop, start + 3)
    fitted[start:stop] = True
    slope, intercept = np.polyfit(np.log10(t[fitted]), np.log10(e[fitted]), 1)
    return float(slope), float(intercept), fitted


def _run(model, fx, curve_f, steps, expected, noise, decades, tol):
    noise = check_tolerance(noise, "noise")
    decades = check_real(decades, "decades", low=0.0, high=300.0, low_open=True)
    tol = check_tolerance(tol, "tol")
    signed = np.array([curve_f(t) - model(t) for t in steps])
    rem = np.abs(signed)
    floor = float(noise * np.finfo(np.float64).eps * max(1.0, abs(fx)))
    if steps[0] <= 1e-7 and steps.size >= 8:
        # At t <= 1e-7 a correct model leaves only round-off, whose size depends on how f is computed
        # (the terms it sums may be much larger than |f|): measure it there and stay well above it.
        floor = max(floor, float(30.0 * rem[:3].max()))
    slope, intercept, fitted = fit_slope(steps, signed, floor=floor, decades=decades)
    return TaylorCheck(slope=slope, expected=expected, steps=np.asarray(steps), remainders=rem, fitted=fitted,
                       intercept=intercept, floor=floor, tol=tol)


# ---------------------------------------------------------------------------------------------
# public checks
# ---------------------------------------------------------------------------------------------

def check_gradient(f: Callable, grad: Callable, x: Point, *, retraction="sphere", project=None,
                   direction=None, generator: torch.Generator | None = None, steps=None,
                   noise: float = 1e2, decades: float = 1.0, tol: float = 0.25) -> TaylorCheck:
    r"""Taylor check of a (Riemannian) gradient: slope about 2 when ``grad`` is right.

    Computes :math:`E_1(t) = |f(R_x(tu)) - f(x) - t\langle \operatorname{grad} f(x), u\rangle|` for the
    step sizes ``steps`` and fits the slope of :math:`\log E_1` against :math:`\log t`.

    Parameters
    ----------
    f : callable ``x -> scalar``
    grad : callable ``x -> tangent vector`` with the structure of ``x``
    x : Tensor or tuple of Tensors
        The point, e.g. ``(W, H)`` for the UFM; on the sphere (unit rows) for the sphere retractions.
    retraction : ``"sphere"`` (default), ``"exp"``, ``"euclidean"`` or callable ``(x_part, u_part) -> point``
        Applied to each component of the point.
    project : callable ``(x_part, v_part) -> tangent``, optional
        Tangent projection used to draw a random direction; implied by a named retraction.
    direction : like ``x``, optional
        The direction :math:`u` (normalized to unit total norm here); random tangent by default.
    generator : torch.Generator, optional
        Source of the random direction.
    steps : 1-D array of increasing step sizes, optional
        Default :func:`default_steps` (``1e-8`` to ``1``, 41 points).
    noise : float
        Round-off floor in units of machine epsilon times ``max(1, |f(x)|)``. When the smallest step is
        ``<= 1e-7`` the floor is raised to 30 times the largest of the three smallest-step remainders
        (a measured round-off level).
    decades : float
        Width of the fitted range of steps.
    tol : float
        ``result.passed`` is ``slope >= 2 - tol``.

    Returns
    -------
    TaylorCheck
        ``slope`` about 2 for a correct gradient (1 for a wrong one).

    Examples
    --------
    >>> from ncbook import ufm, sphere
    >>> W, H = sphere.random_point(3, 4, dtype=torch.float64), sphere.random_point(6, 4, dtype=torch.float64)
    >>> y = ufm.balanced_labels(3, 2)
    >>> res = check_gradient(lambda p: ufm.loss(*p, y, 2.0), lambda p: ufm.rgrad(*p, y, 2.0), (W, H))
    >>> abs(res.slope - 2) < 0.1
    True
    """
    x_parts, is_tuple, retr, u, steps = _setup(f, x, retraction, project, direction, generator, steps,
                                               {"f": f, "grad": grad})
    fx = _value(f, x)
    g = _like(grad(x), x_parts, is_tuple, "grad(x)")
    slope1 = _inner(g, u)
    curve = _curve(x_parts, u, retr)
    return _run(lambda t: fx + t * slope1, fx, lambda t: _value(f, _pack(curve(t), is_tuple)), steps,
                2.0, noise, decades, tol)


def check_hessian(f: Callable, grad: Callable, hess_vec: Callable, x: Point, *, retraction="sphere",
                  project=None, direction=None, generator: torch.Generator | None = None, steps=None,
                  noise: float = 1e2, decades: float = 1.0, tol: float = 0.25) -> TaylorCheck:
    r"""Taylor check of a Riemannian Hessian: slope about 3 when gradient and Hessian are right.

    .. math:: E_2(t) = \big|f(R_x(tu)) - f(x) - t\langle g, u\rangle - \tfrac{t^2}{2}\langle u, \operatorname{Hess}
              f(x)[u]\rangle\big|.

    Needs a second-order retraction (``"sphere"`` or ``"exp"``; ``"euclidean"`` in flat space),
    otherwise the curve's acceleration adds a :math:`t^2` term. ``hess_vec(x, u)`` returns the
    Hessian applied to the tangent vector ``u``, with the structure of ``x``. Other parameters as in
    :func:`check_gradient`.

    Returns
    -------
    TaylorCheck
        ``slope`` about 3 (about 2 when the Hessian is wrong, e.g. missing the curvature term).
    """
    x_parts, is_tuple, retr, u, steps = _setup(f, x, retraction, project, direction, generator, steps,
                                               {"f": f, "grad": grad, "hess_vec": hess_vec})
    fx = _value(f, x)
    g = _like(grad(x), x_parts, is_tuple, "grad(x)")
    hu = _like(hess_vec(x, _pack(u, is_tuple)), x_parts, is_tuple, "hess_vec(x, u)")
    a1, a2 = _inner(g, u), _inner(u, hu)
    curve = _curve(x_parts, u, retr)
    return _run(lambda t: fx + t * a1 + 0.5 * t * t * a2, fx, lambda t: _value(f, _pack(curve(t), is_tuple)),
                steps, 3.0, noise, decades, tol)


def check_retraction(x: Point, *, retraction="sphere", reference="exp", direction=None,
                     generator: torch.Generator | None = None, steps=None, expected: float = 3.0,
                     decades: float = 1.0, tol: float = 0.25) -> TaylorCheck:
    r"""Order of agreement of two retractions: :math:`E(t) = \lVert R_x(tu) - \operatorname{Exp}_x(tu)\rVert`.

    A second-order retraction agrees with the exponential map up to :math:`O(t^3)` (slope 3); a first-order
    one only up to :math:`O(t^2)`. ``reference`` is another retraction spec (default the exponential map).
    The random direction is tangent to the sphere (rows of ``x`` must have unit norm).
    """
    x_parts, _ = _parts(x, "x")
    for i, p in enumerate(x_parts):
        check_unit_rows(p, f"x[{i}]" if len(x_parts) > 1 or not isinstance(x, torch.Tensor) else "x")
    x_parts, is_tuple, retr, u, steps = _setup(None, x, retraction, sphere.project, direction, generator, steps, {})
    ref, _, _ = _resolve(reference, None)
    a, b = _curve(x_parts, u, retr), _curve(x_parts, u, ref)

    def gap(t):
        return math.sqrt(sum(float(((p - q) ** 2).sum()) for p, q in zip(a(t), b(t))))

    return _run(lambda t: 0.0, 1.0, gap, steps, expected, 1e2, decades, tol)


def fd_directional_derivative(f: Callable, x: Point, direction: Point, *, retraction="sphere",
                              h: float = 1e-5) -> float:
    r"""Central finite difference of :math:`t \mapsto f(R_x(t u))` at 0.

    It approximates :math:`\langle \operatorname{grad} f(x), u\rangle`, with error :math:`O(h^2)`.
    ``direction`` is used as given (not normalized).
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    x_parts, is_tuple, retr, u = _fd_setup(x, direction, retraction, h)
    c = _curve(x_parts, u, retr)
    return (_value(f, _pack(c(h), is_tuple)) - _value(f, _pack(c(-h), is_tuple))) / (2 * h)


def fd_second_derivative(f: Callable, x: Point, direction: Point, *, retraction="sphere",
                         h: float = 1e-4) -> float:
    r"""Central second difference of :math:`t \mapsto f(R_x(t u))` at 0.

    It approximates :math:`\langle u, \operatorname{Hess} f(x)[u]\rangle` for a second-order retraction,
    with error :math:`O(h^2)`.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    x_parts, is_tuple, retr, u = _fd_setup(x, direction, retraction, h)
    c = _curve(x_parts, u, retr)
    f0 = _value(f, x)
    return (_value(f, _pack(c(h), is_tuple)) - 2 * f0 + _value(f, _pack(c(-h), is_tuple))) / (h * h)


def _fd_setup(x, direction, retraction, h):
    h = check_positive_real(h, "h")
    x_parts, is_tuple = _parts(x, "x")
    retr, _, on_sphere = _resolve(retraction, None)
    if on_sphere:
        for i, p in enumerate(x_parts):
            check_unit_rows(p, f"x[{i}]" if is_tuple else "x")
    u = _like(direction, x_parts, is_tuple, "direction")
    return x_parts, is_tuple, retr, u
