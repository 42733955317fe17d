r"""Step-size rules for Riemannian gradient descent on products of spheres, as small objects.

An iterate holds a point :math:`x = (x_1, \dots, x_m)` (blocks of unit rows), the loss
:math:`f(x)` and the Riemannian gradient :math:`g = \operatorname{grad} f(x)`. Block :math:`i`
moves by :math:`\alpha\, s_i` along :math:`-g_i` (fixed per-block scales :math:`s_i`, for the UFM
:math:`(1, n)`), so the step direction is :math:`-S g` and its slope is :math:`-\langle g, S g\rangle`.
A rule chooses :math:`\alpha` by ``StepRule.search``, given a function ``trial(alpha)`` that
returns the retracted and evaluated candidate :class:`Iterate`:

* :class:`Fixed` -- :math:`\alpha_t = \mathrm{lr}`, one evaluation per step;
* :class:`Armijo` -- backtracking from :math:`\min(2\alpha_{t-1}, \alpha_{\max})` until
  :math:`f(x^+) \le f(x) - c\,\alpha \langle g, S g\rangle` (monotone);
* :class:`BarzilaiBorwein` -- the Riemannian BB step (long and short sizes alternating, vector
  transport by tangent projection), safeguarded by a nonmonotone (Zhang-Hager) Armijo test.

Every per-run quantity (loss, gradient norms, slope, step size, line-search reference) is a
float64 value on the host of the batch shape: a ``float`` for a single run, an ``ndarray`` ``(B,)``
for a batch of independent runs. One representation, no tensor twin: these numbers steer the
control flow (acceptance, stopping), so they must reach the host anyway, and arithmetic on them
there costs a fraction of a tensor operation. The blocks (points and gradients) stay tensors on
their device; each evaluation sends its per-run reductions to the host at once (:func:`to_host`).
The line search of pymanopt (``pymanopt.optimizers.line_search``) has the same split between the
optimizer and a searcher object; these rules add per-run step sizes for batches.

Introduced in: chapter 03 (RGD by hand).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_integer, check_positive_real, check_real

__all__ = ["DEFAULTS", "Iterate", "StepRule", "Fixed", "Armijo", "BarzilaiBorwein", "make_rule", "RULES",
           "block_inner", "block_norm", "inner", "weighted_sum", "to_host", "every", "some", "select", "largest",
           "clip"]

#: Default constants of the line searches, defined here once (``rgd.run`` and ``solve`` use them).
DEFAULTS = {"c": 1e-4, "shrink": 0.5, "max_backtracks": 40, "lr_min": 1e-12, "lr_max": 1e6, "nonmonotone": 0.85}


# --------------------------------------------------------------------------- per-run values on the host

def to_host(*values: torch.Tensor) -> list:
    """Return per-run tensors of one batch shape as host values: floats for ``()``, float64 arrays for ``(B,)``.

    On the CPU each is a plain read; from an accelerator they travel in one transfer.
    """
    if not values[0].is_cpu:
        values = _one_transfer(values)
    if values[0].ndim == 0:
        return [v.item() for v in values]
    return [v.detach().to(torch.float64, copy=True).numpy() for v in values]  # a copy: no alias of the tensor


def _one_transfer(values) -> tuple:
    """Stack per-run tensors (one batch shape) and copy them to the CPU as float64 in one transfer."""
    return torch.stack([v.detach().to(values[0].dtype) for v in values]).to("cpu", torch.float64).unbind(0)


def every(mask) -> bool:
    """Whether every entry of a per-run bool (a bool, or an array for a batch) is True."""
    return bool(mask.all()) if isinstance(mask, np.ndarray) else bool(mask)


def some(mask) -> bool:
    """Whether some entry of a per-run bool (a bool, or an array for a batch) is True."""
    return bool(mask.any()) if isinstance(mask, np.ndarray) else bool(mask)


def select(mask, a, b):
    """Per run: ``a`` where ``mask`` is True, ``b`` elsewhere (``np.where`` for a batch, a plain choice for one run)."""
    return np.where(mask, a, b) if isinstance(mask, np.ndarray) else (a if mask else b)


def largest(v) -> float:
    """Return the largest entry of a per-run value (the value itself for a single run)."""
    return float(v.max()) if isinstance(v, np.ndarray) else float(v)


def clip(v, low: float, high: float):
    """Clip a per-run value to ``[low, high]``; NaN gives ``high`` (as an infinite step does)."""
    if isinstance(v, np.ndarray):
        return np.clip(np.nan_to_num(v, nan=high, posinf=high), low, high)
    return high if v != v else min(max(v, low), high)


def weighted_sum(weights, values):
    r"""Return :math:`\sum_i w_i v_i` of per-run values (floats or arrays), one term per block."""
    total = 0.0
    for w, v in zip(weights, values):
        total = total + w * v
    return total


def _hypot(values: list):
    r"""Return :math:`\sqrt{\sum_i v_i^2}` of per-run values without overflow (``math.hypot`` for one run)."""
    if isinstance(values[0], np.ndarray):
        return functools.reduce(np.hypot, values)
    return math.hypot(*values)


# --------------------------------------------------------------------------- reductions over the blocks

def block_inner(u: tuple, v: tuple, weights, nd: int):
    r""":math:`\sum_i w_i \langle u_i, v_i\rangle` per run: a host value of the batch shape (the first ``nd`` axes)."""
    return weighted_sum(weights, to_host(*(inner(ui, vi, nd) for ui, vi in zip(u, v))))


def inner(u: torch.Tensor, v: torch.Tensor, nd: int) -> torch.Tensor:
    r""":math:`\langle u, v\rangle` over all but the first ``nd`` (batch) axes: a tensor of the batch shape.

    One kernel: ``torch.dot`` for a single run, a sum of products over the trailing axes for a batch.
    """
    if nd == 0:
        return torch.dot(u, v) if u.ndim == 1 else torch.dot(u.reshape(-1), v.reshape(-1))
    return torch.linalg.vecdot(u.flatten(nd), v.flatten(nd))


def block_norm(u: torch.Tensor, nd: int) -> torch.Tensor:
    r""":math:`\lVert u\rVert` over all but the first ``nd`` (batch) axes: a tensor of the batch shape (one kernel)."""
    return torch.linalg.vector_norm(u) if nd == 0 else torch.linalg.vector_norm(u, dim=tuple(range(nd, u.ndim)))


@dataclass(slots=True)
class Iterate:
    r"""One iterate of a run (or a batch of runs): point, loss and Riemannian gradient.

    Attributes
    ----------
    x, g : tuple of Tensor
        The blocks of the point and of its Riemannian gradient (same shapes, on the device).
    f : float or ndarray ``(B,)``
        The loss per run (host, float64).
    norms : tuple
        :math:`\lVert g_i\rVert` per block, per run (host).
    gnorm : float or ndarray
        :math:`\lVert g\rVert` (product metric).
    gSg : float or ndarray
        :math:`\langle g, S g\rangle = \sum_i s_i \lVert g_i\rVert^2` with the block scales: minus the slope
        along the step :math:`-S g`.
    batch_shape : tuple
        ``()`` for a single run, ``(B,)`` for a batch.
    """

    x: tuple
    f: object
    g: tuple
    norms: tuple
    gnorm: object
    gSg: object
    batch_shape: tuple = ()

    @classmethod
    def make(cls, x, f: torch.Tensor, g, scales) -> Iterate:
        """Build an iterate from the loss tensor ``f`` (batch shape) and the gradient blocks; one host transfer."""
        nd = f.ndim
        f, *norms = to_host(f, *[block_norm(gi, nd) for gi in g])
        gSg = weighted_sum(scales, [q * q for q in norms])
        return cls(x=tuple(x), f=f, g=tuple(g), norms=tuple(norms), gnorm=_hypot(norms), gSg=gSg,
                   batch_shape=tuple(f.shape) if nd else ())

    def where(self, mask: np.ndarray, other: Iterate) -> Iterate:
        """Per run: this iterate where ``mask`` (bool array of the batch shape) is True, ``other`` elsewhere."""
        nd = mask.ndim
        on_device = torch.as_tensor(mask, device=self.x[0].device)

        def pick(a, b):
            return torch.where(on_device.reshape(mask.shape + (1,) * (a.ndim - nd)), a, b)

        return Iterate(x=tuple(map(pick, self.x, other.x)), f=np.where(mask, self.f, other.f),
                       g=tuple(map(pick, self.g, other.g)),
                       norms=tuple(np.where(mask, a, b) for a, b in zip(self.norms, other.norms)),
                       gnorm=np.where(mask, self.gnorm, other.gnorm), gSg=np.where(mask, self.gSg, other.gSg),
                       batch_shape=self.batch_shape)


class StepRule:
    """Base class of the step-size rules: ``start`` once, then ``search`` at every iteration.

    ``search(it, trial, active)`` returns ``(alpha, new_iterate, evaluations)``; ``trial(alpha)``
    retracts ``it.x - alpha * S * it.g`` and evaluates the loss and gradient there (``alpha`` a
    per-run host value). ``active`` (bool array of the batch shape, or None when all runs go on)
    marks the runs still going: a frozen run never blocks a line search.
    """

    name = "base"

    def start(self, it: Iterate, scales: tuple) -> None:
        """Begin a run at the first iterate ``it`` with the block ``scales`` (once, before any search)."""
        self.scales = tuple(scales)

    def search(self, it: Iterate, trial, active):  # pragma: no cover - interface
        """Find the step from ``it``; return ``(alpha, new_iterate, evaluations)`` (see the class)."""
        raise NotImplementedError


class Fixed(StepRule):
    r"""The fixed step :math:`\alpha_t = \mathrm{lr}` (a plain number shared by all runs)."""

    name = "fixed"

    def __init__(self, lr: float):
        self.lr = check_positive_real(lr, "lr")

    def search(self, it, trial, active):
        """Take the step ``lr`` with one evaluation (see :meth:`StepRule.search`)."""
        return self.lr, trial(self.lr), 1


class Armijo(StepRule):
    r"""Monotone backtracking: shrink the step until the Armijo condition holds.

    Start at :math:`\min(2\alpha_{t-1}, \alpha_{\max})` (``lr`` at ``t = 0``) and multiply by ``shrink``
    until :math:`f(x^+) \le C - c\,\alpha\langle g, Sg\rangle` with :math:`C = f(x)`.

    When :math:`|f(x^+) - f(x)|` is below the round-off floor of the loss (``flat_rtol`` times the
    starting loss, at least ``flat_floor``), the loss can no longer rank two points and the gradient decides instead:
    :math:`\langle g^+, S g^+\rangle \le (1 - c)\langle g, S g\rangle`.
    """

    name = "armijo"

    def __init__(self, lr: float, *, c: float = DEFAULTS["c"], shrink: float = DEFAULTS["shrink"],
                 max_backtracks: int = DEFAULTS["max_backtracks"], lr_min: float = DEFAULTS["lr_min"],
                 lr_max: float = DEFAULTS["lr_max"], flat_floor: float = 1e-300):
        self.lr = check_positive_real(lr, "lr")
        self.c = check_real(c, "c", low=0.0, high=1.0, low_open=True, high_open=True)
        self.shrink = check_real(shrink, "shrink", low=0.0, high=1.0, low_open=True, high_open=True)
        self.max_backtracks = check_integer(max_backtracks, "max_backtracks", minimum=0)
        self.lr_min, self.lr_max = check_positive_real(lr_min, "lr_min"), check_positive_real(lr_max, "lr_max")
        self.flat_floor = check_positive_real(flat_floor, "flat_floor")

    def start(self, it, scales):
        """Set the step to ``lr`` per run and the round-off floor of the loss (see :meth:`StepRule.start`)."""
        super().start(it, scales)
        shape = it.batch_shape
        self.alpha = np.full(shape, self.lr) if shape else self.lr
        self.first = True
        # |f+ - f| below this means f sits at its round-off floor (scale: the starting loss)
        rtol = 1e-10 if it.x[0].dtype == torch.float64 else 1e-5
        self.flat = rtol * np.maximum(abs(it.f), self.flat_floor)  # np.float64 (a float) for a single run
        self.reference = it.f

    def first_trial(self, it):
        """Return the first trial step per run: ``lr`` at first, then ``2 * alpha`` clipped to ``[lr_min, lr_max]``."""
        return self.alpha if self.first else clip(2 * self.alpha, self.lr_min, self.lr_max)

    def flat_test(self, it, new):
        """Test acceptance where f is flat (per-run bool): the gradient norm (scaled metric) must shrink."""
        return new.gSg <= (1 - self.c) * it.gSg

    def search(self, it, trial, active):
        """Backtrack from :meth:`first_trial` until every active run passes (see :meth:`StepRule.search`).

        At most ``max_backtracks`` shrinks; the last trial is returned even if some run still fails.
        """
        a = self.first_trial(it)
        for evals in range(1, self.max_backtracks + 2):
            new = trial(a)
            ok = new.f <= self.reference - self.c * a * it.gSg
            flat = abs(new.f - it.f) <= self.flat
            if some(flat):
                ok = select(flat, self.flat_test(it, new), ok)
            if active is not None:  # None: every run is active
                ok = ok | ~active
            if every(ok) or evals == self.max_backtracks + 1:
                break
            a = select(ok, a, a * self.shrink)
        self.after(it, new, a)
        return a, new, evals

    def after(self, it, new, a):
        """Keep the accepted step ``a`` and the new loss as the reference :math:`C` of the next search."""
        self.first = False
        self.alpha = a
        self.reference = new.f


class BarzilaiBorwein(Armijo):
    r"""Riemannian Barzilai-Borwein steps with a nonmonotone Armijo safeguard.

    With the tangent projection :math:`P` at :math:`x^+` as vector transport, the step taken
    :math:`s = -\alpha S P g` and :math:`y = g^+ - P g`, the next trial step alternates between the
    long and short sizes :math:`\langle s, S^{-1}s\rangle/\langle s, y\rangle` and
    :math:`\langle s, y\rangle/\langle y, S y\rangle`, clipped to :math:`[\alpha_{\min}, \alpha_{\max}]`
    (a non-positive curvature estimate gives :math:`\alpha_{\max}`). The Armijo test compares with the
    Zhang-Hager average :math:`C_{t+1} = (\eta Q_t C_t + f_{t+1})/Q_{t+1}`,
    :math:`Q_{t+1} = \eta Q_t + 1` (``nonmonotone`` :math:`=\eta`; 0 gives a monotone test). Where f
    is flat to round-off, Hager-Zhang's approximate Armijo test decides:
    :math:`\langle g^+, S g\rangle \ge -(1-2c)\langle g, S g\rangle`.
    """

    name = "bb"

    def __init__(self, lr: float, *, nonmonotone: float = DEFAULTS["nonmonotone"], **kw):
        super().__init__(lr, **kw)
        self.nonmonotone = check_real(nonmonotone, "nonmonotone", low=0.0, high=1.0, high_open=True)

    def start(self, it, scales):
        """Start as :class:`Armijo` does, with :math:`Q = 1`; the first BB step computed is the long one."""
        super().start(it, scales)
        self.Q = 1.0
        self.long = True

    def first_trial(self, it):
        """Return the first trial step per run: the BB step of the last iteration (``lr`` at first)."""
        return self.alpha

    def flat_test(self, it, new):
        r"""Test Hager-Zhang's approximate Armijo condition, used where f is flat (per-run bool).

        The condition is :math:`\langle g^+, S g\rangle \ge -(1-2c)\langle g, S g\rangle`.
        """
        return block_inner(new.g, it.g, self.scales, len(it.batch_shape)) >= -(1 - 2 * self.c) * it.gSg

    def after(self, it, new, a):
        """Set the next BB step (clipped, alternating long and short) and update the Zhang-Hager average :math:`C`."""
        self.first = False
        self.alpha = clip(self.next_step(it, new, a), self.lr_min, self.lr_max)
        self.long = not self.long
        Q_new = self.nonmonotone * self.Q + 1
        self.reference = (new.f + self.nonmonotone * self.Q * self.reference) / Q_new
        self.Q = Q_new

    def next_step(self, it, new, a):
        r"""Compute the BB step from the step just taken (in the metric scaled by the block factors).

        Because :math:`g^+` is tangent, :math:`\langle P g, g^+\rangle = \langle g, g^+\rangle`, and
        :math:`\lVert P g\rVert^2 = \lVert g\rVert^2 - \sum_{\text{rows}} (x^{+\top} g)^2`. The inner
        products are computed on the device, per block, and reach the host in one transfer.
        """
        nd = len(it.batch_shape)
        sums = []  # per block: sum_rows (x+^T g_i)^2, then <g_i, g+_i>
        for xn, gi, gn in zip(new.x, it.g, new.g):
            radial = torch.linalg.vecdot(xn, gi)  # x+^T g per row: what the transport removes
            sums += [inner(radial, radial, nd) if radial.ndim > nd else radial.square(), inner(gi, gn, nd)]
        sums = to_host(*sums)
        r2, sggn = weighted_sum(self.scales, sums[0::2]), weighted_sum(self.scales, sums[1::2])
        sSs = it.gSg - r2  # sum_i s_i ||P g_i||^2
        sy = sSs - sggn  # <s, y> / a
        if self.long:  # a <s, S^-1 s> / <s, y>, both over a^2 and a
            return _ratio(a * sSs, sy, sy <= 0)
        ySy = new.gSg + sSs - 2.0 * sggn  # <y, S y> = <g+, S g+> - 2 <g+, S P g> + <P g, S P g>
        return _ratio(a * sy, ySy, (sy <= 0) | (ySy <= 0))


def _ratio(num, den, bad):
    """Per run ``num / den``, and inf where ``bad`` (a non-positive curvature estimate)."""
    if isinstance(bad, np.ndarray):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(bad, math.inf, num / den)
    return math.inf if bad else num / den


#: Rule names accepted by :func:`make_rule` (and ``rgd.run(rule=...)``).
RULES = {"fixed": Fixed, "armijo": Armijo, "bb": BarzilaiBorwein}


def make_rule(name: str, lr: float, **options) -> StepRule:
    """Make the rule called ``name`` (one of :data:`RULES`) with first step ``lr``; ``options`` as in its class.

    :class:`Fixed` takes no options; the others take ``c``, ``shrink``, ``max_backtracks``,
    ``lr_min``, ``lr_max``, and :class:`BarzilaiBorwein` also ``nonmonotone`` (defaults :data:`DEFAULTS`).
    """
    if not isinstance(name, str) or name not in RULES:
        raise ValueError(f"name must be one of {tuple(RULES)}, got {name!r}")
    if name == "fixed":
        return Fixed(lr)
    if name == "armijo":
        options.pop("nonmonotone", None)
    return RULES[name](lr, **options)
