"""Tests of ncbook.ufm: closed-form gradients, the optimal value, and the solver `solve`."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncbook import etf, metrics, sphere, ufm

F64 = torch.float64


def random_problem(K=3, d=4, n=2, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    W = sphere.random_point(K, d, generator=g, dtype=dtype)
    H = sphere.random_point(K * n, d, generator=g, dtype=dtype)
    return W, H, ufm.balanced_labels(K, n)


# --------------------------------------------------------------------------- gradients

class _ClosedFormLoss(torch.autograd.Function):
    """The UFM loss with ufm's closed-form Euclidean gradient as its backward, for gradcheck."""

    @staticmethod
    def forward(ctx, W, H, y, tau):
        ctx.save_for_backward(W, H, y)
        ctx.tau = tau
        return torch.nn.functional.cross_entropy(tau * H @ W.T, y)

    @staticmethod
    def backward(ctx, grad_out):
        W, H, y = ctx.saved_tensors
        gW, gH = ufm._egrad(W, H, y, ctx.tau)  # closed form, valid off the sphere too
        return grad_out * gW, grad_out * gH, None, None


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_closed_form_egrad_passes_gradcheck(seed, tau):
    W, H, y = random_problem(K=3, d=4, n=2, seed=seed)
    W.requires_grad_(True)
    H.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda W, H: _ClosedFormLoss.apply(W, H, y, tau), (W, H), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_egrad_equals_autograd_and_rgrad_is_its_tangent_part(seed):
    W, H, y = random_problem(K=4, d=5, n=3, seed=seed)
    tau = 2.5
    Wa, Ha = W.clone().requires_grad_(True), H.clone().requires_grad_(True)
    ufm.loss(Wa, Ha, y, tau).backward()
    gW, gH = ufm.egrad(W, H, y, tau)
    torch.testing.assert_close(gW, Wa.grad, rtol=0, atol=1e-14)
    torch.testing.assert_close(gH, Ha.grad, rtol=0, atol=1e-14)
    rW, rH = ufm.rgrad(W, H, y, tau)
    torch.testing.assert_close(rW, sphere.project(W, gW), rtol=0, atol=1e-15)
    torch.testing.assert_close(rH, sphere.project(H, gH), rtol=0, atol=1e-15)
    assert float((W * rW).sum(1).abs().max()) < 1e-15  # tangent, row by row
    assert float((H * rH).sum(1).abs().max()) < 1e-15


