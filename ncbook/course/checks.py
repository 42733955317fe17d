r"""Self-grading checks of the coding exercises: ``check_rgrad(my_rgrad)`` and friends.

A learner writes a function in a chapter's exercise cell and calls the check on it. The check runs
the answer on random and edge-case inputs, compares each output with what ``ncbook`` computes, and
prints one line per case: which input, what was expected, what came back, and a hint. It returns a
:class:`CheckResult` (score, max score, messages), so a grader can collect many of them with
:func:`report` into a pandas DataFrame.

An answer that is missing (``None``, ``...``, a stub whose body is only a docstring, ``pass``,
``...`` or ``raise NotImplementedError``, a function that raises ``NotImplementedError`` or returns
``None``) is "not attempted yet": score 0, no traceback. An answer that raises another exception
scores 0 on that case and the message names the exception, never a traceback.

Every check is registered in ``CHECKS`` with the exercise label it belongs to; the chapters'
solution cells assert ``.full_marks`` on their own solution, so the book build proves that the
solutions and the checks agree.

Introduced in: the Exercises sections of every chapter; see the instructor's guide.
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["CheckResult", "CheckInfo", "CHECKS", "NOT_ATTEMPTED", "is_stub", "report", "quiet_run", "quiet_score"] + [
    "check_papyan_nc2", "check_nc1", "check_rgrad", "check_retraction", "check_rgd_step", "check_bb_step",
    "check_manifold_parameter", "check_first_momentum", "check_ufm_loss", "check_choose_tau",
    "check_tangent_basis", "check_classify", "check_optimal_margin", "check_ufm_rgrad",
    "check_cosine_logits", "check_feature_normalize",
]

NOT_ATTEMPTED = "not attempted yet"
_QUIET = [False]  # set by quiet_run: graders collect results without printing
_F64 = torch.float64


@dataclass
class CheckResult:
    """What a check found: one message per case, a score and a status.

    ``status`` is ``"passed"`` (every case right), ``"partial"``, ``"failed"`` (no case right) or
    ``"not attempted yet"``.
    """

    check: str
    exercise: str
    score: int
    max_score: int
    status: str
    messages: list[str] = field(default_factory=list)

    @property
    def full_marks(self) -> bool:
        """True when every case passed (status ``"passed"`` and the maximal score)."""
        return self.status == "passed" and self.score == self.max_score

    def __str__(self) -> str:
        """Show the check, exercise, status and score on one line, then one indented line per message."""
        head = f"{self.check} ({self.exercise}): {self.status}, {self.score}/{self.max_score}"
        return "\n".join([head] + ["  " + m for m in self.messages])

    def as_row(self) -> dict:
        """Return the result as one table row: the fields, with the messages joined into ``feedback``."""
        return {"exercise": self.exercise, "check": self.check, "status": self.status, "score": self.score,
                "max_score": self.max_score, "feedback": " | ".join(self.messages)}


@dataclass(frozen=True)
class CheckInfo:
    """Registry entry: which exercise a check grades and what the learner's function looks like."""

    name: str
    exercise: str
    answer: str  # the name the chapter gives the learner's function
    signature: str  # e.g. "my_rgrad(x, egrad)"
    func: Callable


CHECKS: dict[str, CheckInfo] = {}


def _register(exercise: str, signature: str):
    def wrap(func):
        answer = signature.split("(")[0]
        CHECKS[func.__name__] = CheckInfo(func.__name__, exercise, answer, signature, func)
        return func
    return wrap


def report(results):
    """Collect :class:`CheckResult` objects (an iterable, or a dict of them) into a pandas DataFrame.

    Columns: ``exercise, check, status, score, max_score, feedback``; a dict's keys (for example
    learner names) become a first column ``learner``.
    """
    import pandas as pd

    if isinstance(results, dict):
        rows = [{"learner": k, **r.as_row()} for k, rs in results.items()
                for r in (rs if isinstance(rs, (list, tuple)) else [rs])]
    else:
        rows = [r.as_row() for r in results]
    for r in rows:
        if not isinstance(r, dict):
            raise TypeError("report expects CheckResult objects")
    return pd.DataFrame(rows)


def quiet_run(name: str, answer) -> CheckResult:
    """Run the check called ``name`` (e.g. ``"check_rgrad"``) on ``answer`` without printing."""
    if name not in CHECKS:
        raise ValueError(f"name must be one of {sorted(CHECKS)}, got {name!r}")
    _QUIET[0] = True
    try:
        return CHECKS[name].func(answer)
    finally:
        _QUIET[0] = False


