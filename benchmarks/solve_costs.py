"""Benchmark: where the time of one ``ncbook.ufm.solve`` call goes (per step, per call, the certificate).

For each case of ``ufm_solve.py --quick`` ((K, d, n, tau) = (10, 16, 20, 5) and (30, 32, 10, 5)) and
each method with a closed-form gradient, it times in one process (CPU, float64, one thread):

* ``full``: the best of several calls of ``solve(..., stop_on="gap")`` down to the gap 1e-10;
* ``fixed``: the best of 25 calls with ``steps=0`` (checks, start, first evaluation, records and, where
  ``solve`` certifies its answer, the certificate);
* ``per_it``: ``(full - fixed) / iterations``;
* ``fixed_uncertified``: ``fixed`` once more with the certificate switched off inside this process
  (``ncbook.solve._certify`` replaced by the identity; measurement only, never a product option),
  so ``fixed - fixed_uncertified`` is what certifying costs per call;
* 16 sequential ``rgd-bb`` solves, and the same 16 seeds as one batched solve.

To compare two checkouts (before and after a change), time each, alternately, and compare
(``--root``: the checkout whose ``ncbook`` is timed, default this one)::

    git worktree add ../ncbook-old <commit>
    .venv/bin/python benchmarks/solve_costs.py --root ../ncbook-old --json old.json
    .venv/bin/python benchmarks/solve_costs.py --json new.json
    .venv/bin/python benchmarks/solve_costs.py --compare old.json new.json

``--json`` appends one line per run, so repeated runs accumulate; ``--compare`` takes the best value
of each side. A checkout from before ``ncbook.solve`` existed works too: its ``tol`` was absolute, and
it has no certificate (its ``fixed_uncertified`` is its ``fixed``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                   help="the checkout whose ncbook is timed (default: this repository)")
    p.add_argument("--json", help="append this run's numbers to this file (one JSON line)")
    p.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), help="print new/old ratios of two --json files")
    return p.parse_args(argv)


ARGS = parse_args()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy and torch load their BLAS

import torch  # noqa: E402

sys.path.insert(0, os.path.abspath(ARGS.root))
from ncbook import ufm  # noqa: E402

try:  # the module that certifies (absent in checkouts from before it existed)
    from ncbook import solve as solve_module  # noqa: E402
except ImportError:
    solve_module = None

CASES = ((10, 16, 20, 5.0), (30, 32, 10, 5.0))
METHODS = ("rgd", "rgd-bb", "rgd-armijo", "geoopt-sgd")
GAP = 1e-10


def tol_for(K: int, tau: float) -> float:
    """The ``tol`` that stops at the absolute gap ``GAP`` (relative to f* since ncbook.solve exists)."""
    return GAP / ufm.optimal_loss(K, tau) if solve_module is not None else GAP


def best(fn, repeat: int):
    """Best wall time of ``repeat`` calls of ``fn`` (seconds) and the last result."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


@contextlib.contextmanager
def uncertified():
    """A context in which ``solve`` skips its certificate (this process only; for measurement)."""
    saved = getattr(solve_module, "_certify", None)
    if saved is not None:
        solve_module._certify = lambda res, stop_met: res
    try:
        yield
    finally:
        if saved is not None:
            solve_module._certify = saved


def measure() -> dict:
    """One measurement of every row (see the module docstring); times in ms and us."""
    torch.set_num_threads(1)
    for m in METHODS:  # first-use costs (imports, allocator)
        ufm.solve(3, 3, 2, 1.0, method=m, steps=5)
    out = {}
    for K, d, n, tau in CASES:
        tol = tol_for(K, tau)
        for m in METHODS:
            def call(steps=None, m=m, K=K, d=d, n=n, tau=tau, tol=tol):
                return ufm.solve(K, d, n, tau, method=m, tol=tol, stop_on="gap", steps=steps)

            full, res = best(call, 5 if m in ("rgd", "geoopt-sgd") else 25)
            fixed, _ = best(lambda: call(0), 25)
            with uncertified():
                bare, _ = best(lambda: call(0), 25)
            it = int(res.iterations)
            out[f"{K} {m}"] = {"it": it, "full_ms": 1e3 * full, "fixed_ms": 1e3 * fixed,
                               "fixed_uncertified_ms": 1e3 * bare, "per_it_us": 1e6 * (full - fixed) / max(it, 1)}
    tol = tol_for(10, 5.0)
    seq, _ = best(lambda: [ufm.solve(10, 16, 20, 5.0, method="rgd-bb", seed=s, tol=tol, stop_on="gap")
                           for s in range(16)], 3)
    batch, _ = best(lambda: ufm.solve(10, 16, 20, 5.0, method="rgd-bb", seed=list(range(16)), tol=tol,
                                      stop_on="gap"), 3)
    out["16 sequential rgd-bb (ms)"] = 1e3 * seq
    out["one batch of 16 rgd-bb (ms)"] = 1e3 * batch
    return out


def show(run: dict) -> None:
    """Print one measurement as a table."""
    print("| row | iterations | per step (us) | fixed (ms) | fixed, uncertified (ms) | whole call (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, v in run.items():
        if isinstance(v, dict):
            print(f"| {key} | {v['it']} | {v['per_it_us']:.1f} | {v['fixed_ms']:.3f} | "
                  f"{v['fixed_uncertified_ms']:.3f} | {v['full_ms']:.2f} |")
        else:
            print(f"| {key} | | | | | {v:.2f} |")


def compare(old_path: str, new_path: str) -> None:
    """Print new/old ratios of the best values of two ``--json`` files."""
    old, new = ([json.loads(line) for line in open(p) if line.strip()] for p in (old_path, new_path))

    def low(runs, key, field=None):
        return min(r[key] if field is None else r[key][field] for r in runs)

    print(f"old: {old_path} ({len(old)} runs), new: {new_path} ({len(new)} runs); best of each side; "
          "ratio = new / old\n")
    print("| row | iterations old/new | per step old/new (us) | ratio | fixed old/new (ms) | ratio | "
          "new uncertified (ms) | ratio | whole call old/new (ms) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, v in old[0].items():
        if isinstance(v, dict):
            po, pn = low(old, key, "per_it_us"), low(new, key, "per_it_us")
            fo, fn = low(old, key, "fixed_uncertified_ms"), low(new, key, "fixed_ms")
            bare = low(new, key, "fixed_uncertified_ms")
            wo, wn = low(old, key, "full_ms"), low(new, key, "full_ms")
            print(f"| {key} | {v['it']}/{new[0][key]['it']} | {po:.1f}/{pn:.1f} | {pn / po:.2f} | "
                  f"{fo:.3f}/{fn:.3f} | {fn / fo:.2f} | {bare:.3f} | {bare / fo:.2f} | {wo:.2f}/{wn:.2f} | "
                  f"{wn / wo:.2f} |")
        else:
            o, n = low(old, key), low(new, key)
            print(f"| {key} | | | | | | | | {o:.2f}/{n:.2f} | {n / o:.2f} |")


def main(args) -> None:
    print(f"ncbook from {os.path.dirname(os.path.abspath(ufm.__file__))}; torch {torch.__version__}, 1 thread")
    if args.compare:
        compare(*args.compare)
        return
    run = measure()
    show(run)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(run) + "\n")


if __name__ == "__main__":
    main(ARGS)
