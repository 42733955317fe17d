r"""The landscape of the normalized UFM: Riemannian Hessian, spectra and critical points.

The UFM loss :math:`f(W, H)` (see :mod:`ncbook.ufm`) lives on the product of spheres
:math:`\mathrm{OB}(d, K) \times \mathrm{OB}(d, N)`, a manifold of dimension :math:`D = (d-1)(K+N)`.
Its Riemannian Hessian, applied row by row to a tangent direction :math:`\Delta = (\Delta_W, \Delta_H)`, is

.. math:: \operatorname{Hess} f(X)[\Delta] = P_X\big(\nabla^2 f(X)[\Delta]\big)
          - \operatorname{diag}\big(\langle x_j, \nabla_{x_j} f\rangle\big)\, \Delta ,

the projected Euclidean Hessian-vector product plus the curvature term
(:func:`ncbook.sphere.ehess_to_rhess`). The Euclidean Hessian-vector product has the closed form
(rows convention, :math:`P = \operatorname{softmax}(\tau H W^\top)` row-wise, one-hot :math:`Y`):

.. math::
    \delta Z = \tau(\Delta_H W^\top + H \Delta_W^\top), \qquad
    \delta P_i = \big(\operatorname{diag}(p_i) - p_i p_i^\top\big)\, \delta z_i ,

    \nabla^2_W f[\Delta] = \tfrac{\tau}{N}\big(\delta P^\top H + (P - Y)^\top \Delta_H\big), \qquad
    \nabla^2_H f[\Delta] = \tfrac{\tau}{N}\big(\delta P\, W + (P - Y)\, \Delta_W\big).

For small problems :func:`hessian_matrix` writes the Hessian as a dense symmetric ``(D, D)`` matrix
in an orthonormal basis of the tangent space; :func:`hessian_spectrum` and
:func:`negative_curvature_direction` read it. Three explicit critical points are provided:
the ETF minimizer (global minimum), the fully collapsed point and the anti-aligned ETF (strict saddles).

Introduced in: chapter 06 (the landscape: critical points, Hessians, strict saddles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from . import ufm
from ._checks import (
    as_tensor,
    check_compatible,
    check_dim,
    check_finite,
    check_float_dtype,
    check_positive_int,
    check_same_shape,
    check_tau,
)
from .etf import simplex_etf
from .sphere import ehess_to_rhess

__all__ = [
    "MAX_DENSE_DIM",
    "CriticalPoint",
    "CriticalPointReport",
    "euclidean_hvp",
    "riemannian_hvp",
    "quadratic_form",
    "tangent_basis",
    "hessian_matrix",
    "hessian_spectrum",
    "negative_curvature_direction",
    "collapsed_spectrum",
    "etf_minimizer",
    "collapsed_point",
    "anti_aligned_etf",
    "rotation_direction",
    "classify_critical_point",
]

#: Largest tangent dimension ``D = (d-1)(K+N)`` for which :func:`hessian_matrix` builds a dense matrix
#: (``D = 2000`` is 32 MB in float64 and an ``eigvalsh`` of a few seconds on a laptop core).
#: Pass ``max_dim=`` to go beyond it deliberately.
MAX_DENSE_DIM = 2000


class CriticalPoint(NamedTuple):
    """A UFM point ``(W, H, y)``; unpacks as ``W, H, y = etf_minimizer(...)``."""

    W: torch.Tensor
    H: torch.Tensor
    y: torch.Tensor


# ---------------------------------------------------------------------------------------------
# Hessian-vector products
# ---------------------------------------------------------------------------------------------

def _directions(W, H, dW, dH):
    dW = as_tensor(dW, "dW")
    dH = as_tensor(dH, "dH")
    check_same_shape(W, dW, "W", "dW")
    check_same_shape(H, dH, "H", "dH")
    check_compatible(W, dW, "W", "dW")
    check_compatible(H, dH, "H", "dH")
    check_finite(dW, "dW")
    check_finite(dH, "dH")
    return dW, dH


def _proj(X, U):
    """Row-wise tangent projection, broadcasting over leading batch axes of ``U``."""
    return U - (X * U).sum(-1, keepdim=True) * X


def _softmax_and_residual(W, H, y, tau):
    N = H.shape[0]
    P = torch.softmax(tau * (H @ W.T), dim=-1)  # (N, K)
    G = P.clone()
    G[torch.arange(N, device=H.device), y] -= 1.0  # P - Y
    return P, G


def _ehvp(W, H, y, tau, A, B, P=None, G=None):
    """Closed-form Euclidean HVP; ``A (..., K, d)``, ``B (..., N, d)`` may carry leading batch axes."""
    if P is None:
        P, G = _softmax_and_residual(W, H, y, tau)
    c = tau / H.shape[0]
    dZ = tau * (B @ W.T + H @ A.transpose(-1, -2))  # (..., N, K)
    dP = P * (dZ - (P * dZ).sum(-1, keepdim=True))
    return c * (dP.transpose(-1, -2) @ H + G.T @ B), c * (dP @ W + G @ A)


def _rhvp(W, H, y, tau, A, B, P=None, G=None):
    """Riemannian HVP for tangent ``A``, ``B`` (batched like :func:`_ehvp`)."""
    if P is None:
        P, G = _softmax_and_residual(W, H, y, tau)
    c = tau / H.shape[0]
    gW, gH = c * (G.T @ H), c * (G @ W)  # Euclidean gradients
    hW, hH = _ehvp(W, H, y, tau, A, B, P, G)
    sW = (W * gW).sum(-1, keepdim=True)  # curvature weights <w_k, grad_{w_k} f>
    sH = (H * gH).sum(-1, keepdim=True)
    return _proj(W, hW) - sW * A, _proj(H, hH) - sH * B


def euclidean_hvp(W, H, y, tau, dW, dH, *, method: str = "closed"):
    r"""Euclidean Hessian-vector product :math:`\nabla^2 f(W, H)[\Delta_W, \Delta_H]` of the UFM loss.

    Parameters
    ----------
    W : Tensor ``(K, d)``, H : Tensor ``(N, d)``, unit rows; y : Tensor ``(N,)`` int64; tau : float > 0
    dW : Tensor ``(K, d)``, dH : Tensor ``(N, d)``
        The direction (any ambient direction; the Euclidean Hessian needs no tangency).
    method : ``"closed"`` (the formula in the module docstring) or ``"autograd"`` (double backward)

    Returns
    -------
    (hW, hH) : Tensors ``(K, d)`` and ``(N, d)``.
    """
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    dW, dH = _directions(W, H, dW, dH)
    if method == "closed":
        return _ehvp(W, H, y, tau, dW, dH)
    if method == "autograd":
        Wr, Hr = W.detach().requires_grad_(True), H.detach().requires_grad_(True)
        with torch.enable_grad():
            f = torch.nn.functional.cross_entropy(tau * (Hr @ Wr.T), y)
            gW, gH = torch.autograd.grad(f, (Wr, Hr), create_graph=True)
            hW, hH = torch.autograd.grad((gW * dW).sum() + (gH * dH).sum(), (Wr, Hr))
        return hW.detach(), hH.detach()
    raise ValueError(f"method must be 'closed' or 'autograd', got {method!r}")


def riemannian_hvp(W, H, y, tau, dW, dH, *, method: str = "closed"):
    r"""Riemannian Hessian-vector product :math:`\operatorname{Hess} f(W, H)[\Delta]` of the UFM loss.

    The direction is first projected onto the tangent space, so the result is the Hessian
    operator composed with the projection (symmetric on the ambient space). The Euclidean part is
    computed by ``method`` (see :func:`euclidean_hvp`), then converted row by row with
    :func:`ncbook.sphere.ehess_to_rhess`.

    Returns
    -------
    (hW, hH) : Tensors ``(K, d)`` and ``(N, d)``, tangent at ``W`` and ``H``.
    """
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    dW, dH = _directions(W, H, dW, dH)
    dW, dH = _proj(W, dW), _proj(H, dH)
    gW, gH = ufm.egrad(W, H, y, tau)
    hW, hH = euclidean_hvp(W, H, y, tau, dW, dH, method=method)
    return ehess_to_rhess(W, gW, hW, dW), ehess_to_rhess(H, gH, hH, dH)


def quadratic_form(W, H, y, tau, dW, dH) -> float:
    r"""Curvature along a direction: :math:`\langle \Delta, \operatorname{Hess} f[\Delta]\rangle` with
    :math:`\Delta` the tangent projection of ``(dW, dH)`` (not normalized)."""
    hW, hH = riemannian_hvp(W, H, y, tau, dW, dH)
    dW, dH = _proj(W, dW), _proj(H, dH)
    return float((hW * dW).sum() + (hH * dH).sum())


# ---------------------------------------------------------------------------------------------
# dense Hessian in a tangent basis
# ---------------------------------------------------------------------------------------------

def tangent_basis(X: torch.Tensor) -> torch.Tensor:
    r"""Orthonormal bases of the tangent spaces of the rows of ``X``.

    Parameters
    ----------
    X : Tensor ``(m, d)``, unit rows, ``d >= 2``

    Returns
    -------
    Q : Tensor ``(m, d, d-1)``
        ``Q[j]`` has orthonormal columns spanning :math:`x_j^\perp`; from a complete QR of
        :math:`x_j` (its first column is :math:`\pm x_j`, the others are orthogonal to it).
    """
    from .sphere import _point

    X = _point(X, "X")
    if X.ndim != 2 or X.shape[-1] < 2:
        raise ValueError(f"X must have shape (m, d) with d >= 2, got {tuple(X.shape)}")
    Q, _ = torch.linalg.qr(X.unsqueeze(-1), mode="complete")  # (m, d, d)
    return Q[..., 1:]


def _check_dense(W, H, max_dim):
    K, d = W.shape
    N = H.shape[0]
    max_dim = check_positive_int(max_dim, "max_dim")
    if d < 2:
        raise ValueError(f"W and H must have d >= 2 columns for a nonzero tangent space, got d={d}")
    D = (d - 1) * (K + N)
    if D > max_dim:
        raise ValueError(
            f"the tangent dimension D = (d-1)(K+N) = {D} exceeds max_dim = {max_dim}; a dense Hessian "
            "would be too large. Use riemannian_hvp for matrix-free products, or pass a larger max_dim."
        )
    return D


def _basis_to_ambient(QW, QH, c):
    """Map tangent coordinates ``c (..., D)`` to ambient directions ``(dW (..., K, d), dH (..., N, d))``."""
    K, d, r = QW.shape
    N = QH.shape[0]
    cW = c[..., : K * r].reshape(*c.shape[:-1], K, r)
    cH = c[..., K * r:].reshape(*c.shape[:-1], N, r)
    return torch.einsum("kdj,...kj->...kd", QW, cW), torch.einsum("ndj,...nj->...nd", QH, cH)


def _ambient_to_basis(QW, QH, dW, dH):
    cW = torch.einsum("kdj,...kd->...kj", QW, dW)
    cH = torch.einsum("ndj,...nd->...nj", QH, dH)
    return torch.cat([cW.reshape(*cW.shape[:-2], -1), cH.reshape(*cH.shape[:-2], -1)], dim=-1)


def hessian_matrix(W, H, y, tau, *, max_dim: int = MAX_DENSE_DIM, symmetrize: bool = True,
                   chunk: int = 256) -> torch.Tensor:
    r"""The Riemannian Hessian of the UFM loss as a dense ``(D, D)`` matrix, :math:`D = (d-1)(K+N)`.

    Coordinates are taken in the orthonormal tangent basis of :func:`tangent_basis`, ordered as the
    ``d-1`` coordinates of ``w_0``, then of ``w_1``, ..., ``w_{K-1}``, then ``h_0``, ..., ``h_{N-1}``.
    Entry :math:`(a, b)` is :math:`\langle e_a, \operatorname{Hess} f[e_b]\rangle`, computed with
    batched closed-form Hessian-vector products.

    Parameters
    ----------
    W, H, y, tau : the UFM instance (unit rows, float64 recommended)
    max_dim : int
        Refuse (``ValueError``) when ``D > max_dim``; default :data:`MAX_DENSE_DIM`.
    symmetrize : bool
        Return :math:`(M + M^\top)/2`; the raw matrix is symmetric up to round-off.
    chunk : int
        Number of basis directions per batched product (memory control).

    Returns
    -------
    Tensor ``(D, D)``, same dtype and device as ``W``.
    """
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    D = _check_dense(W, H, max_dim)
    chunk = check_positive_int(chunk, "chunk")
    QW, QH = tangent_basis(W), tangent_basis(H)
    P, G = _softmax_and_residual(W, H, y, tau)
    eye = torch.eye(D, dtype=W.dtype, device=W.device)
    cols = []
    for start in range(0, D, chunk):
        A, B = _basis_to_ambient(QW, QH, eye[start:start + chunk])
        hA, hB = _rhvp(W, H, y, tau, A, B, P, G)
        cols.append(_ambient_to_basis(QW, QH, hA, hB))
    M = torch.cat(cols, dim=0)  # row b = coordinates of Hess[e_b]; symmetric, so rows = columns
    return 0.5 * (M + M.T) if symmetrize else M.T.contiguous()


def hessian_spectrum(W, H, y, tau, *, max_dim: int = MAX_DENSE_DIM) -> torch.Tensor:
    """Eigenvalues of :func:`hessian_matrix`, sorted ascending, shape ``(D,)``."""
    return torch.linalg.eigvalsh(hessian_matrix(W, H, y, tau, max_dim=max_dim))


def negative_curvature_direction(W, H, y, tau, *, tol: float = 1e-10, max_dim: int = MAX_DENSE_DIM):
    r"""A unit tangent direction of most negative curvature, or ``None`` when the Hessian is PSD.

    Returns the eigenvector of the smallest Hessian eigenvalue :math:`\lambda_{\min}`, mapped back
    to ambient rows, when :math:`\lambda_{\min} < -\mathrm{tol}\cdot\max(1, \max_j|\lambda_j|)`.
    Along it, :math:`f(R_X(t\Delta)) = f(X) + \tfrac{t^2}{2}\lambda_{\min} + O(t^3)` at a critical point,
    so a small step decreases the loss: this is how a saddle is escaped.

    Returns
    -------
    (dW, dH) : Tensors ``(K, d)``, ``(N, d)``, tangent, unit total Frobenius norm; or ``None``.
    """
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    M = hessian_matrix(W, H, y, tau, max_dim=max_dim)
    evals, evecs = torch.linalg.eigh(M)
    scale = max(1.0, float(evals.abs().max()))
    if float(evals[0]) >= -tol * scale:
        return None
    dW, dH = _basis_to_ambient(tangent_basis(W), tangent_basis(H), evecs[:, 0])
    return dW, dH


def collapsed_spectrum(K: int, d: int, n: int, tau: float, *, dtype=torch.float64) -> torch.Tensor:
    r"""Closed-form Hessian spectrum at the fully collapsed point (:func:`collapsed_point`), ascending.

    At :math:`w_k = h_i = u` all logits are equal, :math:`p_i = \mathbf 1/K`, every Euclidean gradient
    row is parallel to :math:`u` (so the point is critical) and, for balanced classes, every curvature
    weight :math:`\langle x_j, \nabla_{x_j} f\rangle` vanishes. A tangent direction has
    :math:`\Delta_{w_k}, \Delta_{h_i} \perp u`, so :math:`\delta z_i = 0` and only the mixed term of
    the Hessian survives:

    .. math:: \langle \Delta, \operatorname{Hess} f[\Delta]\rangle = -\frac{2\tau}{N}\sum_{k,i} C_{ki}\,
              \Delta_{w_k}^\top \Delta_{h_i}, \qquad C = Y - \tfrac1K \mathbf 1_K \mathbf 1_N^\top ,

    i.e. :math:`\operatorname{Hess} f = -\frac{\tau}{N}\begin{pmatrix} 0 & C \\ C^\top & 0\end{pmatrix}
    \otimes I_{d-1}`, with :math:`Y \in \{0,1\}^{K\times N}` the one-hot label matrix. Since
    :math:`C C^\top = n(I_K - \tfrac1K\mathbf 1\mathbf 1^\top)`, the singular values of :math:`C` are
    :math:`\sqrt n` (``K-1`` times) and 0, and the spectrum is

    * :math:`-\tau\sqrt n/N = -\tau/(K\sqrt n)` with multiplicity :math:`(K-1)(d-1)`,
    * :math:`+\tau/(K\sqrt n)` with multiplicity :math:`(K-1)(d-1)`,
    * :math:`0` with multiplicity :math:`(N-K+2)(d-1)`, where :math:`N = nK`.

    A negative-curvature direction moves classifier :math:`k` and all its features together along
    :math:`x_k a` with :math:`a \perp u` and :math:`\sum_k x_k = 0`: it pulls the classes apart.
    """
    K = check_positive_int(K, "K", minimum=2)
    d = check_positive_int(d, "d", minimum=2)
    n = check_positive_int(n, "n")
    tau = check_tau(tau)
    check_float_dtype(dtype)
    lam = tau / (K * math.sqrt(n))
    m = (K - 1) * (d - 1)
    z = (n * K - K + 2) * (d - 1)
    return torch.cat([torch.full((m,), -lam, dtype=dtype), torch.zeros(z, dtype=dtype),
                      torch.full((m,), lam, dtype=dtype)])


# ---------------------------------------------------------------------------------------------
# critical points
# ---------------------------------------------------------------------------------------------

def _sizes(K, d, n, *, need_etf: bool):
    K = check_positive_int(K, "K", minimum=2)
    d = check_positive_int(d, "d", minimum=2)
    n = check_positive_int(n, "n")
    if need_etf:
        check_dim(d, K)
    return K, d, n


def etf_minimizer(K: int, d: int, n: int, *, dtype: torch.dtype = torch.float64,
                  generator: torch.Generator | None = None, device=None) -> CriticalPoint:
    r"""A global minimizer: ``W`` a simplex ETF and every feature equal to its classifier, :math:`h_i = w_{y_i}`.

    Balanced labels (:func:`ncbook.ufm.balanced_labels`), ``N = nK``; requires ``d >= K-1``.
    A ``generator`` rotates the ETF randomly. The loss equals :func:`ncbook.ufm.optimal_loss`.
    """
    K, d, n = _sizes(K, d, n, need_etf=True)
    W = simplex_etf(K, d, dtype=dtype, generator=generator, device=device)
    y = ufm.balanced_labels(K, n, device=W.device)
    return CriticalPoint(W, W[y].clone(), y)


def collapsed_point(K: int, d: int, n: int, *, u: torch.Tensor | None = None, dtype: torch.dtype = torch.float64,
                    generator: torch.Generator | None = None, device=None) -> CriticalPoint:
    r"""The fully collapsed critical point: every classifier and every feature equals one unit vector ``u``.

    All logits are equal, so :math:`f = \log K` for every :math:`\tau`; it is a strict saddle with
    the spectrum :func:`collapsed_spectrum`. ``u`` defaults to :math:`e_1`, or a random unit vector
    when a ``generator`` is given.
    """
    K, d, n = _sizes(K, d, n, need_etf=False)
    check_float_dtype(dtype)
    if u is None:
        if generator is None:
            u = torch.zeros(d, dtype=dtype)
            u[0] = 1.0
        else:
            u = torch.randn(d, generator=generator, dtype=dtype)
            u = u / torch.linalg.vector_norm(u)
    else:
        from .sphere import _point

        u = _point(u, "u")
        if u.shape != (d,):
            raise ValueError(f"u must have shape ({d},), got {tuple(u.shape)}")
        u = u.to(dtype)
    u = u.to(device)
    y = ufm.balanced_labels(K, n, device=u.device)
    return CriticalPoint(u.expand(K, d).clone(), u.expand(n * K, d).clone(), y)


def anti_aligned_etf(K: int, d: int, n: int, *, dtype: torch.dtype = torch.float64,
                     generator: torch.Generator | None = None, device=None) -> CriticalPoint:
    r"""The anti-aligned ETF: ``W`` a simplex ETF and every feature opposite its classifier, :math:`h_i = -w_{y_i}`.

    The logits are :math:`-\tau` for the true class and :math:`\tau/(K-1)` for the others, so
    :math:`f = \log(1 + (K-1)e^{\tau K/(K-1)})`. It is a critical point with negative curvature (a
    strict saddle in the sense of the landscape theorem). For most ``(K, tau)`` its Hessian has
    eigenvalues of both signs, but not always: numerically, for ``K = 3`` and :math:`\tau \lesssim 0.831`
    (for every ``n`` and ``d`` tried) it is negative semidefinite, with zero eigenvalues only along the
    rotations, i.e. a local maximizer.
    """
    K, d, n = _sizes(K, d, n, need_etf=True)
    W = simplex_etf(K, d, dtype=dtype, generator=generator, device=device)
    y = ufm.balanced_labels(K, n, device=W.device)
    return CriticalPoint(W, -W[y], y)


def rotation_direction(W: torch.Tensor, H: torch.Tensor, S: torch.Tensor):
    r"""Tangent direction of the rotation orbit: :math:`(W S, H S)` for a skew-symmetric ``S`` ``(d, d)``.

    The loss depends on :math:`W, H` only through :math:`H W^\top`, which the rotation
    :math:`X \mapsto X e^{tS}` leaves unchanged, so :math:`f` is constant along the orbit and, at a
    critical point, :math:`\operatorname{Hess} f[(WS, HS)] = 0`: these directions form (part of) the
    Hessian's null space at the ETF minimizer.
    """
    from .sphere import _point

    W, H = _point(W, "W"), _point(H, "H")
    S = as_tensor(S, "S")
    check_finite(S, "S")
    d = W.shape[-1]
    if S.shape != (d, d):
        raise ValueError(f"S must have shape ({d}, {d}), got {tuple(S.shape)}")
    check_compatible(W, S, "W", "S")
    if not torch.allclose(S, -S.T, atol=1e-12 * max(1.0, float(S.abs().max()))):
        raise ValueError("S must be skew-symmetric (S == -S.T)")
    return W @ S, H @ S


@dataclass(frozen=True)
class CriticalPointReport:
    r"""What :func:`classify_critical_point` found.

    ``label`` is one of

    * ``"not critical"``: the Riemannian gradient is not zero;
    * ``"minimizer"``: gradient zero, Hessian PSD, i.e. a second-order critical point. When
      :math:`d \ge K` the landscape theorem (chapter 06) makes it a global minimizer; for smaller
      :math:`d` degenerate points exist where the loss still decreases at fourth order (chapter 06
      shows one at K = 3, d = 2), so the label only certifies second-order criticality;
    * ``"strict saddle"``: gradient zero and a negative Hessian eigenvalue (the sense of the landscape
      theorem and of saddle-avoidance results: a direction of negative curvature). This includes
      local maximizers; :attr:`is_local_maximizer` tells them apart.

    Zero eigenvalues are not examined further; at the UFM's critical points they come from the
    rotation symmetry :math:`X \mapsto XQ`, along which the loss is constant.
    """

    label: str
    grad_norm: float
    loss: float
    min_eig: float
    max_eig: float
    n_negative: int
    n_zero: int
    n_positive: int
    eigenvalues: torch.Tensor = field(repr=False)

    @property
    def is_local_maximizer(self) -> bool:
        """Critical with a negative and no positive eigenvalue (Hessian negative semidefinite)."""
        return self.label == "strict saddle" and self.n_positive == 0


def classify_critical_point(W, H, y, tau, *, grad_tol: float = 1e-8, eig_tol: float = 1e-8,
                            max_dim: int = MAX_DENSE_DIM) -> CriticalPointReport:
    r"""Classify a UFM point from its Riemannian gradient norm and Hessian spectrum.

    The point is critical when :math:`\lVert \operatorname{grad} f\rVert \le` ``grad_tol``.
    Eigenvalues with :math:`|\lambda| \le` ``eig_tol`` :math:`\cdot \max(1, \max|\lambda|)` count as zero.
    The spectrum is computed even when the point is not critical (for plotting).
    """
    for name, v in (("grad_tol", grad_tol), ("eig_tol", eig_tol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    gW, gH = ufm.rgrad(W, H, y, tau)
    gnorm = float(torch.sqrt((gW * gW).sum() + (gH * gH).sum()))
    evals = hessian_spectrum(W, H, y, tau, max_dim=max_dim)
    thr = eig_tol * max(1.0, float(evals.abs().max()))
    n_neg, n_pos = int((evals < -thr).sum()), int((evals > thr).sum())
    if gnorm > grad_tol:
        label = "not critical"
    elif n_neg == 0:
        label = "minimizer"
    else:
        label = "strict saddle"
    return CriticalPointReport(label=label, grad_norm=gnorm, loss=float(ufm.loss(W, H, y, tau)),
                               min_eig=float(evals[0]), max_eig=float(evals[-1]), n_negative=n_neg,
                               n_zero=evals.numel() - n_neg - n_pos, n_positive=n_pos, eigenvalues=evals)
