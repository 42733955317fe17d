"""Taylor-remainder checks: the right derivatives give slopes 2 and 3, wrong ones do not."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ncbook import diagnostics as dg
from ncbook import landscape, sphere, ufm

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


def ufm_problem(gen, K=3, d=4, n=2, tau=3.0):
    W = sphere.random_point(K, d, generator=gen, dtype=F64)
    H = sphere.random_point(K * n, d, generator=gen, dtype=F64)
    return (W, H), ufm.balanced_labels(K, n), tau


def ufm_fns(y, tau):
    f = lambda p: ufm.loss(*p, y, tau)
    grad = lambda p: ufm.rgrad(*p, y, tau)
    hess = lambda p, u: landscape.riemannian_hvp(*p, y, tau, *u)
    return f, grad, hess


@pytest.mark.parametrize("K,d,n,tau", [(3, 4, 2, 3.0), (4, 3, 3, 1.0), (2, 5, 1, 10.0)])
def test_ufm_gradient_slope_is_two(K, d, n, tau, gen):
    x, y, tau = ufm_problem(gen, K, d, n, tau)
    f, grad, _ = ufm_fns(y, tau)
    res = dg.check_gradient(f, grad, x, generator=gen)
    assert abs(res.slope - 2) < 0.05 and res.passed
    assert res.fitted.sum() >= 3 and res.steps.shape == res.remainders.shape == res.fitted.shape


def test_wrong_gradient_slope_is_one(gen):
    x, y, tau = ufm_problem(gen)
    f, grad, _ = ufm_fns(y, tau)
    scaled = lambda p: tuple(1.1 * g for g in grad(p))
    res = dg.check_gradient(f, scaled, x, generator=gen)
    assert abs(res.slope - 1) < 0.05 and not res.passed
    # a sign error in one block only
    flipped = lambda p: (grad(p)[0], -grad(p)[1])
    res = dg.check_gradient(f, flipped, x, generator=gen)
    assert abs(res.slope - 1) < 0.05 and not res.passed


@pytest.mark.parametrize("retraction", ["sphere", "exp"])
def test_ufm_hessian_slope_is_three(retraction, gen):
    x, y, tau = ufm_problem(gen)
    f, grad, hess = ufm_fns(y, tau)
    res = dg.check_hessian(f, grad, hess, x, retraction=retraction, generator=gen)
    assert abs(res.slope - 3) < 0.1 and res.passed


def test_hessian_without_curvature_term_fails(gen):
    """Projected Euclidean HVP alone is not the Riemannian Hessian away from critical points."""
    x, y, tau = ufm_problem(gen)
    f, grad, _ = ufm_fns(y, tau)

    def projected_only(p, u):
        hW, hH = landscape.euclidean_hvp(*p, y, tau, *u)
        return sphere.project(p[0], hW), sphere.project(p[1], hH)

    res = dg.check_hessian(f, grad, projected_only, x, generator=gen)
    assert abs(res.slope - 2) < 0.1 and not res.passed


def test_single_tensor_point_rayleigh_quotient(gen):
    A = torch.randn(5, 5, generator=gen, dtype=F64)
    A = A + A.T
    f = lambda x: x @ A @ x
    egrad = lambda x: 2 * A @ x
    grad = lambda x: sphere.egrad_to_rgrad(x, egrad(x))
    hess = lambda x, u: sphere.ehess_to_rhess(x, egrad(x), 2 * A @ u, u)
    x = sphere.random_point(5, generator=gen, dtype=F64)
    assert abs(dg.check_gradient(f, grad, x, generator=gen).slope - 2) < 0.05
    assert abs(dg.check_hessian(f, grad, hess, x, generator=gen).slope - 3) < 0.1
    # with an explicit direction (normalized inside)
    u = 5 * sphere.random_tangent(x, generator=gen)
    assert abs(dg.check_gradient(f, grad, x, direction=u).slope - 2) < 0.05


def test_euclidean_retraction_and_exact_models(gen):
    x = torch.randn(3, 2, generator=gen, dtype=F64)
    f = lambda x: (x ** 3).sum()
    res = dg.check_hessian(f, lambda x: 3 * x ** 2, lambda x, u: 6 * x * u, x, retraction="euclidean", generator=gen)
    assert abs(res.slope - 3) < 0.05
    # a linear function is matched exactly by its first-order model: every remainder at round-off
    a = torch.randn(3, 2, generator=gen, dtype=F64)
    res = dg.check_gradient(lambda x: (a * x).sum(), lambda x: a, x, retraction="euclidean", generator=gen)
    assert res.slope == math.inf and res.passed and not res.fitted.any()
    assert np.all(res.remainders <= res.floor)


def test_custom_retraction_callable(gen):
    x, y, tau = ufm_problem(gen)
    f, grad, _ = ufm_fns(y, tau)
    retr = lambda p, u: sphere.normalize(p + u)
    res = dg.check_gradient(f, grad, x, retraction=retr, project=sphere.project, generator=gen)
    assert abs(res.slope - 2) < 0.05
    with pytest.raises(ValueError, match="direction must be given"):
        dg.check_gradient(f, grad, x, retraction=retr)


def test_check_retraction_orders(gen):
    X = sphere.random_point(4, 3, generator=gen, dtype=F64)
    assert abs(dg.check_retraction(X, generator=gen).slope - 3) < 0.1  # normalization is second order
    res = dg.check_retraction(X, retraction="euclidean", generator=gen)  # x + u leaves the sphere: O(t^2)
    assert abs(res.slope - 2) < 0.1 and not res.passed
    assert dg.check_retraction(X, retraction="exp", generator=gen).slope == math.inf  # identical maps


def test_finite_differences_match_gradient_and_hessian(gen):
    x, y, tau = ufm_problem(gen)
    f, grad, hess = ufm_fns(y, tau)
    u = tuple(sphere.project(p, torch.randn(p.shape, generator=gen, dtype=F64)) for p in x)
    g = grad(x)
    exact1 = sum(float((a * b).sum()) for a, b in zip(g, u))
    exact2 = sum(float((a * b).sum()) for a, b in zip(hess(x, u), u))
    assert abs(dg.fd_directional_derivative(f, x, u) - exact1) < 1e-8 * max(1, abs(exact1))
    assert abs(dg.fd_second_derivative(f, x, u) - exact2) < 1e-5 * max(1, abs(exact2))
    assert abs(dg.fd_second_derivative(f, x, u, retraction="exp") - exact2) < 1e-5 * max(1, abs(exact2))


def test_fit_slope_and_fitted_line():
    t = dg.default_steps()
    assert t.shape == (41,) and t[0] == pytest.approx(1e-8) and t[-1] == pytest.approx(1.0)
    e = 0.5 * t ** 2.5
    slope, intercept, fitted = dg.fit_slope(t, e, floor=1e-14)
    assert abs(slope - 2.5) < 1e-12 and abs(intercept - math.log10(0.5)) < 1e-10
    assert t[fitted][0] ** 2.5 * 0.5 > 1e-14 and t[fitted][-1] <= 100 * t[fitted][0] * (1 + 1e-9)
    res = dg.TaylorCheck(slope=slope, expected=2.0, steps=t, remainders=e, fitted=fitted, intercept=intercept)
    line = res.fitted_line()
    np.testing.assert_allclose(line[fitted], e[fitted], rtol=1e-10)
    assert np.isnan(line[~fitted]).all()


def test_errors_name_the_argument(gen):
    x, y, tau = ufm_problem(gen)
    f, grad, hess = ufm_fns(y, tau)
    with pytest.raises(TypeError, match="f must be callable"):
        dg.check_gradient(1.0, grad, x)
    with pytest.raises(TypeError, match="hess_vec must be callable"):
        dg.check_hessian(f, grad, None, x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor or a nonempty tuple"):
        dg.check_gradient(f, grad, [])
    with pytest.raises(TypeError, match=r"x\[0\] must be a torch.Tensor"):
        dg.check_gradient(f, grad, (np.ones((3, 4)), x[1]))
    with pytest.raises(ValueError, match=r"x\[1\] must have unit-norm rows"):
        dg.check_gradient(f, grad, (x[0], 2 * x[1]))
    with pytest.raises(ValueError, match=r"x\[0\] must contain only finite"):
        dg.check_gradient(f, grad, (x[0] * math.nan, x[1]))
    with pytest.raises(ValueError, match=r"direction\[1\] must have shape"):
        dg.check_gradient(f, grad, x, direction=(x[0], x[1][:2]))
    with pytest.raises(TypeError, match="direction must be a tuple"):
        dg.check_gradient(f, grad, x, direction=x[0])
    with pytest.raises(ValueError, match="direction must be a nonzero"):
        dg.check_gradient(f, grad, x, direction=(0 * x[0], 0 * x[1]))
    with pytest.raises(ValueError, match="retraction must be one of"):
        dg.check_gradient(f, grad, x, retraction="qr")
    with pytest.raises(TypeError, match="retraction must be one of"):
        dg.check_gradient(f, grad, x, retraction=3)
    with pytest.raises(ValueError, match="steps must be"):
        dg.check_gradient(f, grad, x, steps=[1e-3, 1e-2])
    with pytest.raises(ValueError, match="steps must be finite, positive and strictly increasing"):
        dg.check_gradient(f, grad, x, steps=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5])
    with pytest.raises(ValueError, match=r"grad\(x\) must have 2 components"):
        dg.check_gradient(f, lambda p: (grad(p)[0], grad(p)[1], grad(p)[1]), x)
    with pytest.raises(TypeError, match=r"grad\(x\) must be a tuple"):
        dg.check_gradient(f, lambda p: grad(p)[0], x)
    with pytest.raises(ValueError, match="f returned a non-finite value"):
        dg.check_gradient(lambda p: math.nan, grad, x)
    with pytest.raises(ValueError, match="f must return a scalar"):
        dg.check_gradient(lambda p: p[0], grad, x)
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        dg.fd_directional_derivative(f, x, x, h=0.0)


@settings(max_examples=25, deadline=None)
@given(K=st.integers(0, 4), d=st.integers(0, 4), scale=st.sampled_from([1.0, 2.0, math.nan, 0.0]),
       retraction=st.sampled_from(["sphere", "exp", "euclidean", "other"]), tuple_point=st.booleans(),
       steps=st.sampled_from([None, [1e-4, 1e-3, 1e-2, 1e-1, 1.0], [1.0, 2.0], [-1.0, 1, 2, 3, 4]]),
       seed=st.integers(0, 1000))
def test_fuzz_only_documented_errors(K, d, scale, retraction, tuple_point, steps, seed):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(K, d, generator=g, dtype=F64)
    if K * d:
        W = scale * W / torch.linalg.vector_norm(W, dim=-1, keepdim=True).clamp_min(1e-300)
    x = (W, W.clone()) if tuple_point else W
    f = lambda p: sum(float((q ** 2).sum()) for q in (p if isinstance(p, tuple) else (p,)))
    grad = lambda p: tuple(2 * q for q in p) if isinstance(p, tuple) else 2 * p
    try:
        res = dg.check_gradient(f, grad, x, retraction=retraction, steps=steps, generator=g)
    except (TypeError, ValueError):
        return
    assert isinstance(res.slope, float) and not math.isnan(res.slope)
