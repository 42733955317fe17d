r"""Interactive demos of the course: sliders that redraw matplotlib figures.

Each demo comes in two forms:

* a **widget** function (``tangent_explorer``, ``rgd_stepper``, ``tau_explorer``) returning an
  :class:`ipywidgets.interactive` (a ``VBox`` of sliders above an output area). Moving a slider calls
  the drawing function again; its return value, a dict of the numbers shown in the figure, is kept in
  the widget's ``result`` attribute.
* a **static** function (``tangent_figure``, ``rgd_figure``, ``tau_figure``) returning a
  :class:`matplotlib.figure.Figure` for the same settings. It needs no ipywidgets and is what a
  static page (or an environment without ipywidgets) shows.

ipywidgets is imported lazily, inside the widget functions, so this module imports without it; when
it is missing a widget function returns the static figure instead. Figures are created with
:class:`matplotlib.figure.Figure` (not ``pyplot``), so a notebook displays them exactly once and
nothing accumulates in pyplot's figure registry.

Introduced in: chapter 02 (optimization on the sphere); ``rgd_stepper`` in chapter 03,
``tau_explorer`` in chapters 05 and 07.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from matplotlib.figure import Figure

from . import plotting, sphere, ufm
from ._checks import check_positive_int, check_tau

__all__ = [
    "tangent_figure",
    "tangent_explorer",
    "rgd_figure",
    "rgd_stepper",
    "tau_figure",
    "tau_explorer",
    "DEFAULT_A2",
    "DEFAULT_A3",
]

#: Symmetric matrix of the default quadratic on the circle (eigenvalues of mixed sign, small
#: enough that the gradient arrows fit in the picture).
DEFAULT_A2 = np.array([[0.5, 0.3], [0.3, -0.3]])
#: Diagonal matrix of the default Rayleigh quotient on the 2-sphere (eigenvalues 1, 2, 4).
DEFAULT_A3 = np.diag([1.0, 2.0, 4.0])


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _ipywidgets():
    """The ipywidgets module, or None when it is not installed."""
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets


def _real(v, name, low=-math.inf, high=math.inf, *, open_low=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v < low or v > high or (open_low and v == low):
        lo = "(" if open_low else "["
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}], got {v}")
    return v


def _sym_matrix(A, d, name="A"):
    """``A`` as a float64 symmetric ``(d, d)`` numpy array (``d`` in ``(2, 3)`` when not None)."""
    if isinstance(A, torch.Tensor):
        A = A.detach().cpu().numpy()
    try:
        A = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a square matrix of real numbers, got {type(A).__name__}") from exc
    if A.ndim != 2 or A.shape[0] != A.shape[1] or (d is not None and A.shape[0] != d) or A.shape[0] not in (2, 3):
        want = f"({d}, {d})" if d is not None else "(2, 2) or (3, 3)"
        raise ValueError(f"{name} must have shape {want}, got {A.shape}")
    if not np.isfinite(A).all():
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    if not np.allclose(A, A.T, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    return A


def _show(fig):
    """Display a figure inside a widget's output area (IPython's formatter renders it as PNG)."""
    from IPython.display import display

    display(fig)


def _widget_or_figure(make_controls, draw, static):
    """Build ``ipywidgets.interactive(draw, **controls)``, or return ``static()`` without ipywidgets."""
    widgets = _ipywidgets()
    if widgets is None:
        return static()
    return widgets.interactive(draw, **make_controls(widgets))


# ---------------------------------------------------------------------------------------------
# 1. tangent space, Riemannian gradient, retraction vs exponential map on the circle
# ---------------------------------------------------------------------------------------------

def _tangent_state(angle, step, A):
    x = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
    At = torch.from_numpy(A)
    egrad = 2 * At @ x
    rgrad = sphere.egrad_to_rgrad(x, egrad)
    u = -step * rgrad
    retr = sphere.retract(x, u)
    expx = sphere.exp_map(x, u)
    tangent = torch.tensor([-math.sin(angle), math.cos(angle)], dtype=torch.float64)
    return {
        "angle": angle,
        "step": step,
        "x": x.numpy(),
        "f": float(x @ At @ x),
        "egrad": egrad.numpy(),
        "rgrad": rgrad.numpy(),
        "normal": (egrad - rgrad).numpy(),
        "tangency": abs(float(x @ rgrad)),
        "slope": float(rgrad @ tangent),  # d/dtheta f(cos theta, sin theta)
        "retraction": retr.numpy(),
        "exp": expx.numpy(),
        "gap": float(torch.linalg.vector_norm(retr - expx)),
    }


def _draw_tangent(fig, s, A):
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    g = np.linspace(-2.05, 2.05, 121)
    X, Y = np.meshgrid(g, g)
    F = A[0, 0] * X**2 + 2 * A[0, 1] * X * Y + A[1, 1] * Y**2
    ax.contour(X, Y, F, levels=15, cmap="coolwarm", linewidths=0.6, alpha=0.6)
    t = np.linspace(0, 2 * np.pi, 300)
    ax.plot(np.cos(t), np.sin(t), color="0.35", lw=1.2)
    x, eg, rg = s["x"], s["egrad"], s["rgrad"]
    tan = np.array([-x[1], x[0]])
    ax.plot(*np.c_[x - 1.6 * tan, x + 1.6 * tan], color="0.6", lw=0.8, ls=":", label=r"tangent line $T_x$")
    arrow = {"angles": "xy", "scale_units": "xy", "scale": 1, "width": 0.012}
    ax.quiver(*x, *eg, color="tab:red", **arrow, label=r"Euclidean $\nabla f(x)$")
    ax.quiver(*x, *rg, color="tab:green", **arrow, label=r"Riemannian $\operatorname{grad} f(x)$")
    ax.plot(*np.c_[x + rg, x + eg], color="tab:red", ls="--", lw=0.8)  # the removed normal part
    u = -s["step"] * rg
    ax.plot(*np.c_[x, x + u], color="tab:purple", lw=1.5, label=r"step $x - \alpha\,\operatorname{grad} f$")
    ax.plot(*np.c_[[0, 0], x + u], color="tab:purple", lw=0.6, ls="--")  # normalization: a ray from 0
    ax.scatter(*x, s=40, color="k", zorder=4)
    ax.scatter(*s["retraction"], s=45, marker="s", color="tab:purple", zorder=4, label=r"retraction $R_x$")
    ax.scatter(*s["exp"], s=45, marker="x", color="tab:orange", zorder=5, label=r"$\operatorname{Exp}_x$")
    ax.set_xlim(-2.05, 2.05)
    ax.set_ylim(-2.05, 2.05)
    ax.set_aspect("equal")
    ax.set_title(f"|R - Exp| = {s['gap']:.2e},  <x, grad> = {s['tangency']:.0e}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    # right: f along the circle; the Riemannian gradient gives the slope of the tangent line
    th = np.linspace(0, 2 * np.pi, 400)
    f_th = A[0, 0] * np.cos(th) ** 2 + 2 * A[0, 1] * np.cos(th) * np.sin(th) + A[1, 1] * np.sin(th) ** 2
    ax2.plot(th, f_th, color="0.3", label=r"$f(\cos\theta, \sin\theta)$")
    a = s["angle"] % (2 * np.pi)
    dt = np.linspace(-0.6, 0.6, 2)
    ax2.plot(a + dt, s["f"] + s["slope"] * dt, color="tab:green", lw=2,
             label=r"slope $\langle \operatorname{grad} f, \dot x\rangle$")
    ax2.scatter([a], [s["f"]], color="k", zorder=3)
    ax2.set_xlabel(r"angle $\theta$")
    ax2.set_title("the Riemannian gradient is the slope along the circle", fontsize=9)
    ax2.legend(fontsize=7)
    return fig


def tangent_figure(angle: float = 0.6, step: float = 0.8, A=None) -> Figure:
    r"""Static picture of the gradient, its tangent projection and one retraction step on the circle.

    For :math:`f(x) = x^\top A x` on :math:`\mathbb{S}^1` and the point
    :math:`x = (\cos\theta, \sin\theta)`, draws the Euclidean gradient :math:`2Ax`, the Riemannian
    gradient :math:`P_x(2Ax)`, the step :math:`u = -\alpha \operatorname{grad} f(x)`, the
    retraction :math:`R_x(u) = (x+u)/\lVert x+u\rVert` and the exponential map
    :math:`\operatorname{Exp}_x(u)`; a second panel shows :math:`f` along the circle with the slope
    given by the Riemannian gradient.

    Parameters
    ----------
    angle : float
        :math:`\theta` in radians.
    step : float, >= 0
        :math:`\alpha`, the step along minus the Riemannian gradient.
    A : array-like ``(2, 2)``, symmetric, optional
        Default :data:`DEFAULT_A2`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    angle = _real(angle, "angle")
    step = _real(step, "step", 0.0, 1e3)
    A = _sym_matrix(DEFAULT_A2 if A is None else A, 2)
    plotting.use_style()
    fig = Figure(figsize=(9.5, 4.3), layout="constrained")
    return _draw_tangent(fig, _tangent_state(angle, step, A), A)


