"""Neural-collapse metrics: hand values, exact collapse, streaming = one shot, input errors."""

import math
import threading

import numpy as np
import pytest
import torch
import torch.distributed
from hypothesis import given, settings
from hypothesis import strategies as st

from ncbook import etf, landscape, metrics

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


def reference_nc(W, H, y, K):
    """Two-pass numpy reference (float64, numpy.linalg.pinv), written from the definitions."""
    H, W, y = H.double().numpy(), W.double().numpy(), y.numpy()
    mu = np.stack([H[y == k].mean(0) for k in range(K)])
    mu_g = H.mean(0)
    R = H - mu[y]
    Sw = R.T @ R / len(H)
    Mc = mu - mu_g
    Sb = Mc.T @ Mc / K
    E = (np.eye(K) - 1 / K) / math.sqrt(K - 1)

    def dist(G):
        return np.linalg.norm(G / np.linalg.norm(G) - E)

    return {"nc1": np.trace(Sw @ np.linalg.pinv(Sb)) / K, "nc2": dist(W @ W.T), "nc2_means": dist(Mc @ Mc.T),
            "nc3": dist(W @ mu.T), "nc3_centered": dist(W @ Mc.T),
            "ncc_accuracy": np.mean(np.argmin(((H[:, None] - mu[None]) ** 2).sum(-1), 1) == y)}


def noisy_problem(gen, K=4, d=6, N=40, noise=0.3):
    W = etf.simplex_etf(K, d, generator=gen)
    y = torch.arange(N) % K
    H = W[y] + noise * torch.randn(N, d, generator=gen, dtype=F64)
    return W + 0.1 * torch.randn(K, d, generator=gen, dtype=F64), H, y


# ---------------------------------------------------------------------------------------------
# hand values
# ---------------------------------------------------------------------------------------------

def test_nc1_toy_value():
    """Digest fact 5: K=2, d=1, features {1.5, 0.5 | -0.5, -1.5}: Sigma_W = 0.25, Sigma_B = 1, NC1 = 0.125."""
    H = torch.tensor([[1.5], [0.5], [-0.5], [-1.5]], dtype=F64)
    y = torch.tensor([0, 0, 1, 1])
    assert abs(metrics.nc1(H, y) - 0.125) < 1e-15
    s = metrics.ClassStats(2, 1).update(H, y)
    assert abs(float(s.sigma_w()) - 0.25) < 1e-15 and abs(float(s.sigma_b()) - 1.0) < 1e-15
    torch.testing.assert_close(s.means(), torch.tensor([[1.0], [-1.0]], dtype=F64))
    assert float(s.global_mean()) == 0.0 and s.n_total == 4
    assert abs(metrics.nc1(10 * H, y) - 0.125) < 1e-14  # scale invariant


def test_nc2_hand_values():
    # two orthonormal classifiers: ||I/sqrt2 - (I - J/2)||_F = sqrt(2 - sqrt 2)
    assert abs(metrics.nc2(torch.eye(2, dtype=F64)) - math.sqrt(2 - math.sqrt(2))) < 1e-15
    # any scaled simplex ETF: 0
    assert metrics.nc2(3.0 * etf.simplex_etf(5, 7)) < 1e-15
    E = metrics.etf_target(4)
    assert abs(float(torch.linalg.matrix_norm(E)) - 1) < 1e-15
    torch.testing.assert_close(E * math.sqrt(3) * 4 / 3, etf.etf_gram(4))


def test_nc3_hand_values_and_variants():
    K, d = 3, 4
    W = etf.simplex_etf(K, d)
    y = torch.arange(2 * K) % K
    # features opposite their classifiers: W M^T = -E * ||.||, distance || -E - E || = 2
    assert abs(metrics.nc3(W, -W[y], y) - 2) < 1e-14
    assert abs(metrics.nc3_centered(W, -W[y], y) - 2) < 1e-14
    # scaled features: still 0
    assert metrics.nc3(W, 0.2 * W[y], y) < 1e-14
    # a shifted ETF of means, shift orthogonal to the classifiers (W c = 0): both variants vanish
    c = torch.zeros(d, dtype=F64)
    c[-1] = 5.0
    assert metrics.nc3(W, W[y] + c, y) < 1e-14 and metrics.nc3_centered(W, W[y] + c, y) < 1e-14
    # a shift inside the classifiers' span is seen by the uncentred (paper-code) variant only
    c = 2.0 * W[0]
    assert metrics.nc3(W, W[y] + c, y) > 0.1 and metrics.nc3_centered(W, W[y] + c, y) < 1e-14


