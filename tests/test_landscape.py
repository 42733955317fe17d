"""Riemannian Hessian of the UFM, its dense matrix and spectrum, and the three critical points."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ncbook import landscape as L
from ncbook import sphere, ufm

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


def random_problem(gen, K=3, d=4, n=2):
    W = sphere.random_point(K, d, generator=gen, dtype=F64)
    H = sphere.random_point(K * n, d, generator=gen, dtype=F64)
    return W, H, ufm.balanced_labels(K, n)


def tangent_pair(W, H, gen):
    return (sphere.project(W, torch.randn(W.shape, generator=gen, dtype=F64)),
            sphere.project(H, torch.randn(H.shape, generator=gen, dtype=F64)))


def per_sample_quadratic_form(W, H, y, tau, dW, dH):
    """The quadratic form of chapter 06 (prop-06-hessian), written per sample (an independent implementation)."""
    N = H.shape[0]
    K = W.shape[0]
    P = torch.softmax(tau * H @ W.T, dim=1)
    Y = torch.nn.functional.one_hot(y, K).to(F64)
    gW, gH = ufm.egrad(W, H, y, tau)
    total = 0.0
    for i in range(N):
        p = P[i]
        dz = dW @ H[i] + W @ dH[i]
        total += (tau ** 2 * dz @ (torch.diag(p) - torch.outer(p, p)) @ dz + 2 * tau * (p - Y[i]) @ (dW @ dH[i])) / N
    total -= ((dW ** 2).sum(1) * (W * gW).sum(1)).sum() + ((dH ** 2).sum(1) * (H * gH).sum(1)).sum()
    return float(total)


# ---------------------------------------------------------------------------------------------
# Hessian-vector products
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("K,d,n,tau", [(3, 4, 2, 3.0), (2, 2, 3, 0.5), (5, 3, 1, 10.0)])
def test_euclidean_hvp_matches_autograd(K, d, n, tau, gen):
    W, H, y = random_problem(gen, K, d, n)
    dW, dH = torch.randn(W.shape, generator=gen, dtype=F64), torch.randn(H.shape, generator=gen, dtype=F64)
    closed = L.euclidean_hvp(W, H, y, tau, dW, dH)
    auto = L.euclidean_hvp(W, H, y, tau, dW, dH, method="autograd")
    for a, b in zip(closed, auto):
        torch.testing.assert_close(a, b, atol=1e-13, rtol=1e-12)
    rc = L.riemannian_hvp(W, H, y, tau, dW, dH)
    ra = L.riemannian_hvp(W, H, y, tau, dW, dH, method="autograd")
    for a, b in zip(rc, ra):
        torch.testing.assert_close(a, b, atol=1e-13, rtol=1e-12)


def test_riemannian_hvp_is_tangent_symmetric_and_matches_per_sample_form(gen):
    W, H, y = random_problem(gen)
    tau = 2.5
    u, v = tangent_pair(W, H, gen), tangent_pair(W, H, gen)
    Hu, Hv = L.riemannian_hvp(W, H, y, tau, *u), L.riemannian_hvp(W, H, y, tau, *v)
    assert (W * Hu[0]).sum(1).abs().max() < 1e-14 and (H * Hu[1]).sum(1).abs().max() < 1e-14
    uHv = float((u[0] * Hv[0]).sum() + (u[1] * Hv[1]).sum())
    vHu = float((v[0] * Hu[0]).sum() + (v[1] * Hu[1]).sum())
    assert abs(uHv - vHu) < 1e-13
    q = L.quadratic_form(W, H, y, tau, *u)
    assert abs(q - per_sample_quadratic_form(W, H, y, tau, *u)) < 1e-12 * max(1, abs(q))
    # the direction is projected first: adding normal components changes nothing
    un = (u[0] + 3 * W, u[1] - 2 * H)
    for a, b in zip(L.riemannian_hvp(W, H, y, tau, *un), Hu):
        torch.testing.assert_close(a, b, atol=1e-13, rtol=0)
    # linear in the direction
    for a, b in zip(L.riemannian_hvp(W, H, y, tau, 2 * u[0], 2 * u[1]), Hu):
        torch.testing.assert_close(a, 2 * b, atol=1e-13, rtol=0)


# ---------------------------------------------------------------------------------------------
# dense Hessian
# ---------------------------------------------------------------------------------------------

def test_tangent_basis_is_orthonormal(gen):
    X = sphere.random_point(5, 4, generator=gen, dtype=F64)
    Q = L.tangent_basis(X)
    assert Q.shape == (5, 4, 3)
    torch.testing.assert_close(Q.transpose(1, 2) @ Q, torch.eye(3, dtype=F64).expand(5, 3, 3), atol=1e-14, rtol=0)
    assert torch.einsum("md,mdj->mj", X, Q).abs().max() < 1e-14


@pytest.mark.parametrize("K,d,n", [(3, 4, 2), (2, 3, 2), (4, 2, 1)])
def test_hessian_matrix_symmetric_and_equals_quadratic_form(K, d, n, gen):
    W, H, y = random_problem(gen, K, d, n)
    tau = 3.0
    raw = L.hessian_matrix(W, H, y, tau, symmetrize=False, chunk=7)
    D = (d - 1) * (K + n * K)
    assert raw.shape == (D, D)
    assert (raw - raw.T).abs().max() < 1e-13
    M = L.hessian_matrix(W, H, y, tau)
    QW, QH = L.tangent_basis(W), L.tangent_basis(H)
    for _ in range(3):
        dW, dH = tangent_pair(W, H, gen)
        c = torch.cat([torch.einsum("kdj,kd->kj", QW, dW).flatten(), torch.einsum("ndj,nd->nj", QH, dH).flatten()])
        assert abs(float(c @ M @ c) - L.quadratic_form(W, H, y, tau, dW, dH)) < 1e-12
    # the eigenvalues are those of the quadratic form: Rayleigh quotients lie between them
    ev = L.hessian_spectrum(W, H, y, tau)
    assert torch.all(ev[1:] >= ev[:-1])
    dW, dH = tangent_pair(W, H, gen)
    rq = L.quadratic_form(W, H, y, tau, dW, dH) / float((dW ** 2).sum() + (dH ** 2).sum())
    assert float(ev[0]) - 1e-12 <= rq <= float(ev[-1]) + 1e-12


def test_dense_size_guard():
    W, H, y = L.etf_minimizer(3, 4, 2)
    D = 3 * (3 + 6)
    with pytest.raises(ValueError, match=f"D = \\(d-1\\)\\(K\\+N\\) = {D} exceeds max_dim = {D - 1}"):
        L.hessian_matrix(W, H, y, 1.0, max_dim=D - 1)
    assert L.hessian_matrix(W, H, y, 1.0, max_dim=D).shape == (D, D)
    assert L.MAX_DENSE_DIM >= 1000
    with pytest.raises(ValueError, match="max_dim"):
        L.hessian_spectrum(W, H, y, 1.0, max_dim=0)


# ---------------------------------------------------------------------------------------------
# critical points
# ---------------------------------------------------------------------------------------------

def orbit_dim(d, K):
    """Dimension of {X -> X Q : Q in SO(d)} through an ETF spanning K-1 dimensions."""
    return d * (d - 1) // 2 - (d - K + 1) * (d - K) // 2


def grad_norm(W, H, y, tau):
    gW, gH = ufm.rgrad(W, H, y, tau)
    return float(torch.sqrt((gW ** 2).sum() + (gH ** 2).sum()))


@pytest.mark.parametrize("K,tau,value", [(2, 1.0, 0.126928), (10, 1.0, 1.376935), (10, 10.0, 0.000134)])
def test_etf_minimizer_attains_optimal_loss(K, tau, value):
    """f* of chapter 05 (thm-05-global), evaluated on an explicit ETF with h = w_k."""
    W, H, y = L.etf_minimizer(K, K, 2)
    f = float(ufm.loss(W, H, y, tau))
    assert abs(f - ufm.optimal_loss(K, tau)) < 1e-14 and abs(f - value) < 5e-7


@pytest.mark.parametrize("K,d,n,tau", [(3, 2, 2, 1.0), (3, 3, 2, 5.0), (4, 4, 1, 2.0), (4, 6, 2, 3.0)])
def test_etf_minimizer_is_psd_with_rotation_null_space(K, d, n, tau, gen):
    W, H, y = L.etf_minimizer(K, d, n, generator=gen)
    assert grad_norm(W, H, y, tau) < 1e-13
    ev = L.hessian_spectrum(W, H, y, tau)
    assert float(ev[0]) > -1e-12
    thr = 1e-9 * float(ev[-1])
    assert int((ev.abs() <= thr).sum()) == orbit_dim(d, K)
    assert float(ev[ev > thr][0]) > 1e-6  # a clear gap between the null space and the rest
    # every rotation direction is in the null space
    S = torch.randn(d, d, generator=gen, dtype=F64)
    dW, dH = L.rotation_direction(W, H, S - S.T)
    for h in L.riemannian_hvp(W, H, y, tau, dW, dH):
        assert h.abs().max() < 1e-12
    assert L.negative_curvature_direction(W, H, y, tau) is None
    rep = L.classify_critical_point(W, H, y, tau)
    assert rep.label == "global minimizer" and rep.n_negative == 0 and rep.n_zero == orbit_dim(d, K)
    assert not rep.is_local_maximizer


@pytest.mark.parametrize("K,d,n,tau", [(3, 3, 2, 1.0), (4, 5, 2, 4.0), (2, 2, 3, 0.7), (3, 2, 1, 2.0)])
def test_collapsed_point_spectrum_closed_form(K, d, n, tau, gen):
    W, H, y = L.collapsed_point(K, d, n, generator=gen)
    assert grad_norm(W, H, y, tau) < 1e-14
    assert abs(float(ufm.loss(W, H, y, tau)) - math.log(K)) < 1e-14
    ev = L.hessian_spectrum(W, H, y, tau)
    closed = L.collapsed_spectrum(K, d, n, tau)
    torch.testing.assert_close(ev, closed, atol=1e-13, rtol=0)
    lam = tau / (K * math.sqrt(n))
    m = (K - 1) * (d - 1)
    assert int((closed == -lam).sum()) == m and int((closed == lam).sum()) == m
    assert closed.numel() == (d - 1) * (K + n * K)
    rep = L.classify_critical_point(W, H, y, tau)
    assert rep.label == "strict saddle" and rep.n_negative == m
    assert abs(rep.min_eig + lam) < 1e-13


def test_collapsed_point_pull_apart_direction(gen):
    """Move classifier k and all its features along x_k a, sum_k x_k = 0: negative curvature."""
    K, d, n, tau = 3, 4, 2, 2.0
    W, H, y = L.collapsed_point(K, d, n)  # u = e_1
    a = torch.zeros(d, dtype=F64)
    a[1] = 1.0
    x = torch.randn(K, generator=gen, dtype=F64)
    x = x - x.mean()
    dW, dH = torch.outer(x, a), torch.outer(x[y], a)
    q = L.quadratic_form(W, H, y, tau, dW, dH)
    # -(2 tau/N) sum_{k,i} C_ki x_k x_{y_i} = -(2 tau / N) n sum_k x_k^2
    assert abs(q - (-2 * tau / (n * K) * n * float((x ** 2).sum()))) < 1e-13
    # moving the features against their own classifier is positive curvature
    assert L.quadratic_form(W, H, y, tau, dW, -dH) > 0


@pytest.mark.parametrize("K,d,n,tau", [(3, 3, 2, 1.0), (4, 4, 1, 2.0), (3, 5, 2, 2.0), (4, 3, 2, 0.5), (5, 6, 1, 5.0)])
def test_anti_aligned_etf_is_a_strict_saddle(K, d, n, tau, gen):
    W, H, y = L.anti_aligned_etf(K, d, n, generator=gen)
    assert grad_norm(W, H, y, tau) < 1e-13
    f = float(ufm.loss(W, H, y, tau))
    assert abs(f - math.log1p((K - 1) * math.exp(tau * K / (K - 1)))) < 1e-13
    rep = L.classify_critical_point(W, H, y, tau)
    assert rep.label == "strict saddle" and rep.min_eig < -1e-3 and rep.max_eig > 1e-3
    assert rep.n_zero >= orbit_dim(d, K) and not rep.is_local_maximizer


@pytest.mark.parametrize("n,d", [(1, 2), (2, 3), (3, 4)])
def test_anti_aligned_etf_with_three_classes_and_small_tau_is_a_local_maximizer(n, d):
    """Not a saddle for K = 3, tau < ~0.831: negative definite apart from the rotation directions."""
    K = 3
    low = L.classify_critical_point(*L.anti_aligned_etf(K, d, n), 0.8)
    assert low.label == "strict saddle" and low.is_local_maximizer
    assert low.n_zero == orbit_dim(d, K) and low.n_positive == 0
    high = L.classify_critical_point(*L.anti_aligned_etf(K, d, n), 0.86)
    assert high.label == "strict saddle" and high.n_positive > 0 and not high.is_local_maximizer


@pytest.mark.parametrize("maker", [L.collapsed_point, L.anti_aligned_etf])
def test_negative_curvature_direction_decreases_the_loss(maker, gen):
    K, d, n, tau = 3, 3, 2, 2.0
    W, H, y = maker(K, d, n, generator=gen)
    dW, dH = L.negative_curvature_direction(W, H, y, tau)
    assert abs(float((dW ** 2).sum() + (dH ** 2).sum()) - 1) < 1e-12
    assert (W * dW).sum(1).abs().max() < 1e-13 and (H * dH).sum(1).abs().max() < 1e-13
    lam = float(L.hessian_spectrum(W, H, y, tau)[0])
    assert abs(L.quadratic_form(W, H, y, tau, dW, dH) - lam) < 1e-12
    f0 = float(ufm.loss(W, H, y, tau))
    t = 1e-2
    f1 = float(ufm.loss(sphere.retract(W, t * dW), sphere.retract(H, t * dH), y, tau))
    assert f1 < f0 and abs((f1 - f0) - 0.5 * t * t * lam) < 1e-5


def test_classify_random_point_is_not_critical(gen):
    W, H, y = random_problem(gen)
    rep = L.classify_critical_point(W, H, y, 2.0)
    assert rep.label == "not critical" and rep.grad_norm > 1e-3
    assert rep.n_negative + rep.n_zero + rep.n_positive == rep.eigenvalues.numel()


def test_constructor_shapes_and_options(gen):
    W, H, y = L.etf_minimizer(4, 5, 3, dtype=torch.float32)
    assert W.dtype == H.dtype == torch.float32 and W.shape == (4, 5) and H.shape == (12, 5)
    assert torch.equal(y, ufm.balanced_labels(4, 3))
    u = sphere.random_point(5, generator=gen, dtype=F64)
    W, H, y = L.collapsed_point(4, 5, 2, u=u)
    assert torch.equal(W, u.expand(4, 5)) and torch.equal(H, u.expand(8, 5))
    W, H, y = L.anti_aligned_etf(3, 2, 2)
    torch.testing.assert_close(H, -W[y])


# ---------------------------------------------------------------------------------------------
# input errors
# ---------------------------------------------------------------------------------------------

def test_errors_name_the_argument():
    W, H, y = L.etf_minimizer(3, 3, 2)
    with pytest.raises(ValueError, match="d must be >= K - 1"):
        L.etf_minimizer(5, 3, 1)
    with pytest.raises(ValueError, match="d must be >= K - 1"):
        L.anti_aligned_etf(4, 2, 1)
    with pytest.raises(ValueError, match="d must be >= 2"):
        L.collapsed_point(3, 1, 1)
    with pytest.raises(ValueError, match="n must be >= 1"):
        L.collapsed_point(3, 3, 0)
    with pytest.raises(ValueError, match=r"u must have shape \(3,\)"):
        L.collapsed_point(3, 3, 1, u=torch.tensor([1.0, 0.0], dtype=F64))
    with pytest.raises(ValueError, match="u must have unit-norm rows"):
        L.collapsed_point(3, 3, 1, u=torch.tensor([2.0, 0.0, 0.0], dtype=F64))
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        L.hessian_matrix(W, H, y, 0.0)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        L.collapsed_spectrum(3, 3, 2, math.inf)
    with pytest.raises(ValueError, match="H must have unit-norm rows"):
        L.hessian_spectrum(W, 2 * H, y, 1.0)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\)"):
        L.classify_critical_point(W, H, y + 1, 1.0)
    with pytest.raises(ValueError, match="W .* and H .* must share d"):
        L.riemannian_hvp(W, H[:, :2], y, 1.0, W, H)
    with pytest.raises(ValueError, match="H and dH must have the same shape"):
        L.riemannian_hvp(W, H, y, 1.0, W, H[:2])
    with pytest.raises(TypeError, match="W and dW must share dtype"):
        L.euclidean_hvp(W, H, y, 1.0, W.float(), H)
    with pytest.raises(ValueError, match="dW must contain only finite"):
        L.quadratic_form(W, H, y, 1.0, W * math.nan, H)
    with pytest.raises(ValueError, match="method must be"):
        L.euclidean_hvp(W, H, y, 1.0, W, H, method="fd")
    with pytest.raises(ValueError, match="tol must be"):
        L.negative_curvature_direction(W, H, y, 1.0, tol=-1.0)
    with pytest.raises(ValueError, match="grad_tol must be"):
        L.classify_critical_point(W, H, y, 1.0, grad_tol=math.nan)
    with pytest.raises(ValueError, match="S must be skew-symmetric"):
        L.rotation_direction(W, H, torch.eye(3, dtype=F64))
    with pytest.raises(ValueError, match=r"S must have shape \(3, 3\)"):
        L.rotation_direction(W, H, torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ValueError, match="X must have shape"):
        L.tangent_basis(torch.tensor([[1.0]], dtype=F64))


_vals = st.floats(-3, 3) | st.sampled_from([math.nan, math.inf, 0.0])


@settings(max_examples=30, deadline=None)
@given(K=st.integers(0, 4), N=st.integers(0, 5), d=st.integers(0, 4), dN=st.integers(-1, 1),
       vals=st.lists(_vals, min_size=40, max_size=40), normalize=st.booleans(), ylo=st.integers(-1, 1),
       tau=st.sampled_from([1.0, 0.0, -1.0, math.nan, math.inf, "2", 3]),
       fn=st.sampled_from(["hessian_matrix", "hessian_spectrum", "riemannian_hvp", "euclidean_hvp",
                           "negative_curvature_direction", "classify_critical_point", "quadratic_form"]))
def test_fuzz_only_documented_errors(K, N, d, dN, vals, normalize, ylo, tau, fn):
    raw = torch.tensor(vals, dtype=F64)
    W = raw[: K * d].reshape(K, d)
    H = raw[K * d: K * d + N * d].reshape(N, d)
    if normalize:
        W = W / torch.linalg.vector_norm(W, dim=-1, keepdim=True)
        H = H / torch.linalg.vector_norm(H, dim=-1, keepdim=True)
    y = (torch.arange(max(N + dN, 0)) % max(K, 1)) + ylo
    f = getattr(L, fn)
    args = (W, H, y, tau, W, H) if fn in ("riemannian_hvp", "euclidean_hvp", "quadratic_form") else (W, H, y, tau)
    try:
        out = f(*args)
    except (TypeError, ValueError):
        return
    leaves = out if isinstance(out, tuple) else (out,)
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            assert bool(torch.isfinite(leaf).all())


# ---------------------------------------------------------------------------------------------
# classification labels, reduced spectra, Newton search and census
# ---------------------------------------------------------------------------------------------

def degenerate_planar_point(K, n):
    """All classifiers at e_1 and all features at e_2 in R^2: critical, PSD Hessian, f = log K."""
    y = ufm.balanced_labels(K, n)
    W = torch.tensor([[1.0, 0.0]], dtype=F64).repeat(K, 1)
    H = torch.tensor([[0.0, 1.0]], dtype=F64).repeat(K * n, 1)
    return W, H, y


@pytest.mark.parametrize("K,n", [(2, 1), (2, 3), (3, 2)])
def test_psd_point_above_the_minimum_is_only_second_order_critical(K, n):
    W, H, y = degenerate_planar_point(K, n)
    rep = L.classify_critical_point(W, H, y, 2.0)
    assert rep.grad_norm < 1e-14 and rep.n_negative == 0
    assert abs(rep.loss - math.log(K)) < 1e-14 and rep.loss > ufm.optimal_loss(K, 2.0) + 0.1
    assert rep.label == "second-order critical"
    assert rep.gap > 0.1 and rep.zero_max < 1e-14
    # one more dimension turns it into a strict saddle
    pad = torch.nn.functional.pad
    assert L.classify_critical_point(pad(W, (0, 1)), pad(H, (0, 1)), y, 2.0).label == "strict saddle"


def test_global_label_needs_the_optimal_value():
    W, H, y = L.etf_minimizer(3, 3, 2)
    assert L.classify_critical_point(W, H, y, 1.0).label == "global minimizer"
    # unbalanced labels: f* is not the known minimum, so no certificate
    y_unb = torch.tensor([0, 0, 0, 1, 1, 2])
    W2, H2 = W, W[y_unb].clone()
    rep = L.classify_critical_point(W2, H2, y_unb, 1.0)
    assert rep.label in ("second-order critical", "strict saddle", "not critical")
    with pytest.raises(ValueError, match="loss_tol must be"):
        L.classify_critical_point(W, H, y, 1.0, loss_tol=-1.0)


@pytest.mark.parametrize("K,d,n,tau", [(2, 2, 1, 1.0), (2, 4, 3, 1.5), (3, 2, 3, 0.5), (3, 3, 2, 2.0),
                                       (4, 5, 3, 1.0), (4, 4, 1, 5.0), (5, 6, 2, 3.0)])
def test_reduced_spectra_match_the_dense_hessian(K, d, n, tau, gen):
    for maker, reduced in ((L.etf_minimizer, L.etf_minimizer_spectrum),
                           (L.anti_aligned_etf, L.anti_aligned_spectrum)):
        ev = L.hessian_spectrum(*maker(K, d, n, generator=gen), tau)
        closed = reduced(K, d, n, tau)
        assert closed.shape == ev.shape
        torch.testing.assert_close(ev, closed, atol=1e-12, rtol=0)


def test_reduced_spectra_closed_form_parts():
    K, d, n, tau = 4, 6, 3, 2.0
    q, o = math.exp(-tau), math.exp(tau / (K - 1))
    r = o / (q + (K - 1) * o)  # anti-aligned: probability of one other class
    ev = L.anti_aligned_spectrum(K, d, n, tau)
    copies = d - K + 1
    for value, mult in ((-tau * r * (1 + 1 / n), (K - 1) * copies), (-tau * r, copies),
                        (-tau * r / n, (n * K - K + 1) * copies)):
        assert int(((ev - value).abs() < 1e-12).sum()) >= mult
    dev = tau * r / n * (tau / (K - 1) - 1)
    assert int(((ev - dev).abs() < 1e-12).sum()) >= K * (n - 1) * (K - 2)
    # K = 2: entirely closed form, negative semidefinite
    ev2 = L.anti_aligned_spectrum(2, 3, 2, 1.0)
    assert float(ev2.max()) < 1e-15 and int((ev2.abs() < 1e-15).sum()) == 2
    with pytest.raises(ValueError, match="d must be >= K - 1"):
        L.anti_aligned_spectrum(5, 3, 1, 1.0)


def test_newton_finds_the_saddle_it_starts_near(gen):
    K, d, n, tau = 3, 3, 2, 2.0
    Wc, Hc, y = L.collapsed_point(K, d, n)
    dW, dH = tangent_pair(Wc, Hc, gen)
    W0, H0 = sphere.retract(Wc, 1e-3 * dW), sphere.retract(Hc, 1e-3 * dH)
    W, H, g, ok = L.newton_critical_point(W0, H0, y, tau)
    assert ok and g <= 1e-11
    assert abs(float(ufm.loss(W, H, y, tau)) - math.log(K)) < 1e-9  # not descended to f*
    assert L.classify_critical_point(W, H, y, tau, grad_tol=1e-10).label == "strict saddle"
    with pytest.raises(ValueError, match="max_step must be"):
        L.newton_critical_point(W0, H0, y, tau, max_step=0.0)


def test_census_counts_and_classes():
    entries, conv = L.census(2, 3, 2, 2.0, starts=12, seed=1)
    assert conv >= 8 and sum(e.count for e in entries) == conv
    labels = {e.label for e in entries}
    assert labels <= {"global minimizer", "strict saddle"} and "global minimizer" in labels
    for e in entries:
        assert e.grad_norm <= 1e-11 and e.excess_zero >= 0
        assert e.n_negative + e.n_zero + e.n_positive == (3 - 1) * (2 + 4)
        if e.label == "strict saddle":
            assert e.min_eig < -e.zero_max
    assert [e.loss for e in entries] == sorted(e.loss for e in entries)


def test_census_sees_the_degenerate_points_at_d_equal_2():
    entries, _ = L.census(2, 2, 2, 2.0, starts=24, seed=0)
    soc = [e for e in entries if e.label == "second-order critical"]
    assert soc and all(abs(e.loss - math.log(2)) < 1e-9 and e.excess_zero > 0 for e in soc)


def test_census_input_errors():
    with pytest.raises(ValueError, match="starts must be"):
        L.census(2, 2, 1, 1.0, starts=0)
    with pytest.raises(ValueError, match="warm_steps must be"):
        L.census(2, 2, 1, 1.0, warm_steps=(-1,))
    with pytest.raises(TypeError, match="seed must be an int"):
        L.census(2, 2, 1, 1.0, seed=1.5)
