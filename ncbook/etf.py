r"""The simplex equiangular tight frame (ETF): the geometry neural collapse converges to.

A simplex ETF is K unit vectors :math:`w_1, \dots, w_K \in \mathbb{R}^d` with
:math:`w_j^\top w_k = -1/(K-1)` for :math:`j \ne k`; equivalently its Gram matrix is
:math:`\frac{K}{K-1}(I_K - \frac1K \mathbf 1 \mathbf 1^\top)`. It exists iff :math:`d \ge K-1`.

Introduced in: chapter 05 (the normalized UFM).
"""

from __future__ import annotations

import functools

import torch

from ._checks import check_dim, check_float_dtype, check_matrix, check_positive_int, check_tolerance

__all__ = ["etf_gram", "simplex_etf", "is_simplex_etf", "random_orthogonal", "nearest_simplex_etf",
           "angle_to_simplex_etf"]


def etf_gram(K: int, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    r"""Gram matrix of a unit simplex ETF, shape ``(K, K)``.

    .. math:: W W^\top = \frac{K}{K-1}\Big(I_K - \frac1K\mathbf 1\mathbf 1^\top\Big)

    (ones on the diagonal, :math:`-1/(K-1)` off it; Frobenius norm :math:`K/\sqrt{K-1}`).
    """
    K = check_positive_int(K, "K", minimum=2)
    check_float_dtype(dtype)
    eye = torch.eye(K, dtype=dtype, device=device)
    return (K / (K - 1)) * (eye - 1.0 / K)


def random_orthogonal(d: int, *, generator: torch.Generator | None = None, dtype=torch.float64,
                      device=None) -> torch.Tensor:
    """Haar-random orthogonal ``(d, d)`` matrix (QR of a Gaussian with the sign fix)."""
    d = check_positive_int(d, "d")
    check_float_dtype(dtype)
    g = torch.randn(d, d, generator=generator, dtype=dtype, device="cpu")
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(d, dtype=dtype))
    return q.to(device)


def simplex_etf(K: int, d: int, *, dtype: torch.dtype = torch.float64, generator: torch.Generator | None = None,
                device=None) -> torch.Tensor:
    r"""Return a simplex ETF as the rows of a ``(K, d)`` matrix.

    The centred standard basis :math:`e_k - \frac1K\mathbf 1` spans a (K-1)-dimensional subspace
    of :math:`\mathbb{R}^K`; an orthonormal basis of it (from a QR) gives K-1 coordinates, which we
    pad with zeros to ``d`` and normalize. With ``generator`` the frame is rotated by a
    Haar-random orthogonal matrix, so it is a uniformly random simplex ETF.

    Parameters
    ----------
    K : int, ``K >= 2``, number of vectors (classes)
    d : int, ``d >= K - 1``, ambient dimension

    Returns
    -------
    Tensor, shape ``(K, d)``, unit rows with pairwise inner products :math:`-1/(K-1)`.
    """
    K = check_positive_int(K, "K", minimum=2)
    d = check_positive_int(d, "d")
    check_dim(d, K)
    check_float_dtype(dtype)
    centred = torch.eye(K, dtype=torch.float64) - 1.0 / K  # (K, K), rank K-1
    q, _ = torch.linalg.qr(centred[:, : K - 1])  # orthonormal basis of 1-perp, (K, K-1)
    coords = centred @ q  # (K, K-1): coordinates of the centred basis vectors
    M = torch.zeros(K, d, dtype=torch.float64)
    M[:, : K - 1] = coords
    M = M / torch.linalg.vector_norm(M, dim=1, keepdim=True)
    if generator is not None:
        M = M @ random_orthogonal(d, generator=generator, dtype=torch.float64).T
    return M.to(dtype=dtype, device=device)


def is_simplex_etf(W: torch.Tensor, atol: float = 1e-6) -> bool:
    """Return True if the rows of ``W`` (shape ``(K, d)``) are unit vectors forming a simplex ETF."""
    W = check_matrix(W, "W", min_ndim=2, max_ndim=2)
    atol = check_tolerance(atol, "atol")
    K = W.shape[0]
    if K < 2:
        return False
    G = W @ W.T
    return bool((G - etf_gram(K, dtype=W.dtype, device=W.device)).abs().max() <= atol)


def nearest_simplex_etf(W: torch.Tensor) -> torch.Tensor:
    r"""Return the simplex ETF closest to ``W`` in Frobenius norm, rows in the same order, shape ``(K, d)``.

    Every simplex ETF in :math:`\mathbb R^d` is :math:`C U` with :math:`C` ``(K, K-1)`` the centred
    frame of :func:`simplex_etf` and :math:`U` ``(K-1, d)`` with orthonormal rows, so
    :math:`\min \lVert W - C U\rVert_F` is an orthogonal Procrustes problem: with the SVD
    :math:`C^\top W = P S Q^\top`, :math:`U = P Q^\top`. Needs ``d >= K - 1``.
    """
    W = check_matrix(W, "W", min_ndim=2, max_ndim=2)
    K, d = W.shape
    if K < 2:
        raise ValueError(f"W must have K >= 2 rows, got shape {tuple(W.shape)}")
    check_dim(d, K)
    C = _centred_frame(K)  # (K, K-1)
    A = C.T @ W.detach().to(device="cpu", dtype=torch.float64)  # (K-1, d)
    P, _, Qh = torch.linalg.svd(A, full_matrices=False)
    return (C @ (P @ Qh)).to(dtype=W.dtype, device=W.device)


@functools.lru_cache(maxsize=64)
def _centred_frame(K: int) -> torch.Tensor:
    """Return the simplex ETF of :func:`simplex_etf` in R^{K-1}, float64 on the CPU.

    Cached: it depends on K only.
    """
    return simplex_etf(K, K - 1, dtype=torch.float64)


def angle_to_simplex_etf(W: torch.Tensor) -> float:
    r"""Largest angle (radians) between a row of ``W`` and the same row of :func:`nearest_simplex_etf`.

    Rows of ``W`` need not have unit norm (only directions count); 0 exactly for a simplex ETF.
    """
    W = check_matrix(W, "W", min_ndim=2, max_ndim=2)
    M = nearest_simplex_etf(W).to(torch.float64)
    w = W.detach().to(device="cpu", dtype=torch.float64)
    norms = torch.linalg.vector_norm(w, dim=1, keepdim=True)
    if not bool((norms > 0).all()):
        raise ValueError("W has a zero row, which has no direction")
    w = w / norms
    cos = (w * M).sum(1)
    sin = torch.linalg.vector_norm(w - cos.unsqueeze(1) * M, dim=1)
    return float(torch.atan2(sin, cos).max())