def tangent_explorer(A=None, *, angle: float = 0.6, step: float = 0.8):
    r"""Widget: an angle slider moves a point on the circle, a step slider sets the step size.

    Shows what :func:`tangent_figure` draws. The widget's ``result`` (after each redraw) is a dict
    with the point ``x``, ``egrad``, ``rgrad``, the ``retraction`` and ``exp`` points, their
    distance ``gap`` and ``tangency`` :math:`= |x^\top \operatorname{grad} f(x)|`.

    Returns
    -------
    ipywidgets.interactive
        Controls ``angle`` (FloatSlider, radians) and ``step`` (FloatSlider); without ipywidgets,
        the static :class:`~matplotlib.figure.Figure` instead.
    """
    angle = _real(angle, "angle", 0.0, 2 * math.pi)
    step = _real(step, "step", 0.0, 2.0)
    A = _sym_matrix(DEFAULT_A2 if A is None else A, 2)

    def draw(angle, step):
        state = _tangent_state(angle, step, A)
        plotting.use_style()
        fig = _draw_tangent(Figure(figsize=(9.5, 4.3), layout="constrained"), state, A)
        _show(fig)
        return state

    def controls(w):
        return {
            "angle": w.FloatSlider(value=angle, min=0.0, max=round(2 * math.pi, 2), step=0.05,
                                   description="angle θ", continuous_update=False),
            "step": w.FloatSlider(value=step, min=0.0, max=2.0, step=0.05, description="step α",
                                  continuous_update=False),
        }

    return _widget_or_figure(controls, draw, lambda: tangent_figure(angle, step, A))


