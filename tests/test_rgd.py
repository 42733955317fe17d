"""Tests of ncbook.rgd: the step formula, each step-size rule, batches, histories, input checks."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ncbook import rgd, sphere, ufm

F64 = torch.float64
A = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=F64))


def rayleigh(p):
    x = p[0]
    return (x * (x @ A)).sum(-1)


def rayleigh_rgrad(p):
    x = p[0]
    return (sphere.project(x, 2 * x @ A),)


def ufm_problem(K=4, d=4, n=3, tau=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = sphere.random_point(K, d, generator=g, dtype=F64)
    H = sphere.random_point(K * n, d, generator=g, dtype=F64)
    y = ufm.balanced_labels(K, n)
    return (W, H), (lambda p: ufm.loss(*p, y, tau)), (lambda p: ufm.rgrad(*p, y, tau)), y


def test_step_is_the_retraction_formula():
    (W, H), _, rgrad, y = ufm_problem()
    gW, gH = rgrad((W, H))
    W1, H1 = rgd.step((W, H), (gW, gH), lr=0.3, scales=(1.0, 3.0))
    W_ref = (W - 0.3 * gW) / torch.linalg.vector_norm(W - 0.3 * gW, dim=1, keepdim=True)
    H_ref = (H - 0.9 * gH) / torch.linalg.vector_norm(H - 0.9 * gH, dim=1, keepdim=True)
    torch.testing.assert_close(W1, W_ref, rtol=0, atol=1e-15)
    torch.testing.assert_close(H1, H_ref, rtol=0, atol=1e-15)
    assert sphere.is_on_sphere(W1) and sphere.is_on_sphere(H1)
    # a bare tensor in, a bare tensor out
    x1 = rgd.step(W, gW, lr=0.3)
    torch.testing.assert_close(x1, W_ref, rtol=0, atol=1e-15)


def test_rayleigh_gradient_matches_digest_fact():
    # digest section 8, fact 7: at (1,1,1)/sqrt(3), f = 2 and grad = (-1.154701, 0, 1.154701)
    x = sphere.normalize(torch.ones(3, dtype=F64))
    assert float(rayleigh((x,))) == pytest.approx(2.0, abs=1e-14)
    g = rayleigh_rgrad((x,))[0]
    torch.testing.assert_close(g, torch.tensor([-1.154701, 0.0, 1.154701], dtype=F64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("rule", rgd.RULES)
def test_each_rule_finds_the_smallest_eigenvalue(rule):
    x0 = sphere.normalize(torch.tensor([1.0, 1.0, 1.0], dtype=F64))
    hist = rgd.run(x0, rayleigh, rayleigh_rgrad, lr=0.2, rule=rule, steps=2000, gtol=1e-12)
    assert hist.converged
    assert hist.grad_norm[-1] <= 1e-12
    assert hist.loss[-1] == pytest.approx(1.0, abs=1e-14)
    x = hist.points[0]
    assert abs(float(x[0])) == pytest.approx(1.0, abs=1e-12)


def test_fixed_rule_equals_a_loop_of_steps():
    (W, H), loss, rgrad, y = ufm_problem()
    hist = rgd.run((W, H), loss, rgrad, lr=0.5, scales=(1, 3), steps=15, gtol=None)
    assert hist.iterations == 15 and not hist.converged
    x = (W, H)
    for t in range(15):
        assert hist.loss[t] == pytest.approx(float(loss(x)), abs=1e-15)
        x = rgd.step(x, rgrad(x), lr=0.5, scales=(1, 3))
    for a, b in zip(hist.points, x):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(hist.step_size, np.full(15, 0.5))


def test_armijo_is_monotone_and_satisfies_sufficient_decrease():
    (W, H), loss, rgrad, y = ufm_problem(K=5, d=5, n=2, tau=4.0, seed=3)
    hist = rgd.run((W, H), loss, rgrad, lr=10.0, rule="armijo", scales=(1, 2), steps=60, gtol=None)
    diffs = np.diff(hist.loss)
    assert (diffs <= 1e-15).all()
    # it had to backtrack from lr = 10 at least once
    assert hist.step_size.min() < 10.0 and hist.evaluations > hist.iterations + 1


def test_bb_step_is_the_riemannian_bb_formula():
    """After one step, the next BB step is <s, S^-1 s>/<s, y> with projection transport."""
    (W, H), loss, rgrad, y = ufm_problem(K=3, d=4, n=2, tau=2.0, seed=1)
    S = (1.0, 2.0)
    lr = 0.05
    h1 = rgd.run((W, H), loss, rgrad, lr=lr, rule="bb", scales=S, steps=1, gtol=None)
    h2 = rgd.run((W, H), loss, rgrad, lr=lr, rule="bb", scales=S, steps=2, gtol=None)
    assert h1.evaluations == 2 and h2.evaluations == 3  # no backtracking: the steps are the BB steps
    g0 = rgrad((W, H))
    x1 = h1.points
    g1 = rgrad(x1)
    s = [sphere.project(x, -lr * si * g) for x, g, si in zip(x1, g0, S)]
    yv = [gn - sphere.project(x, g) for x, g, gn in zip(x1, g0, g1)]
    sSs = sum((si_ * si_).sum() / si for si_, si in zip(s, S))
    sy = sum((a * b).sum() for a, b in zip(s, yv))
    assert h2.step_size[0] == lr
    assert h2.step_size[1] == pytest.approx(float(sSs / sy), rel=1e-10)


def test_bb_needs_far_fewer_iterations_than_a_fixed_step():
    (W, H), loss, rgrad, y = ufm_problem(K=4, d=4, n=3, tau=2.0, seed=2)
    f_opt = ufm.optimal_loss(4, 2.0)
    kw = dict(scales=(1, 3), steps=5000, gtol=None, f_opt=f_opt, ftol=1e-10)
    fixed = rgd.run((W, H), loss, rgrad, lr=1.0, rule="fixed", **kw)
    bb = rgd.run((W, H), loss, rgrad, lr=1.0, rule="bb", **kw)
    assert fixed.converged and bb.converged
    assert bb.loss[-1] - f_opt <= 1e-10
    assert 5 * bb.iterations < fixed.iterations


@pytest.mark.parametrize("rule", rgd.RULES)
def test_batched_run_equals_runs_one_by_one(rule):
    g = torch.Generator().manual_seed(5)
    X0 = sphere.random_point(4, 3, generator=g, dtype=F64)  # 4 runs, each one point on S^2
    kw = dict(lr=0.3, rule=rule, steps=300, gtol=1e-9)
    batch = rgd.run(X0, rayleigh, rayleigh_rgrad, **kw)
    assert batch.loss.shape[1] == 4 and batch.iterations.shape == (4,)
    for b in range(4):
        one = rgd.run(X0[b], rayleigh, rayleigh_rgrad, **kw)
        assert one.iterations == batch.iterations[b]
        assert one.converged == batch.converged[b]
        torch.testing.assert_close(batch.points[0][b], one.points[0], rtol=0, atol=1e-14)
        T = one.iterations
        np.testing.assert_allclose(batch.loss[: T + 1, b], one.loss, rtol=0, atol=1e-14)
        assert np.isnan(batch.loss[T + 1:, b]).all()


def test_history_records_and_stopping_rules():
    x0 = sphere.normalize(torch.tensor([1.0, 1.0, 1.0], dtype=F64))
    hist = rgd.run((x0,), rayleigh, rayleigh_rgrad, lr=0.2, steps=50, gtol=None)
    assert len(hist.loss) == len(hist.grad_norm) == len(hist.time) == 51
    assert len(hist.step_size) == 50
    assert (np.diff(hist.time) >= 0).all() and hist.seconds >= 0
    assert hist.rule == "fixed" and hist.scales == (1.0,)
    # steps=0: only the start is evaluated
    h0 = rgd.run((x0,), rayleigh, rayleigh_rgrad, steps=0)
    assert h0.iterations == 0 and len(h0.loss) == 1 and not h0.converged
    # gap stopping
    hg = rgd.run((x0,), rayleigh, rayleigh_rgrad, lr=0.2, steps=1000, gtol=None, f_opt=1.0, ftol=1e-6)
    assert hg.converged and hg.loss[-1] - 1.0 <= 1e-6 < hg.loss[-2] - 1.0
    # a callback can stop the run
    seen = []
    hc = rgd.run((x0,), rayleigh, rayleigh_rgrad, steps=100, callback=lambda t, x, f, gn: seen.append(t) or t == 3)
    assert hc.iterations == 3 and seen == [0, 1, 2, 3]


def test_batched_callback_sees_per_run_arrays_and_records_have_the_run_axis():
    g = torch.Generator().manual_seed(6)
    X0 = sphere.random_point(3, 3, generator=g, dtype=F64)
    seen = []
    hist = rgd.run(X0, rayleigh, rayleigh_rgrad, lr=0.3, rule="fixed", steps=5, gtol=None,
                   callback=lambda t, x, f, gn: seen.append((f, gn)))
    assert all(isinstance(f, np.ndarray) and f.shape == (3,) and gn.shape == (3,) for f, gn in seen)
    # the fixed step is one number shared by the runs: the record repeats it per run
    assert hist.step_size.shape == (5, 3) and (hist.step_size == 0.3).all()
    np.testing.assert_array_equal(hist.loss[0], seen[0][0])


def test_per_run_values_and_records_are_host_floats():
    assert rgd.batch_value(2, 1.5, "f_opt") == 2.0 and isinstance(rgd.batch_value(2, 1.5, "f_opt"), float)
    np.testing.assert_array_equal(rgd.batch_value(2, np.zeros(3), "f_opt"), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(rgd.batch_value(torch.arange(3.0), np.zeros(3), "f_opt"), [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="batch shape"):
        rgd.batch_value(np.zeros(2), np.zeros(3), "f_opt")
    with pytest.raises(TypeError, match="f_opt"):
        rgd.batch_value("one", 1.0, "f_opt")
    # round-off allowance: 64 eps (of the loss's dtype) times the larger of |f_opt| and |f0|
    assert rgd.roundoff(2.0, -3.0, torch.float32) == 64 * torch.finfo(torch.float32).eps * 3.0
    assert rgd.record_array([], (2,)).shape == (0, 2)
    np.testing.assert_array_equal(rgd.record_array([0.5, np.array([1.0, math.nan])], (2,)),
                                  [[0.5, 0.5], [1.0, math.nan]])
    assert rgd.record_array([1.0, 2.0], ()).tolist() == [1.0, 2.0]


def test_works_for_a_loss_returning_a_float_and_a_bare_gradient():
    x0 = sphere.normalize(torch.tensor([1.0, 2.0, 0.5], dtype=F64))
    hist = rgd.run(x0, lambda p: float(rayleigh(p)), lambda p: rayleigh_rgrad(p)[0], lr=0.2, steps=500, gtol=1e-10)
    assert hist.converged and hist.loss[-1] == pytest.approx(1.0, abs=1e-12)


x_unit = sphere.normalize(torch.tensor([1.0, 1.0, 1.0], dtype=F64))


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(rule="newton"), ValueError, "rule"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr=float("nan")), ValueError, "lr"),
        (dict(lr="1"), TypeError, "lr"),
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(scales=(1.0, 2.0)), ValueError, "scales"),
        (dict(scales=(-1.0,)), ValueError, "scales[0]"),
        (dict(scales=2.0), TypeError, "scales"),
        (dict(gtol=-1.0), ValueError, "gtol"),
        (dict(ftol="x"), TypeError, "ftol"),
        (dict(c=1.5), ValueError, "c "),
        (dict(shrink=1.0), ValueError, "shrink"),
        (dict(nonmonotone=1.0), ValueError, "nonmonotone"),
        (dict(lr_min=1.0, lr_max=0.5), ValueError, "lr_min"),
        (dict(max_backtracks=-2), ValueError, "max_backtracks"),
        (dict(f_opt=torch.zeros(3)), ValueError, "f_opt"),
        (dict(f_opt=float("inf")), ValueError, "f_opt"),
        (dict(callback=3), TypeError, "callback"),
    ],
)
def test_run_rejects_bad_options(kwargs, exc, name):
    with pytest.raises(exc, match=name.replace("[", r"\[").replace("]", r"\]")):
        rgd.run(x_unit, rayleigh, rayleigh_rgrad, **kwargs)


def test_run_rejects_bad_points_and_callables():
    with pytest.raises(ValueError, match=r"points\[0\]"):
        rgd.run(torch.ones(3, dtype=F64), rayleigh, rayleigh_rgrad)
    with pytest.raises(TypeError, match="points"):
        rgd.run("x", rayleigh, rayleigh_rgrad)
    with pytest.raises(TypeError, match="points"):
        rgd.run((), rayleigh, rayleigh_rgrad)
    with pytest.raises(TypeError, match="loss_fn"):
        rgd.run(x_unit, 3, rayleigh_rgrad)
    with pytest.raises(TypeError, match="rgrad_fn"):
        rgd.run(x_unit, rayleigh)
    with pytest.raises(ValueError, match="one tensor per block"):
        rgd.run(x_unit, rayleigh, lambda p: (p[0], p[0]))
    with pytest.raises(ValueError, match="shape"):
        rgd.run(x_unit, rayleigh, lambda p: (torch.zeros(4, dtype=F64),))
    with pytest.raises(TypeError, match="pair"):
        rgd.run(x_unit, rayleigh, loss_and_rgrad=lambda p: 1.0)
    with pytest.raises(ValueError, match="batch shape"):  # a (2,) loss for a single point of S^2
        rgd.run(x_unit, lambda p: torch.zeros(2, dtype=F64), rayleigh_rgrad)
    with pytest.raises(ValueError, match="not finite"):
        rgd.run(x_unit, lambda p: torch.tensor(math.nan, dtype=F64), rayleigh_rgrad)
    with pytest.raises(ValueError, match="d >= 2"):
        rgd.run(torch.ones(3, 1, dtype=F64), rayleigh, rayleigh_rgrad)


def test_step_rejects_bad_input():
    with pytest.raises(ValueError, match="points"):  # the message names the user's argument
        rgd.step(torch.ones(2, 3, dtype=F64), torch.zeros(2, 3, dtype=F64), lr=0.1)
    with pytest.raises(ValueError, match="grads"):
        rgd.step((x_unit, x_unit), (x_unit,), lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        rgd.step(x_unit, torch.zeros(3, dtype=F64), lr=-1.0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lr=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.text(max_size=2)),
    steps=st.one_of(st.integers(-3, 4), st.floats(0, 3)),
    rule=st.sampled_from(["fixed", "armijo", "bb", "BB", "", "sgd"]),
    gtol=st.one_of(st.none(), st.floats(allow_nan=True), st.just("tiny")),
)
@example(lr=1.7e308, steps=2, rule="bb", gtol=None)  # the step overflows: the error must name lr, not x
@example(lr=8.2e153, steps=2, rule="fixed", gtol=None)
def test_only_named_errors_escape(lr, steps, rule, gtol):
    try:
        hist = rgd.run(x_unit, rayleigh, rayleigh_rgrad, lr=lr, steps=steps, rule=rule, gtol=gtol)
    except (TypeError, ValueError) as exc:
        assert any(k in str(exc) for k in ("lr", "steps", "rule", "gtol"))
    else:
        assert np.isfinite(hist.loss).all() and sphere.is_on_sphere(hist.points[0])
