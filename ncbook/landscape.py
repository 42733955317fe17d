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
the ETF minimizer (global minimum), the fully collapsed point and the anti-aligned ETF (strict saddles),
with their spectra in closed or reduced form (:func:`collapsed_spectrum`, :func:`etf_minimizer_spectrum`,
:func:`anti_aligned_spectrum`). :func:`newton_critical_point` and :func:`census` search for critical
points of every index and sort them into classes up to the symmetries of the problem.

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
    "etf_minimizer_spectrum",
    "anti_aligned_spectrum",
    "newton_critical_point",
    "CensusEntry",
    "census",
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
    r"""Curvature along a direction: :math:`\langle \Delta, \operatorname{Hess} f[\Delta]\rangle`.

    :math:`\Delta` is the tangent projection of ``(dW, dH)`` (not normalized).
    """
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
    from .sphere import check_point

    X = check_point(X, "X")
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
    r"""Return the Riemannian Hessian of the UFM loss as a dense ``(D, D)`` matrix, :math:`D = (d-1)(K+N)`.

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
    r"""Return a unit tangent direction of most negative curvature, or ``None`` when the Hessian is PSD.

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
    r"""Build a global minimizer: ``W`` a simplex ETF and every feature equal to its classifier.

    That is, :math:`h_i = w_{y_i}`.

    Balanced labels (:func:`ncbook.ufm.balanced_labels`), ``N = nK``; requires ``d >= K-1``.
    A ``generator`` rotates the ETF randomly. The loss equals :func:`ncbook.ufm.optimal_loss`.
    """
    K, d, n = _sizes(K, d, n, need_etf=True)
    W = simplex_etf(K, d, dtype=dtype, generator=generator, device=device)
    y = ufm.balanced_labels(K, n, device=W.device)
    return CriticalPoint(W, W[y].clone(), y)


def collapsed_point(K: int, d: int, n: int, *, u: torch.Tensor | None = None, dtype: torch.dtype = torch.float64,
                    generator: torch.Generator | None = None, device=None) -> CriticalPoint:
    r"""Build the fully collapsed critical point: every classifier and feature equals one unit vector ``u``.

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
        from .sphere import check_point

        u = check_point(u, "u")
        if u.shape != (d,):
            raise ValueError(f"u must have shape ({d},), got {tuple(u.shape)}")
        u = u.to(dtype)
    u = u.to(device)
    y = ufm.balanced_labels(K, n, device=u.device)
    return CriticalPoint(u.expand(K, d).clone(), u.expand(n * K, d).clone(), y)


def anti_aligned_etf(K: int, d: int, n: int, *, dtype: torch.dtype = torch.float64,
                     generator: torch.Generator | None = None, device=None) -> CriticalPoint:
    r"""Build the anti-aligned ETF: ``W`` a simplex ETF and every feature opposite its classifier.

    That is, :math:`h_i = -w_{y_i}`.

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
    from .sphere import check_point

    W, H = check_point(W, "W"), check_point(H, "H")
    S = as_tensor(S, "S")
    check_finite(S, "S")
    d = W.shape[-1]
    if S.shape != (d, d):
        raise ValueError(f"S must have shape ({d}, {d}), got {tuple(S.shape)}")
    check_compatible(W, S, "W", "S")
    if not torch.allclose(S, -S.T, atol=1e-12 * max(1.0, float(S.abs().max()))):
        raise ValueError("S must be skew-symmetric (S == -S.T)")
    return W @ S, H @ S



# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------

LABELS = ("not critical", "global minimizer", "second-order critical", "strict saddle")


