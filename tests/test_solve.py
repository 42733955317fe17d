"""Tests of ncbook.solve: scale-aware stopping, a geometry certificate, and a solver robust to tau."""

import math

import pytest
import torch

from ncbook import etf, metrics, rgd, solve, sphere, ufm

pytestmark = pytest.mark.usefixtures("single_thread")


def test_solve_is_reexported_by_ufm():
    assert ufm.solve is solve.solve and ufm.SolveResult is solve.SolveResult and ufm.METHODS == solve.METHODS


def test_bb_on_f_at_large_tau_is_not_called_converged():
    """Issue 11: rgd-bb stopped at nc2 = 1.09 and called it converged (the absolute gap test passed)."""
    res = ufm.solve(4, 3, 3, 50.0, method="rgd-bb", steps=300)
    assert not res.converged and "not converged" in res.reason
    assert res.nc2 > 1e-3  # it really is not at the ETF


@pytest.mark.parametrize("K, d, n, tau", [(4, 3, 3, 50.0), (10, 16, 20, 20.0), (10, 16, 5, 100.0), (3, 4, 2, 20.0)])
def test_default_method_reaches_the_etf_at_large_tau(K, d, n, tau):
    res = ufm.solve(K, d, n, tau)
    assert res.method == "rgd-logbb" and res.converged, res.reason
    assert res.nc2 < 1e-6 and res.etf_angle < 1e-5
    assert metrics.nc2(res.W) == pytest.approx(res.nc2) and etf.is_simplex_etf(res.W, atol=1e-5)
    # the reported gap is meaningful in relative terms although f* is tiny
    assert 0 <= res.final_gap <= 1e-9 * res.optimal


def test_fixed_step_at_large_tau_reports_why_it_failed():
    res = ufm.solve(10, 16, 5, 50.0, method="rgd", steps=200)
    assert not res.converged and "steps ran out" in res.reason


@pytest.mark.parametrize("tau", [10.0, 20.0])
def test_float32_answer_is_right_or_not_converged(tau):
    """Issue 11: float32 stopped on a negative round-off gap; at tau = 10 the loss was 43% above f*."""
    res = ufm.solve(3, 4, 2, tau, method="rgd-bb", dtype=torch.float32, steps=3000)
    W, H = (sphere.normalize(x.double()) for x in (res.W, res.H))
    true_gap = float(ufm.loss(W, H, res.y, tau)) - res.optimal
    if res.converged:
        assert true_gap <= 10 * res.tol * res.optimal
    auto = ufm.solve(3, 4, 2, tau, dtype=torch.float32)
    W, H = (sphere.normalize(x.double()) for x in (auto.W, auto.H))
    assert auto.converged, auto.reason
    assert float(ufm.loss(W, H, auto.y, tau)) - auto.optimal <= 10 * auto.tol * auto.optimal


def test_a_wrong_reference_value_is_an_error_not_convergence():
    """Issue 11: unbalanced labels with the balanced f* stopped at a negative gap of -1.7e-3."""
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 6 + [1] * 3 + [2] * 3)
    W0 = sphere.random_point(3, 4, generator=g, dtype=torch.float64)
    H0 = sphere.random_point(12, 4, generator=g, dtype=torch.float64)
    with pytest.raises(ValueError, match="f_opt is not a lower bound"):
        rgd.run((W0, H0), lambda p: ufm.loss(p[0], p[1], y, 2.0), lambda p: ufm.rgrad(p[0], p[1], y, 2.0),
                rule="bb", scales=(1, 4), steps=5000, f_opt=ufm.optimal_loss(3, 2.0), ftol=1e-10)


def test_loss_is_accurate_in_relative_terms_at_large_tau():
    K, n = 4, 3
    W = etf.simplex_etf(K, 5)
    H = W.repeat_interleave(n, 0)
    y = ufm.balanced_labels(K, n)
    for tau in (5.0, 50.0, 100.0, 400.0):
        f_star = ufm.optimal_loss(K, tau)
        assert float(ufm.loss(W, H, y, tau)) == pytest.approx(f_star, rel=1e-12)
        f_fast = ufm.fused_objective(y, K, tau, torch.float64)((W, H))[0]
        assert float(f_fast) == pytest.approx(f_star, rel=1e-12)


def test_loss_matches_cross_entropy_where_that_is_accurate():
    g = torch.Generator().manual_seed(3)
    W = sphere.random_point(5, 6, generator=g, dtype=torch.float64)
    H = sphere.random_point(10, 6, generator=g, dtype=torch.float64)
    y = ufm.balanced_labels(5, 2)
    for tau in (0.5, 3.0, 30.0, 500.0):
        ref = torch.nn.functional.cross_entropy(tau * H @ W.T, y)
        assert float(ufm.loss(W, H, y, tau)) == pytest.approx(float(ref), rel=1e-12)


def test_below_the_etf_dimension_there_is_no_certificate():
    res = ufm.solve(6, 3, 3, 2.0, seed=1)
    assert res.converged and res.etf_angle is None and res.nc2 > 0.1 and res.nc1 < 1e-8


def test_batched_results_carry_the_geometry_per_run():
    res = ufm.solve(4, 3, 2, [2.0, 30.0], seed=[0, 1])
    assert res.converged.all() and (res.nc2 < 1e-4).all() and len(res.reason) == 2
    runs = res.unbatch()
    assert runs[1].tau == 30.0 and runs[1].nc2 == pytest.approx(float(res.nc2[1]))


def test_nearest_etf_of_an_etf_is_itself():
    W = etf.simplex_etf(5, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(etf.nearest_simplex_etf(W), W, atol=1e-12, rtol=0)
    assert etf.angle_to_simplex_etf(W) < 1e-7
    far = torch.randn(5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert 0.1 < etf.angle_to_simplex_etf(far) <= math.pi


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("K, d, n, tau, steps", [(5, 6, 3, 3.0, None), (5, 6, 3, [3.0, 1.0], 4), (6, 3, 3, 2.0, 2),
                                                 (3, 4, 2, 1.0, 0)])
def test_certificate_values_are_the_metrics_of_the_final_point(K, d, n, tau, steps, dtype):
    """The batched certificate computes NC1-NC3 and the ETF angle as ncbook.metrics and ncbook.etf do."""
    res = ufm.solve(K, d, n, tau, steps=steps, dtype=dtype, seed=[0, 1] if isinstance(tau, list) else 2)
    for r in res.unbatch():
        stats = metrics.ClassStats(K, d).update(r.H, r.y)
        assert r.nc1 == pytest.approx(stats.nc1(), rel=1e-9, abs=1e-30)
        assert r.nc2 == pytest.approx(metrics.nc2(r.W), rel=1e-9, abs=1e-14)
        assert r.nc3 == pytest.approx(stats.nc3(r.W), rel=1e-9, abs=1e-14)
        if d >= K - 1:
            assert r.etf_angle == pytest.approx(etf.angle_to_simplex_etf(r.W), rel=1e-9, abs=1e-12)
        else:
            assert r.etf_angle is None
