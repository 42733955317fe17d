r"""The unit sphere :math:`\mathbb{S}^{d-1}` and products of spheres, acting on the last axis.

A tensor of shape ``(..., d)`` is a point on a product of spheres, one sphere per row; an
``(m, d)`` matrix with unit rows is a point of the oblique manifold
:math:`\mathrm{OB}(d, m) \cong (\mathbb{S}^{d-1})^m`. This is geoopt's convention
(``geoopt.Sphere`` has ``ndim = 1``) and that of ``nn.Linear.weight``; the paper stores points
as columns instead (see the notation appendix).

Every function works row by row, so a batched call equals a loop over rows.

Introduced in: chapter 02 (optimization on the sphere).
"""

from __future__ import annotations

import math
import numbers

import torch

from ._checks import (
    as_tensor,
    check_compatible,
    check_finite,
    check_float_dtype,
    check_matrix,
    check_real,
    check_same_shape,
    check_tensor,
    check_tolerance,
    check_unit_rows,
)

__all__ = [
    "check_point",
    "step_along",
    "inner",
    "normalize",
    "is_on_sphere",
    "project",
    "retract",
    "exp_map",
    "log_map",
    "dist",
    "random_point",
    "random_tangent",
    "egrad_to_rgrad",
    "ehess_to_rhess",
]

_EPS = {torch.float32: 1e-7, torch.float64: 1e-15}


def check_point(x, name: str = "x") -> torch.Tensor:
    """Return ``x`` after checking it is a finite floating tensor with unit rows (a point), naming it ``name``."""
    x = check_matrix(x, name, min_ndim=1)
    return check_unit_rows(x, name)


_point = check_point  # old private name, kept for callers outside this module until they switch


def _unit_rows(y: torch.Tensor) -> torch.Tensor:
    """Rows of ``y`` over their norms, with a max-abs rescale first so that no square overflows or underflows."""
    m = y.abs().amax(-1, keepdim=True)
    z = y / torch.where(m > 0, m, torch.ones_like(m))
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True)


def _vector(u, x, name="u", point_name="x"):
    u = as_tensor(u, name)
    check_same_shape(x, u, point_name, name)
    check_compatible(x, u, point_name, name)
    check_finite(u, name)
    return u