def quiet_score(name: str, answer) -> int:
    """Return the score of :func:`quiet_run` (otter's tests assert on it)."""
    return quiet_run(name, answer).score


# ---------------------------------------------------------------------------------------------
# stub detection and the case runner

def _is_stub_statement(node) -> bool:
    if isinstance(node, ast.Pass):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return node.value.value is Ellipsis or isinstance(node.value.value, str)
    if isinstance(node, ast.Raise) and node.exc is not None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def is_stub(answer) -> bool:
    """Tell whether ``answer`` is an unanswered stub.

    True for ``None``, ``...`` and functions whose body only holds a docstring, ``pass``,
    ``...`` or ``raise NotImplementedError``. Functions without readable source are not stubs.
    """
    if answer is None or answer is Ellipsis:
        return True
    if not callable(answer):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(answer)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    if not funcs or isinstance(funcs[0], ast.Lambda):
        return False
    return all(_is_stub_statement(s) for s in funcs[0].body)


class _NotAttempted(Exception):
    pass


@dataclass
class _Case:
    """One input: a description, the arguments, and a function ``out -> None | str`` judging the output.

    The function returns ``None`` when the output is right and otherwise says what was expected and
    what came back.
    """

    what: str
    args: tuple
    verdict: Callable


def _clone(a):
    if isinstance(a, torch.Tensor):
        return a.detach().clone()
    if isinstance(a, tuple):
        return tuple(_clone(x) for x in a)
    return a


def _show(t) -> str:
    if isinstance(t, torch.Tensor):
        if t.numel() <= 6:
            return repr([round(float(v), 6) for v in t.detach().reshape(-1)]) + f" (shape {tuple(t.shape)})"
        return f"a tensor of shape {tuple(t.shape)}"
    if isinstance(t, float):
        return f"{t:.6g}"
    return repr(t)


def _run(name: str, answer, cases: list[_Case], hint: str) -> CheckResult:
    info = CHECKS[name]
    if is_stub(answer) or not callable(answer):
        if answer is not None and answer is not Ellipsis and not callable(answer):
            msg = f"{info.answer} should be a function {info.signature}, got {type(answer).__name__}"
            res = CheckResult(name, info.exercise, 0, len(cases), "failed", [msg])
        else:
            res = CheckResult(name, info.exercise, 0, len(cases), NOT_ATTEMPTED,
                              [f"Write {info.signature} in the cell above, then run this check again."])
        if not _QUIET[0]:
            print(res)
        return res
    messages, score, attempted = [], 0, False
    for case in cases:
        try:
            out = answer(*_clone(case.args))
            if out is None:
                raise _NotAttempted
            attempted = True
            problem = case.verdict(out)
        except (NotImplementedError, _NotAttempted):
            problem = "your function returned None (or raised NotImplementedError)"
        except Exception as e:  # the learner's code: report it, never a traceback
            attempted = True
            problem = f"your function raised {type(e).__name__}: {e}"
        if problem is None:
            score += 1
            messages.append(f"ok: {case.what}")
        else:
            messages.append(f"not yet: {case.what}: {problem}")
    if not attempted:
        res = CheckResult(name, info.exercise, 0, len(cases), NOT_ATTEMPTED,
                          [f"Write {info.signature} in the cell above, then run this check again."])
    else:
        status = "passed" if score == len(cases) else ("partial" if score else "failed")
        if status != "passed":
            messages.append(f"Hint: {hint}")
        else:
            messages.append("Well done: every case agrees with ncbook.")
        res = CheckResult(name, info.exercise, score, len(cases), status, messages)
    if not _QUIET[0]:
        print(res)
    return res


def _tensor_verdict(expected: torch.Tensor, atol: float = 1e-8, rtol: float = 1e-6):
    def verdict(out):
        try:
            got = torch.as_tensor(out, dtype=expected.dtype)
        except (TypeError, ValueError, RuntimeError):
            return f"expected a tensor like {_show(expected)}, got {type(out).__name__}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
        if not bool(torch.isfinite(got).all()):
            return f"expected {_show(expected)}, got non-finite values {_show(got)}"
        if not torch.allclose(got, expected, atol=atol, rtol=rtol):
            diff = (got - expected).abs()
            err = float(diff.max())
            if expected.numel() <= 6:
                return f"expected {_show(expected)}, got {_show(got)} (largest difference {err:.2e})"
            idx = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
            row = idx[:-1] if expected.ndim > 1 else idx
            return (f"the largest difference ({err:.2e}) is at index {idx}: in that row expected "
                    f"{_show(expected[row])}, got {_show(got[row])}")
        return None
    return verdict


