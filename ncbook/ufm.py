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

__all__ = [
    "balanced_labels",
    "logits",
    "loss",
    "egrad",
    "rgrad",
    "optimal_loss",
    "check_problem",
    "fused_objective",
]


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


def fused_objective(y, K, tau, dtype, *, riemannian=True):
    r"""Fused loss and gradient for the solver loops: no input checks, one softmax for both.

    ``tau`` is a float or a ``(B,)`` tensor (a batch of inverse temperatures). Returns
    ``fg((W, H)) -> (loss, (grad_W, grad_H))``, Riemannian gradients by default, Euclidean ones with
    ``riemannian=False``. The inputs are trusted: validate them with :func:`check_problem` first.

    Two facts save work. (1) The rows are unit vectors, so the cosines :math:`X = H W^\top` lie in
    ``[-1, 1]`` and the logits :math:`\tau X` in :math:`[-\tau, \tau]`: shifting them by :math:`\tau`
    keeps ``exp`` from overflowing without a row max (for huge :math:`\tau` we fall back to the row max).
    (2) The radial parts that the tangent projection removes are already in :math:`G \circ X`, with
    :math:`G = \frac{\tau}{N}(P - Y)`:
    :math:`w_k^\top (\nabla_W f)_k = \sum_i G_{ik} X_{ik}` and
    :math:`h_i^\top (\nabla_H f)_i = \sum_k G_{ik} X_{ik}`.
    """
    N = y.shape[0]
    Y = torch.nn.functional.one_hot(y, K).to(dtype)  # (N, K)
    Y_flat = Y.flatten() / N
    batched = isinstance(tau, torch.Tensor)
    tau_max = float(tau.max()) if batched else tau
    # exp(tau * (x - 1)) >= exp(-2 tau) must stay a normal number: shift by tau only when it does.
    shift_by_tau = 2 * tau_max < 0.9 * -math.log(torch.finfo(dtype).tiny)
    tz = tau.reshape(-1, 1, 1) if batched else tau  # tau against the (B, N, K) cosines
    tn = tz / N
    minus_Ytn = -Y * tn

    def fg(points):
        W, H = points
        X = torch.matmul(H, W.mT)  # cosines (..., N, K)
        dot_y = torch.matmul(X.flatten(-2), Y_flat)  # mean_i x_{i, y_i}
        if shift_by_tau:
            E = torch.exp((X - 1) * tz)
            S = E.sum(-1, keepdim=True)
            f = torch.log(S).mean((-2, -1)) + tau * (1 - dot_y)
        else:
            Z = X * tz
            m = Z.amax(-1, keepdim=True)
            E = torch.exp(Z - m)
            S = E.sum(-1, keepdim=True)
            f = (torch.log(S) + m).mean((-2, -1)) - tau * dot_y
        # G = (tau/N)(softmax - Y)
        G = E / S * tn + minus_Ytn if batched else torch.addcdiv(minus_Ytn, E, S, value=tn)
        gW = torch.matmul(G.mT, H)
        gH = torch.matmul(G, W)
        if riemannian:
            GX = G * X
            gW = torch.addcmul(gW, GX.sum(-2).unsqueeze(-1), W, value=-1)
            gH = torch.addcmul(gH, GX.sum(-1).unsqueeze(-1), H, value=-1)
        return f, (gW, gH)

    return fg



_LAZY = ("solve", "SolveResult", "METHODS")


def __getattr__(name):
    # ``ufm.solve`` and friends live in ncbook.solve (which imports this module): re-exported lazily.
    if name in _LAZY:
        from . import solve as solve_module

        return getattr(solve_module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
