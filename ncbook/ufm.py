r"""The normalized unconstrained feature model (UFM) on a product of spheres.

With classifier rows :math:`W \in \mathbb{R}^{K\times d}` and feature rows
:math:`H \in \mathbb{R}^{N\times d}`, all of unit norm, labels :math:`y \in \{0,\dots,K-1\}^N`
and temperature :math:`\tau > 0`,

.. math:: f(W, H) = \frac1N \sum_{i=1}^N \ell_{\mathrm{CE}}(\tau\, W h_i, y_i),
          \qquad \ell_{\mathrm{CE}}(z, k) = \log\textstyle\sum_j e^{z_j} - z_k .

This is problem (NUFM) of Yaras et al. (2022) written with rows instead of columns.

Introduced in: chapter 05 (the normalized UFM).
"""

from __future__ import annotations

import math

import torch

from ._checks import check_labels, check_matrix, check_positive_int, check_tau, check_unit_rows

__all__ = ["balanced_labels", "logits", "loss", "egrad", "rgrad", "optimal_loss", "check_problem"]


def balanced_labels(K: int, n: int, *, device=None) -> torch.Tensor:
    """Labels ``[0]*n + [1]*n + ... + [K-1]*n``, shape ``(K*n,)``, int64 (class-major order)."""
    K = check_positive_int(K, "K", minimum=2)
    n = check_positive_int(n, "n")
    return torch.arange(K, device=device).repeat_interleave(n)


def check_problem(W, H, y, tau, *, on_sphere: bool = True):
    """Validate a UFM instance; return ``(W, H, y, tau)`` with ``y`` int64 and ``tau`` a float.

    Raises :class:`TypeError`/:class:`ValueError` naming the offending argument: shapes
    ``W (K, d)``, ``H (N, d)``, ``y (N,)`` with labels in ``[0, K)``, finite values, ``tau > 0``
    and (when ``on_sphere``) unit-norm rows.
    """
    W = check_matrix(W, "W", min_ndim=2, max_ndim=2)
    H = check_matrix(H, "H", min_ndim=2, max_ndim=2)
    if W.shape[1] != H.shape[1]:
        raise ValueError(f"W (K, d) and H (N, d) must share d, got W {tuple(W.shape)} and H {tuple(H.shape)}")
    if W.dtype != H.dtype or W.device != H.device:
        raise TypeError(f"W and H must share dtype and device, got {W.dtype}/{W.device} and {H.dtype}/{H.device}")
    y = check_labels(y, H.shape[0], W.shape[0]).to(H.device)
    tau = check_tau(tau)
    if on_sphere:
        check_unit_rows(W, "W")
        check_unit_rows(H, "H")
    return W, H, y, tau


def logits(W: torch.Tensor, H: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Cosine logits :math:`Z = \tau\, H W^\top`, shape ``(N, K)``."""
    return check_tau(tau) * (H @ W.T)


def loss(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Mean cross-entropy :math:`f(W, H)` of the normalized UFM, a scalar tensor.

    Parameters
    ----------
    W : Tensor ``(K, d)``, unit rows (classifiers)
    H : Tensor ``(N, d)``, unit rows (features)
    y : Tensor ``(N,)`` int64, labels in ``[0, K)``
    tau : float > 0, temperature (logits are :math:`\tau \cos\theta`)
    """
    W, H, y, tau = check_problem(W, H, y, tau)
    return torch.nn.functional.cross_entropy(tau * (H @ W.T), y)


def egrad(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor, tau: float):
    r"""Closed-form Euclidean gradients of :func:`loss`.

    With :math:`P = \operatorname{softmax}(\tau H W^\top)` row-wise and one-hot :math:`Y`,

    .. math:: \nabla_W f = \frac{\tau}{N} (P - Y)^\top H, \qquad \nabla_H f = \frac{\tau}{N} (P - Y) W .

    Returns
    -------
    (grad_W, grad_H) : Tensors of shapes ``(K, d)`` and ``(N, d)``.
    """
    W, H, y, tau = check_problem(W, H, y, tau)
    return _egrad(W, H, y, tau)


def _egrad(W, H, y, tau):
    N = H.shape[0]
    G = torch.softmax(tau * (H @ W.T), dim=-1)  # (N, K)
    G[torch.arange(N, device=H.device), y] -= 1.0
    G *= tau / N
    return G.T @ H, G @ W


def rgrad(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor, tau: float):
    r"""Riemannian gradient on :math:`\mathrm{OB}(d,K)\times\mathrm{OB}(d,N)`: the row-wise tangent
    projection of :func:`egrad`, :math:`\operatorname{grad} f = (P_W \nabla_W f, P_H \nabla_H f)`.

    Returns
    -------
    (grad_W, grad_H) : Tensors of shapes ``(K, d)`` and ``(N, d)``, tangent at ``W`` and ``H``.
    """
    W, H, y, tau = check_problem(W, H, y, tau)
    gW, gH = _egrad(W, H, y, tau)
    return gW - (W * gW).sum(1, keepdim=True) * W, gH - (H * gH).sum(1, keepdim=True) * H


def optimal_loss(K: int, tau: float) -> float:
    r"""Global minimum of the normalized UFM for balanced classes and :math:`d \ge K-1`:

    .. math:: f^\star = \log\!\big(1 + (K-1)\, e^{-\tau K/(K-1)}\big),

    attained exactly at a simplex ETF with every feature equal to its class classifier.
    It does not depend on n or d.
    """
    K = check_positive_int(K, "K", minimum=2)
    tau = check_tau(tau)
    return math.log1p((K - 1) * math.exp(-tau * K / (K - 1)))
