"""Tests of ncbook.stepsize: the step-size rules as objects, on their own and inside rgd.iterate."""

import math

import numpy as np
import pytest
import torch

from ncbook import rgd, sphere, stepsize

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64
A = torch.diag(torch.tensor([1.0, 2.0, 5.0], dtype=F64))


def rayleigh(p):
    x = p[0]
    return x @ A @ x, (sphere.project(x, 2 * A @ x),)


def start():
    x0 = sphere.normalize(torch.tensor([1.0, 1.0, 1.0], dtype=F64))
    return rgd.first_iterate(rayleigh, (x0,), (1.0,))


def test_make_rule_builds_each_rule_with_the_shared_defaults():
    assert isinstance(stepsize.make_rule("fixed", 0.1), stepsize.Fixed)
    bb = stepsize.make_rule("bb", 1.0)
    assert isinstance(bb, stepsize.BarzilaiBorwein) and bb.c == stepsize.DEFAULTS["c"]
    assert bb.nonmonotone == stepsize.DEFAULTS["nonmonotone"] and bb.lr_max == stepsize.DEFAULTS["lr_max"]
    assert isinstance(stepsize.make_rule("armijo", 1.0, nonmonotone=0.5), stepsize.Armijo)
    with pytest.raises(ValueError, match="name"):
        stepsize.make_rule("newton", 1.0)
    with pytest.raises(ValueError, match="lr"):
        stepsize.Fixed(-1.0)
    with pytest.raises(ValueError, match="shrink"):
        stepsize.Armijo(1.0, shrink=1.5)


def test_armijo_search_accepts_a_sufficient_decrease():
    it = start()
    rule = stepsize.Armijo(10.0)  # far too long at first: it must backtrack
    rule.start(it, (1.0,))

    def trial(a):
        x = rgd.retract_blocks(it.x, it.g, a, (1.0,))
        return stepsize.Iterate.make(x, *rayleigh(x), (1.0,))

    a, new, evals = rule.search(it, trial, None)
    assert isinstance(a, float) and isinstance(new.f, float)  # a single run: plain host numbers
    assert evals > 1 and a < 10.0
    assert new.f <= it.f - rule.c * a * it.gSg


def test_bb_next_step_is_the_long_bb_formula_in_flat_space():
    # one block of a single row: with x+ tangent-projected gradients the BB step is <s,s>/<s,y>
    it = start()
    rule = stepsize.BarzilaiBorwein(0.1)
    rule.start(it, (1.0,))
    x = rgd.retract_blocks(it.x, it.g, 0.1, (1.0,))
    new = stepsize.Iterate.make(x, *rayleigh(x), (1.0,))
    P = lambda v: sphere.project(x[0], v)  # noqa: E731 - the vector transport
    s = -0.1 * P(it.g[0])
    y = new.g[0] - P(it.g[0])
    expected = float(s @ s / (s @ y))
    assert rule.next_step(it, new, 0.1) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", list(stepsize.RULES))
def test_every_rule_drives_the_shared_engine_to_the_smallest_eigenvalue(name):
    it = start()
    advance = rgd.rgd_stepper(rayleigh, stepsize.make_rule(name, 0.2), it, (1.0,))
    hist = rgd.iterate(advance, it, steps=2000, stop=rgd.StoppingTest(gtol=1e-10))
    assert hist.converged and hist.rule == name
    assert math.isclose(float(hist.loss[-1]), 1.0, abs_tol=1e-12)


def test_iterate_keeps_per_run_values_on_the_host():
    it = start()
    x = it.x[0]
    g = it.g[0]
    assert isinstance(it.f, float) and isinstance(it.gnorm, float)
    assert it.f == pytest.approx(float(x @ A @ x), rel=1e-15)
    assert it.gnorm == pytest.approx(float(torch.linalg.vector_norm(g)), rel=1e-15)
    # a batch of two runs, two blocks with scales (1, 3): arrays of the batch shape
    X = torch.stack([x, -x])
    G = torch.stack([g, 2 * g])
    batch = stepsize.Iterate.make((X, X), torch.tensor([1.0, 2.0], dtype=F64), (G, G), (1.0, 3.0))
    assert batch.batch_shape == (2,) and isinstance(batch.f, np.ndarray)
    norms = torch.linalg.vector_norm(G, dim=1).numpy()
    np.testing.assert_allclose(batch.gnorm, np.sqrt(2) * norms, rtol=1e-15)
    np.testing.assert_allclose(batch.gSg, 4 * norms**2, rtol=1e-15)
    mixed = batch.where(np.array([True, False]), stepsize.Iterate.make((X, X), torch.zeros(2, dtype=F64),
                                                                       (G, G), (1.0, 3.0)))
    np.testing.assert_array_equal(mixed.f, [1.0, 0.0])


def test_per_run_helpers_treat_a_float_and_an_array_alike():
    arr = np.array([0.5, math.nan, math.inf, -1.0])
    np.testing.assert_array_equal(stepsize.clip(arr, 0.0, 2.0), [0.5, 2.0, 2.0, 0.0])
    assert [stepsize.clip(v, 0.0, 2.0) for v in arr.tolist()] == [0.5, 2.0, 2.0, 0.0]
    mask = np.array([True, False])
    np.testing.assert_array_equal(stepsize.select(mask, 1.0, 2.0), [1.0, 2.0])
    assert stepsize.select(True, 1.0, 2.0) == 1.0 and stepsize.select(False, 1.0, 2.0) == 2.0
    assert stepsize.some(mask) and not stepsize.every(mask) and stepsize.every(True) and not stepsize.some(False)
    assert stepsize.largest(np.array([1.0, 3.0])) == 3.0 and stepsize.largest(2.0) == 2.0
    t = torch.tensor([1.0, 2.0], dtype=torch.float32)
    (f,) = stepsize.to_host(torch.tensor(1.5, dtype=F64))
    v, w = stepsize.to_host(t, 2 * t)
    assert f == 1.5 and isinstance(f, float) and v.dtype == np.float64 and w[1] == 4.0
    t[0] = 7.0  # the host copy does not alias the tensor
    assert v[0] == 1.0
    # from an accelerator the values travel stacked, in one copy (the same code, run here on the CPU)
    moved = stepsize._one_transfer((torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([3.0, 4.0], dtype=F64)))
    assert [m.dtype for m in moved] == [F64, F64] and [m.tolist() for m in moved] == [[1.0, 2.0], [3.0, 4.0]]


def test_bb_step_is_lr_max_where_the_curvature_estimate_is_not_positive():
    it = start()
    rule = stepsize.BarzilaiBorwein(0.1, lr_max=50.0)
    rule.start(it, (1.0,))
    # the gradient doubles without moving: <s, y> = -a <g, g> < 0, so the long step is infinite (then lr_max)
    f, (g,) = rayleigh(it.x)
    same = stepsize.Iterate.make(it.x, f, (2 * g,), (1.0,))
    assert rule.next_step(it, same, 0.1) == math.inf
    rule.after(it, same, 0.1)
    assert rule.alpha == 50.0 and not rule.long