@dataclass(frozen=True)
class CriticalPointReport:
    r"""What :func:`classify_critical_point` found.

    ``label`` is one of

    * ``"not critical"``: the Riemannian gradient is not zero;
    * ``"global minimizer"``: gradient zero, Hessian PSD and the loss equal to the optimal value
      :func:`ncbook.ufm.optimal_loss` (balanced labels, ``d >= K-1``) to ``loss_tol``: minimality
      is *certified* by the value, since no point has a smaller loss;
    * ``"second-order critical"``: gradient zero and Hessian PSD, with no certificate of
      minimality. Such a point need not be a local minimum: chapter 06 shows ones at ``d = 2``
      where the loss decreases at fourth order;
    * ``"strict saddle"``: gradient zero and a negative Hessian eigenvalue (the sense of the landscape
      theorem and of saddle-avoidance results: a direction of negative curvature). This includes
      local maximizers; :attr:`is_local_maximizer` tells them apart.

    ``gap`` is the smallest :math:`|\lambda|` among the eigenvalues counted as nonzero, and
    ``zero_max`` the largest among those counted as zero: the counts are trustworthy when
    ``zero_max`` is at round-off and ``gap`` is far above it.
    """

    label: str
    grad_norm: float
    loss: float
    min_eig: float
    max_eig: float
    n_negative: int
    n_zero: int
    n_positive: int
    gap: float
    zero_max: float
    eigenvalues: torch.Tensor = field(repr=False)

    @property
    def is_local_maximizer(self) -> bool:
        """Critical with a negative and no positive eigenvalue (Hessian negative semidefinite)."""
        return self.label == "strict saddle" and self.n_positive == 0


