r"""The normalized unconstrained feature model (UFM) on a product of spheres.

With classifier rows :math:`W \in \mathbb{R}^{K\times d}` and feature rows
:math:`H \in \mathbb{R}^{N\times d}`, all of unit norm, labels :math:`y \in \{0,\dots,K-1\}^N`
and inverse temperature :math:`\tau > 0` (it multiplies the logits),

.. math:: f(W, H) = \frac1N \sum_{i=1}^N \ell_{\mathrm{CE}}(\tau\, W h_i, y_i),
          \qquad \ell_{\mathrm{CE}}(z, k) = \log\textstyle\sum_j e^{z_j} - z_k .

This is problem (NUFM) of Yaras et al. (2022) written with rows instead of columns.

Introduced in: chapter 05 (the normalized UFM).
"""

from __future__ import annotations

import math

import torch

from ._checks import check_labels, check_matrix, check_points, check_positive_int, check_tau, check_unit_rows

__all__ = [
    "balanced_labels",
    "logits",
    "loss",
    "egrad",
    "rgrad",
    "optimal_loss",
    "check_problem",
    "fused_objective",
    "cross_entropy_rows",
]


def balanced_labels(K: int, n: int, *, device=None) -> torch.Tensor:
    """Labels ``[0]*n + [1]*n + ... + [K-1]*n``, shape ``(K*n,)``, int64 (class-major order)."""
    K = check_positive_int(K, "K", minimum=2)
    n = check_positive_int(n, "n")
    return torch.arange(K, device=device).repeat_interleave(n)


def _check_pair(W: torch.Tensor, H: torch.Tensor) -> None:
    """Refuse classifiers ``W`` (K, d) and features ``H`` (N, d) of different d, dtype or device."""
    if W.shape[1] != H.shape[1]:
        raise ValueError(f"W (K, d) and H (N, d) must share d, got W {tuple(W.shape)} and H {tuple(H.shape)}")
    if W.dtype != H.dtype or W.device != H.device:
        raise TypeError(f"W and H must share dtype and device, got {W.dtype}/{W.device} and {H.dtype}/{H.device}")


def check_problem(W, H, y, tau, *, on_sphere: bool = True):
    """Validate a UFM instance; return ``(W, H, y, tau)`` with ``y`` int64 and ``tau`` a float.

    Raises :class:`TypeError`/:class:`ValueError` naming the offending argument: shapes
    ``W (K, d)``, ``H (N, d)``, ``y (N,)`` with labels in ``[0, K)``, finite values, ``tau > 0``
    and (when ``on_sphere``) unit-norm rows.
    """
    W = check_matrix(W, "W", min_ndim=2, max_ndim=2)
    H = check_matrix(H, "H", min_ndim=2, max_ndim=2)
    _check_pair(W, H)
    y = check_labels(y, H.shape[0], W.shape[0]).to(H.device)
    tau = check_tau(tau)
    if on_sphere:
        check_unit_rows(W, "W")
        check_unit_rows(H, "H")
    return W, H, y, tau


