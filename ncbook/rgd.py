r"""Riemannian gradient descent (RGD) by hand on products of spheres.

A point is a tuple of blocks :math:`x = (x_1, \dots, x_m)`, each a tensor whose rows lie on unit
spheres (for the normalized UFM, :math:`x = (W, H)`). One RGD step moves every block along minus
its Riemannian gradient and retracts back onto the spheres:

.. math:: x_i^{+} = R_{x_i}\big(-\alpha\, s_i \operatorname{grad}_i f(x)\big), \qquad
          R_x(u) = \frac{x + u}{\lVert x + u \rVert} \ \text{(row by row)} .

Here :math:`\alpha > 0` is the step size, chosen by a *rule* (:data:`RULES`), and :math:`s_i > 0`
are fixed per-block scales. For the UFM the recipe is :math:`s_W = 1,\ s_H = n`: the gradient of
each feature carries a factor :math:`1/N`, the gradient of each classifier sums over its
:math:`n` features, so :math:`\eta_H = n\,\eta_W` gives both blocks comparable motion.

Step-size rules
---------------
``"fixed"``
    :math:`\alpha_t = \alpha` (the ``lr``). Simple; needs a step below about :math:`2/L`.
``"armijo"``
    Backtracking: try :math:`\alpha = \min(2\alpha_{t-1}, \alpha_{\max})` and halve until the
    sufficient-decrease test :math:`f(x^+) \le f(x) - c\,\alpha\,\langle g, S g\rangle` holds
    (:math:`S` = the block scales). Monotone.
``"bb"``
    Riemannian Barzilai-Borwein. With :math:`s_t` the step just taken and
    :math:`y_t = \operatorname{grad} f(x_{t+1}) - \mathcal T(\operatorname{grad} f(x_t))`, where the
    vector transport :math:`\mathcal T` is the tangent projection at :math:`x_{t+1}`, the next step
    alternates between the long and short BB sizes
    :math:`\langle s, S^{-1}s\rangle/\langle s, y\rangle` and :math:`\langle s, y\rangle/\langle y, S y\rangle`,
    clipped to :math:`[\alpha_{\min}, \alpha_{\max}]`. A nonmonotone (Zhang-Hager) Armijo test with
    backtracking guards against bad steps.

Batches of independent runs
---------------------------
If the loss returns a tensor of shape ``(B,)`` (one value per run) instead of a scalar, every
block carries that leading batch dimension (e.g. ``W`` of shape ``(B, K, d)``) and every scalar of
the algorithm (step size, norms, line search, stopping test) is kept per run, as a float64 host
value of the batch shape (see :mod:`ncbook.stepsize`). A run that meets its
stopping test is frozen while the others continue, so a batched run equals the runs done one by one.

geoopt equivalents: see :mod:`ncbook.geoopt_rgd` (``geoopt.optim.RiemannianSGD`` is the ``"fixed"``
rule with ``Sphere.retr``).

Introduced in: chapter 03 (RGD by hand).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import sphere, stepsize
from ._checks import (
    check_blocks,
    check_positive_int,
    check_positive_real,
    check_real,
    check_scales,
    check_tolerance,
    check_unit_rows,
)
from .stepsize import DEFAULTS, Iterate, largest, some

__all__ = ["RULES", "History", "StoppingTest", "step", "run", "iterate", "rgd_stepper", "first_iterate",
           "batch_value", "roundoff", "retract_blocks", "record_array", "all_finite",
           "step_fits"]

#: Step-size rules accepted by :func:`run` (the classes are in :mod:`ncbook.stepsize`).
RULES = tuple(stepsize.RULES)


@dataclass
class History:
    r"""What :func:`run` returns: the final point and one record per iterate.

    For a batch of ``B`` runs the records have a trailing run axis, shape ``(T+1, B)``; after a run
    stops, its entries are NaN.

    Attributes
    ----------
    points : tuple of Tensor
        The final iterate, one tensor per block (same shapes as the start).
    loss : ndarray ``(T+1,)`` or ``(T+1, B)``
        :math:`f(x_t)` for ``t = 0..T`` (``T`` = iterations done).
    grad_norm : ndarray ``(T+1,)`` or ``(T+1, B)``
        :math:`\lVert \operatorname{grad} f(x_t) \rVert` (product metric, all blocks together).
    step_size : ndarray ``(T,)`` or ``(T, B)``
        The base step :math:`\alpha_t` accepted at iteration ``t`` (block ``i`` moved by ``alpha * s_i``).
    time : ndarray ``(T+1,)``
        Seconds since the start of :func:`run` when iterate ``t`` was evaluated.
    iterations : int or ndarray ``(B,)``
        Steps taken (per run).
    converged : bool or ndarray ``(B,)``
        Whether the stopping test (gradient norm or gap) was met before ``steps`` ran out.
    rule : str
        The step-size rule.
    evaluations : int
        Number of calls of the objective (each on the whole batch), line-search trials included.
    """

    points: tuple
    loss: np.ndarray
    grad_norm: np.ndarray
    step_size: np.ndarray
    time: np.ndarray
    iterations: int | np.ndarray
    converged: bool | np.ndarray
    rule: str
    evaluations: int = 0
    scales: tuple = field(default=())

    @property
    def seconds(self) -> float:
        """Wall time of the whole run in seconds."""
        return float(self.time[-1]) if len(self.time) else 0.0


def step(points, grads, lr, scales=None) -> tuple:
    r"""One RGD step with a given step size: :math:`x_i^+ = R_{x_i}(-\mathrm{lr}\cdot s_i\, g_i)`.

    Parameters
    ----------
    points : tuple of Tensor
        Blocks with unit rows, shapes ``(..., d_i)``.
    grads : tuple of Tensor
        Riemannian gradients (tangent vectors), same shapes as ``points``.
    lr : float
        Base step size :math:`\alpha > 0`.
    scales : sequence of float, optional
        Per-block factors :math:`s_i` (default all 1). For the UFM use ``(1, n)``.

    Returns
    -------
    tuple of Tensor
        The new points, on the spheres. geoopt: ``Sphere.retr(x, -lr * g)`` per block, which is what
        ``geoopt.optim.RiemannianSGD`` does (with param groups for the scales).
    """
    points, single = check_blocks(points, "points")
    grads, _ = check_blocks(grads, "grads")
    if len(grads) != len(points):
        raise ValueError(f"grads must have one tensor per block of points ({len(points)}), got {len(grads)}")
    lr = check_positive_real(lr, "lr")
    scales = check_scales(scales, len(points))
    new = []
    for i, (x, g, s) in enumerate(zip(points, grads, scales)):
        name = "points" if single else f"points[{i}]"
        gname = "grads" if single else f"grads[{i}]"
        new.append(sphere.step_along(x, g, -(lr * s), point_name=name, vector_name=gname, step_name="lr"))
    return new[0] if single else tuple(new)


@dataclass
class StoppingTest:
    r"""When a run stops, defined once for :func:`run`, :func:`ncbook.geoopt_rgd.run` and ``solve``.

    A run stops at the first iterate with :math:`\lVert\operatorname{grad} f\rVert \le \mathrm{gtol}\cdot s_g`
    or :math:`f - f^\star \le \mathrm{ftol}\cdot s_f`. Absolute tests have :math:`s_g = s_f = 1`; with
    ``relative=True``, :math:`s_g = f` (the test bounds :math:`\lVert\operatorname{grad}\log f\rVert`)
    or the given ``g_scale`` (e.g. :math:`f^\star \le f`, a stricter constant), and :math:`s_f = f^\star`
    (a relative gap), which keeps their meaning when the loss is exponentially small. A gap below
    ``-floor`` (round-off) means ``f_opt`` is not a lower bound: :class:`ValueError`, never convergence.

    Attributes
    ----------
    gtol, ftol : float, ndarray or None
        Tolerances, a number or one per run (None: that test is off; ``ftol`` needs ``f_opt``).
    g_scale : float, ndarray or None
        With ``relative=True``, a constant scale of the gradient test instead of :math:`f`.
    f_opt : float, ndarray or None
        Known optimal value, of the batch shape (see :func:`batch_value`).
    relative : bool
    floor : float or ndarray
        Allowed negative gap (round-off of the loss), of the batch shape or a number.

    All of them are host values (floats, or float64 arrays of the batch shape), as the iterates' are.
    """

    gtol: object = None
    ftol: object = None
    f_opt: object = None
    relative: bool = False
    floor: object = 0.0
    g_scale: object = None

    def prepare(self) -> None:
        """Precompute the thresholds that do not change during a run."""
        self.f_stop = None
        self.f_low = None
        self.g_stop = None
        if self.gtol is not None and (not self.relative or self.g_scale is not None):
            self.g_stop = self.gtol * (1.0 if self.g_scale is None else self.g_scale)
        if self.f_opt is not None:
            self.f_low = self.f_opt - self.floor
            if self.ftol is not None:
                self.f_stop = self.f_opt + (self.ftol * abs(self.f_opt) if self.relative else self.ftol)

    def done(self, it: Iterate):
        """Per-run bool (an array for a batch): which runs meet the test at ``it`` (None: no test is on)."""
        out = None
        if self.g_stop is not None:
            out = it.gnorm <= self.g_stop
        elif self.gtol is not None:
            out = it.gnorm <= self.gtol * abs(it.f)
        if self.f_stop is not None:
            out = it.f <= self.f_stop if out is None else out | (it.f <= self.f_stop)
        return out

    def below_floor(self, it: Iterate, t: int) -> None:
        """Raise :class:`ValueError` if a gap is negative beyond round-off (``f_opt`` is no lower bound)."""
        if self.f_low is not None and some(it.f < self.f_low):
            self.refuse(float(np.min(it.f - self.f_opt)), t)

    def check_history(self, losses: np.ndarray) -> None:
        """:meth:`below_floor` on a whole record ``(T+1, *batch)`` at once (NaN entries are skipped)."""
        if self.f_low is None:
            return
        below = losses < self.f_low  # NaN entries (stopped runs) compare False
        bad = np.argwhere(below) if below.any() else ()
        if len(bad):
            t = int(bad[0][0])
            self.refuse(float(np.nanmin(losses[t] - self.f_opt)), t)

    def refuse(self, worst: float, t: int) -> None:
        """Raise the :class:`ValueError` for a negative gap ``worst`` at iteration ``t``."""
        raise ValueError(
            f"f_opt is not a lower bound of the loss: at iteration {t} the gap f - f_opt is {worst:.3g}, "
            f"beyond round-off ({float(np.max(self.floor)):.2g}); check f_opt "
            "(ufm.optimal_loss assumes balanced classes and d >= K-1)")


def run(
    points,
    loss_fn: Callable,
    rgrad_fn: Callable | None = None,
    *,
    lr: float = 1.0,
    rule: str = "fixed",
    steps: int = 1000,
    scales: Sequence[float] | None = None,
    gtol: float | None = 1e-10,
    f_opt=None,
    ftol: float | None = None,
    loss_and_rgrad: Callable | None = None,
    c: float = DEFAULTS["c"],
    shrink: float = DEFAULTS["shrink"],
    max_backtracks: int = DEFAULTS["max_backtracks"],
    lr_min: float = DEFAULTS["lr_min"],
    lr_max: float = DEFAULTS["lr_max"],
    nonmonotone: float = DEFAULTS["nonmonotone"],
    callback: Callable | None = None,
) -> History:
    r"""Run RGD from ``points`` until the gradient norm or the gap is small, or for ``steps`` steps.

    Parameters
    ----------
    points : Tensor or tuple of Tensor
        Starting point: blocks with unit rows (shape ``(..., m_i, d_i)``, or ``(B, ..., d_i)`` for a
        batch of ``B`` runs).
    loss_fn : callable
        ``loss_fn(points) -> Tensor``: the objective, a scalar, or shape ``(B,)`` for a batch.
    rgrad_fn : callable, optional
        ``rgrad_fn(points) -> tuple``: the Riemannian gradient, one tangent tensor per block.
        May be omitted when ``loss_and_rgrad`` is given.
    lr : float
        Step size of ``"fixed"``; first trial step of ``"armijo"`` and ``"bb"``.
    rule : {"fixed", "armijo", "bb"}
        Step-size rule (see the module docstring and :mod:`ncbook.stepsize`).
    steps : int
        Maximum number of steps.
    scales : sequence of float, optional
        Per-block step factors :math:`s_i` (default all 1).
    gtol : float or None
        Stop when :math:`\lVert \operatorname{grad} f \rVert \le` ``gtol`` (None: never).
    f_opt : float, array or Tensor ``(B,)``, or None
        Known optimal value; with ``ftol``, stop when :math:`f - f^\star \le` ``ftol``. A gap below
        minus the round-off of the loss raises :class:`ValueError` (``f_opt`` is not a lower bound).
    ftol : float or None
        Gap tolerance (used only with ``f_opt``).
    loss_and_rgrad : callable, optional
        ``loss_and_rgrad(points) -> (loss, grads)`` computing both at once (faster: they share work).
    c, shrink, max_backtracks : float, float, int
        Armijo constant, backtracking factor and the most halvings per step.
    lr_min, lr_max : float
        Safeguard interval for the ``"armijo"`` and ``"bb"`` steps.
    nonmonotone : float in [0, 1)
        Zhang-Hager averaging weight of the ``"bb"`` line search (0 gives a monotone test).
    callback : callable, optional
        ``callback(t, points, loss, grad_norm)`` at each iterate ``t`` (``loss`` and ``grad_norm``
        are floats, or float64 arrays ``(B,)`` for a batch); return True to stop.

    Returns
    -------
    History
        Final point and per-iteration records.

    Examples
    --------
    The Rayleigh quotient :math:`x^\top A x` on :math:`\mathbb S^2` (its minimum is the smallest
    eigenvalue):

    >>> A = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    >>> x0 = sphere.normalize(torch.ones(3, dtype=torch.float64))
    >>> hist = run((x0,), lambda p: p[0] @ A @ p[0],
    ...            lambda p: (sphere.project(p[0], 2 * A @ p[0]),), lr=0.2, steps=500)
    >>> round(float(hist.loss[-1]), 6)
    1.0
    """
    points, _ = check_blocks(points, "points")
    for i, x in enumerate(points):
        check_unit_rows(x, f"points[{i}]")
        if x.shape[-1] < 2:
            raise ValueError(f"points[{i}] rows must have length d >= 2 (a sphere with a tangent space)")
    if any(x.dtype != points[0].dtype or x.device != points[0].device for x in points):
        raise TypeError("all blocks of points must share dtype and device")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if rgrad_fn is None and loss_and_rgrad is None:
        raise TypeError("give rgrad_fn (or loss_and_rgrad) to compute the Riemannian gradient")
    if rgrad_fn is not None and not callable(rgrad_fn):
        raise TypeError(f"rgrad_fn must be callable, got {type(rgrad_fn).__name__}")
    if loss_and_rgrad is not None and not callable(loss_and_rgrad):
        raise TypeError(f"loss_and_rgrad must be callable, got {type(loss_and_rgrad).__name__}")
    if not isinstance(rule, str) or rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    lr = check_positive_real(lr, "lr")
    steps = check_positive_int(steps, "steps", minimum=0)
    scales = check_scales(scales, len(points))
    gtol = check_tolerance(gtol, "gtol", allow_none=True)
    ftol = check_tolerance(ftol, "ftol", allow_none=True)
    options = dict(c=check_real(c, "c", low=0.0, high=1.0, low_open=True, high_open=True),
                   shrink=check_real(shrink, "shrink", low=0.0, high=1.0, low_open=True, high_open=True),
                   max_backtracks=check_positive_int(max_backtracks, "max_backtracks", minimum=0),
                   lr_min=check_positive_real(lr_min, "lr_min"), lr_max=check_positive_real(lr_max, "lr_max"),
                   nonmonotone=check_real(nonmonotone, "nonmonotone", low=0.0, high=1.0, high_open=True))
    if options["lr_min"] > options["lr_max"]:
        raise ValueError(f"lr_min must be <= lr_max, got {options['lr_min']} > {options['lr_max']}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")

    t0 = time.perf_counter()
    fg = _user_objective(loss_fn, rgrad_fn, loss_and_rgrad)
    start = first_iterate(fg, points, scales)
    f_opt = batch_value(f_opt, start.f, "f_opt")
    floor = None if f_opt is None else roundoff(f_opt, start.f, points[0].dtype)
    stop = StoppingTest(gtol=gtol, ftol=ftol, f_opt=f_opt, floor=floor)
    return iterate(rgd_stepper(fg, stepsize.make_rule(rule, lr, **options), start, scales), start, steps=steps,
                   stop=stop, callback=callback, t0=t0)


def _user_objective(loss_fn, rgrad_fn, loss_and_rgrad):
    """Wrap the user's loss and gradient as one ``fg(points) -> (f, grads)`` with tensor outputs."""

    def fg(p):  # accept a bare tensor for a one-block gradient and a plain number for the loss
        out = loss_and_rgrad(p) if loss_and_rgrad is not None else (loss_fn(p), rgrad_fn(p))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("loss_and_rgrad must return a pair (loss, grads)")
        f, g = out
        f = torch.as_tensor(f, dtype=p[0].dtype, device=p[0].device).detach()
        if isinstance(g, torch.Tensor):
            g = (g,)
        if not isinstance(g, (tuple, list)) or not all(isinstance(gi, torch.Tensor) for gi in g):
            raise TypeError("the Riemannian gradient must be a tensor or a tuple of tensors (one per block)")
        return f, tuple(gi.detach() for gi in g)

    return fg