def test_ncc_accuracy_hand_values():
    H = torch.tensor([[0.0], [0.2], [1.0], [0.45], [1.2]], dtype=F64)
    y = torch.tensor([0, 0, 1, 1, 1])
    # means 0.1 and 0.883..: 0.45 is nearer to class 0, every other point to its own class
    assert metrics.ncc_accuracy(H, y) == pytest.approx(4 / 5)
    torch.testing.assert_close(metrics.ncc_predict(H, metrics.class_means(H, y)), torch.tensor([0, 0, 1, 0, 1]))
    assert metrics.ncc_accuracy(H, y, predictions=torch.tensor([0, 0, 1, 0, 1])) == 1.0
    logits = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1], [0, 1]])
    assert metrics.ncc_accuracy(H, y, logits=logits) == pytest.approx(4 / 5)
    means = torch.tensor([[1.0], [0.0]], dtype=F64)  # centres swapped: everything is wrong but 0.45
    assert metrics.ncc_accuracy(H, y, means=means) == pytest.approx(1 / 5)


# ---------------------------------------------------------------------------------------------
# exact collapse and agreement with a reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("K,d,n", [(2, 2, 3), (4, 3, 5), (10, 12, 2)])
def test_metrics_vanish_on_exact_collapse(K, d, n, gen):
    """Digest fact 6."""
    W, H, y = landscape.etf_minimizer(K, d, n, generator=gen)
    rep = metrics.collapse_report(W, H, y)
    assert tuple(rep) == metrics.REPORT_KEYS
    assert all(isinstance(v, float) for v in rep.values())
    for k in ("nc1", "nc2", "nc2_means", "nc3", "nc3_centered"):
        assert 0 <= rep[k] < 1e-12, (k, rep[k])
    assert rep["ncc_accuracy"] == 1.0
    # tau * h (as in the paper's code) changes nothing
    assert metrics.nc1(5.0 * H, y) < 1e-12 and metrics.nc3(W, 5.0 * H, y) < 1e-12


def test_matches_numpy_reference(gen):
    W, H, y = noisy_problem(gen)
    rep = metrics.collapse_report(W, H, y)
    ref = reference_nc(W, H, y, 4)
    for k in metrics.REPORT_KEYS:
        assert abs(rep[k] - ref[k]) < 1e-12 * max(1, abs(ref[k])), k
    assert metrics.nc1(H, y) == rep["nc1"] and metrics.nc2(W) == rep["nc2"]
    assert metrics.nc2_means(H, y) == rep["nc2_means"] and metrics.nc3(W, H, y) == rep["nc3"]
    assert metrics.nc3_centered(W, H, y) == rep["nc3_centered"] and metrics.ncc_accuracy(H, y) == rep["ncc_accuracy"]


def test_unbalanced_classes_use_the_global_feature_mean(gen):
    K, d = 3, 4
    y = torch.tensor([0] * 7 + [1] * 2 + [2] * 4)
    H = torch.randn(13, d, generator=gen, dtype=F64) + 3 * torch.eye(K, d, dtype=F64)[y]
    W = torch.randn(K, d, generator=gen, dtype=F64)
    ref = reference_nc(W, H, y, K)
    rep = metrics.collapse_report(W, H, y)
    for k in metrics.REPORT_KEYS:
        assert abs(rep[k] - ref[k]) < 1e-12 * max(1, abs(ref[k])), k


def test_nc1_is_never_negative_and_stable_near_collapse(gen):
    """Round-off near collapse: features = class means + 1e-9 noise, given in float32 and float64."""
    W, H, y = landscape.etf_minimizer(5, 6, 8, generator=gen)
    Hn = H + 1e-9 * torch.randn(H.shape, generator=gen, dtype=F64)
    v = metrics.nc1(Hn, y)
    ref = reference_nc(W, Hn, y, 5)["nc1"]
    assert v >= 0 and abs(v - ref) < 1e-6 * ref
    assert metrics.nc1(H.float(), y) >= 0.0
    # many batches of identical features: the streaming scatter stays at round-off, not 1e-8
    s = metrics.ClassStats(5, 6)
    for i in range(0, 40, 3):
        s.update(H[i:i + 3], y[i:i + 3])
    assert 0 <= s.nc1() < 1e-25


# ---------------------------------------------------------------------------------------------
# streaming
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 3, 7, 40])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batched_accumulation_equals_one_shot(batch, dtype, gen):
    W, H, y = noisy_problem(gen)
    perm = torch.randperm(40, generator=gen)
    H, y = H[perm].to(dtype), y[perm]
    s = metrics.ClassStats(4, 6)
    for i in range(0, 40, batch):
        s.update(H[i:i + batch], y[i:i + batch])
    one = metrics.ClassStats(4, 6).update(H, y)
    assert s.n_total == one.n_total == 40
    torch.testing.assert_close(s.counts, one.counts, atol=0, rtol=0)
    torch.testing.assert_close(s.means(), one.means(), atol=1e-14, rtol=0)
    torch.testing.assert_close(s.sigma_w(), one.sigma_w(), atol=1e-14, rtol=0)
    torch.testing.assert_close(s.sigma_b(), one.sigma_b(), atol=1e-14, rtol=0)
    rs, ro = s.report(W), one.report(W)
    assert set(rs) == set(metrics.REPORT_KEYS) - {"ncc_accuracy"}
    for k in rs:
        assert abs(rs[k] - ro[k]) < 1e-12 * max(1, abs(ro[k])), k
    # the one-shot functions are the accumulator on one batch: identical numbers
    assert metrics.nc1(H, y) == ro["nc1"] and metrics.nc3(W, H, y) == ro["nc3"]


