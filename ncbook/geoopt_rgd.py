r"""Riemannian gradient descent through geoopt: the same algorithm as :mod:`ncbook.rgd`.

geoopt stores a point on a manifold as a :class:`geoopt.ManifoldParameter` (a tensor that knows
its manifold) and updates it with a Riemannian optimizer. For rows on unit spheres the manifold
is ``geoopt.Sphere()``, which acts on the last axis, so a ``(K, d)`` parameter is ``K`` points on
:math:`\mathbb S^{d-1}`, exactly our convention. One step of
``geoopt.optim.RiemannianSGD(lr=lr)`` (no momentum) does, for every parameter,

.. math:: x \leftarrow \mathrm{retr}_x\big(-\mathrm{lr}\cdot \mathrm{proju}_x(\nabla f(x))\big),
          \qquad \mathrm{retr}_x(u) = \frac{x+u}{\lVert x+u\rVert},

which is :func:`ncbook.rgd.step` with the ``"fixed"`` rule: ``Sphere.retr`` is our
:func:`ncbook.sphere.retract`. (``geoopt.SphereExact`` uses the exponential map as its ``retr``
instead; :func:`step` with ``exact=True`` matches :func:`ncbook.sphere.exp_map`.) The per-block
factors :math:`s_i` of :mod:`ncbook.rgd` become parameter groups with ``lr * s_i``.

A classic pitfall: ``geoopt.ManifoldParameter(torch.randn(K, d), manifold=geoopt.Sphere())``
does **not** put the rows on the sphere; it wraps the tensor as given, the first gradient is then
projected at a point that is not on the manifold, and the first step is wrong (afterwards the
retraction normalizes). Project first (``Sphere.projx``, our :func:`ncbook.sphere.normalize`):
:func:`manifold_parameter` does it by default.

Introduced in: chapter 04 (RGD with geoopt).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import geoopt
import torch

from . import rgd, sphere, stepsize
from ._checks import (
    check_blocks,
    check_matrix,
    check_positive_int,
    check_positive_real,
    check_real,
    check_scales,
    check_tolerance,
    check_unit_rows,
)

__all__ = ["NAME_MAP", "OPTIMIZERS", "manifold_parameter", "make_optimizer", "load_optimizer_state", "step", "run",
           "geoopt_stepper", "finish"]

#: ncbook name -> geoopt name, for the same operation on ``geoopt.Sphere()`` (rows, last axis).
NAME_MAP = {
    "sphere.normalize": "Sphere.projx",
    "sphere.project": "Sphere.proju",
    "sphere.egrad_to_rgrad": "Sphere.egrad2rgrad",
    "sphere.retract": "Sphere.retr",
    "sphere.exp_map": "Sphere.expmap (and SphereExact.retr)",
    "sphere.log_map": "Sphere.logmap",
    "sphere.dist": "Sphere.dist (per row)",
    "sphere.inner": "Sphere.inner (per row)",
    "sphere.random_point": "Sphere.random_uniform",
    "sphere.is_on_sphere": "Sphere.check_point_on_manifold",
    "projection as vector transport (rgd, rule='bb')": "Sphere.transp",
    "points (a tuple of tensors with unit rows)": "ManifoldParameter(x, manifold=Sphere())",
    "rgd.step": "optim.RiemannianSGD.step",
    "rgd.run(rule='fixed', scales=s)": "optim.RiemannianSGD with one param group per block, lr * s_i",
}

#: Optimizer names accepted by :func:`make_optimizer` and :func:`run`.
OPTIMIZERS = ("sgd", "adam")


def manifold_parameter(x: torch.Tensor, *, manifold: geoopt.Manifold | None = None,
                       project: bool = True) -> geoopt.ManifoldParameter:
    r"""Wrap ``x`` as a :class:`geoopt.ManifoldParameter` on the sphere, rows first projected onto it.

    Parameters
    ----------
    x : Tensor ``(..., d)``
        Rows to put on :math:`\mathbb S^{d-1}` (copied, never modified).
    manifold : geoopt.Manifold, optional
        Default ``geoopt.Sphere()``; ``geoopt.SphereExact()`` retracts with the exponential map.
    project : bool
        Normalize the rows first (default). With ``False`` the rows must already have unit norm,
        else :class:`ValueError`: geoopt itself would silently accept them (the pitfall above).

    Returns
    -------
    geoopt.ManifoldParameter
    """
    manifold = geoopt.Sphere() if manifold is None else manifold
    if not isinstance(manifold, geoopt.Manifold):
        raise TypeError(f"manifold must be a geoopt.Manifold, got {type(manifold).__name__}")
    x = sphere.normalize(x) if project else check_unit_rows(check_matrix(x, "x", min_ndim=1), "x")
    if x.shape[-1] < 2:
        raise ValueError(f"x rows must have length d >= 2, got shape {tuple(x.shape)}")
    return geoopt.ManifoldParameter(x.detach().clone(), manifold=manifold)


def make_optimizer(params: Sequence[torch.nn.Parameter], name: str = "sgd", *, lr: float,
                   scales: Sequence[float] | None = None, momentum: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999), stabilize: int | None = None):
    """Build a geoopt Riemannian optimizer with one parameter group per block and ``lr * scales[i]``.

    Parameters
    ----------
    params : sequence of ManifoldParameter
        One per block (e.g. ``[W, H]``).
    name : {"sgd", "adam"}
        ``geoopt.optim.RiemannianSGD`` or ``geoopt.optim.RiemannianAdam``.
    lr : float
        Base step size.
    scales : sequence of float, optional
        Per-block factors (default all 1): the UFM recipe is ``(1, n)`` for SGD.
    momentum : float
        SGD momentum (0: plain RGD).
    betas : pair of float
        Adam's averaging constants.
    stabilize : int, optional
        Re-project the parameters onto the manifold every ``stabilize`` steps (geoopt option).
    """
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"name must be one of {OPTIMIZERS}, got {name!r}")
    if not isinstance(params, (list, tuple)) or len(params) == 0:
        raise TypeError("params must be a nonempty list of parameters (one per block)")
    lr = check_positive_real(lr, "lr")
    scales = check_scales(scales, len(params))
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    if stabilize is not None:
        stabilize = check_positive_int(stabilize, "stabilize")
    groups = [{"params": [p], "lr": lr * s} for p, s in zip(params, scales)]
    if name == "sgd":
        return geoopt.optim.RiemannianSGD(groups, lr=lr, momentum=momentum, stabilize=stabilize)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"betas must be a pair of floats in [0, 1), got {betas!r}")
    betas = tuple(check_real(b, f"betas[{i}]", low=0.0, high=1.0, high_open=True) for i, b in enumerate(betas))
    return geoopt.optim.RiemannianAdam(groups, lr=lr, betas=betas, stabilize=stabilize)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state_dict: dict) -> torch.optim.Optimizer:
    r"""``optimizer.load_state_dict(state_dict)``, keeping geoopt's step counters exact.

    ``torch.optim.Optimizer.load_state_dict`` turns every per-parameter ``"step"`` entry into a
    float32 tensor (torch's own Adam keeps it that way). ``geoopt.optim.RiemannianAdam`` stores an
    ``int`` and computes its bias corrections :math:`1-\beta^t` from it, so after a plain reload
    they would be rounded to float32 and the resumed run would drift from the uninterrupted one by
    about 1e-6. This helper turns the counters back into ints. Returns the optimizer.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not isinstance(state_dict, dict) or "state" not in state_dict:
        raise TypeError("state_dict must be a dict from optimizer.state_dict()")
    optimizer.load_state_dict(state_dict)
    if isinstance(optimizer, geoopt.optim.RiemannianAdam):
        for state in optimizer.state.values():
            if isinstance(state.get("step"), torch.Tensor):
                state["step"] = int(state["step"].item())
    return optimizer


def step(points, egrads, lr: float, scales: Sequence[float] | None = None, *, exact: bool = False):
    """One step of ``geoopt.optim.RiemannianSGD`` from ``points`` with Euclidean gradients ``egrads``.

    The inputs are not modified. With ``exact=False`` (``geoopt.Sphere``) this equals
    :func:`ncbook.rgd.step` applied to the projected gradients; with ``exact=True``
    (``geoopt.SphereExact``) it follows great circles (:func:`ncbook.sphere.exp_map`).

    Returns
    -------
    Tensor or tuple of Tensor
        The new points (plain tensors), in the same form as ``points``.
    """
    blocks, single = check_blocks(points, "points")
    grads, _ = check_blocks(egrads, "egrads")
    if len(grads) != len(blocks):
        raise ValueError(f"egrads must have one tensor per block of points ({len(blocks)}), got {len(grads)}")
    manifold = geoopt.SphereExact() if exact else geoopt.Sphere()
    params = [manifold_parameter(x, manifold=manifold, project=False) for x in blocks]
    lr = check_positive_real(lr, "lr")
    scales = check_scales(scales, len(params))
    for i, (p, g) in enumerate(zip(params, grads)):
        if g.shape != p.shape:
            raise ValueError(f"each egrad must have the shape of its block {tuple(p.shape)}, got {tuple(g.shape)}")
        # geoopt forms x - lr * g and squares it: past sqrt(max float) the rows would come back as zeros
        size = lr * scales[i] * float(g.abs().max())
        if not size < torch.finfo(p.dtype).max ** 0.5 / 1e4:
            raise ValueError(f"lr is too large for geoopt's retraction: lr * scale * max|egrad| = {size:.3g} "
                             "overflows its squares; use a smaller lr (rgd.step handles any finite lr)")
        p.grad = g.detach().clone().to(p.dtype)
    make_optimizer(params, "sgd", lr=lr, scales=scales).step()
    out = tuple(p.detach().clone() for p in params)
    return out[0] if single else out


def run(points, loss_fn: Callable | None = None, *, egrad_fn: Callable | None = None, optimizer: str = "sgd",
        lr: float = 1.0, steps: int = 1000, scales: Sequence[float] | None = None, gtol: float | None = 1e-10,
        f_opt=None, ftol: float | None = None, momentum: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
        exact: bool = False, tangent_grads: bool = False, callback: Callable | None = None) -> rgd.History:
    r"""Optimize with a geoopt Riemannian optimizer; same stopping rules and records as :func:`ncbook.rgd.run`.

    Parameters
    ----------
    points : Tensor or tuple of Tensor
        Starting blocks with unit rows (a leading batch axis when the loss returns shape ``(B,)``).
    loss_fn : callable, optional
        ``loss_fn(params) -> Tensor`` written with torch ops; its gradient comes from autograd
        (``loss.sum().backward()``, which for a batch gives each run its own gradient).
    egrad_fn : callable, optional
        ``egrad_fn(points) -> (loss, egrads)`` with closed-form Euclidean gradients (no autograd;
        faster). Give exactly one of ``loss_fn`` and ``egrad_fn``.
    optimizer : {"sgd", "adam"}
    lr, steps, scales, gtol, f_opt, ftol, callback
        As in :func:`ncbook.rgd.run`. ``step_size`` in the history records ``lr``.
    momentum, betas
        Passed to :func:`make_optimizer`.
    exact : bool
        Use ``geoopt.SphereExact`` (exponential map) instead of ``geoopt.Sphere`` (projection).
    tangent_grads : bool
        ``egrad_fn`` already returns Riemannian (tangent) gradients: geoopt's projection leaves them
        unchanged, and their norm needs no projection here (saves work).

    Returns
    -------
    ncbook.rgd.History
    """
    blocks, _ = check_blocks(points, "points")
    for i, x in enumerate(blocks):
        check_unit_rows(x, f"points[{i}]")
        if x.shape[-1] < 2:
            raise ValueError(f"points[{i}] rows must have length d >= 2 (a sphere with a tangent space)")
    if (loss_fn is None) == (egrad_fn is None):
        raise TypeError("give exactly one of loss_fn (autograd) and egrad_fn (closed-form gradients)")
    for name, fn in (("loss_fn", loss_fn), ("egrad_fn", egrad_fn), ("callback", callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    lr = check_positive_real(lr, "lr")
    steps = check_positive_int(steps, "steps", minimum=0)
    scales = check_scales(scales, len(blocks))
    gtol = check_tolerance(gtol, "gtol", allow_none=True)
    ftol = check_tolerance(ftol, "ftol", allow_none=True)
    t0 = time.perf_counter()
    advance, start = geoopt_stepper(blocks, egrad_fn, loss_fn=loss_fn, optimizer=optimizer, lr=lr, scales=scales,
                                    momentum=momentum, betas=betas, exact=exact, tangent_grads=bool(tangent_grads))
    f_opt = rgd.batch_value(f_opt, start.f, "f_opt")
    stop = rgd.StoppingTest(gtol=gtol, ftol=ftol, f_opt=f_opt,
                            floor=None if f_opt is None else rgd.roundoff(f_opt, start.f, blocks[0].dtype))
    return finish(rgd.iterate(advance, start, steps=steps, stop=stop, callback=callback, t0=t0))


def finish(hist: rgd.History) -> rgd.History:
    """Detach the final point from the optimizer's parameters (copies, safe to keep)."""
    hist.points = tuple(p.detach().clone() for p in hist.points)
    return hist


def geoopt_stepper(points, egrad_fn, *, loss_fn=None, optimizer="sgd", lr, scales, momentum=0.0,
                   betas=(0.9, 0.999), exact=False, tangent_grads=False):
    """Wrap a geoopt optimizer as a step of :func:`ncbook.rgd.iterate`; return ``(advance, first_iterate)``.

    Inputs are not validated here (:func:`run` does it). ``advance`` runs ``optimizer.step()`` on
    ``ManifoldParameter`` copies of ``points``; the runs of a batch that have stopped get their point
    back after the step (their optimizer state still moves, as it would in a loop over the batch).
    """
    manifold = geoopt.SphereExact() if exact else geoopt.Sphere()
    params = [geoopt.ManifoldParameter(x.detach().clone(), manifold=manifold) for x in points]
    opt = make_optimizer(params, optimizer, lr=lr, scales=scales, momentum=momentum, betas=betas)
    ones = (1.0,) * len(params)

    def evaluate():
        if egrad_fn is not None:
            with torch.no_grad():
                f, eg = egrad_fn(tuple(p.detach() for p in params))
            for p, e in zip(params, eg):
                p.grad = e
        else:
            opt.zero_grad(set_to_none=True)
            f = loss_fn(tuple(params))
            if not isinstance(f, torch.Tensor) or not f.requires_grad:
                raise TypeError("loss_fn must return a tensor computed from the parameters (for autograd)")
            f.sum().backward()
            f = f.detach()
        with torch.no_grad():
            rg = tuple(p.grad if tangent_grads else manifold.egrad2rgrad(p, p.grad) for p in params)
        return stepsize.Iterate.make(tuple(p.detach() for p in params), f, rg, ones)

    start = evaluate()
    bshape = start.batch_shape
    nd = len(bshape)
    if any(p.ndim <= nd or tuple(p.shape[:nd]) != bshape for p in params):
        raise ValueError(f"the loss has batch shape {bshape}; every block must start with it")
    if not rgd.all_finite(start):
        raise ValueError("the loss or its gradient is not finite at the starting point")

    def advance(it, active):
        partial = active is not None  # some runs of the batch have stopped
        if partial:  # frozen runs keep their point: remember it, step everyone, restore
            old = [p.detach().clone() for p in params]
        opt.step()
        if partial:
            mask = torch.as_tensor(active, device=params[0].device)
            with torch.no_grad():
                for p, o in zip(params, old):
                    p.copy_(torch.where(mask.reshape(mask.shape + (1,) * (p.ndim - nd)), p, o))
        return lr, evaluate(), 1

    advance.rule = f"geoopt-{optimizer}"
    advance.scales = tuple(scales)
    return advance, start
