"""Tests of ``ncbook.course.checks``: every check gives full marks to a right answer, says "not
attempted yet" to a missing one, catches a wrong or crashing one with specific feedback, and every
coding exercise of every chapter (from ``_toc.yml``) is wired to its check."""

from __future__ import annotations

import math

import geoopt
import jupytext
import pytest
import torch
import torch.nn.functional as F

from ncbook import course, landscape, metrics, rgd, sphere, ufm
from ncbook.course import checks, editions

pytestmark = pytest.mark.usefixtures("single_thread")


def _classify(gn, ev):
    if gn > 1e-8:
        return "not critical"
    return "strict saddle" if bool((ev < -1e-8 * max(1.0, float(ev.abs().max()))).any()) else "second-order critical"


# A right answer per check, written independently of the check's own reference where that is short.
RIGHT = {
    "check_papyan_nc2": checks._papyan_reference,
    "check_nc1": lambda H, y: metrics.nc1(H, y),
    "check_rgrad": sphere.egrad_to_rgrad,
    "check_retraction": lambda x, u: (x + u) / (x + u).norm(dim=-1, keepdim=True),
    "check_rgd_step": lambda x, e, lr: rgd.step(x, sphere.egrad_to_rgrad(x, e), lr),
    "check_bb_step": checks._bb_reference,
    "check_manifold_parameter": lambda X: geoopt.ManifoldParameter(F.normalize(X, dim=-1), manifold=geoopt.Sphere()),
    "check_first_momentum": lambda w, g, lr, m: lr * (1 + m) / (1 - lr * m * float(w @ g)),
    "check_ufm_loss": ufm.loss,
    "check_choose_tau": lambda K, eps: (K - 1) / K * math.log((K - 1) / math.expm1(eps)),
    "check_tangent_basis": landscape.tangent_basis,
    "check_classify": _classify,
    "check_optimal_margin": lambda K, t: (t * K / (K - 1), 1 / (1 + (K - 1) * math.exp(-t * K / (K - 1)))),
    "check_ufm_rgrad": ufm.rgrad,
    "check_cosine_logits": lambda Z, W, tau: tau * F.normalize(Z, dim=-1) @ W.T,
    "check_feature_normalize": lambda Z, tau: tau * F.normalize(Z, dim=-1),
}

# A plausible mistake per check (the one its hint is about, where there is one).
WRONG = {
    "check_papyan_nc2": lambda H, y, K: {k: v + 0.1 for k, v in checks._papyan_reference(H, y, K).items()},
    "check_nc1": lambda H, y: metrics.nc1(H, y) * len(torch.unique(y)),  # forgot to divide by K
    "check_rgrad": lambda x, e: e,  # no projection
    "check_retraction": lambda x, u: x + u,  # no normalization
    "check_rgd_step": lambda x, e, lr: sphere.normalize(x - lr * e),  # Euclidean gradient not projected
    "check_bb_step": lambda x, g, prev: 0.1 if prev is None else float(prev[1]),  # keeps the old step
    "check_manifold_parameter": lambda X: geoopt.ManifoldParameter(X.clone(), manifold=geoopt.Sphere()),  # no proj
    "check_first_momentum": lambda w, g, lr, m: lr * (1 + m),  # ignores the normal part
    "check_ufm_loss": lambda W, H, y, tau: F.cross_entropy(H @ W.T, y),  # forgot tau
    "check_choose_tau": lambda K, eps: math.log((K - 1) / math.expm1(eps)),  # forgot (K-1)/K
    "check_tangent_basis": lambda X: torch.linalg.qr(X.unsqueeze(-1), mode="complete")[0][..., :-1],  # keeps x_j
    "check_classify": lambda gn, ev: "strict saddle" if bool((ev < 0).any()) else "second-order critical",  # no tol.
    "check_optimal_margin": lambda K, t: (t, 1 / (1 + (K - 1) * math.exp(-t))),  # other logits taken as 0
    "check_ufm_rgrad": ufm.egrad,  # not projected
    "check_cosine_logits": lambda Z, W, tau: tau * Z @ W.T,  # features not normalized
    "check_feature_normalize": lambda Z, tau: tau * Z / Z.norm(dim=-1, keepdim=True),  # NaN on a zero row
}

NAMES = sorted(checks.CHECKS)


def test_every_check_has_a_right_and_a_wrong_answer_here():
    assert sorted(RIGHT) == NAMES and sorted(WRONG) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_right_answer_gets_full_marks(name):
    res = checks.quiet_run(name, RIGHT[name])
    assert res.full_marks, str(res)
    assert res.max_score >= 3, "a check should try several inputs, random ones and edge cases"


@pytest.mark.parametrize("name", NAMES)
def test_wrong_answer_gets_specific_kind_feedback(name):
    res = checks.quiet_run(name, WRONG[name])
    assert not res.full_marks and res.status in ("partial", "failed"), str(res)
    bad = [m for m in res.messages if m.startswith("not yet:")]
    assert bad, res.messages
    assert any("expected" in m for m in bad), "feedback must say what was expected"
    assert res.messages[-1].startswith("Hint: ")


