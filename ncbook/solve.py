r"""Solving the normalized UFM from a random start: :func:`solve` and its :class:`SolveResult`.

The problem is :func:`ncbook.ufm.loss` over :math:`(W, H)` on a product of spheres, with balanced
labels. Every method runs the one loop of :func:`ncbook.rgd.iterate`: the by-hand methods with a
step-size rule of :mod:`ncbook.stepsize`, the geoopt ones with a geoopt optimizer step
(:func:`ncbook.geoopt_rgd.geoopt_stepper`). ``ncbook.ufm.solve`` is this function (re-exported).

Introduced in: chapter 03 (RGD by hand), used again in chapters 04-07.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import config, rgd, stepsize, ufm
from ._checks import check_positive_int, check_positive_real, check_tau, check_tolerance

__all__ = ["METHODS", "SolveResult", "solve"]

#: Method names accepted by :func:`solve`, with their default base step size ``lr``.
#: ``"rgd"`` is the digest recipe (fixed step, :math:`\eta_H = n\,\eta_W`); ``"rgd-bb"`` and
#: ``"rgd-armijo"`` use the Barzilai-Borwein and Armijo rules of :mod:`ncbook.stepsize` (``lr`` is
#: their first trial step); ``"geoopt-sgd"`` is ``geoopt.optim.RiemannianSGD`` with the same step
#: sizes as ``"rgd"``; ``"geoopt-adam"`` is ``geoopt.optim.RiemannianAdam`` (one ``lr`` for both blocks).
METHODS = ("rgd", "rgd-bb", "rgd-armijo", "geoopt-sgd", "geoopt-adam")

#: Per method: (rule or optimizer, default lr, default steps).
_METHOD_TABLE = {
    "rgd": ("fixed", 1.0, 100_000),
    "rgd-bb": ("bb", 1.0, 20_000),
    "rgd-armijo": ("armijo", 1.0, 50_000),
    "geoopt-sgd": ("sgd", 1.0, 100_000),
    "geoopt-adam": ("adam", 1e-2, 20_000),
}
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
    :func:`ncbook.ufm.balanced_labels`. All methods use per-block step sizes :math:`\eta_W = \mathrm{lr}` and
    :math:`\eta_H = n\cdot\mathrm{lr}` (the :math:`1/N` in :math:`\nabla_H f` is compensated), except
    ``"geoopt-adam"`` whose steps are scale-free.

    Parameters
    ----------
    K, d, n : int
        Classes (``K >= 2``), dimension (``d >= 2``) and samples per class (``n >= 1``); ``N = K n``.
    tau : float or sequence of float
        Inverse temperature(s) > 0. A sequence makes a batch.
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
    K = check_positive_int(K, "K", minimum=2)
    d = check_positive_int(d, "d", minimum=2)
    n = check_positive_int(n, "n")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(stop_on, str) or stop_on not in _STOP_ON:
        raise ValueError(f"stop_on must be one of {_STOP_ON}, got {stop_on!r}")
    rule, default_lr, default_steps = _METHOD_TABLE[method]
    steps = default_steps if steps is None else check_positive_int(steps, "steps", minimum=0)
    lr = default_lr if lr is None else check_positive_real(lr, "lr")
    tol = check_tolerance(tol, "tol")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    device = config.default_device(device)
    taus, tau_batched = _as_list(tau, "tau", lambda v, name: check_tau(v))
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

    y = ufm.balanced_labels(K, n, device=device)
    W, H = _start(K, d, n, seeds, batched, dtype, device)
    tau_t = torch.tensor(taus, dtype=dtype, device=device) if batched else taus[0]
    opt_list = [ufm.optimal_loss(K, t) for t in taus] if has_opt else None  # float64 closed forms
    opt = None if opt_list is None else torch.tensor(opt_list if batched else opt_list[0], dtype=dtype, device=device)
    stop = rgd.StoppingTest(gtol=tol if stop_on in ("either", "grad") else None,
                            ftol=tol if stop_on in ("either", "gap") else None, f_opt=opt,
                            floor=torch.inf)  # step 1: no negative-gap check yet
    fg = ufm.fused_objective(y, K, tau_t, dtype)
    scales = (1.0, float(n))

    t0 = time.perf_counter()
    if method.startswith("rgd"):
        start = rgd.first_iterate(fg, (W, H), scales)
        advance = rgd.rgd_stepper(fg, stepsize.make_rule(rule, lr), start, scales)
    else:
        from . import geoopt_rgd  # lazy: geoopt is only needed for the geoopt methods

        # geoopt projects whatever gradient it is given; a tangent one passes unchanged, and saves work
        advance, start = geoopt_rgd.geoopt_stepper((W, H), fg, optimizer=rule, lr=lr,
                                                   scales=scales if method == "geoopt-sgd" else (1.0, 1.0),
                                                   tangent_grads=True)
    hist = rgd.iterate(advance, start, steps=steps, stop=stop, t0=t0)
    seconds = time.perf_counter() - t0
    W, H = (x.detach().clone() for x in hist.points)

    def per_run(a):  # (T+1, B) with NaN after a run stopped -> list of B arrays
        return [a[: int(hist.iterations[b]) + 1, b] for b in range(B)] if batched else a

    opt_np = None if opt is None else np.asarray(opt_list if batched else opt_list[0])
    return SolveResult(
        W=W, H=H, y=y, loss=per_run(hist.loss), gap=None if opt is None else per_run(hist.loss - opt_np),
        grad_norm=per_run(hist.grad_norm), iterations=hist.iterations, converged=hist.converged, method=method,
        lr=lr, seconds=seconds, K=K, d=d, n=n, tau=tuple(taus) if batched else taus[0],
        seed=tuple(seeds) if batched else seeds[0],
        optimal=None if opt is None else (tuple(opt_list) if batched else opt_list[0]),
    )


def _start(K, d, n, seeds, batched, dtype, device):
    """Gaussian rows (``W`` then ``H`` from one generator per seed, float64 on the CPU), normalized, cast, moved."""
    Ws, Hs = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(s)
        Ws.append(torch.randn(K, d, generator=gen, dtype=torch.float64))
        Hs.append(torch.randn(K * n, d, generator=gen, dtype=torch.float64))
    W = torch.stack(Ws) if batched else Ws[0]
    H = torch.stack(Hs) if batched else Hs[0]
    W = (W / torch.linalg.vector_norm(W, dim=-1, keepdim=True)).to(dtype=dtype, device=device)
    H = (H / torch.linalg.vector_norm(H, dim=-1, keepdim=True)).to(dtype=dtype, device=device)
    return W, H


def _as_list(v, name, check):
    """``(list_of_checked_values, was_a_sequence)`` for a scalar-or-sequence argument."""
    if isinstance(v, torch.Tensor) and v.ndim == 1:
        v = v.tolist()
    if isinstance(v, (list, tuple, np.ndarray)):
        if len(v) == 0:
            raise ValueError(f"{name} must be a value or a nonempty sequence, got an empty sequence")
        return [check(x, name) for x in v], True
    return [check(v, name)], False


def _check_seed(s, name="seed"):
    if isinstance(s, bool) or not isinstance(s, numbers.Integral):
        raise TypeError(f"{name} must be an integer or a sequence of integers, got {type(s).__name__}")
    if s < 0:
        raise ValueError(f"{name} must be >= 0, got {s}")
    return int(s)
