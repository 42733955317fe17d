"""Property-based fuzzing of the math core's public API (sphere, etf, ufm, rgd, geoopt_rgd, solve,
metrics, diagnostics, _checks).

For good and bad inputs alike: only TypeError/ValueError escape, every message names an argument
of the call, every output is finite, and where a reference exists the output equals it. The
settings are deterministic on their own (derandomized, no example database), whatever profile runs.
"""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ncbook import _checks, diagnostics, etf, geoopt_rgd, metrics, rgd, solve, sphere, ufm

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW = settings(FUZZ, max_examples=20)

# numbers a user might pass where a number is expected: extremes, specials, numpy scalars, wrong kinds
weird_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 1e200, -1.0, 2**63, 2**64]),
    st.builds(np.float32, st.floats(-1e30, 1e30)),
    st.builds(np.int64, st.integers(-10, 10)),
    st.integers(-10, 10**6),
    st.sampled_from([None, "1", True, [1.0], torch.tensor(2.0), torch.ones(2), 1 + 1j]),
)


def named_errors_only(fn, names, *args, **kwargs):
    """Call ``fn``; a TypeError/ValueError must name one of ``names``. Returns the result or None."""
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        assert any(re.search(rf"\b{re.escape(n)}\b", msg) for n in names), f"message names none of {names}: {msg}"
        return None


def finite(*xs):
    for x in xs:
        if isinstance(x, torch.Tensor):
            assert bool(torch.isfinite(x).all())
        elif isinstance(x, (tuple, list)):
            finite(*x)
        elif x is not None:
            assert math.isfinite(float(x))


def rows(draw, m, d, scale):
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    return torch.randn(m, d, generator=g, dtype=F64) * scale


@st.composite
def matrices(draw, min_rows=1, max_rows=5, min_d=2, max_d=6):
    m = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(min_d, max_d))
    scale = draw(st.sampled_from([1e-200, 1e-8, 1.0, 1e8, 1e200]))
    return rows(draw, m, d, scale)


# --------------------------------------------------------------------------- checks

@FUZZ
@given(v=weird_numbers)
def test_number_checkers_accept_numbers_and_refuse_the_rest_by_name(v):
    for check in (lambda x: _checks.check_real(x, "lr", low=0.0, low_open=True),
                  lambda x: _checks.check_tolerance(x, "tol"), lambda x: _checks.check_positive_real(x, "lr"),
                  lambda x: _checks.check_integer(x, "steps", 0), lambda x: _checks.check_tau(x)):
        out = named_errors_only(check, ["lr", "tol", "steps", "tau"], v)
        if out is not None:
            assert math.isfinite(out) and type(out) in (int, float)


def test_numpy_scalars_are_numbers():
    assert _checks.check_tolerance(np.float32(1e-10), "tol") == pytest.approx(1e-10)
    assert _checks.check_positive_int(np.int64(3), "K") == 3
    assert ufm.balanced_labels(np.int64(3), np.int64(2)).shape == (6,)
    assert sphere.random_point(np.int64(2), np.int64(3)).shape == (2, 3)
    assert etf.is_simplex_etf(etf.simplex_etf(3, 2), atol=np.float32(1e-6))


# --------------------------------------------------------------------------- sphere

@FUZZ
@given(x=matrices())
def test_normalize_is_right_at_any_scale(x):
    out = sphere.normalize(x)
    finite(out)
    torch.testing.assert_close(torch.linalg.vector_norm(out, dim=-1), torch.ones(x.shape[0], dtype=F64))
    ref = x / x.abs().amax(-1, keepdim=True)
    torch.testing.assert_close(out, ref / torch.linalg.vector_norm(ref, dim=-1, keepdim=True))


