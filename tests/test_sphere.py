"""Geometry of the sphere and products of spheres (rows): properties, geoopt agreement, input errors."""

import math

import geoopt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ncbook import sphere

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64
FUZZ = settings(max_examples=25, deadline=None)
SHAPES = [(1, 2), (3, 3), (5, 4), (2, 3, 6)]  # last axis is the sphere dimension; a leading batch axis too


def point(shape, gen):
    return sphere.random_point(*shape, generator=gen, dtype=F64)


def tangent(x, gen, scale=1.0):
    return scale * sphere.project(x, torch.randn(x.shape, generator=gen, dtype=F64))


def row_norms(x):
    return torch.linalg.vector_norm(x, dim=-1)


@pytest.mark.parametrize("shape", SHAPES)
def test_projection_is_idempotent_and_tangent(shape, gen):
    x = point(shape, gen)
    u = torch.randn(shape, generator=gen, dtype=F64)
    p = sphere.project(x, u)
    assert (x * p).sum(-1).abs().max() < 1e-14
    torch.testing.assert_close(sphere.project(x, p), p, atol=1e-15, rtol=0)
    # P_x is an orthogonal projection: u - P_x u is normal (parallel to x)
    torch.testing.assert_close(u - p, (x * u).sum(-1, keepdim=True) * x, atol=1e-14, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [1e-8, 0.3, 2.0, 10.0])
def test_retract_and_exp_stay_on_sphere(shape, scale, gen):
    x = point(shape, gen)
    v = tangent(x, gen, scale)
    for y in (sphere.retract(x, v), sphere.exp_map(x, v)):
        assert (row_norms(y) - 1).abs().max() < 1e-14
        assert sphere.is_on_sphere(y)


@pytest.mark.parametrize("shape", SHAPES)
def test_log_inverts_exp_and_dist_is_length(shape, gen):
    x = point(shape, gen)
    v = tangent(x, gen)
    # rescale each row to a length in (0, 3] < pi, where Exp is invertible
    lengths = 3.0 * torch.rand(shape[:-1] + (1,), generator=gen, dtype=F64).clamp_min(1e-3)
    v = v / row_norms(v).unsqueeze(-1) * lengths
    y = sphere.exp_map(x, v)
    torch.testing.assert_close(sphere.log_map(x, y), v, atol=1e-10, rtol=0)
    assert abs(float(sphere.dist(x, y)) - float(torch.linalg.vector_norm(v))) < 1e-12
    # the per-row distance is the row length
    torch.testing.assert_close(sphere.dist_rows(x, y), lengths.squeeze(-1), atol=1e-12, rtol=0)


def test_exp_and_log_small_and_zero_vectors(gen):
    x = point((4, 3), gen)
    zero = torch.zeros_like(x)
    torch.testing.assert_close(sphere.exp_map(x, zero), x, atol=1e-15, rtol=0)
    torch.testing.assert_close(sphere.log_map(x, x), zero, atol=1e-15, rtol=0)
    assert float(sphere.dist(x, x)) < 1e-7
    v = tangent(x, gen, 1e-9)
    torch.testing.assert_close(sphere.log_map(x, sphere.exp_map(x, v)), v, atol=1e-16, rtol=1e-6)


def test_exp_follows_a_great_circle():
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)
    u = torch.tensor([[0.0, math.pi / 2, 0.0]], dtype=F64)
    torch.testing.assert_close(sphere.exp_map(x, u), torch.tensor([[0.0, 1.0, 0.0]], dtype=F64), atol=1e-15, rtol=0)
    torch.testing.assert_close(sphere.exp_map(x, 2 * u), -x, atol=1e-15, rtol=0)
    assert abs(float(sphere.dist(x, -x)) - math.pi) < 1e-15


def test_retraction_agrees_with_exp_to_second_order(gen):
    x = point((3, 4), gen)
    v = tangent(x, gen)
    v = v / torch.linalg.vector_norm(v)
    gaps = [float(torch.linalg.vector_norm(sphere.retract(x, t * v) - sphere.exp_map(x, t * v))) for t in (1e-2, 1e-3)]
    assert 2.8 < math.log10(gaps[0] / gaps[1]) < 3.2  # O(t^3)


