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
the algorithm (step size, norms, line search, stopping test) is kept per run. A run that meets its
stopping test is frozen while the others continue, so a batched run equals the runs done one by one.

geoopt equivalents: see :mod:`ncbook.geoopt_rgd` (``geoopt.optim.RiemannianSGD`` is the ``"fixed"``
rule with ``Sphere.retr``).

Introduced in: chapter 03 (RGD by hand).
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import sphere
from ._checks import check_matrix, check_positive_int, check_positive_real, check_unit_rows

__all__ = ["RULES", "History", "step", "run"]

#: Step-size rules accepted by :func:`run`.
RULES = ("fixed", "armijo", "bb")


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
    points, single = _as_blocks(points, "points")
    grads, _ = _as_blocks(grads, "grads")
    if len(grads) != len(points):
        raise ValueError(f"grads must have one tensor per block of points ({len(points)}), got {len(grads)}")
    lr = _check_lr(lr, "lr")
    scales = _check_scales(scales, len(points))
    # sphere.retract validates the point (unit rows) and the shape of each tangent vector.
    new = tuple(sphere.retract(x, -(lr * s) * g) for x, g, s in zip(points, grads, scales))
    return new[0] if single else new


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
    c: float = 1e-4,
    shrink: float = 0.5,
    max_backtracks: int = 40,
    lr_min: float = 1e-12,
    lr_max: float = 1e6,
    nonmonotone: float = 0.85,
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
        Step-size rule (see the module docstring).
    steps : int
        Maximum number of steps.
    scales : sequence of float, optional
        Per-block step factors :math:`s_i` (default all 1).
    gtol : float or None
        Stop when :math:`\lVert \operatorname{grad} f \rVert \le` ``gtol`` (None: never).
    f_opt : float, Tensor ``(B,)`` or None
        Known optimal value; with ``ftol``, stop when :math:`f - f^\star \le` ``ftol``.
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
        are floats, or ``(B,)`` tensors for a batch); return True to stop.

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
    points, _ = _as_blocks(points, "points")
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
    lr = _check_lr(lr, "lr")
    steps = check_positive_int(steps, "steps", minimum=0)
    scales = _check_scales(scales, len(points))
    gtol = _check_tol(gtol, "gtol")
    ftol = _check_tol(ftol, "ftol")
    c = _check_real(c, "c", 0.0, 1.0)
    shrink = _check_real(shrink, "shrink", 0.0, 1.0)
    max_backtracks = check_positive_int(max_backtracks, "max_backtracks", minimum=0)
    lr_min = _check_lr(lr_min, "lr_min")
    lr_max = _check_lr(lr_max, "lr_max")
    if lr_min > lr_max:
        raise ValueError(f"lr_min must be <= lr_max, got {lr_min} > {lr_max}")
    nonmonotone = _check_real(nonmonotone, "nonmonotone", 0.0, 1.0, closed_low=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")

    user_fg = loss_and_rgrad

    def fg(p):  # accept a bare tensor for a one-block gradient and a plain number for the loss
        out = user_fg(p) if user_fg is not None else (loss_fn(p), rgrad_fn(p))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("loss_and_rgrad must return a pair (loss, grads)")
        f, g = out
        f = torch.as_tensor(f, dtype=p[0].dtype, device=p[0].device).detach()
        if isinstance(g, torch.Tensor):
            g = (g,)
        if not isinstance(g, (tuple, list)) or not all(isinstance(gi, torch.Tensor) for gi in g):
            raise TypeError("the Riemannian gradient must be a tensor or a tuple of tensors (one per block)")
        return f, tuple(gi.detach() for gi in g)

    # First evaluation: also tells us the batch shape (the shape of the loss).
    f, g = _evaluate(fg, points)
    nd = f.ndim
    for i, (x, gi) in enumerate(zip(points, g)):
        if x.ndim <= nd or tuple(x.shape[:nd]) != tuple(f.shape):
            raise ValueError(
                f"the loss has batch shape {tuple(f.shape)} but points[{i}] has shape {tuple(x.shape)}; "
                "each block must start with the batch dimensions"
            )
        if gi.shape != x.shape:
            raise ValueError(f"rgrad block {i} has shape {tuple(gi.shape)}, expected {tuple(x.shape)}")
    if f_opt is not None:
        f_opt = torch.as_tensor(f_opt, dtype=f.dtype, device=f.device)
        if not bool(torch.isfinite(f_opt).all()):
            raise ValueError("f_opt must be finite")
        f_opt = f_opt.expand(f.shape) if f_opt.ndim == 0 else f_opt
        if f_opt.shape != f.shape:
            raise ValueError(f"f_opt must be a number or have the batch shape {tuple(f.shape)}, "
                             f"got {tuple(f_opt.shape)}")
    return _loop(points, f, g, fg, lr=lr, rule=rule, steps=steps, scales=scales, gtol=gtol,
                 f_opt=f_opt, ftol=ftol, c=c, shrink=shrink, max_backtracks=max_backtracks, lr_min=lr_min,
                 lr_max=lr_max, nonmonotone=nonmonotone, callback=callback)


# --------------------------------------------------------------------------- the loop

def _loop(x, f, g, fg, *, lr, rule, steps, scales, gtol, f_opt, ftol, c, shrink, max_backtracks, lr_min,
          lr_max, nonmonotone, callback, t0=None) -> History:
    """The RGD iteration on already validated inputs (no checks inside the loop).

    Per-run scalars (loss, norms, step sizes, tests) are tensors of the batch shape for a batch and
    plain Python floats and bools for a single run, which saves a dozen tiny tensor operations per
    step. The helpers below hide the difference.
    """
    t0 = time.perf_counter() if t0 is None else t0
    nd = f.ndim
    bshape = tuple(f.shape)
    batched = nd > 0

    def dot(u, v):  # <u, v> per run: a (B,) tensor, or a float
        return (u * v).flatten(nd).sum(-1) if batched else float(torch.dot(u.reshape(-1), v.reshape(-1)))

    def where(cond, a, b):
        return torch.where(cond, a, b) if batched else (a if cond else b)

    def anyof(cond):
        return bool(cond.any()) if batched else cond

    def clip(a):
        return a.clamp(lr_min, lr_max) if batched else min(max(a, lr_min), lr_max)

    def broadcast(a, x):  # a per-run scalar against a block of shape (*batch, ..., d)
        return a.reshape(bshape + (1,) * (x.ndim - nd))

    def retract_all(x, g, a):  # x_i - a s_i g_i, then rows back to unit norm
        out = []
        for xi, gi, si in zip(x, g, scales):
            v = xi - broadcast(a * si, xi) * gi if batched else torch.add(xi, gi, alpha=-a * si)
            out.append(v / torch.linalg.vector_norm(v, dim=-1, keepdim=True))
        return tuple(out)

    def norms(g):  # ||g_i||^2 per block, ||grad f||, and <g, S g> (minus the slope along the step -S g)
        sq = [dot(gi, gi) for gi in g]
        return sq, sum(sq) ** 0.5, sum(si * q for si, q in zip(scales, sq))

    if not batched:
        f = float(f)
        f_opt = None if f_opt is None else float(f_opt)
    sq, gnorm, gSg = norms(g)
    alpha = torch.full(bshape, lr, dtype=f.dtype, device=f.device) if batched else lr
    active = torch.ones(bshape, dtype=torch.bool, device=f.device) if batched else True
    converged = torch.zeros_like(active) if batched else False
    iters = torch.zeros(bshape, dtype=torch.long, device=f.device) if batched else 0
    # Zhang-Hager nonmonotone reference value C and its weight Q (for "armijo", C is just f).
    C, Q = f, 1.0
    # |f+ - f| below flat_rtol * fscale means f is at its round-off floor (scale: the starting loss).
    flat_rtol = 1e-10 if g[0].dtype == torch.float64 else 1e-5
    fscale = abs(f).clamp_min(1e-300) if batched else max(abs(f), 1e-300)
    bb_long = True
    nan = math.nan
    smax = max(scales)
    too_long = torch.finfo(g[0].dtype).max ** 0.5 / 1e4
    losses, gnorms, alphas, times = [f], [gnorm], [], [time.perf_counter() - t0]
    evals = 1
    for t in range(steps + 1):
        # 1. stopping test at the current iterate x_t
        converged, active = _stopping_test(f, gnorm, f_opt, gtol, ftol, active, converged, batched)
        if callback is not None and callback(t, x, f, gnorm):
            break
        if t == steps or not anyof(active):
            break
        # 2. trial step size: fixed, the BB step from the last iteration, or twice the last Armijo step
        a = clip(2 * alpha) if (rule == "armijo" and t > 0) else alpha
        # 3. trial point, backtracking if the (nonmonotone) Armijo test fails
        for _ in range(max_backtracks + 1):
            if not bool(torch.as_tensor(a * smax * gnorm < too_long * 1e4).all()):  # |x - a S g|^2 overflows
                raise ValueError(f"RGD diverged at step {t + 1}: the step overflows; use a smaller lr")
            xt = retract_all(x, g, a)
            ft, gt = fg(xt)
            ft = ft if batched else float(ft)
            evals += 1
            if rule == "fixed":
                break
            # Sufficient decrease of f, unless f has reached its round-off floor and can no longer rank
            # two points: then gradients decide. "bb" uses Hager-Zhang's approximate Armijo test (the
            # same test for a quadratic); the monotone "armijo" asks the gradient norm to shrink.
            ok = ft <= C - c * a * gSg
            flat = abs(ft - f) <= flat_rtol * fscale
            if anyof(flat):
                if rule == "bb":
                    slope = sum(si * dot(gn, gi) for si, gn, gi in zip(scales, gt, g))  # <g+, S g>
                    ok = where(flat, slope >= -(1 - 2 * c) * gSg, ok)
                else:
                    gSg_new = sum(si * dot(gn, gn) for si, gn in zip(scales, gt))
                    ok = where(flat, gSg_new <= (1 - c) * gSg, ok)
            if batched:
                ok = ok | ~active
            if bool(ok.all()) if batched else ok:
                break
            a = where(ok, a, a * shrink)
        # 4. accept: frozen runs keep their point
        if batched and not bool(active.all()):
            xt = tuple(torch.where(broadcast(active, xi), xn, xi) for xi, xn in zip(x, xt))
            ft = torch.where(active, ft, f)
            gt = tuple(torch.where(broadcast(active, gi), gn, gi) for gi, gn in zip(g, gt))
        # Never hand back NaN points silently; and a step so long that |x - a s g|^2 overflows would
        # leave zero rows (x / inf), so refuse those too.
        short = a * smax * gnorm < too_long
        sq_old = sq
        sq, gnorm, gSg_new = norms(gt)
        ok = bool((torch.isfinite(ft) & torch.isfinite(gnorm) & short).all()) if batched else (
            math.isfinite(ft) and math.isfinite(gnorm) and short)
        if not ok:
            raise ValueError(f"RGD diverged at step {t + 1}: the step overflowed or the loss or gradient is no "
                             "longer finite; use a smaller lr (or a smaller tau, or a rule with a line search)")
        # 5. BB step size for the next iteration, from s = -a S g (projected to x_{t+1}) and y
        if rule == "bb":
            alpha = clip(_bb_step(xt, g, gt, sq_old, sq, a, scales, dot, bb_long, batched))
            bb_long = not bb_long
        elif rule == "armijo":
            alpha = a
        x, f, g, gSg = xt, ft, gt, gSg_new
        if rule == "bb":
            Q_new = nonmonotone * Q + 1
            C = (nonmonotone * Q * C + f) / Q_new
            Q = Q_new
        else:
            C = f
        iters += active
        if batched:
            losses.append(torch.where(active, f, nan))
            gnorms.append(torch.where(active, gnorm, nan))
            alphas.append(torch.where(active, a, nan))
        else:
            losses.append(f)
            gnorms.append(gnorm)
            alphas.append(a)
        times.append(time.perf_counter() - t0)

    record = functools.partial(_record, batched=batched)

    return History(
        points=tuple(x),
        loss=record(losses, (1,) + bshape),
        grad_norm=record(gnorms, (1,) + bshape),
        step_size=record(alphas, (0,) + bshape),
        time=np.asarray(times),
        iterations=iters.cpu().numpy() if batched else int(iters),
        converged=converged.cpu().numpy() if batched else bool(converged),
        rule=rule,
        evaluations=evals,
        scales=tuple(scales),
    )


def _bb_step(xt, g, gt, sq, sq_new, a, scales, dot, long: bool, batched: bool):
    r"""Barzilai-Borwein step from the step just taken, in the metric scaled by the block factors.

    With the projection :math:`P` onto the tangent space at the new point as vector transport,
    :math:`s_i = -a\, s_i P(g_i)` and :math:`y_i = g^+_i - P(g_i)`. Because :math:`g^+_i` is already
    tangent, :math:`\langle P g_i, g^+_i\rangle = \langle g_i, g^+_i\rangle`, and
    :math:`\lVert P g\rVert^2 = \lVert g\rVert^2 - \sum_{\text{rows}} (x^{+\top} g)^2`.
    Long step :math:`\langle s, S^{-1}s\rangle/\langle s,y\rangle`, short step
    :math:`\langle s, y\rangle/\langle y, S y\rangle`; a non-positive curvature estimate
    :math:`\langle s,y\rangle \le 0` gives the largest step (the caller clips it).
    """
    sSs = sy = ySy = 0.0
    for xn, gi, gn, g2, gn2, si in zip(xt, g, gt, sq, sq_new, scales):  # g2, gn2: ||g_i||^2, ||g+_i||^2
        radial = (xn * gi).sum(-1, keepdim=True)  # x+^T g per row: the part of g that the transport removes
        pg2 = g2 - dot(radial, radial)  # ||P g||^2
        ggn = dot(gi, gn)  # <P g, g+> = <g, g+>
        sSs = sSs + si * pg2  # times a^2
        sy = sy + si * (pg2 - ggn)  # times a
        ySy = ySy + si * (gn2 - 2 * ggn + pg2)
    if batched:
        good = sy > 0 if long else (sy > 0) & (ySy > 0)
        step_ = torch.where(good, a * sSs / sy if long else a * sy / ySy, math.inf)
        return torch.nan_to_num(step_, nan=math.inf)
    if long:
        return a * sSs / sy if sy > 0 else math.inf
    return a * sy / ySy if (sy > 0 and ySy > 0) else math.inf


# --------------------------------------------------------------------------- checks

def _as_blocks(points, name):
    """Return ``(tuple_of_tensors, was_single_tensor)``."""
    if isinstance(points, torch.Tensor):
        return (check_matrix(points, name, min_ndim=1),), True
    if not isinstance(points, (tuple, list)) or len(points) == 0:
        raise TypeError(f"{name} must be a tensor or a nonempty tuple of tensors, got {type(points).__name__}")
    return tuple(check_matrix(p, f"{name}[{i}]", min_ndim=1) for i, p in enumerate(points)), False


def _check_real(v, name, low, high, *, closed_low=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    v = float(v)
    ok_low = v >= low if closed_low else v > low
    if not (math.isfinite(v) and ok_low and v < high):
        raise ValueError(f"{name} must lie in {'[' if closed_low else '('}{low}, {high}), got {v}")
    return v


def _record(v, shape, *, batched):
    """A per-iteration history list as an array: ``(T,)`` for one run, ``(T, B)`` for a batch."""
    if not v:
        return np.zeros(shape)
    return torch.stack(v).cpu().numpy() if batched else np.asarray(v, dtype=np.float64)


def _stopping_test(f, gnorm, f_opt, gtol, ftol, active, converged, batched):
    """Stopping test shared by :func:`run` and ``geoopt_rgd.run``: a run stops once its gradient norm
    is ``<= gtol`` or its gap ``f - f_opt`` is ``<= ftol``. Returns the new ``(converged, active)``;
    in a batch, runs already stopped stay as they were."""
    if batched:
        done = gnorm <= gtol if gtol is not None else torch.zeros_like(active)
        if f_opt is not None and ftol is not None:
            done = done | (f - f_opt <= ftol)
        return converged | (done & active), active & ~done
    done = (gtol is not None and gnorm <= gtol) or (ftol is not None and f_opt is not None and f - f_opt <= ftol)
    return done, not done


_check_lr = check_positive_real  # lr, lr_min, lr_max and the per-block scales share one check


def _check_tol(tol, name):
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0 or None, got {type(tol).__name__}")
    tol = float(tol)
    if math.isnan(tol) or tol < 0:
        raise ValueError(f"{name} must be >= 0, got {tol}")
    return tol


def _check_scales(scales, m):
    if scales is None:
        return (1.0,) * m
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence):
        raise TypeError(f"scales must be a sequence of {m} positive numbers, got {type(scales).__name__}")
    if len(scales) != m:
        raise ValueError(f"scales must have one entry per block ({m}), got {len(scales)}")
    return tuple(_check_lr(s, f"scales[{i}]") for i, s in enumerate(scales))


def _evaluate(fg, points):
    f, g = fg(points)
    if len(g) != len(points):
        raise ValueError(f"the Riemannian gradient must have one tensor per block ({len(points)}), got {len(g)}")
    if not bool(torch.isfinite(f).all()) or not all(bool(torch.isfinite(gi).all()) for gi in g):
        raise ValueError("the loss or its gradient is not finite at the starting point")
    return f, g