@FUZZ
@given(x=matrices(max_rows=3), data=st.data())
def test_retract_exp_and_step_never_overflow(x, data):
    x = sphere.normalize(x)
    u = sphere.project(x, rows(data.draw, *x.shape, 1.0))
    t = data.draw(st.sampled_from([0.0, 1e-300, 1e-8, 1.0, 1e8, 1e200, -1e200, 1e307]))
    y = named_errors_only(sphere.step_along, ["t", "u", "x"], x, u, t)
    if y is not None:
        finite(y)
        assert sphere.is_on_sphere(y)
        # reference: (x + t u)/|.| in exact arithmetic, computed in a safely scaled form
        m = u.abs().amax(-1, keepdim=True)
        c = 1.0 / torch.clamp(abs(t) * m, min=1.0)
        ref = c * x + torch.where(abs(t) * m > 1, math.copysign(1.0, t) / m.clamp_min(1e-300), t) * u
        ref = ref / torch.linalg.vector_norm(ref, dim=-1, keepdim=True)
        assert float((y - ref).abs().max()) < 1e-6, (x, u, t, y, ref)
    e = named_errors_only(sphere.exp_map, ["u", "x"], x, u * min(abs(t), 1e300))
    if e is not None:
        finite(e)
        assert sphere.is_on_sphere(e)
    lr = data.draw(st.sampled_from([1e-3, 1.0, 1e200]))
    s = named_errors_only(rgd.step, ["lr", "points", "grads"], x, u, lr)
    if s is not None:
        finite(s)
        assert sphere.is_on_sphere(s)
    gs = named_errors_only(geoopt_rgd.step, ["lr", "points", "egrads"], x, u, lr)
    if gs is not None:
        finite(gs)
        assert sphere.is_on_sphere(gs)
        torch.testing.assert_close(gs, s)


@FUZZ
@given(x=st.one_of(matrices(), st.just(torch.full((2, 3), math.nan)), st.just(torch.zeros(2, 3)),
                   st.just(torch.ones(2, 3, dtype=torch.int64)), st.just([[1.0, 0.0]])),
       atol=weird_numbers)
def test_is_on_sphere_answers_or_refuses_by_name(x, atol):
    out = named_errors_only(sphere.is_on_sphere, ["x", "atol"], x, atol)
    assert out in (None, True, False)
    if out is not None and isinstance(x, torch.Tensor) and bool(torch.isfinite(x).all()):
        tol = float(atol) if atol is not None else 1e-8
        err = float((torch.linalg.vector_norm(x.double(), dim=-1) - 1).abs().max())
        assert out == (err <= tol)


def test_overflow_examples_of_the_issue():
    x = torch.tensor([[1e200, 1e200, 0.0]], dtype=F64)
    torch.testing.assert_close(sphere.normalize(x), torch.tensor([[2**-0.5, 2**-0.5, 0.0]], dtype=F64))
    p = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)
    g = torch.tensor([[0.0, 1.0, 0.0]], dtype=F64)
    torch.testing.assert_close(rgd.step(p, g, 1e200), torch.tensor([[0.0, -1.0, 0.0]], dtype=F64))
    torch.testing.assert_close(sphere.retract(p, 1e200 * g), torch.tensor([[0.0, 1.0, 0.0]], dtype=F64))
    with pytest.raises(ValueError, match="lr"):
        geoopt_rgd.step(p, g, 1e200)
    assert bool(torch.isfinite(sphere.exp_map(p, 1e300 * g)).all())


# --------------------------------------------------------------------------- ufm, etf, metrics

@FUZZ
@given(K=st.integers(2, 6), extra=st.integers(0, 3), n=st.integers(1, 3),
       tau=st.one_of(st.floats(1e-3, 800.0), weird_numbers), seed=st.integers(0, 100))