@pytest.mark.parametrize("fn", ["project", "retract", "exp_map", "egrad_to_rgrad"])
def test_batched_equals_looped(fn, gen):
    x = point((6, 5), gen)
    v = tangent(x, gen)
    f = getattr(sphere, fn)
    batched = f(x, v)
    looped = torch.stack([f(x[i], v[i]) for i in range(6)])
    torch.testing.assert_close(batched, looped, atol=1e-15, rtol=0)
    y = sphere.exp_map(x, v)
    torch.testing.assert_close(sphere.log_map(x, y), torch.stack([sphere.log_map(x[i], y[i]) for i in range(6)]),
                               atol=1e-14, rtol=0)
    d_rows = torch.stack([sphere.dist(x[i], y[i]) for i in range(6)])
    assert abs(float(sphere.dist(x, y)) - float(torch.linalg.vector_norm(d_rows))) < 1e-14


def test_matches_geoopt(gen):
    S = geoopt.Sphere()
    x = point((5, 4), gen)
    u = torch.randn(5, 4, generator=gen, dtype=F64)
    v = tangent(x, gen)
    y = sphere.exp_map(x, v)
    torch.testing.assert_close(sphere.project(x, u), S.proju(x, u))
    torch.testing.assert_close(sphere.egrad_to_rgrad(x, u), S.egrad2rgrad(x, u))
    torch.testing.assert_close(sphere.retract(x, v), S.retr(x, v))
    torch.testing.assert_close(sphere.exp_map(x, v), S.expmap(x, v))
    torch.testing.assert_close(sphere.log_map(x, y), S.logmap(x, y))
    torch.testing.assert_close(sphere.dist_rows(x, y), S.dist(x, y))
    torch.testing.assert_close(sphere.normalize(u), S.projx(u))
    torch.testing.assert_close(sphere.inner(x, v, u), S.inner(x, v, u).sum())


def test_ehess_to_rhess_on_rayleigh_quotient():
    """Digest fact 7: f(x) = x^T A x on S^2, A = diag(1, 2, 3)."""
    A = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=F64))
    x = torch.full((3,), 1 / math.sqrt(3), dtype=F64)
    g = sphere.egrad_to_rgrad(x, 2 * A @ x)
    torch.testing.assert_close(g, torch.tensor([-1.154701, 0.0, 1.154701], dtype=F64), atol=1e-6, rtol=0)
    # Riemannian Hessian at the eigenvectors: e_1 minimum, e_2 saddle, e_3 maximum
    for i, signs in enumerate([(1, 1), (-1, 1), (-1, -1)]):
        e = torch.zeros(3, dtype=F64)
        e[i] = 1.0
        others = [j for j in range(3) if j != i]
        curv = []
        for j in others:
            u = torch.zeros(3, dtype=F64)
            u[j] = 1.0
            hu = sphere.ehess_to_rhess(e, 2 * A @ e, 2 * A @ u, u)
            curv.append(float(u @ hu))  # = 2 (A_jj - A_ii)
            assert abs(curv[-1] - 2 * (A[j, j] - A[i, i])) < 1e-15
        assert tuple(int(math.copysign(1, c)) for c in curv) == signs


def test_random_point_and_tangent(gen):
    x = sphere.random_point(4, 3, generator=gen, dtype=F64)
    assert x.shape == (4, 3) and x.dtype == F64 and sphere.is_on_sphere(x)
    v = sphere.random_tangent(x, generator=gen)
    assert abs(float(torch.linalg.vector_norm(v)) - 1) < 1e-14 and (x * v).sum(-1).abs().max() < 1e-14
    assert sphere.random_point(2, 2).dtype == torch.get_default_dtype()