def _check_tol(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    return float(v)


def _optimal_value(W, y, tau):
    """``f*`` when it is known to be the minimum (balanced labels, ``d >= K-1``), else ``None``."""
    K, d = W.shape
    counts = torch.bincount(y, minlength=K)
    if d < K - 1 or bool((counts != counts[0]).any()):
        return None
    return ufm.optimal_loss(K, tau)


def classify_critical_point(W, H, y, tau, *, grad_tol: float = 1e-8, eig_tol: float = 1e-8,
                            loss_tol: float = 1e-9, max_dim: int = MAX_DENSE_DIM) -> CriticalPointReport:
    r"""Classify a UFM point from its Riemannian gradient norm, Hessian spectrum and loss.

    The point is critical when :math:`\lVert \operatorname{grad} f\rVert \le` ``grad_tol``.
    Eigenvalues with :math:`|\lambda| \le` ``eig_tol`` :math:`\cdot \max(1, \max|\lambda|)` count as zero.
    A critical point with PSD Hessian is labelled ``"global minimizer"`` only when
    :math:`|f - f^\star| \le` ``loss_tol`` with :math:`f^\star` from :func:`ncbook.ufm.optimal_loss`
    (balanced labels and ``d >= K-1``, where :math:`f^\star` is the minimum); otherwise
    ``"second-order critical"``. The spectrum is computed even when the point is not critical.
    """
    grad_tol, eig_tol = _check_tol("grad_tol", grad_tol), _check_tol("eig_tol", eig_tol)
    loss_tol = _check_tol("loss_tol", loss_tol)
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    gW, gH = ufm.rgrad(W, H, y, tau)
    gnorm = float(torch.sqrt((gW * gW).sum() + (gH * gH).sum()))
    evals = hessian_spectrum(W, H, y, tau, max_dim=max_dim)
    thr = eig_tol * max(1.0, float(evals.abs().max()))
    nonzero = evals.abs() > thr
    n_neg, n_pos = int((evals < -thr).sum()), int((evals > thr).sum())
    f = float(ufm.loss(W, H, y, tau))
    f_star = _optimal_value(W, y, tau)
    if gnorm > grad_tol:
        label = "not critical"
    elif n_neg > 0:
        label = "strict saddle"
    elif f_star is not None and abs(f - f_star) <= loss_tol:
        label = "global minimizer"
    else:
        label = "second-order critical"
    absval = evals.abs()
    gap = float(absval[nonzero].min()) if bool(nonzero.any()) else 0.0
    zero_max = float(absval[~nonzero].max()) if bool((~nonzero).any()) else 0.0
    return CriticalPointReport(label=label, grad_norm=gnorm, loss=f, min_eig=float(evals[0]),
                               max_eig=float(evals[-1]), n_negative=n_neg,
                               n_zero=evals.numel() - n_neg - n_pos, n_positive=n_pos, gap=gap,
                               zero_max=zero_max, eigenvalues=evals)


# ---------------------------------------------------------------------------------------------
# spectra at the two symmetric ETF configurations
# ---------------------------------------------------------------------------------------------

def _etf_spectrum(K, d, n, tau, sign, dtype):
    r"""Spectrum at ``h_{k,i} = sign * w_k`` (W a simplex ETF), by the block reduction of chapter 06.

    Three invariant blocks:

    * out of the span :math:`S` of the ETF (``d-K+1`` copies): the matrix
      :math:`M = \begin{pmatrix} s\alpha I & G^\top \\ G & s\beta I\end{pmatrix}` with
      :math:`\alpha = \tau r`, :math:`\beta = \tau r/n`, :math:`s = \mathrm{sign}` and
      :math:`\sigma(G)^2 = \alpha\beta`, so its eigenvalues are :math:`0` and :math:`s(\alpha+\beta)`
      (``K-1`` times each), :math:`s\alpha` (once), :math:`s\beta` (``N-K+1`` times);
    * within-class deviations inside :math:`S`: :math:`\frac{\tau r}{n}(\frac{\tau}{K-1} + s)`,
      ``K(n-1)(K-2)`` times;
    * tied features inside :math:`S`: the Hessian of the same point with ``n = 1`` and ``d = K-1``,
      rescaled by the metric weight ``n`` of a tied class (``2K(K-2)`` eigenvalues, computed densely).

    Here :math:`r` is the softmax probability of one *other* class at the point.
    """
    K = check_positive_int(K, "K", minimum=2)
    d = check_positive_int(d, "d", minimum=2)
    n = check_positive_int(n, "n")
    tau = check_tau(tau)
    check_float_dtype(dtype)
    check_dim(d, K)
    # logits: sign*tau for the own class, -sign*tau/(K-1) for the others
    z = torch.tensor([sign * tau] + [-sign * tau / (K - 1)] * (K - 1), dtype=torch.float64)
    r = float(torch.softmax(z, 0)[1])
    s = float(sign)  # the multipliers are -s*tau*r and -s*tau*r/n
    alpha, beta = tau * r, tau * r / n
    N = n * K
    out = [0.0] * (K - 1) + [s * (alpha + beta)] * (K - 1) + [s * alpha] + [s * beta] * (N - K + 1)
    parts = [torch.tensor(out * (d - K + 1), dtype=torch.float64)]
    if K > 2:
        dev = tau * r / n * (tau / (K - 1) + s)
        parts.append(torch.full((K * (n - 1) * (K - 2),), dev, dtype=torch.float64))
        maker = etf_minimizer if sign > 0 else anti_aligned_etf
        if K - 1 >= 2:
            W1, H1, y1 = maker(K, K - 1, 1)
            M1 = hessian_matrix(W1, H1, y1, tau)
            m = K * (K - 2)  # the W coordinates come first in hessian_matrix
            scale = torch.ones(2 * m, dtype=torch.float64)
            scale[m:] = 1.0 / math.sqrt(n)
            parts.append(torch.linalg.eigvalsh(scale[:, None] * M1 * scale[None, :]))
    return torch.sort(torch.cat(parts)).values.to(dtype)


def etf_minimizer_spectrum(K: int, d: int, n: int, tau: float, *, dtype=torch.float64) -> torch.Tensor:
    r"""Hessian spectrum at the ETF minimizer (:func:`etf_minimizer`), ascending, by block reduction.

    With :math:`r = e^{-\tau/(K-1)} / (e^{\tau} + (K-1)e^{-\tau/(K-1)})` (the probability of a wrong
    class), the eigenvalues are, in closed form, :math:`0` and :math:`\tau r (1 + 1/n)`
    (each ``(K-1)(d-K+1)`` times), :math:`\tau r` (``d-K+1`` times), :math:`\tau r/n`
    (``(N-K+1)(d-K+1)`` times) and :math:`\frac{\tau r}{n}(\frac{\tau}{K-1} + 1)` (``K(n-1)(K-2)``
    times); the remaining ``2K(K-2)`` are those of the ``n = 1``, ``d = K-1`` Hessian with the feature
    coordinates scaled by :math:`n^{-1/2}` (none for ``K = 2``). Derivation: chapter 06.
    """
    return _etf_spectrum(K, d, n, tau, +1, dtype)


def anti_aligned_spectrum(K: int, d: int, n: int, tau: float, *, dtype=torch.float64) -> torch.Tensor:
    r"""Hessian spectrum at the anti-aligned ETF (:func:`anti_aligned_etf`), ascending, by block reduction.

    With :math:`r = e^{\tau/(K-1)} / (e^{-\tau} + (K-1)e^{\tau/(K-1)})` (the probability of one
    other class), the eigenvalues are, in closed form, :math:`0` and :math:`-\tau r (1 + 1/n)` (each
    ``(K-1)(d-K+1)`` times), :math:`-\tau r` (``d-K+1`` times), :math:`-\tau r/n`
    (``(N-K+1)(d-K+1)`` times) and :math:`\frac{\tau r}{n}(\frac{\tau}{K-1} - 1)` (``K(n-1)(K-2)``
    times, positive iff :math:`\tau > K-1`); the remaining ``2K(K-2)`` are those of the ``n = 1``,
    ``d = K-1`` Hessian with the feature coordinates scaled by :math:`n^{-1/2}`. For ``K = 2`` the
    spectrum is entirely closed-form and has no positive eigenvalue (a local maximizer up to rotations).
    """
    return _etf_spectrum(K, d, n, tau, -1, dtype)


# ---------------------------------------------------------------------------------------------
# finding critical points of every index
# ---------------------------------------------------------------------------------------------

def _grad_norm(W, H, y, tau):
    gW, gH = ufm.rgrad(W, H, y, tau)
    return float(torch.sqrt((gW * gW).sum() + (gH * gH).sum())), gW, gH


def newton_critical_point(W, H, y, tau, *, iters: int = 60, max_step: float = 0.5,
                          tol: float = 1e-11, rcond: float = 1e-9):
    r"""Riemannian Newton's method for :math:`\operatorname{grad} f = 0`, with no descent safeguard.

    Each step solves :math:`\operatorname{Hess} f(x)[\eta] = -\operatorname{grad} f(x)` in the
    tangent basis with the pseudo-inverse (eigenvalues below ``rcond`` times the largest are
    dropped: the Hessian is singular along the rotation orbit), caps :math:`\lVert\eta\rVert` at
    ``max_step`` and retracts. Newton's method is attracted by critical points of any index, so it
    finds saddles and maximizers as well as minimizers.

    Returns
    -------
    (W, H, grad_norm, converged) : the last iterate, its gradient norm, and whether
    ``grad_norm <= tol`` was reached within ``iters`` steps.
    """
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    iters = check_positive_int(iters, "iters")
    max_step = _positive(max_step, "max_step")
    tol, rcond = _check_tol("tol", tol), _check_tol("rcond", rcond)
    from .sphere import retract

    for _ in range(iters):
        g, gW, gH = _grad_norm(W, H, y, tau)
        if g <= tol:
            return W, H, g, True
        if not math.isfinite(g):
            break
        QW, QH = tangent_basis(W), tangent_basis(H)
        evals, V = torch.linalg.eigh(hessian_matrix(W, H, y, tau))
        keep = evals.abs() > rcond * float(evals.abs().max())
        c = _ambient_to_basis(QW, QH, gW, gH)
        eta = -(V[:, keep] @ ((V[:, keep].T @ c) / evals[keep]))
        norm = float(torch.linalg.vector_norm(eta))
        if norm > max_step:
            eta = eta * (max_step / norm)
        dW, dH = _basis_to_ambient(QW, QH, eta)
        W, H = retract(W, dW), retract(H, dH)
    g = _grad_norm(W, H, y, tau)[0]
    return W, H, g, g <= tol


def _positive(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return float(v)


def _orbit_dim(X, d):
    """Dimension of the O(d)-orbit of a configuration whose rows span ``r`` dimensions."""
    r = int(torch.linalg.matrix_rank(X, atol=1e-8))
    return d * (d - 1) // 2 - (d - r) * (d - r - 1) // 2, r


@dataclass
class CensusEntry:
    r"""One class of critical points found by :func:`census` (equal invariants up to ``atol``).

    ``count`` Newton runs ended in this class. ``loss``, ``label`` and the eigenvalue counts come
    from :func:`classify_critical_point` at the representative ``(W, H)``; ``rank`` is the dimension
    spanned by its rows, ``orbit_dim`` the dimension of its rotation orbit (the zero eigenvalues
    that symmetry explains) and ``excess_zero = n_zero - orbit_dim``: positive means a degenerate
    point, part of a continuum of critical points beyond the rotations.
    """

    loss: float
    label: str
    n_negative: int
    n_zero: int
    n_positive: int
    min_eig: float
    gap: float
    zero_max: float
    grad_norm: float
    rank: int
    orbit_dim: int
    excess_zero: int
    count: int
    W: torch.Tensor = field(repr=False)
    H: torch.Tensor = field(repr=False)
    invariant: torch.Tensor = field(repr=False)


def _invariant(rep, W, H, y, tau):
    """Symmetry-invariant fingerprint: loss, Hessian spectrum, sorted multipliers, Gram spectrum.

    All are unchanged by rotations ``X -> XQ``, by relabelling classes and by permuting the samples
    of a class, so equivalent points have equal fingerprints (the converse is not guaranteed).
    """
    P, G = _softmax_and_residual(W, H, y, tau)
    c = tau / H.shape[0]
    lam = ((c * (G.T @ H)) * W).sum(1)
    mu = ((c * (G @ W)) * H).sum(1)
    X = torch.cat([W, H])
    gram = torch.linalg.eigvalsh(X @ X.T)
    return torch.cat([torch.tensor([rep.loss], dtype=W.dtype), rep.eigenvalues,
                      torch.sort(lam).values, torch.sort(mu).values, gram])


def census(K: int, d: int, n: int, tau: float, *, starts: int = 24, seed: int = 0,
           iters: int = 60, tol: float = 1e-11, atol: float = 1e-6, eig_tol: float = 1e-6,
           warm_steps: tuple = (0, 0, 5, 20), dtype=torch.float64):
    r"""Search for critical points from random starts and sort them into symmetry classes.

    Runs :func:`newton_critical_point` from ``starts`` uniform random points of
    :math:`\mathrm{OB}(d,K)\times\mathrm{OB}(d,nK)` (balanced labels); start ``j`` first takes
    ``warm_steps[j % len(warm_steps)]`` plain RGD steps (step 1), so that Newton also starts from points
    along descent paths, near the saddles they pass and the minimizers. A run counts only when its
    gradient norm reached ``tol`` (a certificate at round-off level). The points found are
    classified by :func:`classify_critical_point` and grouped by a fingerprint invariant under
    rotations, class permutations and permutations of the samples within a class (loss, Hessian
    spectrum, sorted multipliers, spectrum of the Gram matrix of all rows), equal to ``atol``.
    ``eig_tol`` is the relative size below which an eigenvalue counts as zero; a generous value
    makes a "second-order critical" label *more* likely, never less.

    Returns
    -------
    (entries, n_converged) : a list of :class:`CensusEntry` sorted by loss, and the number of the
    ``starts`` runs that converged.
    """
    K = check_positive_int(K, "K", minimum=2)
    d = check_positive_int(d, "d", minimum=2)
    n = check_positive_int(n, "n")
    tau = check_tau(tau)
    starts = check_positive_int(starts, "starts")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    atol, eig_tol = _positive(atol, "atol"), _positive(eig_tol, "eig_tol")
    if not isinstance(warm_steps, (tuple, list)) or not warm_steps or any(
            isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in warm_steps):
        raise ValueError(f"warm_steps must be a non-empty tuple of ints >= 0, got {warm_steps!r}")
    from .sphere import random_point, retract

    y = ufm.balanced_labels(K, n)
    gen = torch.Generator().manual_seed(seed)
    entries: list[CensusEntry] = []
    converged = 0
    for j in range(starts):
        W0 = random_point(K, d, generator=gen, dtype=dtype)
        H0 = random_point(n * K, d, generator=gen, dtype=dtype)
        for _ in range(warm_steps[j % len(warm_steps)]):
            gW, gH = ufm.rgrad(W0, H0, y, tau)
            W0, H0 = retract(W0, -gW), retract(H0, -n * gH)  # eta_H = n eta_W, as in chapter 03
        W, H, g, ok = newton_critical_point(W0, H0, y, tau, iters=iters, tol=tol)
        if not ok:
            continue
        converged += 1
        rep = classify_critical_point(W, H, y, tau, grad_tol=tol, eig_tol=eig_tol)
        inv = _invariant(rep, W, H, y, tau)
        for e in entries:
            if e.invariant.shape == inv.shape and float((e.invariant - inv).abs().max()) <= atol:
                e.count += 1
                break
        else:
            orbit, rank = _orbit_dim(torch.cat([W, H]), d)
            entries.append(CensusEntry(loss=rep.loss, label=rep.label, n_negative=rep.n_negative,
                                       n_zero=rep.n_zero, n_positive=rep.n_positive,
                                       min_eig=rep.min_eig, gap=rep.gap, zero_max=rep.zero_max,
                                       grad_norm=rep.grad_norm, rank=rank, orbit_dim=orbit,
                                       excess_zero=rep.n_zero - orbit, count=1, W=W, H=H,
                                       invariant=inv))
    entries.sort(key=lambda e: (e.loss, e.n_negative))
    return entries, converged