def test_classes_missing_from_batches_and_from_the_data(gen):
    W, H, y = noisy_problem(gen)
    order = torch.argsort(y, stable=True)  # class-sorted: every batch misses most classes
    s = metrics.ClassStats(4, 6)
    for i in range(0, 40, 5):
        s.update(H[order[i:i + 5]], y[order[i:i + 5]])
    assert abs(s.nc1() - metrics.nc1(H, y)) < 1e-12
    s.update(torch.zeros(0, 6, dtype=F64), torch.zeros(0, dtype=torch.int64))  # an empty batch is fine
    partial = metrics.ClassStats(5, 6).update(H, y)  # class 4 never seen
    for call in (partial.means, partial.nc1, partial.nc2_means, lambda: partial.report(torch.randn(5, 6))):
        with pytest.raises(ValueError, match=r"classes \[4\] have no samples"):
            call()
    with pytest.raises(ValueError, match="no samples have been added"):
        metrics.ClassStats(3, 2).sigma_w()
    with pytest.raises(ValueError, match=r"classes \[0, 1, 2\] have no samples"):
        metrics.ClassStats(3, 2).means()
    with pytest.raises(ValueError, match=r"classes \[3\] have no samples"):
        metrics.nc1(H[y < 3], y[y < 3], K=4)


def test_ncc_meter_streaming(gen):
    W, H, y = noisy_problem(gen, noise=1.0)
    means = metrics.class_means(H, y)
    m = metrics.NCCMeter(means)
    for i in range(0, 40, 6):
        m.update(H[i:i + 6], y[i:i + 6])
    assert m.accuracy() == metrics.ncc_accuracy(H, y) and m.total == 40
    Z = H @ W.T
    m2 = metrics.NCCMeter(means)
    for i in range(0, 40, 9):
        m2.update(H[i:i + 9], logits=Z[i:i + 9])
    assert m2.accuracy() == metrics.ncc_accuracy(H, y, logits=Z)
    assert m2.all_reduce() is m2  # no-op without torch.distributed


def _fake_dist(monkeypatch, world):
    """Replace torch.distributed by an in-process sum over ``world`` threads."""
    barrier = threading.Barrier(world, timeout=20)
    slots = {}
    local = threading.local()

    def all_reduce(tensor, group=None):
        slots[local.rank] = tensor.clone()
        barrier.wait()
        total = sum(slots[r] for r in range(world))
        barrier.wait()
        tensor.copy_(total)

    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: world)
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    return local, barrier