def test_inner_and_normalize(gen):
    x = point((3, 4), gen)
    u, v = tangent(x, gen), tangent(x, gen)
    assert abs(float(sphere.inner(x, u, v)) - float((u * v).sum())) < 1e-15
    z = torch.randn(3, 4, generator=gen, dtype=F64) * 7
    assert sphere.is_on_sphere(sphere.normalize(z))
    assert not sphere.is_on_sphere(z)
    assert sphere.is_on_sphere(1.001 * x, atol=1e-2) and not sphere.is_on_sphere(1.001 * x)


# ---------------------------------------------------------------------------------------------
# input errors
# ---------------------------------------------------------------------------------------------

def test_errors_name_the_argument():
    x = torch.tensor([[1.0, 0.0]], dtype=F64)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        sphere.project([[1.0, 0.0]], x)
    with pytest.raises(ValueError, match="x must have unit-norm rows"):
        sphere.project(2 * x, x)
    with pytest.raises(ValueError, match="x and u must have the same shape"):
        sphere.project(x, torch.ones(1, 3, dtype=F64))
    with pytest.raises(TypeError, match="x and u must share dtype"):
        sphere.retract(x, x.float())
    with pytest.raises(ValueError, match="u must contain only finite values"):
        sphere.exp_map(x, torch.tensor([[0.0, float("nan")]], dtype=F64))
    with pytest.raises(ValueError, match="y must have unit-norm rows"):
        sphere.log_map(x, 3 * x)
    with pytest.raises(ValueError, match="zero row"):
        sphere.retract(x, -x)
    with pytest.raises(ValueError, match="antipodal"):
        sphere.log_map(x, -x)
    with pytest.raises(ValueError, match="zero norm"):
        sphere.normalize(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="d >= 2"):
        sphere.random_tangent(torch.ones(3, 1, dtype=F64))
    with pytest.raises(ValueError, match="shape must be positive"):
        sphere.random_point(0, 3)
    with pytest.raises(TypeError, match="shape must be positive"):
        sphere.random_point(2.0, 3)
    with pytest.raises(ValueError, match="must be >= 2"):
        sphere.random_point(3, 1)
    with pytest.raises(TypeError, match="dtype"):
        sphere.random_point(3, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match="egrad must have the same shape"):
        sphere.ehess_to_rhess(x, torch.ones(2), x, x)


# finite values up to 1e6 (overflow of astronomically large inputs is out of scope) plus NaN and inf
_floats = st.floats(-1e6, 1e6) | st.sampled_from([math.nan, math.inf, -math.inf, 0.0])


@FUZZ
@given(m=st.integers(0, 3), d=st.integers(0, 4), d2=st.integers(1, 4), vals=st.lists(_floats, min_size=24, max_size=24),
       fn=st.sampled_from(["project", "retract", "exp_map", "log_map", "dist", "inner", "egrad_to_rgrad",
                           "ehess_to_rhess", "normalize", "random_tangent", "is_on_sphere"]),
       normalize_x=st.booleans(), dtype=st.sampled_from([torch.float64, torch.float32, torch.int64]))
def test_fuzz_only_documented_errors(m, d, d2, vals, fn, normalize_x, dtype):
    """Arbitrary shapes, values (NaN, inf, huge) and dtypes: only TypeError/ValueError may escape."""
    raw = torch.tensor(vals, dtype=F64)
    x = raw[: m * d].reshape(m, d)
    if normalize_x and m * d:
        x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    u = raw[-m * d2:].reshape(m, d2) if m * d2 else raw[:0].reshape(m, d2)
    x, u = x.to(dtype), u.to(dtype)
    f = getattr(sphere, fn)
    args = {"normalize": (x,), "random_tangent": (x,), "is_on_sphere": (x,), "inner": (x, u, u),
            "ehess_to_rhess": (x, u, u, u)}.get(fn, (x, u))
    try:
        out = f(*args)
    except (TypeError, ValueError):
        return
    if isinstance(out, torch.Tensor):
        assert bool(torch.isfinite(out).all()), f"{fn} returned non-finite values without raising"
