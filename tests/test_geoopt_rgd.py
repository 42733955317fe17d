"""Tests of ncbook.geoopt_rgd: the name map, projected initialization, step-for-step equality with
ncbook.rgd, runs, batches and optimizer state round trips."""

import copy
import io

import geoopt
import numpy as np
import pytest
import torch

from ncbook import geoopt_rgd, rgd, sphere, ufm

F64 = torch.float64


def ufm_problem(K=4, d=5, n=3, tau=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = sphere.random_point(K, d, generator=g, dtype=F64)
    H = sphere.random_point(K * n, d, generator=g, dtype=F64)
    return W, H, ufm.balanced_labels(K, n), tau


def test_name_map_points_at_real_functions_that_agree():
    for ours, theirs in geoopt_rgd.NAME_MAP.items():
        if ours.startswith("sphere."):
            assert callable(getattr(sphere, ours.split(".")[1]))
            assert callable(getattr(geoopt.Sphere, theirs.split()[0].split(".")[1]))
    m = geoopt.Sphere()
    g = torch.Generator().manual_seed(1)
    x = sphere.random_point(6, 4, generator=g, dtype=F64)
    z = sphere.random_point(6, 4, generator=g, dtype=F64)
    u = torch.randn(6, 4, generator=g, dtype=F64)
    v = sphere.project(x, u)
    pairs = [
        (sphere.normalize(3 * u), m.projx(3 * u)),
        (sphere.project(x, u), m.proju(x, u)),
        (sphere.egrad_to_rgrad(x, u), m.egrad2rgrad(x, u)),
        (sphere.retract(x, v), m.retr(x, v)),
        (sphere.exp_map(x, v), m.expmap(x, v)),
        (sphere.log_map(x, z), m.logmap(x, z)),
        (sphere.dist(x, z), torch.linalg.vector_norm(m.dist(x, z))),
        (sphere.inner(x, u, v), m.inner(x, u, v).sum()),
    ]
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_manifold_parameter_projects_and_the_pitfall_it_avoids():
    raw = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    # the pitfall: geoopt wraps what it is given, even rows that are not on the sphere
    naive = geoopt.ManifoldParameter(raw.clone(), manifold=geoopt.Sphere())
    ok, _ = naive.manifold.check_point_on_manifold(naive, explain=True)
    assert not ok
    p = geoopt_rgd.manifold_parameter(raw)
    assert isinstance(p, geoopt.ManifoldParameter) and isinstance(p.manifold, geoopt.Sphere)
    assert p.manifold.check_point_on_manifold(p)
    torch.testing.assert_close(p.detach(), sphere.normalize(raw))
    assert not torch.equal(raw, p.detach())  # the input is copied, not normalized in place
    with pytest.raises(ValueError, match="unit-norm"):
        geoopt_rgd.manifold_parameter(raw, project=False)
    exact = geoopt_rgd.manifold_parameter(raw, manifold=geoopt.SphereExact())
    assert isinstance(exact.manifold, geoopt.SphereExact)
    # one step from the unprojected parameter is not the RGD step from the projected point
    W, H, y, tau = ufm_problem(K=5, d=3, n=1)
    p1 = geoopt.ManifoldParameter(raw.clone(), manifold=geoopt.Sphere())
    p1.grad = torch.ones_like(raw)
    geoopt.optim.RiemannianSGD([p1], lr=0.1).step()
    good = rgd.step(sphere.normalize(raw), sphere.project(sphere.normalize(raw), torch.ones_like(raw)), lr=0.1)
    assert (p1.detach() - good).abs().max() > 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_rgd_step_equals_one_riemannian_sgd_step(seed):
    """RiemannianSGD (no momentum) steps with Sphere.retr = our retraction; param groups carry lr * s_i."""
    W, H, y, tau = ufm_problem(seed=seed)
    n, lr = 3, 0.7
    by_hand = rgd.step((W, H), ufm.rgrad(W, H, y, tau), lr=lr, scales=(1, n))

    pW = geoopt.ManifoldParameter(W.clone(), manifold=geoopt.Sphere())
    pH = geoopt.ManifoldParameter(H.clone(), manifold=geoopt.Sphere())
    opt = geoopt.optim.RiemannianSGD([{"params": [pW], "lr": lr}, {"params": [pH], "lr": lr * n}], lr=lr)
    ufm.loss(pW, pH, y, tau).backward()  # autograd Euclidean gradient; the optimizer projects it
    opt.step()
    torch.testing.assert_close(pW.detach(), by_hand[0], rtol=0, atol=1e-15)
    torch.testing.assert_close(pH.detach(), by_hand[1], rtol=0, atol=1e-15)
    # our wrapper does the same
    wrapped = geoopt_rgd.step((W, H), ufm.egrad(W, H, y, tau), lr=lr, scales=(1, n))
    for a, b in zip(wrapped, by_hand):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)