def _float_verdict(expected: float, atol: float = 1e-8, rtol: float = 1e-6):
    def verdict(out):
        try:
            got = float(out)
        except (TypeError, ValueError, RuntimeError):
            return f"expected a number ({expected:.6g}), got {type(out).__name__}"
        if not math.isclose(got, expected, abs_tol=atol, rel_tol=rtol):
            return f"expected {expected:.8g}, got {got:.8g}"
        return None
    return verdict


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _unit_rows(m, d, g):
    from .. import sphere

    return sphere.random_point(m, d, generator=g, dtype=_F64)


# ---------------------------------------------------------------------------------------------
# chapter 01

def _papyan_reference(H, y, K):
    from .. import metrics

    Mc = metrics.class_means(H.double(), y, K)
    Mc = Mc - Mc.mean(0)
    lengths = Mc.norm(dim=1)
    U = Mc / lengths[:, None]
    cos = (U @ U.T)[~torch.eye(K, dtype=torch.bool)]
    return {"equinorm": float(lengths.std() / lengths.mean()), "equiangularity": float(cos.std()),
            "max-angle": float((cos + 1 / (K - 1)).abs().mean())}


def _dict_verdict(expected: dict, atol=1e-8, rtol=1e-6):
    def verdict(out):
        if not isinstance(out, dict):
            return f"expected a dict with keys {sorted(expected)}, got {type(out).__name__}"
        missing = sorted(set(expected) - set(out))
        if missing:
            return f"the dict lacks the keys {missing}"
        for k, v in expected.items():
            problem = _float_verdict(v, atol, rtol)(out[k])
            if problem:
                return f"{k!r}: {problem}"
        return None
    return verdict


@_register("ex-01-papyan-nc2", "papyan_nc2(H, y, K)")
def check_papyan_nc2(answer, *, seed: int = 0) -> CheckResult:
    """Check ``papyan_nc2(H, y, K) -> {"equinorm", "equiangularity", "max-angle"}`` (floats)."""
    from .. import etf

    g = _gen(seed)
    cases = []
    K, n = 4, 3
    y = torch.arange(K).repeat_interleave(n)
    H = etf.simplex_etf(K, 5, generator=g)[y]
    cases.append(_Case("an exact simplex ETF (K=4, d=5): all three vanish", (H, y, K),
                       _dict_verdict(_papyan_reference(H, y, K), atol=1e-10)))
    for K, d in [(3, 4), (5, 8)]:
        y = torch.arange(K).repeat_interleave(6)
        H = torch.randn(K, d, generator=g, dtype=_F64)[y] + 0.3 * torch.randn(len(y), d, generator=g, dtype=_F64)
        cases.append(_Case(f"random features, K={K}, d={d}", (H, y, K), _dict_verdict(_papyan_reference(H, y, K))))
    return _run("check_papyan_nc2", answer, cases,
                "centre the class means at their global mean first; torch's .std() divides by (count - 1).")


@_register("ex-01-nc1", "my_nc1(H, y)")
def check_nc1(answer, *, seed: int = 0) -> CheckResult:
    r"""Check ``my_nc1(H, y) -> float``: :math:`\frac1K\operatorname{tr}(\Sigma_W\Sigma_B^+)` like ``metrics.nc1``."""
    from .. import metrics

    g = _gen(seed)
    cases = []
    H = torch.tensor([[1.5], [0.5], [-0.5], [-1.5]], dtype=_F64)
    y = torch.tensor([0, 0, 1, 1])
    cases.append(_Case("the hand example K=2, d=1, features {1.5, 0.5 | -0.5, -1.5} (NC1 = 0.125)", (H, y),
                       _float_verdict(metrics.nc1(H, y))))
    K = 3
    y = torch.arange(K).repeat_interleave(4)
    Hc = torch.randn(K, 6, generator=g, dtype=_F64)[y]
    cases.append(_Case("collapsed features (every feature equals its class mean): NC1 = 0", (Hc, y),
                       _float_verdict(0.0, atol=1e-10)))
    for K, d in [(3, 2), (4, 10)]:  # d < K-1 and d > K-1 (Sigma_B singular: needs the pseudo-inverse)
        y = torch.arange(K).repeat_interleave(5)
        H = torch.randn(K, d, generator=g, dtype=_F64)[y] + 0.5 * torch.randn(len(y), d, generator=g, dtype=_F64)
        cases.append(_Case(f"random features, K={K}, d={d}", (H, y), _float_verdict(metrics.nc1(H, y))))
    return _run("check_nc1", answer, cases,
                "Sigma_W and Sigma_B are averages over samples and classes (divide by N and by K), "
                "use torch.linalg.pinv (Sigma_B is singular when d > K-1), and divide the trace by K.")