# ---------------------------------------------------------------------------------------------
# 2. Riemannian gradient descent on the Rayleigh quotient
# ---------------------------------------------------------------------------------------------

def _rayleigh_run(A, x0, lr, steps, rule):
    """RGD on f(x) = x^T A x; returns the iterates ``(T+1, d)`` and losses ``(T+1,)``."""
    At = torch.from_numpy(A)

    def block(x):  # ncbook.rgd may hand a one-block point over as a tuple
        return x[0] if isinstance(x, (tuple, list)) else x

    def f(x):
        x = block(x)
        return (x * (x @ At)).sum()

    def rgrad(x):
        x = block(x)
        return sphere.egrad_to_rgrad(x, 2 * x @ At)

    try:
        from . import rgd
    except ImportError:  # pragma: no cover - ncbook.rgd ships with the package; keep the demo standalone
        rgd = None
    if rgd is not None:
        path = []

        def record(t, x, loss, gnorm):
            path.append(x[0].detach().clone())

        hist = rgd.run(x0, f, rgrad, lr=lr, rule=rule, steps=steps, gtol=None, callback=record)
        return torch.stack(path).numpy(), np.asarray(hist.loss, dtype=np.float64)
    if rule != "fixed":  # pragma: no cover
        raise ValueError("only rule='fixed' is available without ncbook.rgd")
    xs, x = [x0], x0
    for _ in range(steps):  # pragma: no cover
        x = sphere.retract(x, -lr * rgrad(x))
        xs.append(x)
    path = torch.stack(xs)
    return path.numpy(), np.array([float(f(p)) for p in path])