# --------------------------------------------------------------------------- the engine

def first_iterate(fg, points, scales) -> Iterate:
    """Evaluate ``fg`` at the start and check the shapes it returns; the batch shape is the loss's shape."""
    f, g = fg(tuple(points))
    if len(g) != len(points):
        raise ValueError(f"the Riemannian gradient must have one tensor per block ({len(points)}), got {len(g)}")
    nd = f.ndim
    for i, (x, gi) in enumerate(zip(points, g)):
        if x.ndim <= nd or tuple(x.shape[:nd]) != tuple(f.shape):
            raise ValueError(
                f"the loss has batch shape {tuple(f.shape)} but points[{i}] has shape {tuple(x.shape)}; "
                "each block must start with the batch dimensions")
        if gi.shape != x.shape:
            raise ValueError(f"rgrad block {i} has shape {tuple(gi.shape)}, expected {tuple(x.shape)}")
    it = Iterate.make(points, f, g, scales)
    if not all_finite(it):
        raise ValueError("the loss or its gradient is not finite at the starting point")
    return it


def step_fits(a, gnorm, too_long: float) -> bool:
    """Whether ``a * gnorm < too_long`` for every run (``a`` and ``gnorm`` per-run host values or numbers)."""
    return largest(a * gnorm) < too_long