def test_ufm_functions_are_finite_or_refuse_by_name(K, extra, n, tau, seed):
    d = max(2, K - 1 + extra)
    g = torch.Generator().manual_seed(seed)
    W, H = sphere.random_point(K, d, generator=g, dtype=F64), sphere.random_point(K * n, d, generator=g, dtype=F64)
    y = ufm.balanced_labels(K, n)
    for fn in (ufm.loss, ufm.egrad, ufm.rgrad):
        finite(named_errors_only(fn, ["tau"], W, H, y, tau))
    f_star = named_errors_only(ufm.optimal_loss, ["tau", "K"], K, tau)
    if f_star is not None:
        M = etf.simplex_etf(K, d)
        f_etf = float(ufm.loss(M, M.repeat_interleave(n, 0), y, tau))
        assert f_etf == pytest.approx(f_star, rel=1e-9, abs=1e-300)
        assert float(ufm.loss(W, H, y, tau)) >= f_star * (1 - 1e-9)  # f* is the minimum (d >= K-1)


@FUZZ
@given(bad=st.sampled_from(["nan", "off", "shape", "dtype", "labels"]))
def test_ufm_refuses_bad_points_by_name(bad):
    W, H = etf.simplex_etf(3, 3), etf.simplex_etf(3, 3).repeat_interleave(2, 0)
    y = ufm.balanced_labels(3, 2)
    if bad == "nan":
        W = W.clone()
        W[0, 0] = math.nan
    elif bad == "off":
        W = 2 * W
    elif bad == "shape":
        H = H[:, :2]
    elif bad == "dtype":
        H = H.float()
    else:
        y = y + 5
    for fn, args in ((ufm.logits, (W, H, 2.0)), (ufm.loss, (W, H, y, 2.0)), (ufm.rgrad, (W, H, y, 2.0))):
        if bad == "labels" and fn is ufm.logits:
            continue
        with pytest.raises((TypeError, ValueError)) as info:
            fn(*args)
        assert re.search(r"\b(W|H|y)\b", str(info.value))


@FUZZ
@given(K=st.integers(2, 5), d=st.integers(1, 6), n=st.integers(1, 4), scale=st.sampled_from([1e-100, 1.0, 1e100]),
       rtol=weird_numbers, seed=st.integers(0, 50))
def test_metrics_are_finite_or_refuse_by_name(K, d, n, scale, rtol, seed):
    g = torch.Generator().manual_seed(seed)
    H = torch.randn(K * n, d, generator=g, dtype=F64) * scale
    W = torch.randn(K, d, generator=g, dtype=F64)
    y = ufm.balanced_labels(K, n)
    for fn, args in ((metrics.nc1, (H, y)), (metrics.nc2, (W,)), (metrics.nc3, (W, H, y)),
                     (metrics.collapse_report, (W, H, y))):
        out = named_errors_only(fn, ["H", "W", "y", "K"], *args)
        finite(*(out.values() if isinstance(out, dict) else [out]))
    stats = metrics.ClassStats(K, d).update(H, y)
    out = named_errors_only(stats.nc1, ["rtol", "NC1"], rtol=rtol)
    if out is not None:
        assert out >= 0 and math.isfinite(out)


def test_nc1_with_nan_rtol_is_refused():
    g = torch.Generator().manual_seed(0)
    stats = metrics.ClassStats(3, 4).update(torch.randn(12, 4, generator=g, dtype=F64), ufm.balanced_labels(3, 4))
    with pytest.raises(ValueError, match="rtol"):
        stats.nc1(rtol=math.nan)


@FUZZ
@given(K=st.integers(2, 6), extra=st.integers(0, 3), seed=st.integers(0, 100), noise=st.sampled_from([0.0, 1e-3, 0.3]))
def test_nearest_etf_is_an_etf_and_closer_than_a_random_one(K, extra, seed, noise):
    d = K - 1 + extra
    assume(d >= 1)
    g = torch.Generator().manual_seed(seed)
    M = etf.simplex_etf(K, d, generator=g) if d >= 2 else etf.simplex_etf(K, d)
    W = M + noise * torch.randn(K, d, generator=g, dtype=F64)
    N = etf.nearest_simplex_etf(W)
    assert etf.is_simplex_etf(N, atol=1e-9)
    assert float(torch.linalg.matrix_norm(W - N)) <= float(torch.linalg.matrix_norm(W - M)) + 1e-9
    angle = named_errors_only(etf.angle_to_simplex_etf, ["W"], W)
    if angle is not None:
        assert 0 <= angle <= math.pi and (noise > 0 or angle < 1e-6)


