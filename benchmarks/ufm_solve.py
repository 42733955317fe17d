"""Benchmark: time and iterations for the normalized UFM to reach loss - optimal_loss < 1e-10.

Run from the repository root (one process, CPU, float64):

    .venv/bin/python benchmarks/ufm_solve.py            # full: (10,16,20,5) and (100,128,20,5)
    .venv/bin/python benchmarks/ufm_solve.py --quick    # small case and a medium one, fewer repeats

Rows, all from the same random start (``ncbook.ufm.solve``'s start for ``seed=0``):

* ``numpy fixed-step RGD``: the baseline, the digest's plain loop (eta_W = 1, eta_H = n);
* ``solve(method=...)`` for every name in ``ncbook.ufm.METHODS`` (stopping on the gap only);
* ``geoopt RiemannianSGD, autograd``: the obvious geoopt loop (``loss.backward()`` every step).

A last table runs every method at large inverse temperatures (tau = 20, 50, 100 at K = 10 and
tau = 50 at K = 100, d = 128) with ``solve``'s own stopping test, and reports the final NC2.

"speedup" is the baseline's wall time divided by the row's, both measured in this run. The last
table compares a batch of 64 seeds solved at once with the same 64 seeds solved one by one.
Timings are wall-clock (best of ``--repeat`` runs for the small case) and vary with machine load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

GAP = 1e-10


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small and medium cases only, fewer repeats")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and numpy's BLAS (default 1)")
    p.add_argument("--repeat", type=int, default=None, help="timing repeats for the small case (default 3, quick 2)")
    p.add_argument("--batch", type=int, default=64, help="runs in the batched-vs-sequential comparison")
    p.add_argument("--max-steps", type=int, default=20000, help="iteration cap of every loop")
    p.add_argument("--adam-steps", type=int, default=3000, help="iteration cap of geoopt-adam (it stalls)")
    p.add_argument("--large-tau-steps", type=int, default=None,
                   help="iteration cap of every method in the large-tau table (default 2000, quick 500)")
    return p.parse_args(argv)


ARGS = parse_args()
# Thread counts must be fixed before numpy and torch load their BLAS libraries.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import geoopt  # noqa: E402

from ncbook import ufm  # noqa: E402

torch.set_num_threads(ARGS.threads)


def start(K, d, n, seed=0):
    """The start that ``ufm.solve`` uses for ``seed``: Gaussian W then H, rows normalized."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(K, d, generator=g, dtype=torch.float64)
    H = torch.randn(K * n, d, generator=g, dtype=torch.float64)
    return W / W.norm(dim=1, keepdim=True), H / H.norm(dim=1, keepdim=True)


def numpy_rgd(K, d, n, tau, max_steps, eta=1.0):
    """The baseline: a plain numpy fixed-step RGD loop (rows on spheres, eta_H = n * eta)."""
    W, H = (x.numpy().copy() for x in start(K, d, n))
    N = K * n
    y = np.repeat(np.arange(K), n)
    rows = np.arange(N)
    f_opt = ufm.optimal_loss(K, tau)
    t0 = time.perf_counter()
    for it in range(max_steps + 1):
        Z = tau * H @ W.T
        Z -= Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        s = E.sum(axis=1, keepdims=True)
        f = np.mean(np.log(s[:, 0]) - Z[rows, y])
        if f - f_opt < GAP or it == max_steps:
            break
        P = E / s
        P[rows, y] -= 1.0
        P *= tau / N
        gW = P.T @ H
        gH = P @ W
        gW -= np.sum(W * gW, axis=1, keepdims=True) * W  # tangent projections
        gH -= np.sum(H * gH, axis=1, keepdims=True) * H
        W = W - eta * gW
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        H = H - eta * n * gH
        H /= np.linalg.norm(H, axis=1, keepdims=True)
    return time.perf_counter() - t0, it, f - f_opt


def geoopt_autograd(K, d, n, tau, max_steps, lr=1.0):
    """The obvious geoopt loop: ManifoldParameters, RiemannianSGD, loss.backward() every step."""
    W0, H0 = start(K, d, n)
    y = ufm.balanced_labels(K, n)
    f_opt = ufm.optimal_loss(K, tau)
    t0 = time.perf_counter()
    W = geoopt.ManifoldParameter(W0.clone(), manifold=geoopt.Sphere())
    H = geoopt.ManifoldParameter(H0.clone(), manifold=geoopt.Sphere())
    opt = geoopt.optim.RiemannianSGD([{"params": [W], "lr": lr}, {"params": [H], "lr": lr * n}], lr=lr)
    for it in range(max_steps + 1):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tau * H @ W.T, y)
        gap = loss.item() - f_opt
        if gap < GAP or it == max_steps:
            break
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, it, gap


def solve_row(K, d, n, tau, method, max_steps):
    t0 = time.perf_counter()
    # solve's gap test is relative to f*: tol = GAP / f* is the absolute target GAP of the other rows
    res = ufm.solve(K, d, n, tau, method=method, tol=GAP / ufm.optimal_loss(K, tau), stop_on="gap", steps=max_steps)
    return time.perf_counter() - t0, res.iterations, res.final_gap