def _rgd_state(A, x0, lr, steps, rule):
    path, losses = _rayleigh_run(A, x0, lr, steps, rule)
    evals, evecs = np.linalg.eigh(A)
    gap = losses - evals[0]
    return {"lr": lr, "steps": steps, "rule": rule, "path": path, "loss": losses, "gap": gap,
            "eigenvalues": evals, "eigenvectors": evecs, "final_gap": float(gap[-1])}


def _draw_rgd(fig, s):
    d = s["path"].shape[1]
    path, evecs = s["path"], s["eigenvectors"]
    if d == 3:
        ax = fig.add_subplot(1, 2, 1, projection="3d")
        plotting.draw_sphere(ax)
        ax.plot(*path.T, "-o", color="tab:blue", ms=2.5, lw=1)
        ax.scatter(*path[0], color="k", s=30, label="start")
        for i, c in enumerate(("tab:green", "tab:orange", "tab:red")):
            v = evecs[:, i]
            ax.scatter(*np.c_[v, -v], color=c, s=40, marker="*", label=f"±eigvec λ={s['eigenvalues'][i]:g}")
        ax.view_init(elev=20, azim=35)
        ax.set_axis_off()
    else:
        ax = fig.add_subplot(1, 2, 1)
        t = np.linspace(0, 2 * np.pi, 300)
        ax.plot(np.cos(t), np.sin(t), color="0.6", lw=1)
        ax.plot(*path.T, "-o", color="tab:blue", ms=3, lw=1)
        ax.scatter(*path[0], color="k", s=30, label="start")
        for i, c in enumerate(("tab:green", "tab:red")):
            v = evecs[:, i]
            ax.scatter(*np.c_[v, -v], color=c, s=40, marker="*", label=f"±eigvec λ={s['eigenvalues'][i]:g}")
        ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"RGD iterates, rule={s['rule']}, step {s['lr']:g}", fontsize=9)
    ax2 = fig.add_subplot(1, 2, 2)
    plotting.plot_curves({"f(x_t) - λ_min": s["gap"]}, ax=ax2, ylabel=r"$f(x_t) - \lambda_{\min}$",
                         title=f"final gap {s['final_gap']:.2e}")
    return fig


def _rgd_inputs(A, x0, lr, steps, rule):
    A = _sym_matrix(DEFAULT_A3 if A is None else A, None)
    d = A.shape[0]
    if x0 is None:
        x0 = np.array([0.3, 0.5, 0.8])[:d] if d == 3 else np.array([0.2, 1.0])
    x0 = torch.as_tensor(np.asarray(x0, dtype=np.float64) if not isinstance(x0, torch.Tensor) else x0,
                         dtype=torch.float64)
    if x0.shape != (d,):
        raise ValueError(f"x0 must have shape ({d},) to match A, got {tuple(x0.shape)}")
    x0 = sphere.normalize(x0)
    lr = _real(lr, "lr", 0.0, 1e3, open_low=True)
    steps = check_positive_int(steps, "steps")
    if rule not in ("fixed", "armijo", "bb"):
        raise ValueError(f"rule must be one of 'fixed', 'armijo', 'bb', got {rule!r}")
    return A, x0, lr, steps, rule