def test_all_reduce_merges_ranks(monkeypatch, gen):
    """Three simulated ranks with uneven shares (one rank lacks a class) give the one-shot statistics."""
    W, H, y = noisy_problem(gen)
    local, barrier = _fake_dist(monkeypatch, 3)
    shares = [slice(0, 3), slice(3, 25), slice(25, 40)]
    results, errors = {}, []

    def worker(rank):
        local.rank = rank
        try:
            s = metrics.ClassStats(4, 6)
            s.update(H[shares[rank]], y[shares[rank]])
            s.all_reduce()
            results[rank] = s.report(W)
            with pytest.raises(RuntimeError, match="already called"):
                s.all_reduce()
            with pytest.raises(RuntimeError, match="after all_reduce"):
                s.update(H[:2], y[:2])
        except Exception as exc:  # surfaced below: a failed rank must fail the test
            errors.append(exc)
            barrier.abort()  # release the other ranks instead of leaving them waiting

    threads = [threading.Thread(target=worker, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    want = metrics.ClassStats(4, 6).update(H, y).report(W)
    for rank in range(3):
        for k in want:
            assert abs(results[rank][k] - want[k]) < 1e-12 * max(1, want[k]), (rank, k)


def test_accumulator_device_and_dtype(gen):
    s = metrics.ClassStats(3, 2, dtype=torch.float32)
    s.update(torch.randn(6, 2, generator=gen), torch.arange(6) % 3)
    assert s.means().dtype == torch.float32 and s.device.type == "cpu"
    assert isinstance(s.nc1(), float)


# ---------------------------------------------------------------------------------------------
# input errors
# ---------------------------------------------------------------------------------------------

def test_errors_name_the_argument(gen):
    W, H, y = noisy_problem(gen)
    with pytest.raises(ValueError, match="W must have K >= 2 rows"):
        metrics.nc2(torch.ones(1, 3, dtype=F64))
    with pytest.raises(ValueError, match="W @ W.T is the zero matrix"):
        metrics.nc2(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        metrics.nc2(np.eye(3))
    with pytest.raises(ValueError, match="W must contain only finite"):
        metrics.nc2(torch.full((3, 3), math.inf))
    with pytest.raises(ValueError, match=r"W must have one row per class, K = 4"):
        metrics.ClassStats(4, 6).update(H, y).nc3(W[:3])
    with pytest.raises(ValueError, match="W .* and H .* must share d"):
        metrics.nc3(W[:, :5], H, y)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 4\)"):
        metrics.nc3(W, H, y + 1)
    with pytest.raises(ValueError, match=r"y must have shape \(40,\)"):
        metrics.nc1(H, y[:-1])
    with pytest.raises(TypeError, match="y must have an integer dtype"):
        metrics.nc1(H, y.double())
    with pytest.raises(ValueError, match="H must contain only finite"):
        metrics.nc1(H * math.nan, y)
    with pytest.raises(ValueError, match=r"H_batch must have shape \(B, 6\)"):
        metrics.ClassStats(4, 6).update(H[:, :5], y)
    with pytest.raises(ValueError, match=r"y_batch must hold labels in \[0, 3\)"):
        metrics.ClassStats(3, 6).update(H, y)
    with pytest.raises(ValueError, match="H_batch must contain only finite"):
        metrics.ClassStats(4, 6).update(H * math.inf, y)
    with pytest.raises(ValueError, match="K must be >= 2"):
        metrics.ClassStats(1, 6)
    with pytest.raises(TypeError, match="dtype must be a floating"):
        metrics.ClassStats(3, 6, dtype=torch.int64)
    with pytest.raises(ValueError, match="all class means coincide"):
        metrics.nc1(torch.ones(4, 2, dtype=F64), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"centred class means \(of H\) is the zero matrix"):
        metrics.nc2_means(torch.ones(4, 2, dtype=F64), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"logits must have shape \(40, 4\)"):
        metrics.ncc_accuracy(H, y, logits=torch.zeros(40, 3))
    with pytest.raises(ValueError, match="at most one of predictions and logits"):
        metrics.ncc_accuracy(H, y, logits=torch.zeros(40, 4), predictions=y)
    with pytest.raises(ValueError, match=r"predictions must hold labels in \[0, 4\)"):
        metrics.ncc_accuracy(H, y, predictions=y + 1)
    with pytest.raises(ValueError, match="means .* and H .* must share d"):
        metrics.ncc_accuracy(H, y, means=torch.zeros(4, 5, dtype=F64))
    with pytest.raises(ValueError, match="y must hold labels >= 0"):
        metrics.nc1(H, y - 1)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\)"):
        metrics.nc1(H, y, K=3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested"):
            metrics.ClassStats(3, 2, device="cuda")
    with pytest.raises(ValueError, match="H must be nonempty"):
        metrics.nc1(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))


_vals = st.floats(-1e3, 1e3) | st.sampled_from([math.nan, math.inf, 0.0, 1e-300])


@settings(max_examples=40, deadline=None)
@given(K=st.integers(0, 4), N=st.integers(0, 8), d=st.integers(0, 3), Wd=st.integers(-1, 1),
       vals=st.lists(_vals, min_size=36, max_size=36), labels=st.lists(st.integers(-1, 4), min_size=8, max_size=8),
       fn=st.sampled_from(["nc1", "nc2", "nc2_means", "nc3", "nc3_centered", "ncc_accuracy", "collapse_report",
                           "class_means"]))
def test_fuzz_only_documented_errors(K, N, d, Wd, vals, labels, fn):
    raw = torch.tensor(vals, dtype=F64)
    H = raw[: N * d].reshape(N, d)
    W = raw[-K * max(d + Wd, 0):].reshape(K, max(d + Wd, 0)) if K * max(d + Wd, 0) else torch.zeros(K, 0)
    y = torch.tensor(labels[:N], dtype=torch.int64)
    args = {"nc2": (W,), "nc3": (W, H, y), "nc3_centered": (W, H, y), "collapse_report": (W, H, y)}.get(fn, (H, y))
    try:
        out = getattr(metrics, fn)(*args)
    except (TypeError, ValueError):
        return
    values = list(out.values()) if isinstance(out, dict) else [out]
    for v in values:
        v = torch.as_tensor(v)
        assert bool(torch.isfinite(v).all())
    if fn in ("nc1", "nc2", "nc2_means", "nc3", "nc3_centered"):
        assert out >= 0