# --------------------------------------------------------------------------- solvers

@SLOW
@given(K=st.integers(2, 5), d=st.integers(2, 6), n=st.integers(1, 3),
       tau=st.sampled_from([0.5, 2.0, 10.0, 40.0, 100.0]),
       method=st.sampled_from(solve.METHODS + ("auto",)), lr=st.sampled_from([None, 1e-3, 1.0, 1e3, 1e200]),
       seed=st.integers(0, 20), tol=st.sampled_from([0.0, 1e-10, np.float32(1e-6), 1e-3]))
def test_solve_is_honest(K, d, n, tau, method, lr, seed, tol):
    steps = 150
    res = named_errors_only(ufm.solve, ["lr", "tau", "method", "steps", "tol"], K, d, n, tau, method=method, lr=lr,
                            seed=seed, tol=tol, steps=steps)
    if res is None:
        return
    finite(res.W, res.H, res.loss[-1], res.grad_norm[-1])
    assert sphere.is_on_sphere(res.W) and sphere.is_on_sphere(res.H)
    assert res.reason and (res.converged == res.reason.startswith("converged"))
    if d >= K - 1:
        f = float(ufm.loss(res.W, res.H, res.y, tau))
        assert f >= res.optimal * (1 - 1e-9)
        if res.converged:  # certified: the geometry it claims
            assert res.nc2 <= solve.GEOMETRY_TOL[F64] and metrics.nc2(res.W) == pytest.approx(res.nc2, abs=1e-12)
            assert f - res.optimal <= max(1e-3, 10 * res.tol) * res.optimal + 1e-12 or res.grad_norm[-1] <= \
                max(tol, res.tol) * f * 10


@SLOW
@given(lr=weird_numbers, steps=st.one_of(st.integers(0, 30), weird_numbers),
       rule=st.sampled_from(["fixed", "armijo", "bb", "newton", None]), gtol=weird_numbers,
       f_opt=st.sampled_from([None, 1.0, 0.5, -1e300, math.nan]))
def test_rgd_run_only_raises_named_errors(lr, steps, rule, gtol, f_opt):
    A = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=F64))
    x0 = sphere.normalize(torch.ones(3, dtype=F64))
    hist = named_errors_only(rgd.run, ["lr", "steps", "rule", "gtol", "f_opt", "ftol"], (x0,),
                             lambda p: p[0] @ A @ p[0], lambda p: (sphere.project(p[0], 2 * A @ p[0]),),
                             lr=lr, steps=steps, rule=rule, gtol=gtol, f_opt=f_opt, ftol=1e-12)
    if hist is not None:
        finite(hist.points, hist.loss[-1])
        assert hist.loss[-1] >= 1.0 - 1e-12  # the smallest eigenvalue is the minimum
        if hist.converged and f_opt == 1.0:
            assert hist.loss[-1] - 1.0 <= 1e-12 or hist.grad_norm[-1] <= float(gtol)


@FUZZ
@given(noise=weird_numbers, decades=weird_numbers, tol=weird_numbers)
def test_check_gradient_knobs_are_validated(noise, decades, tol):
    W, H = etf.simplex_etf(3, 3), etf.simplex_etf(3, 3).repeat_interleave(2, 0)
    y = ufm.balanced_labels(3, 2)
    wrong = lambda p: tuple(2 * g for g in ufm.rgrad(*p, y, 2.0))  # noqa: E731 - a wrong gradient
    res = named_errors_only(diagnostics.check_gradient, ["noise", "decades", "tol"],
                            lambda p: ufm.loss(*p, y, 2.0), wrong,
                            (sphere.retract(W, 0.1 * sphere.random_tangent(W, torch.Generator().manual_seed(1))), H),
                            noise=noise, decades=decades, tol=tol, generator=torch.Generator().manual_seed(0))
    if res is not None and float(tol) < 0.9:
        assert not res.passed  # a wrong gradient never passes