def rgd_figure(lr: float = 0.2, steps: int = 30, *, A=None, x0=None, rule: str = "fixed") -> Figure:
    r"""Static picture of Riemannian gradient descent on the Rayleigh quotient :math:`f(x) = x^\top A x`.

    Runs ``steps`` steps of RGD (:func:`ncbook.rgd.run`) from ``x0`` and draws the iterates on the
    circle (``A`` of shape ``(2, 2)``) or the 2-sphere (``(3, 3)``) with the eigenvectors of ``A``
    (its critical points), next to the gap :math:`f(x_t) - \lambda_{\min}(A)` on a log scale.

    Parameters
    ----------
    lr : float > 0
        Step size (first trial step for ``"armijo"`` and ``"bb"``).
    steps : int >= 1
    A : array-like ``(2, 2)`` or ``(3, 3)``, symmetric, optional
        Default :data:`DEFAULT_A3` (eigenvalues 1, 2, 4).
    x0 : array-like ``(d,)``, optional
        Start (normalized here); default a fixed generic point.
    rule : {"fixed", "armijo", "bb"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    state = _rgd_state(*_rgd_inputs(A, x0, lr, steps, rule))
    plotting.use_style()
    return _draw_rgd(Figure(figsize=(10, 4.3), layout="constrained"), state)


def rgd_stepper(A=None, *, x0=None, lr: float = 0.2, steps: int = 30, rule: str = "fixed"):
    r"""Widget: sliders for the step size and the number of RGD steps on the Rayleigh quotient.

    Redraws :func:`rgd_figure`. Too large a fixed step makes the iterates overshoot and zigzag
    (the gap stops decreasing); ``"armijo"`` and ``"bb"`` adapt the step. The widget's ``result``
    is a dict with the ``path`` ``(T+1, d)``, the ``loss`` and ``gap`` histories and ``final_gap``.

    Returns
    -------
    ipywidgets.interactive
        Controls ``lr`` (FloatLogSlider), ``steps`` (IntSlider) and ``rule`` (Dropdown); without
        ipywidgets, the static :class:`~matplotlib.figure.Figure` instead.
    """
    A, x0, lr, steps, rule = _rgd_inputs(A, x0, lr, steps, rule)

    def draw(lr, steps, rule):
        state = _rgd_state(A, x0, lr, steps, rule)
        plotting.use_style()
        _show(_draw_rgd(Figure(figsize=(10, 4.3), layout="constrained"), state))
        return state

    def controls(w):
        return {
            "lr": w.FloatLogSlider(value=lr, base=10, min=-2, max=0.5, step=0.05, description="step size",
                                   continuous_update=False),
            "steps": w.IntSlider(value=steps, min=1, max=max(200, steps), step=1, description="steps",
                                 continuous_update=False),
            "rule": w.Dropdown(options=["fixed", "armijo", "bb"], value=rule, description="rule"),
        }

    return _widget_or_figure(controls, draw, lambda: rgd_figure(lr, steps, A=A, x0=x0, rule=rule))


# ---------------------------------------------------------------------------------------------
# 3. inverse temperature: optimal loss and softmax probabilities at the simplex ETF
# ---------------------------------------------------------------------------------------------

def _tau_state(tau, K, Ks, tau_max):
    from . import etf

    W = etf.simplex_etf(K, K)  # H = W: every feature at its class mean (the global minimizer)
    P = torch.softmax(ufm.logits(W, W, tau), dim=-1)
    grid = np.linspace(tau_max / 400, tau_max, 400)
    return {
        "tau": tau,
        "K": K,
        "Ks": tuple(Ks),
        "grid": grid,
        "curves": {k: np.array([ufm.optimal_loss(k, t) for t in grid]) for k in Ks},
        "optimal_loss": {k: ufm.optimal_loss(k, tau) for k in Ks},
        "probs": P[0].numpy(),
        "p_correct": float(P[0, 0]),
        "etf_loss": float(ufm.loss(W, W, torch.arange(K), tau)),
    }


def _draw_tau(fig, s):
    ax, ax2 = fig.subplots(1, 2)
    colors = plotting.class_colors(len(s["Ks"]))
    for c, k in zip(colors, s["Ks"]):
        ax.plot(s["grid"], s["curves"][k], color=c, label=f"K = {k}")
        ax.scatter([s["tau"]], [s["optimal_loss"][k]], color=c, s=20, zorder=3)
    ax.axvline(s["tau"], color="0.4", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel(r"inverse temperature $\tau$")
    ax.set_ylabel(r"$f^\star(\tau) = \log(1 + (K-1)e^{-\tau K/(K-1)})$")
    ax.set_title("optimal loss of the normalized UFM", fontsize=9)
    ax.legend(fontsize=8)
    K = s["K"]
    ax2.bar(np.arange(K), s["probs"], color=["tab:green"] + ["0.6"] * (K - 1))
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("class j")
    ax2.set_ylabel(r"softmax probability $p_j$ of a class-0 feature")
    ax2.set_title(f"at the simplex ETF, K={K}, τ={s['tau']:.3g}: p_0 = {s['p_correct']:.3f}, "
                  f"loss {s['etf_loss']:.3g}", fontsize=9)
    return fig


def _tau_inputs(tau, K, Ks, tau_max):
    tau = check_tau(tau)
    K = check_positive_int(K, "K", minimum=2)
    if isinstance(Ks, numbers.Integral):
        Ks = (Ks,)
    Ks = tuple(check_positive_int(k, "Ks[i]", minimum=2) for k in Ks)
    if not Ks:
        raise ValueError("Ks must name at least one number of classes")
    tau_max = check_tau(tau_max)
    return tau, K, Ks, tau_max


def tau_figure(tau: float = 5.0, *, K: int = 4, Ks=(2, 4, 10, 100), tau_max: float = 30.0) -> Figure:
    r"""Static picture of the role of the inverse temperature :math:`\tau`.

    Left: the closed-form optimal loss :math:`f^\star(\tau) = \log(1 + (K-1)e^{-\tau K/(K-1)})`
    (:func:`ncbook.ufm.optimal_loss`) against :math:`\tau` for each ``K`` in ``Ks``, log scale.
    Right: the softmax probabilities of a class-0 feature at the simplex ETF with ``K`` classes
    (features equal to their classifiers), computed from the logits :math:`\tau H W^\top`; its
    cross-entropy equals :math:`f^\star(\tau)`.

    Parameters
    ----------
    tau : float > 0
    K : int >= 2, classes of the probability panel
    Ks : sequence of int >= 2, the curves of the left panel
    tau_max : float > 0, right end of the tau axis

    Returns
    -------
    matplotlib.figure.Figure
    """
    state = _tau_state(*_tau_inputs(tau, K, Ks, tau_max))
    plotting.use_style()
    return _draw_tau(Figure(figsize=(10, 4.0), layout="constrained"), state)


def tau_explorer(*, tau: float = 5.0, K: int = 4, Ks=(2, 4, 10, 100), tau_max: float = 30.0):
    r"""Widget: an inverse-temperature slider and a class-count slider redraw :func:`tau_figure`.

    The widget's ``result`` is a dict with ``optimal_loss`` (per ``K`` in ``Ks``), the ETF
    softmax ``probs`` ``(K,)``, ``p_correct`` and ``etf_loss`` (equal to the closed form).

    Returns
    -------
    ipywidgets.interactive
        Controls ``tau`` (FloatSlider) and ``K`` (IntSlider); without ipywidgets, the static
        :class:`~matplotlib.figure.Figure` instead.
    """
    tau, K, Ks, tau_max = _tau_inputs(tau, K, Ks, tau_max)

    def draw(tau, K):
        state = _tau_state(tau, K, Ks, tau_max)
        plotting.use_style()
        _show(_draw_tau(Figure(figsize=(10, 4.0), layout="constrained"), state))
        return state

    def controls(w):
        return {
            "tau": w.FloatSlider(value=min(tau, tau_max), min=round(tau_max / 100, 3), max=tau_max,
                                 step=round(tau_max / 200, 3), description="τ", continuous_update=False),
            "K": w.IntSlider(value=K, min=2, max=max(20, K), step=1, description="K (bars)",
                             continuous_update=False),
        }

    return _widget_or_figure(controls, draw, lambda: tau_figure(tau, K=K, Ks=Ks, tau_max=tau_max))