def test_sphere_exact_step_follows_the_exponential_map():
    W, H, y, tau = ufm_problem(seed=4)
    gW, gH = ufm.rgrad(W, H, y, tau)
    eW, eH = ufm.egrad(W, H, y, tau)
    W1, H1 = geoopt_rgd.step((W, H), (eW, eH), lr=0.5, scales=(1, 3), exact=True)
    torch.testing.assert_close(W1, sphere.exp_map(W, -0.5 * gW), rtol=0, atol=1e-14)
    torch.testing.assert_close(H1, sphere.exp_map(H, -1.5 * gH), rtol=0, atol=1e-14)
    # and differs from the projection retraction at second order only
    R = sphere.retract(W, -0.5 * gW)
    assert 0 < float((W1 - R).abs().max()) < float(torch.linalg.vector_norm(0.5 * gW, dim=1).max()) ** 2


def test_geoopt_run_equals_rgd_run_fixed():
    W, H, y, tau = ufm_problem(K=3, d=4, n=2, tau=3.0, seed=5)
    kw = dict(lr=1.0, steps=40, scales=(1, 2), gtol=None)
    ours = rgd.run((W, H), lambda p: ufm.loss(*p, y, tau), lambda p: ufm.rgrad(*p, y, tau), **kw)
    via_egrad = geoopt_rgd.run((W, H), egrad_fn=lambda p: (ufm.loss(*p, y, tau), ufm.egrad(*p, y, tau)), **kw)
    via_autograd = geoopt_rgd.run((W, H), lambda p: ufm.loss(*p, y, tau), **kw)
    for h in (via_egrad, via_autograd):
        assert h.iterations == 40 and h.rule == "geoopt-sgd"
        np.testing.assert_allclose(h.loss, ours.loss, rtol=0, atol=1e-13)
        np.testing.assert_allclose(h.grad_norm, ours.grad_norm, rtol=0, atol=1e-13)
        for a, b in zip(h.points, ours.points):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.slow  # seconds of geoopt runs: make test only, not make check
def test_geoopt_run_stops_on_gradient_or_gap_and_adam_descends():
    W, H, y, tau = ufm_problem(K=3, d=4, n=2, tau=2.0, seed=6)
    egrad_fn = lambda p: (ufm.loss(*p, y, tau), ufm.egrad(*p, y, tau))  # noqa: E731
    f_opt = ufm.optimal_loss(3, tau)
    h = geoopt_rgd.run((W, H), egrad_fn=egrad_fn, lr=1.0, scales=(1, 2), steps=3000, gtol=None,
                       f_opt=f_opt, ftol=1e-10)
    assert h.converged and h.loss[-1] - f_opt <= 1e-10 < h.loss[-2] - f_opt
    ha = geoopt_rgd.run((W, H), egrad_fn=egrad_fn, optimizer="adam", lr=0.05, steps=300, gtol=None)
    assert ha.rule == "geoopt-adam" and ha.loss[-1] < 0.1 * ha.loss[0]
    assert all(sphere.is_on_sphere(p) for p in ha.points)


@pytest.mark.parametrize("name, extra", [("sgd", dict(momentum=0.9)), ("adam", dict(betas=(0.8, 0.99)))])
def test_optimizer_state_dict_round_trip(name, extra):
    W, H, y, tau = ufm_problem(K=3, d=4, n=2, seed=7)

    def steps(params, opt, k):
        for _ in range(k):
            opt.zero_grad()
            ufm.loss(*params, y, tau).backward()
            opt.step()

    params = [geoopt_rgd.manifold_parameter(W), geoopt_rgd.manifold_parameter(H)]
    opt = geoopt_rgd.make_optimizer(params, name, lr=0.05, scales=(1, 2), **extra)
    steps(params, opt, 5)
    buf = io.BytesIO()  # a real round trip: the state dict holds live references to the buffers
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    assert len(saved["opt"]["state"]) == 2  # momentum buffers / Adam moments were created

    def resume(load):
        clone = [geoopt_rgd.manifold_parameter(x, project=False) for x in saved["params"]]
        opt2 = geoopt_rgd.make_optimizer(clone, name, lr=0.05, scales=(1, 2), **extra)
        load(opt2)
        assert [g["lr"] for g in opt2.param_groups] == [0.05, 0.1]
        steps(clone, opt2, 5)
        return clone

    # (deep copies: load_state_dict shares the loaded tensors, and a resumed run updates them in place)
    exact = resume(lambda o: geoopt_rgd.load_optimizer_state(o, copy.deepcopy(saved["opt"])))
    plain = resume(lambda o: o.load_state_dict(copy.deepcopy(saved["opt"])))
    steps(params, opt, 5)  # the uninterrupted run
    for a, b, c in zip(params, exact, plain):
        torch.testing.assert_close(b.detach(), a.detach(), rtol=0, atol=0)
        # torch reloads Adam's step counter as a float32 tensor: geoopt's bias corrections then round
        tol = 0 if name == "sgd" else 1e-4
        torch.testing.assert_close(c.detach(), a.detach(), rtol=0, atol=tol)