def test_digest_fact_two_classes_identity():
    # digest section 8, fact 3: K=2, d=2, n=1, tau=1, W = H = I
    W = torch.eye(2, dtype=F64)
    y = torch.tensor([0, 1])
    assert float(ufm.loss(W, W, y, 1.0)) == pytest.approx(math.log1p(math.exp(-1.0)), abs=1e-15)
    assert float(ufm.loss(W, W, y, 1.0)) == pytest.approx(0.313262, abs=1e-6)
    s = 0.134471
    for g in ufm.rgrad(W, W, y, 1.0):
        torch.testing.assert_close(g, torch.tensor([[0.0, s], [s, 0.0]], dtype=F64), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- the optimal value

@pytest.mark.parametrize(
    "K, tau, value",
    [(2, 1.0, 0.126928), (10, 1.0, 1.376935), (10, 5.0, 0.034202), (10, 10.0, 0.000134)],
)
def test_optimal_loss_digest_values(K, tau, value):
    assert ufm.optimal_loss(K, tau) == pytest.approx(value, abs=5e-7)


@pytest.mark.parametrize("K, d, n, tau", [(10, 16, 3, 5.0), (10, 9, 2, 1.0), (4, 3, 5, 2.0), (3, 7, 1, 20.0)])
def test_loss_at_an_exact_etf_is_the_optimal_loss(K, d, n, tau):
    W = etf.simplex_etf(K, d, generator=torch.Generator().manual_seed(K + d))
    y = ufm.balanced_labels(K, n)
    H = W[y]
    assert float(ufm.loss(W, H, y, tau)) == pytest.approx(ufm.optimal_loss(K, tau), rel=1e-12, abs=1e-15)
    gW, gH = ufm.rgrad(W, H, y, tau)
    assert float(torch.linalg.vector_norm(gW)) < 1e-13 and float(torch.linalg.vector_norm(gH)) < 1e-13


# --------------------------------------------------------------------------- the solver's fused kernel

@pytest.mark.parametrize("tau", [0.5, 4.0, 600.0])  # 600: the row-max fallback of the logsumexp shift
@pytest.mark.parametrize("riemannian", [True, False])
def test_fused_kernel_equals_the_public_functions(tau, riemannian):
    W, H, y = random_problem(K=4, d=5, n=3, seed=7)
    f, (gW, gH) = ufm.fused_objective(y, 4, tau, F64, riemannian=riemannian)((W, H))
    ref = (ufm.rgrad if riemannian else ufm.egrad)(W, H, y, tau)
    scale = max(1.0, tau)
    assert float(f) == pytest.approx(float(ufm.loss(W, H, y, tau)), abs=1e-14 * scale)
    torch.testing.assert_close(gW, ref[0], rtol=0, atol=1e-15 * scale)
    torch.testing.assert_close(gH, ref[1], rtol=0, atol=1e-15 * scale)


def test_fused_kernel_batched_over_taus():
    taus = torch.tensor([0.5, 2.0, 9.0], dtype=F64)
    probs = [random_problem(K=3, d=4, n=2, seed=s) for s in range(3)]
    W = torch.stack([p[0] for p in probs])
    H = torch.stack([p[1] for p in probs])
    y = probs[0][2]
    f, (gW, gH) = ufm.fused_objective(y, 3, taus, F64)((W, H))
    assert f.shape == (3,)
    for b in range(3):
        tau = float(taus[b])
        assert float(f[b]) == pytest.approx(float(ufm.loss(W[b], H[b], y, tau)), abs=1e-14)
        rW, rH = ufm.rgrad(W[b], H[b], y, tau)
        torch.testing.assert_close(gW[b], rW, rtol=0, atol=1e-15)
        torch.testing.assert_close(gH[b], rH, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- solve

def assert_exact_collapse(res, gap=1e-10, gram_atol=1e-8, align_atol=1e-7):
    K, y, tau = res.K, res.y, res.tau
    W, H = res.W, res.H
    assert res.converged
    assert -1e-13 <= res.final_gap < gap
    # the recorded loss is the loss of the returned point
    assert res.loss[-1] == pytest.approx(float(ufm.loss(W, H, y, tau)), abs=1e-14)
    assert res.gap[-1] == pytest.approx(res.loss[-1] - ufm.optimal_loss(K, tau), abs=1e-15)
    assert etf.is_simplex_etf(W, atol=gram_atol)
    assert float((H - W[y]).abs().max()) < align_atol  # every feature on its classifier (NC1 + NC3)
    rep = metrics.collapse_report(W, H, y)
    assert rep["nc1"] < align_atol and rep["nc2"] < 10 * gram_atol and rep["nc3"] < 10 * align_atol
    assert rep["ncc_accuracy"] == 1.0


@pytest.mark.parametrize(
    "K, d, n, tau",
    [(4, 3, 3, 2.0), (3, 4, 2, 4.0), (5, 6, 2, 1.0), (4, 4, 3, 8.0), (6, 5, 2, 3.0)],  # d = K-1 twice
)
def test_rgd_bb_reaches_an_exact_etf(K, d, n, tau):
    res = ufm.solve(K, d, n, tau, method="rgd-bb", tol=1e-12, stop_on="grad", seed=K + d)
    assert res.grad_norm[-1] <= 1e-12
    assert_exact_collapse(res)


@pytest.mark.parametrize("method", ["rgd", "rgd-armijo", "geoopt-sgd"])
@pytest.mark.parametrize("K, d, n, tau", [(4, 3, 3, 2.0), (5, 6, 2, 1.0)])
def test_other_exact_methods_reach_an_exact_etf(method, K, d, n, tau):
    res = ufm.solve(K, d, n, tau, method=method, tol=1e-12, stop_on="grad", seed=1)
    assert res.method == method
    assert_exact_collapse(res)


def test_default_stopping_is_the_gap_or_the_gradient():
    res = ufm.solve(4, 4, 3, 2.0, method="rgd-bb")  # tol=1e-10 on either test
    assert res.converged
    assert res.final_gap <= 1e-10 or res.grad_norm[-1] <= 1e-10
    assert res.final_gap > 1e-10 or res.gap[-2] > 1e-10  # it stopped at the first iterate that passed


def test_geoopt_adam_reaches_a_looser_gap():
    """RiemannianAdam's steps do not shrink with the gradient, so we only ask it for gap < 1e-8."""
    res = ufm.solve(4, 3, 3, 2.0, method="geoopt-adam", lr=0.03, tol=1e-8, stop_on="gap", steps=3000)
    assert res.converged and res.final_gap <= 1e-8
    assert metrics.nc2(res.W) < 1e-3


def test_defaults_rgd_method_on_the_digest_problem():
    res = ufm.solve(10, 16, 20, 5.0, method="rgd")  # the digest recipe: lr = 1, eta_H = n * eta_W
    assert res.method == "rgd" and res.lr == 1.0 and res.converged
    assert res.final_gap <= 1e-10 * res.optimal  # the gap test is relative to f*
    assert res.optimal == pytest.approx(0.034202, abs=5e-7)
    assert res.W.shape == (10, 16) and res.H.shape == (200, 16) and res.y.shape == (200,)
    assert len(res.loss) == len(res.gap) == len(res.grad_norm) == res.iterations + 1
    assert res.seconds > 0 and not res.batched and res.unbatch() == [res]


@pytest.mark.parametrize("method", ufm.METHODS)
def test_batched_solve_equals_sequential_solves(method):
    seeds, taus = [0, 1, 2], [1.0, 2.0, 4.0]
    # runs 0 and 1 converge, run 2 (tau = 4) is stopped by `steps` for the fixed-step methods
    kw = dict(method=method, tol=1e-9, steps=40 if method == "geoopt-adam" else 300)
    batch = ufm.solve(3, 4, 2, taus, seed=seeds, **kw)
    assert batch.batched and batch.W.shape == (3, 3, 4) and batch.H.shape == (3, 6, 4)
    assert batch.tau == tuple(taus) and batch.seed == tuple(seeds)
    singles = batch.unbatch()
    for b in range(3):
        one = ufm.solve(3, 4, 2, taus[b], seed=seeds[b], **kw)
        assert one.iterations == batch.iterations[b] == singles[b].iterations
        assert one.converged == batch.converged[b]
        torch.testing.assert_close(batch.W[b], one.W, rtol=0, atol=1e-10)
        torch.testing.assert_close(batch.H[b], one.H, rtol=0, atol=1e-10)
        np.testing.assert_allclose(batch.loss[b], one.loss, rtol=0, atol=1e-12)
        np.testing.assert_allclose(batch.gap[b], one.gap, rtol=0, atol=1e-12)
        assert singles[b].optimal == one.optimal and singles[b].tau == taus[b]


def test_batch_of_seeds_with_one_tau_and_final_gap():
    res = ufm.solve(3, 3, 2, 2.0, method="rgd-bb", seed=[4, 5, 6, 7])
    assert res.W.shape == (4, 3, 3) and res.converged.all()
    assert res.final_gap.shape == (4,) and (res.final_gap <= 1e-10).all()
    assert res.tau == (2.0,) * 4


def test_below_the_etf_dimension_there_is_no_gap():
    res = ufm.solve(5, 3, 2, 1.0, method="rgd-bb", steps=30)
    assert res.gap is None and res.optimal is None and res.final_gap is None
    assert len(res.loss) == res.iterations + 1
    assert res.loss[-1] < res.loss[0]
    with pytest.raises(ValueError, match="stop_on"):
        ufm.solve(5, 3, 2, 1.0, stop_on="gap")


def test_steps_zero_float32_and_the_start():
    res = ufm.solve(3, 4, 2, 1.0, steps=0, seed=3)
    assert res.iterations == 0 and len(res.loss) == 1 and not res.converged
    g = torch.Generator().manual_seed(3)  # the documented start: W then H, Gaussian rows, normalized
    W0 = torch.randn(3, 4, generator=g, dtype=F64)
    torch.testing.assert_close(res.W, W0 / W0.norm(dim=1, keepdim=True))
    r32 = ufm.solve(3, 4, 2, 1.0, method="rgd-bb", dtype=torch.float32, tol=1e-5)
    assert r32.W.dtype == torch.float32 and r32.converged and r32.final_gap < 1e-5


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(K=1), ValueError, "K"),
        (dict(K=2.5), TypeError, "K"),
        (dict(d=1), ValueError, "d"),
        (dict(n=0), ValueError, "n"),
        (dict(tau=0.0), ValueError, "tau"),
        (dict(tau=float("nan")), ValueError, "tau"),
        (dict(tau="hot"), TypeError, "tau"),
        (dict(tau=[]), ValueError, "tau"),
        (dict(tau=[1.0, -1.0]), ValueError, "tau"),
        (dict(method="adam"), ValueError, "method"),
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps=1.5), TypeError, "steps"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr=float("inf")), ValueError, "lr"),
        (dict(tol=-1e-3), ValueError, "tol"),
        (dict(tol=None), TypeError, "tol"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(seed=[0, 1], tau=[1.0, 2.0, 3.0]), ValueError, "same length"),
        (dict(dtype=torch.int64), TypeError, "dtype"),
        (dict(device="tpu"), ValueError, "device"),
        (dict(stop_on="loss"), ValueError, "stop_on"),
    ],
)
def test_solve_rejects_bad_input(kwargs, exc, name):
    args = dict(K=3, d=4, n=2, tau=1.0)
    args.update(kwargs)
    K, d, n, tau = args.pop("K"), args.pop("d"), args.pop("n"), args.pop("tau")
    with pytest.raises(exc, match=name):
        ufm.solve(K, d, n, tau, steps=args.pop("steps", 2), **args)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    K=st.one_of(st.integers(-1, 5), st.floats(0, 5)),
    d=st.integers(-1, 5),
    n=st.integers(-1, 3),
    tau=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.lists(st.floats(0.1, 5), max_size=2)),
    method=st.sampled_from(ufm.METHODS + ("", "RGD")),
    lr=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    seed=st.one_of(st.integers(-2, 3), st.lists(st.integers(0, 3), max_size=2)),
)
def test_solve_only_raises_named_errors(K, d, n, tau, method, lr, seed):
    try:
        res = ufm.solve(K, d, n, tau, method=method, lr=lr, seed=seed, steps=3)
    except (TypeError, ValueError) as exc:
        assert any(k in str(exc) for k in ("K", "d", "n", "tau", "method", "lr", "seed", "same length"))
    else:
        assert np.isfinite(res.W.numpy()).all() and np.isfinite(res.H.numpy()).all()
        assert sphere.is_on_sphere(res.W) and sphere.is_on_sphere(res.H)