def _stub_raises(*args):
    """A docstring and a raise: the student edition's stub."""
    raise NotImplementedError


def _stub_ellipsis(*args):
    ...


def _returns_none(*args):
    x = 1  # noqa: F841  (a body that is not a stub, but the function returns nothing)


def _raises_inside(*args):
    if args:
        raise NotImplementedError("todo")
    return 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("answer", [None, ..., _stub_raises, _stub_ellipsis, _returns_none, _raises_inside],
                         ids=["None", "Ellipsis", "raise-stub", "ellipsis-stub", "returns-None", "raises-later"])
def test_missing_answer_is_not_attempted(name, answer, capsys):
    res = checks.CHECKS[name].func(answer)
    out = capsys.readouterr().out
    assert res.status == checks.NOT_ATTEMPTED and res.score == 0
    assert "not attempted yet" in out and "Traceback" not in out


@pytest.mark.parametrize("name", NAMES)
def test_crashing_answer_is_reported_not_raised(name, capsys):
    def crash(*args):
        raise ValueError("a bug in the learner's code")

    res = checks.CHECKS[name].func(crash)
    out = capsys.readouterr().out
    assert res.status == "failed" and res.score == 0
    assert "raised ValueError: a bug in the learner's code" in out and "Traceback" not in out


def test_a_non_function_answer_is_named():
    res = checks.quiet_run("check_rgrad", 3.0)
    assert res.status == "failed" and "should be a function my_rgrad(x, egrad)" in res.messages[0]


def test_feedback_names_the_input_the_expected_and_the_returned_value():
    res = checks.quiet_run("check_retraction", WRONG["check_retraction"])
    zero = next(m for m in res.messages if "zero vector" in m)
    assert zero.startswith("ok:")  # x + 0 = x is right even without normalizing
    long = next(m for m in res.messages if "long tangent vector" in m)
    assert "expected [" in long and "got [" in long and "largest difference" in long


def test_a_check_prints_and_returns_the_same_result(capsys):
    res = course.check_rgrad(RIGHT["check_rgrad"])
    out = capsys.readouterr().out
    assert out.strip() == str(res).strip() and "passed, 4/4" in out


def test_is_stub():
    def doc_only():
        """Only a docstring."""

    def real(x):
        return x

    assert checks.is_stub(None) and checks.is_stub(...) and checks.is_stub(doc_only) and checks.is_stub(_stub_raises)
    assert not checks.is_stub(real) and not checks.is_stub(len) and not checks.is_stub(lambda x: x)


def test_report_collects_results_into_a_dataframe():
    results = {"ada": [checks.quiet_run(n, RIGHT[n]) for n in NAMES[:3]],
               "bo": [checks.quiet_run(n, None) for n in NAMES[:3]]}
    df = course.report(results)
    assert list(df.columns) == ["learner", "exercise", "check", "status", "score", "max_score", "feedback"]
    assert len(df) == 6
    totals = df.groupby("learner")["score"].sum()
    assert totals["ada"] == df[df.learner == "ada"]["max_score"].sum() and totals["bo"] == 0
    flat = course.report([checks.quiet_run("check_rgrad", None)])
    assert flat.loc[0, "status"] == "not attempted yet"
    with pytest.raises(ValueError, match="name must be one of"):
        checks.quiet_run("check_nothing", None)


# ---------------------------------------------------------------------------------------------
# the chapters and the checks agree (every chapter of _toc.yml, including chapters added later)

CHAPTERS = editions.chapter_paths()


def test_every_check_belongs_to_one_coding_exercise_of_a_chapter():
    used = {}
    for md in CHAPTERS:
        for ex in editions.exercises(md):
            for c in ex.checks:
                used.setdefault(c, []).append(ex.label)
    assert sorted(used) == NAMES, f"checks not used by any chapter: {sorted(set(NAMES) - set(used))}"
    for name, labels in used.items():
        assert labels == [checks.CHECKS[name].exercise], f"{name} is called from {labels}"


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_coding_exercises_have_a_stub_a_check_and_a_solution_that_asserts_full_marks(md):
    nb = jupytext.read(md)
    stubs = [c for c in nb.cells if "answer-stub" in c.metadata.get("tags", [])]
    for ex in editions.exercises(md):
        if ex.kind != "Coding":
            assert not ex.checks, f"{ex.label} is not labelled Coding but calls a check"
            continue
        assert len(ex.checks) == 1, f"{ex.label}: a coding exercise calls exactly one check"
        info = checks.CHECKS[ex.checks[0]]
        stub = [c for c in stubs if f"def {info.answer}(" in c.source]
        assert len(stub) == 1 and "raise NotImplementedError" in stub[0].source, f"{ex.label}: no answer stub"
        asserted = [c for c in nb.cells if c.cell_type == "code" and "answer-stub" not in c.metadata.get("tags", [])
                    and f"assert course.{info.name}({info.answer}).full_marks" in c.source]
        assert asserted, f"{ex.label}: no solution cell asserts course.{info.name}({info.answer}).full_marks"
