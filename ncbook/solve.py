r"""Solving the normalized UFM from a random start: :func:`solve` and its :class:`SolveResult`.

The problem is :func:`ncbook.ufm.loss` over :math:`(W, H)` on a product of spheres, with balanced
labels. Every method runs the one loop of :func:`ncbook.rgd.iterate`: the by-hand methods with a
step-size rule of :mod:`ncbook.stepsize`, the geoopt ones with a geoopt optimizer step
(:func:`ncbook.geoopt_rgd.geoopt_stepper`). ``ncbook.ufm.solve`` is this function (re-exported).

Introduced in: chapter 03 (RGD by hand), used again in chapters 04-07.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import config, etf, metrics, rgd, stepsize, ufm
from ._checks import check_integer, check_positive_int, check_positive_real, check_tau, check_tolerance

__all__ = ["METHODS", "SolveResult", "solve", "GEOMETRY_TOL", "ROUNDOFF"]

#: Method names accepted by :func:`solve`, with their default base step size ``lr``.
#: ``"rgd"`` is the plain recipe of chapter 03 (fixed step, :math:`\eta_H = n\,\eta_W`); ``"rgd-bb"`` and
#: ``"rgd-armijo"`` use the Barzilai-Borwein and Armijo rules of :mod:`ncbook.stepsize` (``lr`` is
#: their first trial step); ``"geoopt-sgd"`` is ``geoopt.optim.RiemannianSGD`` with the same step
#: sizes as ``"rgd"``; ``"geoopt-adam"`` is ``geoopt.optim.RiemannianAdam`` (one ``lr`` for both blocks).
#: ``"rgd-logbb"`` runs the BB rule on :math:`\log f` (same minimizers, gradient
#: :math:`\operatorname{grad} f / f`): its steps do not depend on the scale of the loss, which at large
#: ``tau`` is exponentially small; it is what ``method="auto"`` (the default) picks when no ``lr`` is given.
METHODS = ("rgd", "rgd-bb", "rgd-armijo", "geoopt-sgd", "geoopt-adam", "rgd-logbb")

#: Per method: (rule or optimizer, default lr, default steps).
_METHOD_TABLE = {
    "rgd": ("fixed", 1.0, 100_000),
    "rgd-bb": ("bb", 1.0, 20_000),
    "rgd-armijo": ("armijo", 1.0, 50_000),
    "geoopt-sgd": ("sgd", 1.0, 100_000),
    "geoopt-adam": ("adam", 1e-2, 20_000),
    "rgd-logbb": ("bb", 1.0, 20_000),
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
    tol : float or tuple
        The relative tolerance used (``tol`` raised to the round-off of the loss).
    nc1, nc2, nc3 : float or ndarray
        Neural-collapse metrics of the final point (:mod:`ncbook.metrics`).
    etf_angle : float, ndarray or None
        Largest angle (radians) between a classifier and its row of the nearest simplex ETF
        (:func:`ncbook.etf.angle_to_simplex_etf`); None (NaN in a batch) when ``d < K-1``.
    reason : str or tuple of str
        ``"converged: ..."`` or why the run is not called converged.
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
    tol: object = None
    nc1: object = None
    nc2: object = None
    nc3: object = None
    etf_angle: object = None
    reason: object = ""

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
                        tau=self.tau[b], seed=self.seed[b], optimal=None if self.optimal is None else self.optimal[b],
                        **{k: _pick(getattr(self, k), b) for k in ("tol", "nc1", "nc2", "nc3", "etf_angle", "reason")})
            for b in range(self.W.shape[0])
        ]


def solve(K: int, d: int, n: int, tau, *, method: str = "auto", steps: int | None = None, lr: float | None = None,
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
        ``"auto"`` (default) or one of :data:`METHODS`. ``"auto"`` picks ``"rgd"`` (the fixed step)
        when ``lr`` is given, else ``"rgd-logbb"``, which reaches the simplex ETF at any ``tau``.
        Default ``lr`` per method: 1.0, except ``"geoopt-adam"``: 0.01 (the BB and Armijo rules adapt it).
    steps : int, optional
        Maximum number of steps. Default per method: 100000 for ``"rgd"`` and ``"geoopt-sgd"``,
        50000 for ``"rgd-armijo"``, 20000 for the others.
    lr : float, optional
        Base step size (see ``method``).
    tol : float
        Relative tolerance: stop when the gap is ``f - f* <= tol * f*`` or the Riemannian gradient
        norm is ``<= tol * f*`` (``tol * f`` when ``d < K-1``, where no closed form exists). Both keep
        their meaning when the loss is exponentially small (large ``tau``). ``tol`` is raised to the
        round-off of the loss, about ``64 (1 + tau) eps`` (so about 1e-5 in float32); the value used
        is ``SolveResult.tol``.
    seed : int or sequence of int
        Seed(s) of the random start (``0 <= seed < 2**64``). A sequence makes a batch.
    dtype : torch.float32 or torch.float64
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    stop_on : {"either", "grad", "gap"}
        Which test ``tol`` applies to. ``"grad"`` runs on past the point where the gap hits the
        round-off floor, which is what an exact ETF to many digits needs: the distance to the
        minimizers is of order the gradient norm but only the square root of the gap.

    Returns
    -------
    SolveResult
        ``converged`` is True only when the stopping test was met **and**, for ``d >= K-1``, the
        point is what the theory says the minimizers are: NC1, NC2, NC3 and the angle to the
        nearest simplex ETF all at most :data:`GEOMETRY_TOL` (1e-4 in float64). ``reason`` says why
        not otherwise. A gap below ``-64 (1 + tau) eps f*`` is impossible and raises ValueError.

    Notes
    -----
    Which method to use: ``"rgd-bb"`` is the fastest by far (tens of iterations where the fixed
    step needs hundreds to thousands; see ``benchmarks/README.md``) and, like ``"rgd"``,
    ``"rgd-armijo"`` and ``"geoopt-sgd"``, converges to round-off (gap about 1e-16, gradient norm
    below 1e-12 with ``stop_on="grad"``). ``"rgd"`` with ``lr=1`` is chapter 03's recipe; it slows
    down for large ``tau`` (at ``K, d, n, tau = 10, 16, 20, 20`` it was still at a gap of 6e-6 after
    5000 steps, where ``"rgd-bb"`` reached 1e-10 in about 300). ``"geoopt-adam"`` keeps
    steps of size about ``lr`` however small the gradient, so with a constant ``lr`` it only reaches
    a gap of about 1e-8 to 1e-10; use it with a looser ``tol``. ``"geoopt-sgd"`` equals ``"rgd"``
    step for step (to round-off).
    At large ``tau`` the loss is exponentially small (:math:`f^\star \approx (K-1)e^{-\tau K/(K-1)}`)
    and its curvature with it, so the BB step on :math:`f` would have to grow like
    :math:`1/(\tau^2 f)`; it is clipped at ``lr_max`` and ``"rgd-bb"`` stalls far from the ETF (at
    ``K, d, n, tau = 10, 16, 5, 50`` it ends near NC2 = 0.5). ``"rgd-logbb"`` runs the same rule on
    :math:`\log f`, whose curvature does not shrink with :math:`f`: tens of iterations to NC2 below
    1e-6 up to ``tau = 100`` (``benchmarks/README.md``).

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
    if method is None:
        method = "auto"
    if not isinstance(method, str) or method not in METHODS + ("auto",):
        raise ValueError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
    if method == "auto":  # a given lr asks for a fixed step; otherwise the tau-robust BB on log f
        method = "rgd" if lr is not None else "rgd-logbb"
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

    def per_run(values):  # one host value per run, as the solver keeps them: a float, or an array for a batch
        return np.asarray(values, dtype=np.float64) if batched else float(values[0])

    # relative round-off of the loss (it is accurate in relative terms, to about tau * eps)
    floor_rel = [ROUNDOFF * (1 + t) * torch.finfo(dtype).eps for t in taus]
    tols = [max(tol, fl) for fl in floor_rel]  # no test finer than the loss can resolve
    opt_list = [ufm.optimal_loss(K, t) for t in taus] if has_opt else None  # float64 closed forms
    use_g = stop_on in ("either", "grad")
    use_f = stop_on in ("either", "gap") and has_opt
    log_f = method == "rgd-logbb"
    fg = ufm.fused_objective(y, K, torch.tensor(taus, dtype=dtype, device=device) if batched else taus[0], dtype)
    if log_f:  # minimize log f: same minimizers, gradient grad f / f, scale-free at any tau
        fg = _log_objective(fg)
        stop = rgd.StoppingTest(gtol=per_run(tols) if use_g else None,
                                ftol=per_run([math.log1p(t) for t in tols]) if use_f else None,
                                f_opt=per_run([math.log(o) for o in opt_list]) if has_opt else None,
                                floor=per_run(floor_rel))
    else:
        # ||grad f|| <= tol * f* (f* <= f: a constant and stricter form of the test relative to f)
        tol_h = per_run(tols)
        opt_h = per_run(opt_list) if has_opt else None
        stop = rgd.StoppingTest(gtol=tol_h if use_g else None, ftol=tol_h if use_f else None,
                                f_opt=opt_h, relative=True, g_scale=opt_h,
                                floor=per_run([fl * o for fl, o in zip(floor_rel, opt_list)]) if has_opt else 0.0)
    scales = (1.0, float(n))

    t0 = time.perf_counter()
    if method.startswith("rgd"):
        start = rgd.first_iterate(fg, (W, H), scales)
        options = {"flat_floor": 1.0} if log_f else {}  # log f has absolute round-off of order eps
        advance = rgd.rgd_stepper(fg, stepsize.make_rule(rule, lr, **options), start, scales)
    else:
        from . import geoopt_rgd  # lazy: geoopt is only needed for the geoopt methods

        # geoopt projects whatever gradient it is given; a tangent one passes unchanged, and saves work
        advance, start = geoopt_rgd.geoopt_stepper((W, H), fg, optimizer=rule, lr=lr,
                                                   scales=scales if method == "geoopt-sgd" else (1.0, 1.0),
                                                   tangent_grads=True)
    hist = rgd.iterate(advance, start, steps=steps, stop=stop, t0=t0)
    seconds = time.perf_counter() - t0
    W, H = hist.points
    if not method.startswith("rgd"):  # geoopt's points are views of its parameters: keep copies
        W, H = W.detach().clone(), H.detach().clone()
    loss_h, grad_h = hist.loss, hist.grad_norm
    if log_f:  # back from log f to f: f = exp(log f), ||grad f|| = f ||grad log f||
        loss_h = np.exp(loss_h)
        grad_h = grad_h * loss_h

    def split(a):  # (T+1, B) with NaN after a run stopped -> list of B arrays
        return [a[: int(hist.iterations[b]) + 1, b] for b in range(B)] if batched else a

    opt_np = None if opt_list is None else np.asarray(opt_list if batched else opt_list[0])
    res = SolveResult(
        W=W, H=H, y=y, loss=split(loss_h), gap=None if opt_np is None else split(loss_h - opt_np),
        grad_norm=split(grad_h), iterations=hist.iterations, converged=hist.converged, method=method,
        lr=lr, seconds=seconds, K=K, d=d, n=n, tau=tuple(taus) if batched else taus[0],
        seed=tuple(seeds) if batched else seeds[0],
        optimal=None if opt_list is None else (tuple(opt_list) if batched else opt_list[0]),
        tol=tuple(tols) if batched else tols[0],
    )
    return _certify(res, stop_met=hist.converged)


#: Round-off allowance of the loss, in units of (1 + tau) * eps (relative).
ROUNDOFF = 64.0

#: Largest NC1, NC2, NC3 and angle to the nearest simplex ETF (radians) that :func:`solve` accepts as
#: "converged to the ETF", per dtype (with ``d >= K-1``).
GEOMETRY_TOL = {torch.float64: 1e-4, torch.float32: 3e-2}


def _log_objective(fg):
    """``log f`` and its gradient ``grad f / f`` from a fused ``fg`` (per run for a batch)."""

    def fg_log(points):
        f, (gW, gH) = fg(points)
        inv = (1.0 / f).reshape(f.shape + (1, 1))
        return torch.log(f), (gW * inv, gH * inv)

    return fg_log


def _certify(res: SolveResult, stop_met) -> SolveResult:
    """Fill in the geometry (NC1-NC3, angle to the nearest ETF) and let it confirm or refuse convergence."""
    nc1, nc2, nc3, angle = _geometry(res.W, res.H, res.K, res.n)
    runs = res.unbatch()
    geo_tol = GEOMETRY_TOL[res.W.dtype]
    met = np.atleast_1d(np.asarray(stop_met))
    for b, r in enumerate(runs):
        r.nc1, r.nc2, r.nc3 = nc1[b], nc2[b], nc3[b]
        r.etf_angle = angle[b] if angle is not None else None
        geometry = [r.nc1, r.nc2, r.nc3, r.etf_angle] if r.etf_angle is not None else None
        if not met[b]:
            grew = r.loss[-1] > r.loss[0]
            r.reason = (f"not converged: {r.iterations} steps ran out" +
                        (f"; the loss grew from {r.loss[0]:.3g} to {r.loss[-1]:.3g} (the step lr={r.lr:g} "
                         "is too long here; try method='auto')" if grew else ""))
            r.converged = False
        elif geometry is not None and not max(geometry) <= geo_tol:
            r.reason = (f"not converged: the stopping test was met but the point is not a simplex ETF "
                        f"(NC1 {r.nc1:.2g}, NC2 {r.nc2:.2g}, NC3 {r.nc3:.2g}, angle {r.etf_angle:.2g} > {geo_tol:g})")
            r.converged = False
        else:
            r.reason = "converged" + ("" if geometry is None else
                                      f": a simplex ETF with collapsed features (NC2 {r.nc2:.1e}, "
                                      f"angle {r.etf_angle:.1e})")
            r.converged = True
    if not res.batched:
        return runs[0]
    res.converged = np.array([r.converged for r in runs])
    for name in ("nc1", "nc2", "nc3", "etf_angle"):
        setattr(res, name, np.array([np.nan if getattr(r, name) is None else getattr(r, name) for r in runs]))
    res.reason = tuple(r.reason for r in runs)
    return res


def _geometry(W: torch.Tensor, H: torch.Tensor, K: int, n: int):
    r"""NC1, NC2, NC3 and the angle to the nearest simplex ETF of every run at once (lists of floats).

    The values are those of :meth:`ncbook.metrics.ClassStats.nc1`, :func:`ncbook.metrics.nc2`,
    :meth:`ncbook.metrics.ClassStats.nc3` and :func:`ncbook.etf.angle_to_simplex_etf` (float64), for the
    balanced class-major labels of :func:`solve`, computed for the whole batch with cheaper exact formulas:

    * class means :math:`M` ``(K, d)`` are a reshape and a mean of ``H``; :math:`C = H - M_{y}`;
    * NC1 :math:`= \frac1K\operatorname{tr}(\Sigma_W\Sigma_B^+)` through the ``(K, K)`` Gram
      :math:`\tilde M\tilde M^\top = U\Lambda U^\top` of the centred means instead of the ``(d, d)``
      :math:`\Sigma_B = \tilde M^\top\tilde M/K`: their nonzero eigenvalues agree up to the factor
      :math:`K`, and :math:`\mathrm{NC1} = \sum_j u_j^\top A u_j/\lambda_j^2` with
      :math:`A = \tilde M \Sigma_W \tilde M^\top = (C\tilde M^\top)^\top(C\tilde M^\top)/N` (same cut-off
      of small eigenvalues, ``max(d, K) * eps`` times the largest);
    * the nearest ETF is the Procrustes solution :math:`F P Q^\top` with the SVD
      :math:`F^\top W = P S Q^\top` of a ``(K-1, d)`` matrix, :math:`F` the ETF frame in :math:`\mathbb R^{K-1}`.

    Returns ``(nc1, nc2, nc3, angle)``: lists with one float per run (``angle`` is None when ``d < K-1``).
    """
    # numpy on float64 CPU arrays (views of the tensors): the same formulas, fewer microseconds per operation
    dtype = W.dtype
    W, H = (v.detach().to(device="cpu", dtype=torch.float64).numpy() for v in (W, H))
    lead = W.shape[:-2]
    d = W.shape[-1]
    N = K * n
    Hr = H.reshape(lead + (K, n, d))
    M = Hr.sum(-2) / n  # class means (..., K, d)
    Mc = M - M.sum(-2, keepdims=True) / K  # centred (balanced classes: mu_G is the mean of the class means)
    C = Hr - M[..., None, :]  # features around their class mean
    McT = np.swapaxes(Mc, -1, -2)
    CM = C.reshape(lead + (N, d)) @ McT  # (h_i - mu_{y_i})^T mu~_k, (..., N, K)
    lam, U = np.linalg.eigh(Mc @ McT)  # K * the eigenvalues of Sigma_B
    top = lam[..., -1]
    keep = lam > (max(d, K) * np.finfo(np.float64).eps) * top[..., None]
    uAu = np.square(CM @ U).sum(-2)  # u_j^T (N A) u_j, A = M~ Sigma_W M~^T
    F, Ft, E = _etf_frame(K)
    # NC2 and NC3 from one product W [W; M]^T, seen as (..., K, 2, K): [..., 0, :] = W W^T, [..., 1, :] = W M^T
    grams = (W @ np.swapaxes(np.concatenate([W, M], -2), -1, -2)).reshape(lead + (K, 2, K))
    scale = np.sqrt(np.square(grams).sum((-3, -1)))  # their Frobenius norms (..., 2)
    with np.errstate(invalid="ignore", divide="ignore"):  # zero Grams are refused below
        nc1 = np.where(keep, uAu / np.square(lam), 0.0).sum(-1)
        nc23 = np.sqrt(np.square(grams / scale[..., None, :, None] - E[:, None, :]).sum((-3, -1)))
    c_norm = np.sqrt(np.square(C).sum((-3, -2, -1)))
    angle = None
    if d >= K - 1:
        P, _, Qh = np.linalg.svd(Ft @ W, full_matrices=False)
        near = (F @ P) @ Qh  # nearest simplex ETF, rows in the order of W
        if dtype != torch.float64:  # etf.nearest_simplex_etf returns it in W's dtype
            near = torch.from_numpy(near).to(dtype).to(torch.float64).numpy()
        cos = (W * near).sum(-1)
        sin = np.sqrt(np.square(W - cos[..., None] * near).sum(-1))
        angle = np.arctan2(sin, cos).max(-1).reshape(-1).tolist()  # scale-free: rows need not be exactly unit
    # every per-run number to Python floats at once: (8, runs)
    per_run = np.array([nc1, nc23[..., 0], nc23[..., 1], top, c_norm, lam.sum(-1), scale[..., 0],
                        scale[..., 1]]).reshape(8, -1).tolist()
    nc1, nc2, nc3, top, c_norm, lam_sum, gw, gm = per_run
    # the zero test of metrics.ClassStats.nc1, relative to the spread tr(Sigma_W) + tr(Sigma_B)
    if not all(t > 1e-28 * max(c * c / N + s / K, 1e-300) and t > 0 for t, c, s in zip(top, c_norm, lam_sum)):
        raise ValueError("the between-class covariance is zero (all class means coincide), so NC1 is undefined")
    if not all(v > 0 for v in gw):
        raise ValueError("the Gram matrix W @ W.T is the zero matrix, so its distance to the ETF is undefined")
    if not all(v > 0 for v in gm):
        raise ValueError("W @ M.T (classifier W against the class means of H) is the zero matrix, so its distance "
                         "to the ETF is undefined")
    return [max(0.0, v / N) for v in nc1], nc2, nc3, angle


@functools.lru_cache(maxsize=64)
def _etf_frame(K: int) -> tuple:
    """Return the simplex ETF ``F`` ``(K, K-1)`` in R^{K-1}, its transpose, and the target Gram ``E`` of the NC metrics.

    Float64 numpy arrays; cached: they depend on K only.
    """
    F = etf.simplex_etf(K, K - 1, dtype=torch.float64).numpy()
    return F, np.ascontiguousarray(F.T), metrics.etf_target(K).numpy()


def _pick(v, b):
    """Entry ``b`` of a per-run field (None and a not-yet-filled string stay as they are)."""
    if v is None or isinstance(v, str):
        return v
    v = v[b]
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and math.isnan(v) else v


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
    return check_integer(s, name, 0, 2**64 - 1)  # the range of torch.Generator.manual_seed