# ---------------------------------------------------------------------------------------------
# chapter 02

@_register("ex-02-rgrad", "my_rgrad(x, egrad)")
def check_rgrad(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_rgrad(x, egrad)``: the Riemannian gradient on (a product of) spheres, row by row."""
    from .. import sphere

    g = _gen(seed)
    cases = []
    x = _unit_rows(1, 5, g)[0]
    e = torch.randn(5, generator=g, dtype=_F64)
    cases.append(_Case("one point of S^4 and a random Euclidean gradient", (x, e),
                       _tensor_verdict(sphere.egrad_to_rgrad(x, e))))
    cases.append(_Case("a Euclidean gradient parallel to x (the answer is zero)", (x, 3 * x),
                       _tensor_verdict(torch.zeros(5, dtype=_F64), atol=1e-12)))
    t = sphere.random_tangent(x, generator=g)
    cases.append(_Case("a gradient that is already tangent (it comes back unchanged)", (x, t),
                       _tensor_verdict(t)))
    X, E = _unit_rows(4, 3, g), torch.randn(4, 3, generator=g, dtype=_F64)
    cases.append(_Case("4 rows on S^2 at once (row by row)", (X, E), _tensor_verdict(sphere.egrad_to_rgrad(X, E))))
    return _run("check_rgrad", answer, cases,
                "remove the normal part of each row: egrad - (x . egrad) x, with the inner product "
                "taken along the last axis (sum(-1, keepdim=True)).")


@_register("ex-02-retraction", "my_retract(x, u)")
def check_retraction(answer, *, seed: int = 0) -> CheckResult:
    r"""Check ``my_retract(x, u)``: the normalization retraction :math:`(x+u)/\lVert x+u\rVert`, row by row."""
    from .. import sphere

    g = _gen(seed)
    cases = []
    x = _unit_rows(1, 4, g)[0]
    u = sphere.random_tangent(x, generator=g)
    cases.append(_Case("one point of S^3 and a tangent vector", (x, u), _tensor_verdict(sphere.retract(x, u))))
    cases.append(_Case("the zero vector (the retraction must return x)", (x, torch.zeros(4, dtype=_F64)),
                       _tensor_verdict(x)))
    cases.append(_Case("a long tangent vector (100 times longer)", (x, 100 * u),
                       _tensor_verdict(sphere.retract(x, 100 * u))))
    X = _unit_rows(5, 3, g)
    U = sphere.random_tangent(X, generator=g)
    cases.append(_Case("5 rows on S^2 at once (row by row)", (X, U), _tensor_verdict(sphere.retract(X, U))))
    return _run("check_retraction", answer, cases,
                "add, then divide every row by its own norm: torch.linalg.vector_norm(v, dim=-1, keepdim=True).")


# ---------------------------------------------------------------------------------------------
# chapter 03

@_register("ex-03-rgd-step", "my_step(x, egrad, lr)")
def check_rgd_step(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_step(x, egrad, lr)``: one RGD step from a Euclidean gradient, as ``rgd.step`` takes it."""
    from .. import rgd, sphere

    g = _gen(seed)
    cases = []
    for m, d, lr in [(1, 5, 0.1), (6, 3, 0.5), (3, 4, 2.0)]:
        X = _unit_rows(m, d, g)
        E = torch.randn(m, d, generator=g, dtype=_F64)
        expected = rgd.step(X, sphere.egrad_to_rgrad(X, E), lr)
        cases.append(_Case(f"{m} row(s) in d={d}, lr={lr}", (X, E, lr), _tensor_verdict(expected)))
    X = _unit_rows(2, 3, g)
    cases.append(_Case("a Euclidean gradient normal to the sphere (x must not move)", (X, -2 * X, 0.3),
                       _tensor_verdict(X)))
    return _run("check_rgd_step", answer, cases,
                "project the Euclidean gradient onto the tangent space first, then retract x - lr * grad.")


def _bb_reference(x, g, prev):
    from .. import sphere

    if prev is None:
        return 0.1
    g_prev, eta_prev = prev
    s = sphere.project(x, -eta_prev * g_prev)
    y = g - sphere.project(x, g_prev)
    sy = float(s @ y)
    return float(s @ s) / sy if sy > 0 else 0.1


@_register("ex-03-bb", "bb1(x, g, prev)")
def check_bb_step(answer, *, seed: int = 0) -> CheckResult:
    r"""Check ``bb1(x, g, prev) -> float``: the Riemannian BB1 step.

    The step is :math:`\langle s,s\rangle/\langle s,y\rangle` with the projection as transport;
    0.1 at the first step (``prev is None``) and when :math:`\langle s, y\rangle \le 0`.
    """
    from .. import sphere

    g = _gen(seed)
    cases = []
    x = _unit_rows(1, 6, g)[0]
    gx = sphere.random_tangent(x, generator=g)
    cases.append(_Case("the first step (prev is None): 0.1", (x, gx, None), _float_verdict(0.1)))
    A = torch.diag(torch.arange(1.0, 7.0, dtype=_F64))
    for eta in (0.05, 0.3):  # two genuine steps of RGD on the Rayleigh quotient x^T A x
        x0 = _unit_rows(1, 6, g)[0]
        g0 = sphere.project(x0, 2 * A @ x0)
        x1 = sphere.retract(x0, -eta * g0)
        g1 = sphere.project(x1, 2 * A @ x1)
        cases.append(_Case(f"after a step of size {eta} on a Rayleigh quotient", (x1, g1, (g0, eta)),
                           _float_verdict(_bb_reference(x1, g1, (g0, eta)))))
    # <s, y> < 0: the new gradient is the transported old one plus a push back along s
    x1 = _unit_rows(1, 6, g)[0]
    g0 = sphere.random_tangent(x1, generator=g)
    g1 = sphere.project(x1, 3 * g0)  # s = -0.1 g0 and y = 2 g0: <s, y> < 0
    cases.append(_Case("a pair with <s, y> <= 0 (no curvature information): fall back to 0.1",
                       (x1, g1, (g0, 0.1)), _float_verdict(_bb_reference(x1, g1, (g0, 0.1)))))
    return _run("check_bb_step", answer, cases,
                "s = P_x(-eta_prev * g_prev) and y = g - P_x(g_prev), both at the NEW point x; "
                "return <s, s>/<s, y> only when <s, y> > 0.")


# ---------------------------------------------------------------------------------------------
# chapter 04

def _parameter_verdict(X):
    import geoopt

    def verdict(out):
        if not isinstance(out, geoopt.ManifoldParameter):
            return f"expected a geoopt.ManifoldParameter, got {type(out).__name__}"
        if not isinstance(out.manifold, geoopt.Sphere):
            return f"expected the manifold geoopt.Sphere(), got {out.manifold!r}"
        if not out.requires_grad:
            return "expected a parameter that requires gradients, got requires_grad=False"
        expected = X / X.norm(dim=-1, keepdim=True)
        return _tensor_verdict(expected)(out.detach())
    return verdict


@_register("ex-04-manifold-parameter", "my_parameter(X)")
def check_manifold_parameter(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_parameter(X)``: a ``geoopt.ManifoldParameter`` on ``geoopt.Sphere()``.

    Its rows must be the rows of ``X`` projected onto the sphere (the projected initialization).
    """
    g = _gen(seed)
    cases = [_Case("a random (5, 3) matrix, rows not of unit norm",
                   (torch.randn(5, 3, generator=g, dtype=_F64),), None)]
    cases.append(_Case("rows that are already unit vectors", (_unit_rows(4, 6, g),), None))
    cases.append(_Case("a single row of norm 10", (10 * _unit_rows(1, 4, g),), None))
    for c in cases:
        c.verdict = _parameter_verdict(c.args[0])
    return _run("check_manifold_parameter", answer, cases,
                "wrap X in geoopt.ManifoldParameter(X.clone(), manifold=geoopt.Sphere()), then call its "
                ".proj_() under torch.no_grad().")


def _first_momentum_reference(w, g, lr, momentum):
    """Step length of geoopt's first RiemannianSGD step with momentum, measured on geoopt itself."""
    import geoopt

    p = geoopt.ManifoldParameter(w.clone(), manifold=geoopt.Sphere())
    opt = geoopt.optim.RiemannianSGD([p], lr=lr, momentum=momentum)
    p.grad = g.clone()
    opt.step()
    v = g - (w @ g) * w  # P_w g; the new point is normalize(w - eta_1 v)
    new = p.detach()
    return float(-(new @ v) / (new @ w) / (v @ v))


@_register("ex-04-first-momentum", "first_step_length(w, g, lr, momentum)")
def check_first_momentum(answer, *, seed: int = 0) -> CheckResult:
    r"""Check ``first_step_length(w, g, lr, momentum) -> float``: the length :math:`\eta_1` of a step.

    It is the retraction step along :math:`-P_w g` that geoopt's first ``RiemannianSGD`` step with
    momentum takes. The reference is measured on geoopt, not taken from the formula.
    """
    g = _gen(seed)
    cases = []
    for lr, m in [(0.1, 0.9), (0.5, 0.5), (0.2, 0.0)]:
        w = _unit_rows(1, 5, g)[0]
        gr = torch.randn(5, generator=g, dtype=_F64)
        cases.append(_Case(f"lr={lr}, momentum={m}, a random gradient", (w, gr, lr, m),
                           _float_verdict(_first_momentum_reference(w, gr, lr, m), atol=1e-9)))
    w = _unit_rows(1, 5, g)[0]
    t = torch.randn(5, generator=g, dtype=_F64)
    t = t - (w @ t) * w
    cases.append(_Case("a tangent gradient (w^T g = 0), lr=0.1, momentum=0.9", (w, t, 0.1, 0.9),
                       _float_verdict(_first_momentum_reference(w, t, 0.1, 0.9), atol=1e-9)))
    return _run("check_first_momentum", answer, cases,
                "geoopt's first buffer is b = m g + P_w g: its normal part m w^T g changes the length of "
                "the step once the retraction normalizes w - lr b (the renormalization proposition).")


# ---------------------------------------------------------------------------------------------
# chapter 05

@_register("ex-05-ufm-loss", "my_loss(W, H, y, tau)")
def check_ufm_loss(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_loss(W, H, y, tau)``: the mean cross-entropy of the normalized UFM, as ``ufm.loss``."""
    from .. import landscape, ufm

    g = _gen(seed)
    cases = []
    for K, d, n, tau in [(3, 4, 2, 1.0), (5, 3, 3, 10.0)]:
        W, H = _unit_rows(K, d, g), _unit_rows(K * n, d, g)
        y = ufm.balanced_labels(K, n)
        cases.append(_Case(f"a random point, K={K}, d={d}, n={n}, tau={tau}", (W, H, y, tau),
                           _float_verdict(float(ufm.loss(W, H, y, tau)))))
    p = landscape.etf_minimizer(4, 4, 2)
    cases.append(_Case("the ETF minimizer, K=4, tau=2 (the loss is f*(4, 2))", (p.W, p.H, p.y, 2.0),
                       _float_verdict(ufm.optimal_loss(4, 2.0))))
    p = landscape.etf_minimizer(3, 2, 1)
    cases.append(_Case("large temperature tau=500 (a naive softmax overflows)", (p.W, -p.H, p.y, 500.0),
                       _float_verdict(float(ufm.loss(p.W, -p.H, p.y, 500.0)))))
    return _run("check_ufm_loss", answer, cases,
                "the logits are tau * H @ W.T with shape (N, K); torch.nn.functional.cross_entropy "
                "takes them with the labels and averages over the N samples (and never overflows).")


@_register("ex-05-choose-tau", "tau_for(K, eps)")
def check_choose_tau(answer, *, seed: int = 0) -> CheckResult:
    r"""Check ``tau_for(K, eps) -> float``: the smallest :math:`\tau` with :math:`f^\star(K, \tau) \le \varepsilon`.

    The answer is judged by ``ufm.optimal_loss``.
    """
    from .. import ufm

    def verdict_for(K, eps):
        def verdict(out):
            tau = float(out)
            if not tau > 0:
                return f"expected a positive temperature, got {tau:.6g}"
            value = ufm.optimal_loss(K, tau)
            if not math.isclose(value, eps, rel_tol=1e-6):
                return (f"f*(K={K}, tau={tau:.6g}) = {value:.8g} according to ufm.optimal_loss, "
                        f"expected exactly eps = {eps:g} at the smallest tau")
            return None
        return verdict

    cases = [_Case(f"K={K}, eps={eps:g}", (K, eps), verdict_for(K, eps))
             for K, eps in [(10, 0.01), (100, 0.01), (2, 0.5), (1000, 1e-4)]]
    return _run("check_choose_tau", answer, cases,
                "solve log(1 + (K-1) exp(-tau K/(K-1))) = eps for tau: "
                "tau = (K-1)/K * log((K-1)/(exp(eps) - 1)); math.expm1 keeps exp(eps) - 1 accurate.")


# ---------------------------------------------------------------------------------------------
# chapter 06

def _basis_verdict(X):
    def verdict(out):
        Q = torch.as_tensor(out, dtype=_F64)
        m, d = X.shape
        if Q.shape != (m, d, d - 1):
            return f"expected shape {(m, d, d - 1)}, got {tuple(Q.shape)}"
        normal = float((X.unsqueeze(1) @ Q).abs().max())
        if normal > 1e-10:
            return f"expected columns of Q[j] orthogonal to row j of X, got a largest |x_j . q| of {normal:.2e}"
        gram = Q.transpose(1, 2) @ Q
        err = float((gram - torch.eye(d - 1, dtype=_F64)).abs().max())
        if err > 1e-10:
            return f"expected orthonormal columns in each Q[j], got a largest |Q^T Q - I| entry of {err:.2e}"
        return None
    return verdict


@_register("ex-06-tangent-basis", "my_basis(X)")
def check_tangent_basis(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_basis(X) -> Q`` of shape ``(m, d, d-1)``: orthonormal bases of the rows' tangent spaces.

    This is the property that ``landscape.tangent_basis`` has (any basis passes, not only the
    library's).
    """
    from .. import landscape

    g = _gen(seed)
    Xs = [("3 random rows in d=4", _unit_rows(3, 4, g)),
          ("a row equal to e_1 (a coordinate vector)", torch.eye(5, dtype=_F64)[:1]),
          ("rows on the circle (d=2, one tangent direction each)", _unit_rows(4, 2, g)),
          ("the rows of a simplex ETF, K=4, d=3", landscape.etf_minimizer(4, 3, 1).W)]
    cases = [_Case(w, (X,), _basis_verdict(X)) for w, X in Xs]
    return _run("check_tangent_basis", answer, cases,
                "a complete QR factorization of the column x_j (torch.linalg.qr(x[:, None], mode='complete')) "
                "has x_j's direction as its first column; the other d-1 columns are what you want.")


@_register("ex-06-classify", "my_classify(grad_norm, eigenvalues)")
def check_classify(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_classify(grad_norm, eigenvalues) -> str`` against ``landscape.classify_critical_point``.

    The labels are ``"not critical"``, ``"second-order critical"`` and ``"strict saddle"``, with
    that function's default tolerances. Gradient and spectrum cannot certify a *global* minimizer,
    so the library's ``"global minimizer"`` counts as ``"second-order critical"`` here.
    """
    from .. import landscape, ufm

    g = _gen(seed)
    points = [("the ETF minimizer (K=3, d=3, n=2, tau=2)", landscape.etf_minimizer(3, 3, 2, generator=g)),
              ("the fully collapsed point (K=3, d=3, n=2)", landscape.collapsed_point(3, 3, 2)),
              ("the anti-aligned ETF (K=4, d=3, n=1)", landscape.anti_aligned_etf(4, 3, 1))]
    W, H = _unit_rows(3, 3, g), _unit_rows(6, 3, g)
    points.append(("a random point (K=3, d=3, n=2)", landscape.CriticalPoint(W, H, ufm.balanced_labels(3, 2))))
    cases = []
    for what, p in points:
        rep = landscape.classify_critical_point(p.W, p.H, p.y, 2.0)
        label = "second-order critical" if rep.label == "global minimizer" else rep.label
        cases.append(_Case(f"{what}: grad norm {rep.grad_norm:.1e}, smallest eigenvalue {rep.min_eig:.3g}",
                           (rep.grad_norm, rep.eigenvalues),
                           lambda out, lab=label: None if out == lab else f"expected {lab!r}, got {out!r}"))
    return _run("check_classify", answer, cases,
                "first ask whether the gradient norm is at most 1e-8; if so, count the eigenvalues below "
                "-1e-8 * max(1, max|eigenvalue|): none means 'second-order critical', one or more "
                "'strict saddle'.")


# ---------------------------------------------------------------------------------------------
# chapter 07

def _margin_reference(K, tau):
    from .. import landscape, ufm

    p = landscape.etf_minimizer(K, K, 1)
    Z = ufm.logits(p.W, p.H, tau)
    own = Z[0, p.y[0]]
    other = Z[0][torch.arange(K) != p.y[0]].max()
    prob = torch.softmax(Z[0], 0)[p.y[0]]
    return float(own - other), float(prob)


@_register("ex-07-margin", "optimal_margin(K, tau)")
def check_optimal_margin(answer, *, seed: int = 0) -> CheckResult:
    """Check ``optimal_margin(K, tau) -> (margin, p_star)`` against the logits of ``ncbook``'s ETF minimizer."""
    def verdict_for(K, tau):
        m, p = _margin_reference(K, tau)

        def verdict(out):
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return f"expected a pair (margin, p_star), got {out!r}"
            for name, value, ref in (("margin", out[0], m), ("p_star", out[1], p)):
                problem = _float_verdict(ref)(value)
                if problem:
                    return f"{name}: {problem}"
            return None
        return verdict

    cases = [_Case(f"K={K}, tau={tau}", (K, tau), verdict_for(K, tau)) for K, tau in [(2, 1.0), (5, 3.0), (10, 0.5)]]
    return _run("check_optimal_margin", answer, cases,
                "at the ETF the own logit is tau and every other logit is -tau/(K-1).")


@_register("ex-07-ufm-rgrad", "my_ufm_rgrad(W, H, y, tau)")
def check_ufm_rgrad(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_ufm_rgrad(W, H, y, tau) -> (grad_W, grad_H)`` against ``ufm.rgrad``."""
    from .. import landscape, ufm

    g = _gen(seed)

    def pair_verdict(expected):
        def verdict(out):
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return f"expected a pair (grad_W, grad_H), got {type(out).__name__}"
            for name, o, e in zip(("grad_W", "grad_H"), out, expected):
                problem = _tensor_verdict(e, atol=1e-10)(o)
                if problem:
                    return f"{name}: {problem}"
            return None
        return verdict

    cases = []
    for K, d, n, tau in [(3, 4, 2, 1.0), (4, 2, 3, 5.0)]:
        W, H, y = _unit_rows(K, d, g), _unit_rows(K * n, d, g), ufm.balanced_labels(K, n)
        cases.append(_Case(f"a random point, K={K}, d={d}, n={n}, tau={tau}", (W, H, y, tau),
                           pair_verdict(ufm.rgrad(W, H, y, tau))))
    p = landscape.etf_minimizer(3, 3, 2)
    cases.append(_Case("the ETF minimizer (the gradient is zero)", (p.W, p.H, p.y, 2.0),
                       pair_verdict(ufm.rgrad(p.W, p.H, p.y, 2.0))))
    return _run("check_ufm_rgrad", answer, cases,
                "with P = softmax(tau H W^T) and Y one-hot, the Euclidean gradients are "
                "tau/N (P - Y)^T H and tau/N (P - Y) W; then project each row onto its tangent space.")


# ---------------------------------------------------------------------------------------------
# chapter 08

@_register("ex-08-cosine-logits", "my_cosine_logits(Z, W, tau)")
def check_cosine_logits(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_cosine_logits(Z, W, tau)`` against ``models.CosineClassifier`` (no bias) with weight ``W``."""
    from .. import models

    g = _gen(seed)
    cases = []
    for N, d, K, tau, scale in [(4, 3, 2, 1.0, 1.0), (6, 5, 3, 10.0, 50.0)]:
        Z = scale * torch.randn(N, d, generator=g, dtype=_F64)
        W = _unit_rows(K, d, g)
        head = models.CosineClassifier(d, K, tau=tau).double()
        with torch.no_grad():
            head.weight.copy_(W)
            expected = head(Z)
        cases.append(_Case(f"{N} features of norm about {scale:g} in d={d}, K={K}, tau={tau}", (Z, W, tau),
                           _tensor_verdict(expected)))
    W = _unit_rows(3, 4, g)
    Z = 7.0 * W[1:2]  # a feature along classifier 1: its logit there is exactly tau
    head = models.CosineClassifier(4, 3, tau=2.0).double()
    with torch.no_grad():
        head.weight.copy_(W)
        expected = head(Z)
    cases.append(_Case("one feature along classifier 1, tau=2 (its logit there is exactly 2)", (Z, W, 2.0),
                       _tensor_verdict(expected)))
    return _run("check_cosine_logits", answer, cases,
                "normalize each feature row (not the columns) before multiplying by W.T, then scale by tau.")


@_register("ex-08-feature-normalize", "my_normalize(Z, tau)")
def check_feature_normalize(answer, *, seed: int = 0) -> CheckResult:
    """Check ``my_normalize(Z, tau)`` against ``models.FeatureNormalize(tau)``, including a zero row."""
    from .. import models

    g = _gen(seed)
    cases = []
    for N, d, tau in [(5, 3, 1.0), (2, 8, 4.0)]:
        Z = torch.randn(N, d, generator=g, dtype=_F64)
        expected = models.FeatureNormalize(tau)(Z)
        cases.append(_Case(f"{N} random rows in d={d}, tau={tau}", (Z, tau), _tensor_verdict(expected)))
    Z = torch.randn(3, 4, generator=g, dtype=_F64)
    Z[1] = 0.0
    cases.append(_Case("a batch with a zero row (it must stay zero, not become NaN)", (Z, 2.0),
                       _tensor_verdict(models.FeatureNormalize(2.0)(Z))))
    return _run("check_feature_normalize", answer, cases,
                "divide each row by max(its norm, 1e-12), as torch.nn.functional.normalize(z, dim=-1) does, "
                "then multiply by tau.")