def all_finite(it: Iterate) -> bool:
    """Whether the loss and the gradient norm of every run are finite.

    The gradient norm is finite exactly when every entry of the gradient is (or overflows: refused too).
    """
    if isinstance(it.f, np.ndarray):
        return bool(np.isfinite(it.f).all() and np.isfinite(it.gnorm).all())
    return math.isfinite(it.f) and math.isfinite(it.gnorm)


def batch_value(v, f, name: str):
    """``v`` (None, a number, an array or a tensor) as a finite host value of the batch shape of ``f``.

    A float for a single run, a float64 array for a batch (a number is repeated for every run).
    """
    if v is None:
        return None
    try:
        v = np.array(v.detach().cpu().to(torch.float64).numpy() if isinstance(v, torch.Tensor) else v,
                     dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a number or a tensor of the batch shape {np.shape(f)}") from exc
    if not np.isfinite(v).all():
        raise ValueError(f"{name} must be finite")
    shape = np.shape(f)
    if v.ndim == 0:
        return np.full(shape, float(v)) if shape else float(v)
    if v.shape != shape:
        raise ValueError(f"{name} must be a number or have the batch shape {shape}, got {v.shape}")
    return v


def roundoff(f_opt, f0, dtype: torch.dtype, factor: float = 64.0):
    """How far below ``f_opt`` a computed loss may fall by round-off alone: ``factor * eps * max(|f_opt|, |f0|)``.

    ``eps`` is that of the loss's ``dtype``; ``f_opt`` and ``f0`` are per-run host values.
    """
    return factor * torch.finfo(dtype).eps * np.maximum(abs(f_opt), abs(f0))


def record_array(values: list, bshape: tuple) -> np.ndarray:
    """Stack a per-iteration record of per-run host values as a float64 array ``(T, *batch)``.

    Plain numbers (a fixed step shared by the runs of a batch) are repeated for every run.
    """
    if not values:
        return np.zeros((0,) + tuple(bshape))
    if bshape:
        return np.stack([np.broadcast_to(v, bshape) for v in values]).astype(np.float64)
    return np.array(values, dtype=np.float64)


def retract_blocks(x: tuple, g: tuple, a, scales: tuple) -> tuple:
    r"""Row-wise :math:`(x_i - a\, s_i g_i)/\lVert\cdot\rVert` for every block.

    ``a`` is a number, or a per-run array ``(B,)`` for a batch (sent to the device once).
    """
    out = []
    if isinstance(a, np.ndarray):
        a = torch.as_tensor(a, dtype=x[0].dtype, device=x[0].device)
    shaped = {}  # the per-run step against blocks of each number of axes (one reshape per ndim)
    for xi, gi, si in zip(x, g, scales):
        if isinstance(a, torch.Tensor):
            ai = shaped.get(xi.ndim)
            if ai is None:
                ai = shaped[xi.ndim] = a.reshape(a.shape + (1,) * (xi.ndim - a.ndim))
            v = torch.addcmul(xi, gi, ai, value=-si)
        else:
            v = torch.add(xi, gi, alpha=-a * si)
        out.append(v.div_(torch.linalg.vector_norm(v, dim=-1, keepdim=True)))
    return tuple(out)


def rgd_stepper(fg, rule: stepsize.StepRule, start: Iterate, scales: tuple):
    """Make the RGD step ``advance`` for :func:`iterate`.

    The rule searches along :math:`-S g`, retracting each trial point.
    """
    rule.start(start, scales)
    too_long = torch.finfo(start.x[0].dtype).max ** 0.5 / 1e4 / max(scales)

    def advance(it, active):
        def trial(a):
            # a step so long that |x - a s g|^2 overflows would leave zero or NaN rows: refuse it first
            if not step_fits(a, it.gnorm, too_long):
                raise ValueError(f"the RGD step overflows: lr (or the step size its rule reached, "
                                 f"{largest(a):.3g}) times the gradient norm is too large; use a smaller lr")
            x = retract_blocks(it.x, it.g, a, scales)
            f, g = fg(x)
            return Iterate.make(x, f, g, scales)

        return rule.search(it, trial, active)

    advance.rule = rule.name
    advance.scales = tuple(scales)
    advance.checks_step = True
    return advance


def iterate(advance, start: Iterate, *, steps: int, stop: StoppingTest, callback=None, t0=None,
            label: str | None = None) -> History:
    r"""Run the loop shared by every optimizer of the course: test, step, freeze, check, record.

    ``advance(it, active) -> (alpha, new_iterate, evaluations)`` makes one step from ``it`` (``active``
    is the bool array of the runs still going, None when all are)
    (:func:`rgd_stepper` for RGD, ``geoopt_rgd``'s optimizer step for geoopt); ``alpha`` is the base
    step size taken (a number or a per-run array). Runs of a batch that meet ``stop`` are frozen:
    they keep their iterate while the others go on, so a batch equals its runs done one by one.
    A step that overflows, or a loss or gradient that is no longer finite, raises :class:`ValueError`
    naming ``lr``.
    """
    t0 = time.perf_counter() if t0 is None else t0
    rule = label or getattr(advance, "rule", "custom")
    scales = getattr(advance, "scales", (1.0,))
    it = start
    bshape = it.batch_shape
    batched = len(bshape) > 0
    size = math.prod(bshape)
    stop.prepare()
    stop.below_floor(it, 0)
    # the runs still going: only a batch keeps a mask (a single run just stops)
    active = np.ones(bshape, dtype=bool) if batched else None
    too_long = torch.finfo(it.x[0].dtype).max ** 0.5 / 1e4 / max(scales)
    step_checked = getattr(advance, "checks_step", False)  # the stepper refuses overflowing steps itself
    losses, gnorms, alphas, times = [it.f], [it.gnorm], [], [time.perf_counter() - t0]
    evals = 1
    for t in range(steps + 1):
        done = stop.done(it)
        if done is None:
            n_active = size
        elif batched:
            active = active & ~done
            n_active = int(active.sum())
        else:  # a single run: no mask to keep, it just stops
            n_active = 0 if done else 1
        if callback is not None and callback(t, it.x, it.f, it.gnorm):
            break
        if t == steps or n_active == 0:
            break
        partial = n_active < size  # some runs of the batch have stopped (their records are NaN from then on)
        a, new, k = advance(it, active if partial else None)
        evals += k
        if partial:
            new = new.where(active, it)
        # NaN or inf must never pass silently (a negative gap is checked on the record at the end)
        if not all_finite(new) or not (step_checked or step_fits(a, it.gnorm, too_long)):
            raise ValueError(f"{rule} diverged at step {t + 1}: the step overflowed or the loss or gradient is no "
                             "longer finite; use a smaller lr (or a smaller tau, or a rule with a line search)")
        it = new
        if partial:
            losses.append(np.where(active, it.f, math.nan))
            gnorms.append(np.where(active, it.gnorm, math.nan))
            alphas.append(np.where(active, a, math.nan))
        else:
            losses.append(it.f)
            gnorms.append(it.gnorm)
            alphas.append(a)
        times.append(time.perf_counter() - t0)
    # the loop always ends right after the test at the final iterate: ``done`` is that test
    converged = np.zeros(bshape, dtype=bool) if done is None else done
    loss, grad_norm, step_size = (record_array(v, bshape) for v in (losses, gnorms, alphas))
    stop.check_history(loss)
    # a run's steps: its recorded (non-NaN) iterates after the start
    iters = (~np.isnan(loss)).sum(0) - 1 if batched else len(losses) - 1

    return History(
        points=it.x,
        loss=loss,
        grad_norm=grad_norm,
        step_size=step_size,
        time=np.asarray(times),
        iterations=iters if batched else int(iters),
        converged=np.asarray(converged, dtype=bool) if batched else bool(converged),
        rule=rule,
        evaluations=evals,
        scales=tuple(scales),
    )