def logits(W: torch.Tensor, H: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Cosine logits :math:`Z = \tau\, H W^\top`, shape ``(N, K)``; ``W`` ``(K, d)`` and ``H`` ``(N, d)`` unit rows."""
    W = check_points(W, "W", min_ndim=2, max_ndim=2)
    H = check_points(H, "H", min_ndim=2, max_ndim=2)
    _check_pair(W, H)
    return check_tau(tau) * (H @ W.T)


def loss(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Mean cross-entropy :math:`f(W, H)` of the normalized UFM, a scalar tensor (differentiable).

    Computed in the margin form :math:`\ell_i = \log\big(1 + \sum_{j\ne y_i} e^{z_{ij} - z_{iy_i}}\big)`
    with ``log1p`` (see :func:`cross_entropy_rows`), so that it keeps its relative accuracy when
    it is exponentially small (at large :math:`\tau`, :math:`f^\star \approx (K-1)e^{-\tau K/(K-1)}`):
    :math:`f - f^\star` stays meaningful even at :math:`f^\star \sim 10^{-40}`.

    Parameters
    ----------
    W : Tensor ``(K, d)``, unit rows (classifiers)
    H : Tensor ``(N, d)``, unit rows (features)
    y : Tensor ``(N,)`` int64, labels in ``[0, K)``
    tau : float > 0, inverse temperature (logits are :math:`\tau \cos\theta`)
    """
    W, H, y, tau = check_problem(W, H, y, tau)
    Y = torch.nn.functional.one_hot(y, W.shape[0]).to(torch.bool)
    return cross_entropy_rows(tau * (H @ W.T), Y)[0].mean()


def cross_entropy_rows(Z: torch.Tensor, Y: torch.Tensor):
    r"""Per-row cross-entropy and :math:`P - Y`, accurate in relative terms; trusted inputs.

    With margins :math:`D_{ij} = z_{ij} - z_{iy_i}` (so :math:`D_{iy_i} = 0`),
    :math:`M_i = \max(0, \max_j D_{ij})` and :math:`s_i = \sum_{j\ne y_i} e^{D_{ij} - M_i}`,

    .. math:: \ell_i = M_i + \operatorname{log1p}\big(\operatorname{expm1}(-M_i) + s_i\big), \qquad
              (P - Y)_{ij} = \frac{e^{D_{ij}-M_i}[j \ne y_i] - s_i [j = y_i]}{e^{-M_i} + s_i} .

    Where the true class has the largest logit, :math:`M_i = 0` and :math:`\ell_i = \operatorname{log1p}(s_i)`
    is exact to round-off however small; no exponent overflows.

    Parameters
    ----------
    Z : Tensor ``(..., N, K)``, logits
    Y : bool Tensor ``(N, K)``, one-hot labels

    Returns
    -------
    (loss_rows, P_minus_Y) : Tensors ``(..., N)`` and ``(..., N, K)``.
    """
    zy = (Z * Y).sum(-1, keepdim=True)
    D = Z - zy
    M = D.amax(-1, keepdim=True).clamp_min(0)
    E = torch.exp(D - M).masked_fill(Y, 0.0)
    s = E.sum(-1, keepdim=True)
    denom = torch.exp(-M) + s
    rows = (M + torch.log1p(torch.expm1(-M) + s)).squeeze(-1)
    return rows, (E - Y * s) / denom


def egrad(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor, tau: float):
    r"""Closed-form Euclidean gradients of :func:`loss`.

    With :math:`P = \operatorname{softmax}(\tau H W^\top)` row-wise and one-hot :math:`Y`,

    .. math:: \nabla_W f = \frac{\tau}{N} (P - Y)^\top H, \qquad \nabla_H f = \frac{\tau}{N} (P - Y) W .

    :math:`P - Y` comes from :func:`cross_entropy_rows`, accurate in relative terms (its true-class
    entry :math:`p_{y} - 1` is not formed by a cancelling subtraction).

    Returns
    -------
    (grad_W, grad_H) : Tensors of shapes ``(K, d)`` and ``(N, d)``.
    """
    W, H, y, tau = check_problem(W, H, y, tau)
    return _egrad(W, H, y, tau)


def _egrad(W, H, y, tau):
    N = H.shape[0]
    Y = torch.nn.functional.one_hot(y, W.shape[0]).to(torch.bool)
    G = cross_entropy_rows(tau * (H @ W.T), Y)[1] * (tau / N)  # (N, K)
    return G.T @ H, G @ W


def rgrad(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor, tau: float):
    r"""Riemannian gradient on :math:`\mathrm{OB}(d,K)\times\mathrm{OB}(d,N)`.

    It is the row-wise tangent projection of :func:`egrad`,
    :math:`\operatorname{grad} f = (P_W \nabla_W f, P_H \nabla_H f)`.

    Returns
    -------
    (grad_W, grad_H) : Tensors of shapes ``(K, d)`` and ``(N, d)``, tangent at ``W`` and ``H``.
    """
    W, H, y, tau = check_problem(W, H, y, tau)
    gW, gH = _egrad(W, H, y, tau)
    return gW - (W * gW).sum(1, keepdim=True) * W, gH - (H * gH).sum(1, keepdim=True) * H


def optimal_loss(K: int, tau: float) -> float:
    r"""Global minimum of the normalized UFM for balanced classes and :math:`d \ge K-1`.

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

    The loss is the margin form of :func:`cross_entropy_rows` (accurate in relative terms). Two
    facts save work. (1) The rows are unit vectors, so the cosines :math:`X = H W^\top` lie in
    ``[-1, 1]`` and the margins :math:`\tau(x_{ij} - x_{iy_i})` in :math:`[-2\tau, 2\tau]`: below
    :math:`\tau \approx 0.45 \log(\text{largest float})` their exponentials cannot overflow and no row
    max is needed, :math:`\ell_i = \operatorname{log1p}(\sum_{j\ne y_i} e^{D_{ij}})` (above it we use
    the shifted form). (2) The radial parts that the tangent projection removes are already in :math:`G \circ X`, with
    :math:`G = \frac{\tau}{N}(P - Y)`:
    :math:`w_k^\top (\nabla_W f)_k = \sum_i G_{ik} X_{ik}` and
    :math:`h_i^\top (\nabla_H f)_i = \sum_k G_{ik} X_{ik}`.
    """
    N = y.shape[0]
    Ymask = torch.nn.functional.one_hot(y, K).to(torch.bool)  # (N, K)
    Y = Ymask.to(dtype)
    batched = isinstance(tau, torch.Tensor)
    tau_max = float(tau.max()) if batched else tau
    # margins tau (x_ij - x_iy) lie in [-2 tau, 2 tau]: exp of them stays finite below this tau
    no_shift = 2 * tau_max < 0.9 * math.log(torch.finfo(dtype).max)
    tz = tau.reshape(-1, 1, 1) if batched else tau  # tau against the (B, N, K) cosines
    tn = tz / N
    index = {2: y.reshape(N, 1)}  # the label index of gather, per number of axes of the cosines

    def fg(points):
        W, H = points
        X = torch.matmul(H, W.mT)  # cosines (..., N, K)
        if no_shift:
            idx = index.get(X.ndim)
            if idx is None or idx.shape[:-1] != X.shape[:-1]:
                idx = index[X.ndim] = index[2].expand(X.shape[:-1] + (1,))
            xy = X.gather(-1, idx)  # x_{i, y_i}
            E = torch.sub(X, xy).mul_(tz).exp_().masked_fill_(Ymask, 0.0)  # e^{D_ij}, j != y_i
            s = E.sum(-1, keepdim=True)
            f = torch.log1p(s).sum((-2, -1)).div_(N)
            G = E.addcmul_(Y, s, value=-1).mul_(tn).div_(s + 1)  # (tau/N)(P - Y)
        else:
            rows, PY = cross_entropy_rows(X * tz, Ymask)
            f = rows.mean(-1)
            G = PY * tn
        gW = torch.matmul(G.mT, H)
        gH = torch.matmul(G, W)
        if riemannian:
            GX = G * X
            gW = torch.addcmul(gW, GX.sum(-2).unsqueeze_(-1), W, value=-1)
            gH = torch.addcmul(gH, GX.sum(-1, keepdim=True), H, value=-1)
        return f, (gW, gH)

    return fg



_LAZY = ("solve", "SolveResult", "METHODS")


def __getattr__(name):
    # ``ufm.solve`` and friends live in ncbook.solve (which imports this module): re-exported lazily.
    if name in _LAZY:
        from . import solve as solve_module

        value = globals()[name] = getattr(solve_module, name)  # found once: later look-ups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