def best_of(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def case_table(K, d, n, tau, repeat):
    cap = ARGS.max_steps
    rows = [("numpy fixed-step RGD (baseline)", best_of(lambda: numpy_rgd(K, d, n, tau, cap), repeat))]
    for m in ufm.METHODS:
        steps = ARGS.adam_steps if m == "geoopt-adam" else cap
        rows.append((f"solve(method={m!r})", best_of(lambda m=m, s=steps: solve_row(K, d, n, tau, m, s), repeat)))
    rows.append(("geoopt RiemannianSGD, autograd loop", best_of(lambda: geoopt_autograd(K, d, n, tau, cap), repeat)))
    base = rows[0][1][0]
    print(f"\n### (K, d, n, tau) = ({K}, {d}, {n}, {tau}), N = {K * n}; target gap < {GAP:g}"
          f"{f'; best of {repeat}' if repeat > 1 else ''}\n")
    print("| method | iterations | wall time (s) | speedup vs numpy | final gap |")
    print("|---|---:|---:|---:|---:|")
    for name, (sec, it, gap) in rows:
        mark = "" if gap < GAP else " (not reached)"
        print(f"| {name} | {it}{mark} | {sec:.4f} | {base / sec:.2f} | {gap:.2e} |")
    solve_rows = [(name, r) for name, r in rows if name.startswith("solve") and r[2] < GAP]
    fastest = min(solve_rows, key=lambda nr: nr[1][0])
    return base, fastest


def batch_table(K, d, n, tau, B, method="rgd-bb"):
    seeds = list(range(B))
    t0 = time.perf_counter()
    tol = GAP / ufm.optimal_loss(K, tau)  # relative tolerance of solve = absolute gap GAP
    batch = ufm.solve(K, d, n, tau, method=method, seed=seeds, tol=tol, stop_on="gap")
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    singles = [ufm.solve(K, d, n, tau, method=method, seed=s, tol=tol, stop_on="gap") for s in seeds]
    t_seq = time.perf_counter() - t0
    same = all(int(batch.iterations[b]) == singles[b].iterations for b in range(B))
    err = max(float((batch.W[b] - singles[b].W).abs().max()) for b in range(B))
    print(f"\n### Batch of {B} seeds vs {B} sequential runs: ({K}, {d}, {n}, {tau}), method={method!r}\n")
    print("| | total (s) | per run (ms) | speedup |")
    print("|---|---:|---:|---:|")
    print(f"| {B} sequential `solve` calls | {t_seq:.3f} | {1e3 * t_seq / B:.2f} | 1.00 |")
    print(f"| one batched `solve` (B = {B}) | {t_batch:.3f} | {1e3 * t_batch / B:.2f} | {t_seq / t_batch:.2f} |")
    print(f"\nAll converged: {bool(batch.converged.all())}; per-run iterations equal: {same}; "
          f"max |W_batch - W_single| = {err:.1e}; iterations {int(batch.iterations.min())}"
          f"-{int(batch.iterations.max())}.")


def large_tau_table(cases, cap):
    """Large inverse temperatures: every method of ``solve`` from the same start, with its own default stop.

    ``nc2`` is the distance of ``W``'s Gram to the simplex ETF (``metrics.nc2``); the relative gap is
    ``(f - f*) / f*`` with the log1p-accurate loss (f* is as small as 1e-58 here).
    """
    print(f"\n### Large tau: default stopping test of `solve` (tol = 1e-10, relative), at most {cap} steps "
          f"(`auto` and `rgd-logbb` at most 20000)\n")
    print("| (K, d, n, tau) | method | iterations | wall time (s) | converged | final nc2 | relative gap |")
    print("|---|---|---:|---:|---|---:|---:|")
    for K, d, n, tau in cases:
        for m in ufm.METHODS + ("auto",):
            steps = None if m in ("auto", "rgd-logbb") else cap
            t0 = time.perf_counter()
            res = ufm.solve(K, d, n, tau, method=m, steps=steps)
            sec = time.perf_counter() - t0
            name = f"auto ({res.method})" if m == "auto" else m
            print(f"| ({K}, {d}, {n}, {tau:g}) | {name} | {res.iterations} | {sec:.3f} | {res.converged} | "
                  f"{res.nc2:.1e} | {res.final_gap / res.optimal:.1e} |")


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = f"{names[0]} x {len(names)}" if names else cpu
    except OSError:
        pass
    return (f"{cpu}; {platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, numpy {np.__version__}, geoopt {geoopt.__version__}; "
            f"threads = {ARGS.threads}")


def main():
    repeat = ARGS.repeat or (2 if ARGS.quick else 3)
    print(f"Machine: {machine()}")
    print(f"Command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    # warm-up: imports, geoopt/torch.optim first-use costs, allocator
    for m in ufm.METHODS:
        ufm.solve(3, 3, 2, 1.0, method=m, steps=5)
    geoopt_autograd(3, 3, 2, 1.0, 5)
    numpy_rgd(3, 3, 2, 1.0, 5)

    t0 = time.perf_counter()
    small = case_table(10, 16, 20, 5.0, repeat)
    large_case = (30, 32, 10, 5.0) if ARGS.quick else (100, 128, 20, 5.0)
    large = case_table(*large_case, 1)
    batch_table(10, 16, 20, 5.0, ARGS.batch if not ARGS.quick else min(ARGS.batch, 16))
    cap = ARGS.large_tau_steps or (500 if ARGS.quick else 2000)
    large_tau_table([(10, 16, 5, 20.0), (10, 16, 5, 50.0), (10, 16, 5, 100.0), (100, 128, 5, 50.0)], cap)

    print("\n### Targets\n")
    second = "medium" if ARGS.quick else "large"
    for label, (base, (name, r)), need in (("small", small, 1.0), (second, large, 3.0)):
        ratio = base / r[0]
        print(f"- {label} case: fastest solve method {name} is {ratio:.1f}x the numpy loop "
              f"(target >= {need:g}x): {'met' if ratio >= need else 'NOT met'}")
    print(f"\nTotal benchmark time: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
