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
import numbers
import time
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_labels, check_matrix, check_positive_int, check_positive_real, check_tau, check_unit_rows

__all__ = [
    "balanced_labels",
    "logits",
    "loss",
    "egrad",
    "rgrad",
    "optimal_loss",
    "check_problem",
    "METHODS",
    "SolveResult",
    "solve",
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
    r"""Global minimum of the normalized UFM for balanced classes and :math:`d \ge K-1`.

    .. math:: f^\star = \log\!\big(1 + (K-1)\, e^{-\tau K/(K-1)}\big),

    attained exactly at a simplex ETF with every feature equal to its class classifier.
    It does not depend on n or d.
    """
    K = check_positive_int(K, "K", minimum=2)
    tau = check_tau(tau)
    return math.log1p((K - 1) * math.exp(-tau * K / (K - 1)))


# --------------------------------------------------------------------------- solving the UFM

#: Method names accepted by :func:`solve`, with their default base step size ``lr``.
#: ``"rgd"`` is the digest recipe (fixed step, :math:`\eta_H = n\,\eta_W`); ``"rgd-bb"`` and
#: ``"rgd-armijo"`` use :mod:`ncbook.rgd`'s Barzilai-Borwein and Armijo rules (``lr`` is their first
#: trial step); ``"geoopt-sgd"`` is ``geoopt.optim.RiemannianSGD`` with the same step sizes as
#: ``"rgd"``; ``"geoopt-adam"`` is ``geoopt.optim.RiemannianAdam`` (one ``lr`` for both blocks).
METHODS = ("rgd", "rgd-bb", "rgd-armijo", "geoopt-sgd", "geoopt-adam")

_DEFAULT_LR = {"rgd": 1.0, "rgd-bb": 1.0, "rgd-armijo": 1.0, "geoopt-sgd": 1.0, "geoopt-adam": 1e-2}
_DEFAULT_STEPS = {"rgd": 100_000, "rgd-bb": 20_000, "rgd-armijo": 50_000, "geoopt-sgd": 100_000,
                  "geoopt-adam": 20_000}
_STOP_ON = ("either", "grad", "gap")


@dataclass
class SolveResult:
    r"""What :func:`solve` returns.

    For a single run the tensors have shapes ``W (K, d)``, ``H (N, d)`` and the histories are 1-D
    arrays indexed by iteration. For a batch of ``B`` runs (a sequence of seeds and/or taus),
    ``W`` is ``(B, K, d)``, ``H`` is ``(B, N, d)``, and ``loss``, ``gap``, ``grad_norm`` are lists
    of ``B`` arrays (runs stop at different iterations); ``iterations`` and ``converged`` are
    arrays of length ``B``; ``tau``, ``seed`` and ``optimal`` are tuples. :meth:`unbatch` splits a
    batch into single results.

    Attributes
    ----------
    W, H : Tensor
        Final classifiers and features (unit rows).
    y : Tensor ``(N,)``
        Balanced labels, class-major.
    loss : ndarray ``(T+1,)`` or list
        :math:`f(W_t, H_t)` for every iterate.
    gap : ndarray ``(T+1,)``, list, or None
        ``loss - optimal_loss(K, tau)``; None when ``d < K-1`` (no closed form there).
    grad_norm : ndarray ``(T+1,)`` or list
        Riemannian gradient norm :math:`\lVert(\operatorname{grad}_W f, \operatorname{grad}_H f)\rVert`.
    iterations : int or ndarray
        Steps taken.
    converged : bool or ndarray
        Whether the stopping test was met within ``steps``.
    method : str
    lr : float
        The base step size used.
    seconds : float
        Wall time of the optimization loop (the whole batch for a batch).
    K, d, n, tau, seed, optimal
        The problem and its closed-form optimal value (None when ``d < K-1``).
    """

    W: torch.Tensor
    H: torch.Tensor
    y: torch.Tensor
    loss: object
    gap: object
    grad_norm: object
    iterations: object
    converged: object
    method: str
    lr: float
    seconds: float
    K: int
    d: int
    n: int
    tau: object
    seed: object
    optimal: object

    @property
    def batched(self) -> bool:
        """True when this result holds a batch of runs."""
        return self.W.ndim == 3

    @property
    def final_gap(self):
        """Last value of the gap (per run for a batch), or None when ``d < K-1``."""
        if self.gap is None:
            return None
        return np.array([g[-1] for g in self.gap]) if self.batched else float(self.gap[-1])

    def unbatch(self) -> list:
        """Split a batched result into a list of single-run results (a single result gives ``[self]``)."""
        if not self.batched:
            return [self]
        return [
            SolveResult(W=self.W[b], H=self.H[b], y=self.y, loss=self.loss[b],
                        gap=None if self.gap is None else self.gap[b], grad_norm=self.grad_norm[b],
                        iterations=int(self.iterations[b]), converged=bool(self.converged[b]),
                        method=self.method, lr=self.lr, seconds=self.seconds, K=self.K, d=self.d, n=self.n,
                        tau=self.tau[b], seed=self.seed[b], optimal=None if self.optimal is None else self.optimal[b])
            for b in range(self.W.shape[0])
        ]


def solve(K: int, d: int, n: int, tau, *, method: str = "rgd", steps: int | None = None, lr: float | None = None,
          tol: float = 1e-10, seed=0, dtype: torch.dtype = torch.float64, device="cpu",
          stop_on: str = "either") -> SolveResult:
    r"""Minimize the normalized UFM from a random start; optionally a batch of runs at once.

    The start has Gaussian rows, normalized onto the sphere (``torch.Generator`` seeded with
    ``seed``, drawing ``W`` then ``H``, in float64 on the CPU, then cast and moved). The labels are
    :func:`balanced_labels`. All methods use per-block step sizes :math:`\eta_W = \mathrm{lr}` and
    :math:`\eta_H = n\cdot\mathrm{lr}` (the :math:`1/N` in :math:`\nabla_H f` is compensated), except
    ``"geoopt-adam"`` whose steps are scale-free.

    Parameters
    ----------
    K, d, n : int
        Classes (``K >= 2``), dimension (``d >= 2``) and samples per class (``n >= 1``); ``N = K n``.
    tau : float or sequence of float
        Temperature(s) > 0. A sequence makes a batch.
    method : str
        One of :data:`METHODS`. Default ``lr`` per method: ``"rgd"``, ``"rgd-bb"``,
        ``"rgd-armijo"``, ``"geoopt-sgd"``: 1.0 (the BB and Armijo rules adapt it);
        ``"geoopt-adam"``: 0.01.
    steps : int, optional
        Maximum number of steps. Default per method: 100000 for ``"rgd"`` and ``"geoopt-sgd"``,
        50000 for ``"rgd-armijo"``, 20000 for ``"rgd-bb"`` and ``"geoopt-adam"``.
    lr : float, optional
        Base step size (see ``method``).
    tol : float
        Stop when the Riemannian gradient norm or the gap ``loss - optimal_loss`` is ``<= tol``
        (the gap only when ``d >= K-1``).
    seed : int or sequence of int
        Seed(s) of the random start. A sequence makes a batch.
    dtype : torch.float32 or torch.float64
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    stop_on : {"either", "grad", "gap"}
        Which test ``tol`` applies to. ``"grad"`` runs on past the point where the gap hits the
        round-off floor (about 1e-16), which is what an exact ETF to many digits needs: the
        distance to the minimizers is of order the gradient norm but only the square root of the gap.

    Returns
    -------
    SolveResult

    Notes
    -----
    Which method to use: ``"rgd-bb"`` is the fastest by far (tens of iterations where the fixed
    step needs hundreds to thousands; see ``benchmarks/README.md``) and, like ``"rgd"``,
    ``"rgd-armijo"`` and ``"geoopt-sgd"``, converges to round-off (gap about 1e-16, gradient norm
    below 1e-12 with ``stop_on="grad"``). ``"rgd"`` with ``lr=1`` is the digest's recipe; it slows
    down for large ``tau`` (at ``K, d, n, tau = 10, 16, 20, 20`` it was still at a gap of 6e-6 after
    5000 steps, where ``"rgd-bb"`` reached 1e-10 in about 300). ``"geoopt-adam"`` keeps
    steps of size about ``lr`` however small the gradient, so with a constant ``lr`` it only reaches
    a gap of about 1e-8 to 1e-10; use it with a looser ``tol``. ``"geoopt-sgd"`` equals ``"rgd"``
    step for step (to round-off).

    A batch: when ``seed`` and/or ``tau`` is a sequence, the runs are stacked on a leading axis
    (``W`` of shape ``(B, K, d)``) and optimized together in one vectorized loop; two sequences are
    paired (equal lengths), a single value is repeated. Each run keeps its own step sizes and stopping
    test and is frozen once it stops, so run ``b`` of a batch equals ``solve`` with ``seed[b]``,
    ``tau[b]`` (to round-off).

    Examples
    --------
    >>> res = solve(4, 3, 5, 2.0, method="rgd-bb")
    >>> bool(res.converged), res.final_gap < 1e-10
    (True, True)
    """
    from . import config  # lazy: keeps ``import ncbook.ufm`` light

    K = check_positive_int(K, "K", minimum=2)
    d = check_positive_int(d, "d", minimum=2)
    n = check_positive_int(n, "n")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(stop_on, str) or stop_on not in _STOP_ON:
        raise ValueError(f"stop_on must be one of {_STOP_ON}, got {stop_on!r}")
    steps = _DEFAULT_STEPS[method] if steps is None else check_positive_int(steps, "steps", minimum=0)
    lr = _DEFAULT_LR[method] if lr is None else check_positive_real(lr, "lr")
    tol = _check_tol_value(tol)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    device = config.default_device(device)
    taus, tau_batched = _as_list(tau, "tau", check_tau)
    seeds, seed_batched = _as_list(seed, "seed", _check_seed)
    if tau_batched and seed_batched and len(taus) != len(seeds):
        raise ValueError(f"seed and tau sequences must have the same length, got {len(seeds)} and {len(taus)}")
    batched = tau_batched or seed_batched
    B = max(len(taus), len(seeds))
    taus = taus * B if len(taus) == 1 else taus
    seeds = seeds * B if len(seeds) == 1 else seeds
    has_opt = d >= K - 1
    if stop_on == "gap" and not has_opt:
        raise ValueError(f"stop_on='gap' needs d >= K-1 (a known optimal loss), got d={d}, K={K}")

    N = K * n
    y = balanced_labels(K, n, device=device)
    Ws, Hs = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(s)
        Ws.append(torch.randn(K, d, generator=gen, dtype=torch.float64))
        Hs.append(torch.randn(N, d, generator=gen, dtype=torch.float64))
    W = torch.stack(Ws) if batched else Ws[0]
    H = torch.stack(Hs) if batched else Hs[0]
    W = (W / torch.linalg.vector_norm(W, dim=-1, keepdim=True)).to(dtype=dtype, device=device)
    H = (H / torch.linalg.vector_norm(H, dim=-1, keepdim=True)).to(dtype=dtype, device=device)
    if batched:
        tau_t = torch.tensor(taus, dtype=dtype, device=device)
        opt = torch.tensor([optimal_loss(K, t) for t in taus], dtype=dtype, device=device) if has_opt else None
    else:
        tau_t = taus[0]
        opt = optimal_loss(K, taus[0]) if has_opt else None
    gtol = tol if stop_on in ("either", "grad") else None
    ftol = tol if (stop_on in ("either", "gap") and has_opt) else None
    fg = _fast_loss_and_rgrad(y, K, tau_t, dtype)
    scales = (1.0, float(n))

    t0 = time.perf_counter()
    if method.startswith("rgd"):
        from . import rgd  # lazy: rgd and ufm do not import each other at module level

        rule = {"rgd": "fixed", "rgd-bb": "bb", "rgd-armijo": "armijo"}[method]
        f0, g0 = fg((W, H))
        hist = rgd._loop((W, H), f0, g0, fg, lr=lr, rule=rule, steps=steps, scales=scales, gtol=gtol,
                         f_opt=opt, ftol=ftol, c=1e-4, shrink=0.5, max_backtracks=40, lr_min=1e-12, lr_max=1e6,
                         nonmonotone=0.85, callback=None, t0=t0)
    else:
        from . import geoopt_rgd

        # geoopt projects whatever gradient it is given; a tangent one passes unchanged, and saves work
        hist = geoopt_rgd._run_fast((W, H), fg, optimizer=method.split("-")[1], lr=lr, steps=steps,
                                    scales=scales if method == "geoopt-sgd" else (1.0, 1.0), gtol=gtol,
                                    f_opt=opt, ftol=ftol, t0=t0, tangent_grads=True)
    seconds = time.perf_counter() - t0
    W, H = hist.points

    def per_run(a):  # (T+1, B) with NaN after a run stopped -> list of B arrays
        return [a[: int(hist.iterations[b]) + 1, b] for b in range(B)] if batched else a

    loss_h = per_run(hist.loss)
    gap_h = None
    if has_opt:
        opt_np = opt.cpu().numpy() if batched else opt
        gap_h = per_run(hist.loss - opt_np)
    return SolveResult(
        W=W, H=H, y=y, loss=loss_h, gap=gap_h, grad_norm=per_run(hist.grad_norm), iterations=hist.iterations,
        converged=hist.converged, method=method, lr=lr, seconds=seconds, K=K, d=d, n=n,
        tau=tuple(taus) if batched else taus[0], seed=tuple(seeds) if batched else seeds[0],
        optimal=(tuple(float(o) for o in opt.cpu()) if batched else opt) if has_opt else None,
    )


def _fast_loss_and_rgrad(y, K, tau, dtype, *, riemannian=True):
    r"""Fused loss and gradient for the solver loops: no input checks, one softmax for both.

    ``tau`` is a float or a ``(B,)`` tensor (a batch of temperatures). Returns
    ``fg((W, H)) -> (loss, (grad_W, grad_H))``, Riemannian gradients by default, Euclidean ones with
    ``riemannian=False``.

    Two facts save work. (1) The rows are unit vectors, so the cosines :math:`X = H W^\top` lie in
    ``[-1, 1]`` and the logits :math:`\tau X` in ``[-tau, tau]``: shifting them by ``tau`` keeps
    ``exp`` from overflowing without a row max (for huge ``tau`` we fall back to the row max).
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


def _as_list(v, name, check):
    """``(list_of_checked_values, was_a_sequence)`` for a scalar-or-sequence argument."""
    if isinstance(v, torch.Tensor) and v.ndim == 1:
        v = v.tolist()
    if isinstance(v, (list, tuple, np.ndarray)):
        if len(v) == 0:
            raise ValueError(f"{name} must be a value or a nonempty sequence, got an empty sequence")
        return [check(x) if name == "tau" else check(x, name) for x in v], True
    return [check(v) if name == "tau" else check(v, name)], False


def _check_seed(s, name="seed"):
    if isinstance(s, bool) or not isinstance(s, numbers.Integral):
        raise TypeError(f"{name} must be an integer or a sequence of integers, got {type(s).__name__}")
    if s < 0:
        raise ValueError(f"{name} must be >= 0, got {s}")
    return int(s)



def _check_tol_value(tol):
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a real number >= 0, got {type(tol).__name__}")
    tol = float(tol)
    if math.isnan(tol) or tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    return tol