def inner(x: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Riemannian metric :math:`\langle u, v\rangle` summed over all rows (the product metric).

    Parameters
    ----------
    x, u, v : Tensor, shape ``(..., d)``
        A point and two tangent vectors at it.

    Returns
    -------
    Tensor, shape ``()``
        :math:`\sum_{\text{rows}} u_j^\top v_j`. geoopt: ``Sphere.inner`` (per row, not summed).
    """
    x = _point(x)
    u, v = _vector(u, x, "u"), _vector(v, x, "v")
    return (u * v).sum()


def normalize(x: torch.Tensor) -> torch.Tensor:
    r"""Scale every row of ``x`` to unit norm: :math:`x / \lVert x \rVert`.

    Rows of zero norm have no direction and raise :class:`ValueError`. geoopt: ``Sphere.projx``.
    """
    x = check_matrix(x, "x", min_ndim=1)
    if bool((x.abs().amax(-1) <= torch.finfo(x.dtype).tiny).any()):
        raise ValueError("x has a row of zero norm, which cannot be normalized onto the sphere")
    return _unit_rows(x)


def is_on_sphere(x: torch.Tensor, atol: float | None = None) -> bool:
    """Return True if every row of ``x`` has unit norm within ``atol`` (dtype default).

    ``x`` must be a floating tensor and ``atol`` a finite number >= 0 (else :class:`TypeError` /
    :class:`ValueError`); rows off the sphere, NaN or inf give False.
    """
    x = check_tensor(x, "x")
    atol = None if atol is None else check_tolerance(atol, "atol")
    try:
        check_point(x) if atol is None else check_unit_rows(check_matrix(x, "x", min_ndim=1), "x", atol)
    except ValueError:
        return False
    return True


def project(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Orthogonal projection onto the tangent space, row by row.

    .. math:: P_x(u) = u - (x^\top u)\, x, \qquad T_x\mathbb{S}^{d-1} = \{v : x^\top v = 0\}.

    Parameters
    ----------
    x : Tensor, shape ``(..., d)``, unit rows
    u : Tensor, shape ``(..., d)``, any ambient vector

    Returns
    -------
    Tensor, shape ``(..., d)``; geoopt: ``Sphere.proju``.
    """
    x = _point(x)
    u = _vector(u, x)
    return u - (x * u).sum(-1, keepdim=True) * x


def egrad_to_rgrad(x: torch.Tensor, egrad: torch.Tensor) -> torch.Tensor:
    r"""Riemannian gradient from the Euclidean one: :math:`\operatorname{grad} f(x) = P_x(\nabla f(x))`.

    The sphere is a Riemannian submanifold of :math:`\mathbb{R}^d`, so the Riemannian gradient is
    the tangent part of the Euclidean gradient. geoopt: ``Sphere.egrad2rgrad``.
    """
    return project(x, _vector(egrad, _point(x), "egrad"))


def ehess_to_rhess(x: torch.Tensor, egrad: torch.Tensor, ehess_u: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Riemannian Hessian-vector product from Euclidean derivatives, row by row.

    .. math:: \operatorname{Hess} f(x)[u] = P_x\big(\nabla^2 f(x)[u]\big) - (x^\top \nabla f(x))\, u .

    The second term is the curvature (Weingarten) correction: it is what makes the Hessian of
    :math:`x^\top A x` on the sphere differ from :math:`2A`.

    Parameters
    ----------
    x : Tensor ``(..., d)``, unit rows
    egrad : Tensor ``(..., d)``, the Euclidean gradient :math:`\nabla f(x)`
    ehess_u : Tensor ``(..., d)``, the Euclidean Hessian-vector product :math:`\nabla^2 f(x)[u]`
    u : Tensor ``(..., d)``, a tangent vector at ``x``

    Returns
    -------
    Tensor ``(..., d)``, tangent at ``x``. geoopt has no public equivalent; pymanopt:
    ``Oblique.euclidean_to_riemannian_hessian``.
    """
    x = _point(x)
    egrad = _vector(egrad, x, "egrad")
    ehess_u = _vector(ehess_u, x, "ehess_u")
    u = _vector(u, x, "u")
    return project(x, ehess_u) - (x * egrad).sum(-1, keepdim=True) * u


def retract(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Metric-projection retraction :math:`R_x(u) = (x + u) / \lVert x + u \rVert`, row by row.

    It agrees with the exponential map to second order (a second-order retraction).
    geoopt: ``Sphere.retr``.
    """
    x = _point(x)
    u = _vector(u, x)
    return step_along(x, u, 1.0, point_name="x", vector_name="u", checked=True)


def step_along(x: torch.Tensor, u: torch.Tensor, t=1.0, *, point_name: str = "x", vector_name: str = "u",
               step_name: str = "t", checked: bool = False) -> torch.Tensor:
    r"""Retract: return :math:`R_x(t\,u) = (x + t u)/\lVert x + t u\rVert` without overflow, for any finite ``t``.

    Each row is first divided by :math:`\max(1, |t|\,\lVert u\rVert_\infty)` (in the form
    :math:`c\,x + (c\,t)\,u`, so that :math:`t u` is never formed), which keeps every entry at most
    2 in size: ``t = 1e200`` gives the direction of ``u`` (the limit), not zeros. ``*_name`` name the
    arguments in error messages; ``checked=True`` skips the checks of ``x`` and ``u``.
    """
    if not checked:
        x = check_point(x, point_name)
        u = _vector(u, x, vector_name, point_name)
    t = _step_value(t, step_name)
    m = u.abs().amax(-1, keepdim=True)  # ||u||_inf per row
    big = abs(t) * m > 1  # inf compares correctly too
    inv = 1.0 / (abs(t) * m)
    c = torch.where(big, inv, torch.ones_like(m))
    ct = torch.where(big, math.copysign(1.0, t) / torch.where(m > 0, m, torch.ones_like(m)), torch.full_like(m, t))
    y = c * x + ct * u
    # For a tangent u, ||x + t u||^2 = 1 + t^2 ||u||^2 >= 1; a zero row means t u = -x, which is not tangent.
    if bool((torch.linalg.vector_norm(y, dim=-1) <= _EPS.get(x.dtype, 1e-7)).any()):
        raise ValueError(f"x + {step_name}*{vector_name} has a zero row, so it cannot be retracted; "
                         f"{vector_name} must be a tangent vector at {point_name}")
    return _unit_rows(y)


def _step_value(t, name):
    return check_real(t, name)


def exp_map(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Exponential map: follow the great circle from ``x`` in direction ``u`` for length ``|u|``.

    .. math:: \operatorname{Exp}_x(u) = \cos(\lVert u\rVert)\, x + \sin(\lVert u\rVert)\, u / \lVert u\rVert .

    The norm is computed with a max-abs rescale (no overflow of the squares); a row whose norm
    exceeds the largest float raises :class:`ValueError`. geoopt: ``Sphere.expmap``.
    """
    x = _point(x)
    u = _vector(u, x)
    m = u.abs().amax(-1, keepdim=True)
    m = torch.where(m > 0, m, torch.ones_like(m))
    n = m * torch.linalg.vector_norm(u / m, dim=-1, keepdim=True)
    if not bool(torch.isfinite(n).all()):
        raise ValueError("u has a row whose norm overflows the dtype, so the great circle length is undefined")
    # sin(n)/n -> 1 as n -> 0; torch.sinc(t) = sin(pi t)/(pi t) handles the limit without a branch.
    y = torch.cos(n) * x + torch.sinc(n / torch.pi) * u
    return y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)  # |y| is about 1: no rescale needed


def log_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Logarithm map, the inverse of :func:`exp_map` for ``dist(x, y) < pi``.

    Antipodal rows (:math:`y_j = -x_j`) raise :class:`ValueError`: every direction reaches them.

    .. math:: \operatorname{Log}_x(y) = \theta\, \frac{P_x(y - x)}{\lVert P_x(y - x)\rVert},
              \quad \theta = \arccos(x^\top y).

    geoopt: ``Sphere.logmap``.
    """
    x = _point(x)
    y = _point(_vector(y, x, "y"), "y")
    v = y - (x * y).sum(-1, keepdim=True) * x
    theta = dist_rows(x, y).unsqueeze(-1)
    nv = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    eps = _EPS.get(x.dtype, 1e-7)
    if bool(((nv <= eps) & ((x * y).sum(-1, keepdim=True) < 0)).any()):
        raise ValueError("y has a row antipodal to the same row of x: the logarithm there is not unique")
    # theta / |v| -> 1 as y -> x (|v| = sin theta); guard the 0/0 in both branches of the where,
    # so that autograd through log_map stays finite too.
    scale = torch.where(nv > eps, theta / nv.clamp_min(eps), torch.ones_like(nv))
    return scale * v


def dist_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Geodesic distance per row, shape ``(...)``; numerically stable via ``atan2``."""
    cross = torch.linalg.vector_norm(y - (x * y).sum(-1, keepdim=True) * x, dim=-1)
    return torch.atan2(cross, (x * y).sum(-1))


def dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Geodesic distance on the product of spheres.

    .. math:: d(x, y) = \Big(\sum_{\text{rows } j} \arccos(x_j^\top y_j)^2\Big)^{1/2}.

    For a single row this is the great-circle angle. geoopt: ``Sphere.dist`` (per row).
    """
    x = _point(x)
    y = _point(_vector(y, x, "y"), "y")
    return torch.linalg.vector_norm(dist_rows(x, y).reshape(-1))


def random_point(*shape: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                 device=None) -> torch.Tensor:
    """Uniformly random point on the product of spheres: Gaussian rows, normalized.

    ``random_point(K, d)`` gives a ``(K, d)`` matrix of unit rows. geoopt: ``Sphere.random_uniform``.
    """
    if not shape or any(not isinstance(s, numbers.Integral) or isinstance(s, bool) for s in shape):
        raise TypeError(f"shape must be positive integers such as random_point(K, d), got {shape}")
    if any(s < 1 for s in shape):
        raise ValueError(f"shape must be positive integers such as random_point(K, d), got {shape}")
    shape = tuple(int(s) for s in shape)
    dtype = torch.get_default_dtype() if dtype is None else check_float_dtype(dtype)
    if shape[-1] < 2:
        raise ValueError(f"the last dimension (d) must be >= 2 for a sphere with a tangent space, got {shape[-1]}")
    g = torch.randn(*shape, generator=generator, dtype=dtype, device=device)
    return g / torch.linalg.vector_norm(g, dim=-1, keepdim=True)


def random_tangent(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Draw a random tangent vector at ``x`` with unit total (Frobenius) norm.

    Needs ``d >= 2`` (the tangent space of :math:`\mathbb{S}^0` is zero). geoopt: no direct
    equivalent (``proju`` of a Gaussian, then a normalization).
    """
    x = _point(x)
    if x.shape[-1] < 2:
        raise ValueError(f"x must have d >= 2 (last axis) to have nonzero tangent vectors, got shape {tuple(x.shape)}")
    g = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    v = project(x, g)
    return v / torch.linalg.vector_norm(v)