@pytest.mark.slow  # seconds of geoopt runs: make test only, not make check
@pytest.mark.parametrize("optimizer", geoopt_rgd.OPTIMIZERS)
def test_batched_geoopt_run_equals_runs_one_by_one(optimizer):
    probs = [ufm_problem(K=3, d=4, n=2, tau=t, seed=s) for s, t in [(0, 1.0), (1, 2.0)]]
    y = probs[0][2]
    taus = torch.tensor([1.0, 2.0], dtype=F64)
    W = torch.stack([p[0] for p in probs])
    H = torch.stack([p[1] for p in probs])

    def batched_loss(p):  # one loss per run, shape (B,)
        Z = taus.reshape(-1, 1, 1) * p[1] @ p[0].mT
        return torch.logsumexp(Z, -1).mean(-1) - Z.gather(-1, y.expand(2, -1).unsqueeze(-1)).squeeze(-1).mean(-1)

    kw = dict(optimizer=optimizer, lr=0.5 if optimizer == "sgd" else 0.05, steps=200, gtol=1e-6)
    batch = geoopt_rgd.run((W, H), batched_loss, **kw)
    assert batch.loss.shape[1] == 2
    for b in range(2):
        one = geoopt_rgd.run((W[b], H[b]), lambda p, t=float(taus[b]): ufm.loss(*p, y, t), **kw)
        assert one.iterations == batch.iterations[b]
        np.testing.assert_allclose(batch.loss[: one.iterations + 1, b], one.loss, rtol=0, atol=1e-12)
        torch.testing.assert_close(batch.points[0][b], one.points[0], rtol=0, atol=1e-12)


def test_input_checks():
    W, H, y, tau = ufm_problem(K=3, d=4, n=2)
    loss = lambda p: ufm.loss(*p, y, tau)  # noqa: E731
    with pytest.raises(ValueError, match="optimizer"):
        geoopt_rgd.run((W, H), loss, optimizer="lbfgs")
    with pytest.raises(TypeError, match="exactly one"):
        geoopt_rgd.run((W, H))
    with pytest.raises(TypeError, match="exactly one"):
        geoopt_rgd.run((W, H), loss, egrad_fn=loss)
    with pytest.raises(ValueError, match="lr"):
        geoopt_rgd.run((W, H), loss, lr=-1.0)
    with pytest.raises(ValueError, match=r"points\[1\]"):
        geoopt_rgd.run((W, 2 * H), loss)
    with pytest.raises(TypeError, match="loss_fn"):
        geoopt_rgd.run((W, H), lambda p: 1.0)
    with pytest.raises(ValueError, match="name"):
        geoopt_rgd.make_optimizer([geoopt_rgd.manifold_parameter(W)], "rmsprop", lr=0.1)
    with pytest.raises(TypeError, match="params"):
        geoopt_rgd.make_optimizer([], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        geoopt_rgd.make_optimizer([geoopt_rgd.manifold_parameter(W)], lr=0.1, momentum=1.5)
    with pytest.raises(TypeError, match="betas"):
        geoopt_rgd.make_optimizer([geoopt_rgd.manifold_parameter(W)], "adam", lr=0.1, betas=0.9)
    with pytest.raises(ValueError, match="scales"):
        geoopt_rgd.make_optimizer([geoopt_rgd.manifold_parameter(W)], lr=0.1, scales=(1, 2))
    with pytest.raises(ValueError, match="egrads"):
        geoopt_rgd.step((W, H), (W,), lr=0.1)
    with pytest.raises(ValueError, match="shape"):
        geoopt_rgd.step((W, H), (W, W), lr=0.1)
    with pytest.raises(TypeError, match="manifold"):
        geoopt_rgd.manifold_parameter(W, manifold="sphere")
    with pytest.raises(TypeError, match="optimizer"):
        geoopt_rgd.load_optimizer_state("adam", {})
    with pytest.raises(TypeError, match="state_dict"):
        geoopt_rgd.load_optimizer_state(geoopt_rgd.make_optimizer([geoopt_rgd.manifold_parameter(W)], lr=0.1), {})
    with pytest.raises(ValueError, match="d >= 2"):
        geoopt_rgd.manifold_parameter(torch.ones(3, 1, dtype=F64))
