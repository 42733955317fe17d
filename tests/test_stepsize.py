"""Tests of ncbook.stepsize: the step-size rules as objects, on their own and inside rgd.iterate."""

import math

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
    active = torch.ones((), dtype=torch.bool)

    def trial(a):
        x = rgd.retract_blocks(it.x, it.g, a, (1.0,))
        return stepsize.Iterate.make(x, *rayleigh(x), (1.0,))

    a, new, evals = rule.search(it, trial, active)
    assert evals > 1 and float(a) < 10.0
    assert float(new.f) <= float(it.f) - rule.c * float(a) * float(it.gSg)


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
    assert float(rule.next_step(it, new, torch.tensor(0.1, dtype=F64))) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", list(stepsize.RULES))
def test_every_rule_drives_the_shared_engine_to_the_smallest_eigenvalue(name):
    it = start()
    advance = rgd.rgd_stepper(rayleigh, stepsize.make_rule(name, 0.2), it, (1.0,))
    hist = rgd.iterate(advance, it, steps=2000, stop=rgd.StoppingTest(gtol=1e-10))
    assert hist.converged and hist.rule == name
    assert math.isclose(float(hist.loss[-1]), 1.0, abs_tol=1e-12)
