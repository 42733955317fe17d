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
    "tangent_state",
    "rgd_state",
    "tau_state",
    "tangent_plot",
    "retraction_plot",
    "rgd_plot",
    "tau_plot",
    "features_plot",
    "etf_plot",
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
    """Return the ipywidgets module, or None when it is not installed."""
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
    """Return ``A`` as a float64 symmetric ``(d, d)`` numpy array (``d`` in ``(2, 3)`` when not None)."""
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
    r"""Draw the gradient, its tangent projection and one retraction step on the circle (a static picture).

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
    with plotting.style():
        fig = Figure(figsize=plotting.figsize(1.0, 0.5), layout="constrained")
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
        with plotting.style():
            fig = _draw_tangent(Figure(figsize=plotting.figsize(1.0, 0.5), layout="constrained"), state, A)
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
    r"""Draw Riemannian gradient descent on the Rayleigh quotient :math:`f(x) = x^\top A x` (a static picture).

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
    with plotting.style():
        return _draw_rgd(Figure(figsize=plotting.figsize(1.0, 0.45), layout="constrained"), state)


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
        with plotting.style():
            fig = _draw_rgd(Figure(figsize=plotting.figsize(1.0, 0.45), layout="constrained"), state)
        _show(fig)
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
    r"""Draw the role of the inverse temperature :math:`\tau` (a static picture).

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
    with plotting.style():
        return _draw_tau(Figure(figsize=plotting.figsize(1.0, 0.45), layout="constrained"), state)


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
        with plotting.style():
            fig = _draw_tau(Figure(figsize=plotting.figsize(1.0, 0.45), layout="constrained"), state)
        _show(fig)
        return state

    def controls(w):
        return {
            "tau": w.FloatSlider(value=min(tau, tau_max), min=round(tau_max / 100, 3), max=tau_max,
                                 step=round(tau_max / 200, 3), description="τ", continuous_update=False),
            "K": w.IntSlider(value=K, min=2, max=max(20, K), step=1, description="K (bars)",
                             continuous_update=False),
        }

    return _widget_or_figure(controls, draw, lambda: tau_figure(tau, K=K, Ks=Ks, tau_max=tau_max))


# ---------------------------------------------------------------------------------------------
# the same demos as plotly figures: every slider position computed here, interactive without a kernel
# ---------------------------------------------------------------------------------------------

def tangent_state(angle: float = 0.6, step: float = 0.8, A=None) -> dict:
    """Return the numbers :func:`tangent_figure` draws (point, gradients, retraction, exponential map, gap)."""
    return _tangent_state(_real(angle, "angle"), _real(step, "step", 0.0, 1e3),
                          _sym_matrix(DEFAULT_A2 if A is None else A, 2))


def rgd_state(lr: float = 0.2, steps: int = 30, *, A=None, x0=None, rule: str = "fixed") -> dict:
    """Return the run :func:`rgd_figure` draws: ``path`` ``(T+1, d)``, ``loss``, ``gap``, ``final_gap``."""
    return _rgd_state(*_rgd_inputs(A, x0, lr, steps, rule))


def tau_state(tau: float = 5.0, *, K: int = 4, Ks=(2, 4, 10, 100), tau_max: float = 30.0) -> dict:
    """Return the numbers :func:`tau_figure` draws (optimal losses, ETF softmax probabilities and loss)."""
    return _tau_state(*_tau_inputs(tau, K, Ks, tau_max))


def _go():
    import plotly.graph_objects as go

    return go


def _subplots(**kw):
    from plotly.subplots import make_subplots

    return make_subplots(**kw)


def _at(trace, row, col):
    trace.meta = {"row": row, "col": col}
    return trace


def _seg(p, q, n=2):
    """Points of the segment from ``p`` to ``q`` as coordinate arrays."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) * np.asarray(p) + t * np.asarray(q)).T


def tangent_plot(A=None, *, angles=None, steps=(0.3, 0.8, 1.6), start_angle: float = 0.6):
    r"""Make the Plotly version of :func:`tangent_explorer`: a slider for the angle, buttons for the step.

    Left, the circle :math:`\mathbb{S}^1` with the level sets of :math:`f(x) = x^\top A x`, the
    Euclidean gradient :math:`2Ax`, its tangent part :math:`\operatorname{grad} f(x)`, the step
    :math:`-\alpha \operatorname{grad} f(x)`, the retraction and the exponential map; right,
    :math:`f` along the circle and the slope that the Riemannian gradient gives. Every slider
    position is computed with :mod:`ncbook.sphere` when the figure is made.

    Parameters
    ----------
    A : array-like ``(2, 2)``, symmetric, optional (default :data:`DEFAULT_A2`)
    angles : sequence of float, the slider's angles :math:`\theta` in radians (default 24 in
        :math:`[0, 2\pi)` plus ``start_angle``)
    steps : sequence of float >= 0, the step sizes :math:`\alpha` of the buttons (at least 2)

    Returns
    -------
    plotly.graph_objects.Figure
    """
    from . import interactive

    go = _go()
    A = _sym_matrix(DEFAULT_A2 if A is None else A, 2)
    start_angle = _real(start_angle, "start_angle", 0.0, 2 * math.pi)
    if angles is None:
        angles = sorted(set(np.round(np.linspace(0, 2 * math.pi, 25)[:-1], 2)) | {round(start_angle, 2)})
    angles = [_real(a, "angles[i]") for a in angles]
    steps = [_real(s, "steps[i]", 0.0, 1e3) for s in steps]
    fig = _subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12)
    t = np.linspace(0, 2 * np.pi, 300)
    g = np.linspace(-2.0, 2.0, 81)
    F = A[0, 0] * g[None, :] ** 2 + 2 * A[0, 1] * g[None, :] * g[:, None] + A[1, 1] * g[:, None] ** 2
    f_th = A[0, 0] * np.cos(t) ** 2 + 2 * A[0, 1] * np.cos(t) * np.sin(t) + A[1, 1] * np.sin(t) ** 2
    static = [
        _at(go.Contour(x=g, y=g, z=F, showscale=False, contours_coloring="lines", ncontours=14,
                       colorscale="RdBu_r", line_width=1, opacity=0.5, hoverinfo="skip", name="level sets of f"),
            1, 1),
        _at(go.Scatter(x=np.cos(t), y=np.sin(t), mode="lines", line={"color": "#555", "width": 2},
                       name="unit circle", hoverinfo="skip"), 1, 1),
        _at(go.Scatter(x=t, y=f_th, mode="lines", line={"color": "#555", "width": 2},
                       name="f(cos θ, sin θ)", showlegend=False), 1, 2),
    ]

    def draw(step, angle):
        s = _tangent_state(angle, step, A)
        x, eg, rg = s["x"], s["egrad"], s["rgrad"]
        tan = np.array([-x[1], x[0]])
        u = -step * rg
        dt = np.array([-0.6, 0.6])
        return [
            _at(go.Scatter(x=_seg(x - 1.6 * tan, x + 1.6 * tan)[0], y=_seg(x - 1.6 * tan, x + 1.6 * tan)[1],
                           mode="lines", line={"color": "#999", "dash": "dot"}, name="tangent line"), 1, 1),
            _at(go.Scatter(x=_seg(x, x + eg)[0], y=_seg(x, x + eg)[1], mode="lines+markers",
                           marker={"symbol": "arrow", "angleref": "previous", "size": [0, 12]},
                           line={"color": "#d62728", "width": 3}, name="Euclidean gradient 2Ax"), 1, 1),
            _at(go.Scatter(x=_seg(x, x + rg)[0], y=_seg(x, x + rg)[1], mode="lines+markers",
                           marker={"symbol": "arrow", "angleref": "previous", "size": [0, 12]},
                           line={"color": "#2ca02c", "width": 3}, name="Riemannian gradient"), 1, 1),
            _at(go.Scatter(x=_seg(x, x + u)[0], y=_seg(x, x + u)[1], mode="lines",
                           line={"color": "#9467bd", "width": 3}, name=f"step −α grad f, α = {step:g}"), 1, 1),
            _at(go.Scatter(x=_seg(np.zeros(2), x + u)[0], y=_seg(np.zeros(2), x + u)[1], mode="lines",
                           line={"color": "#9467bd", "width": 1, "dash": "dash"}, showlegend=False,
                           hoverinfo="skip"), 1, 1),
            _at(go.Scatter(x=[x[0]], y=[x[1]], mode="markers", marker={"color": "black", "size": 9},
                           name="x", showlegend=False), 1, 1),
            _at(go.Scatter(x=[s["retraction"][0]], y=[s["retraction"][1]], mode="markers",
                           marker={"color": "#9467bd", "symbol": "square", "size": 11},
                           name=f"retraction R_x, |R − Exp| = {s['gap']:.1e}"), 1, 1),
            _at(go.Scatter(x=[s["exp"][0]], y=[s["exp"][1]], mode="markers",
                           marker={"color": "#ff7f0e", "symbol": "x", "size": 12}, name="exponential map"), 1, 1),
            _at(go.Scatter(x=angle % (2 * np.pi) + dt, y=s["f"] + s["slope"] * dt, mode="lines",
                           line={"color": "#2ca02c", "width": 3}, name="slope given by grad f",
                           showlegend=False), 1, 2),
            _at(go.Scatter(x=[angle % (2 * np.pi)], y=[s["f"]], mode="markers",
                           marker={"color": "black", "size": 9}, showlegend=False, name="f(x)"), 1, 2),
        ]

    start = int(np.argmin([abs(a - start_angle) for a in angles]))
    fig = interactive.controlled_figure(draw, values=angles, value_label="angle θ", options=steps,
                                        option_label="step α", static=static, start=start, fig=fig,
                                        format_value="{:.2f}".format)
    for b, s in zip(fig.layout.updatemenus[0].buttons, steps):
        b.label = f"α = {s:g}"
    interactive.style(fig, height=560)
    fig.update_xaxes(range=[-2, 2], title_text="x₁", row=1, col=1)
    fig.update_yaxes(range=[-2, 2], title_text="x₂", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(title_text="angle θ (radians)", row=1, col=2)
    fig.update_yaxes(title_text="f along the circle", row=1, col=2)
    return fig


def retraction_plot(x=(0.35, -0.3, 0.88), u=(0.8, 0.35), *, lengths=None):
    r"""Rotatable 3-D view of the tangent plane at ``x``, with a slider for the length of the step.

    ``u`` gives the step in the orthonormal tangent basis :math:`(e_1, e_2)` at ``x``. For each
    slider value :math:`t`, the figure shows the tangent vector :math:`tu`, the ray through
    :math:`x + tu`, the retraction :math:`R_x(tu) = (x+tu)/\lVert x+tu\rVert`, the great circle
    to :math:`\operatorname{Exp}_x(tu)`, and their distance (computed with :mod:`ncbook.sphere`).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    from . import interactive

    go = _go()
    xt = sphere.normalize(torch.as_tensor(np.asarray(x, dtype=np.float64)))
    if xt.shape != (3,):
        raise ValueError(f"x must have shape (3,), got {tuple(xt.shape)}")
    coef = np.asarray(u, dtype=np.float64)
    if coef.shape != (2,) or not np.isfinite(coef).all():
        raise ValueError(f"u must be 2 finite tangent coordinates, got {coef!r}")
    e1 = sphere.normalize(sphere.project(xt, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)))
    e2 = torch.linalg.cross(xt, e1)
    lengths = [round(v, 2) for v in np.linspace(0.1, 1.6, 16)] if lengths is None else list(lengths)
    X, E1, E2 = (t.numpy() for t in (xt, e1, e2))
    a, b = np.meshgrid(np.linspace(-0.9, 1.4, 2), np.linspace(-0.9, 1.1, 2))
    plane = X[:, None, None] + a * E1[:, None, None] + b * E2[:, None, None]
    static = [
        interactive.sphere_surface(opacity=0.45),
        go.Surface(x=plane[0], y=plane[1], z=plane[2], colorscale=[[0, "#1f77b4"], [1, "#1f77b4"]],
                   opacity=0.18, showscale=False, name="tangent plane at x", hoverinfo="skip",
                   showlegend=True),
        go.Scatter3d(x=[X[0]], y=[X[1]], z=[X[2]], mode="markers", marker={"color": "black", "size": 5},
                     name="x"),
    ]

    def draw(length):
        ut = torch.as_tensor(length * (coef[0] * E1 + coef[1] * E2))
        r, ex = sphere.retract(xt, ut).numpy(), sphere.exp_map(xt, ut).numpy()
        gap = float(np.linalg.norm(r - ex))
        U = ut.numpy()
        arc = np.linspace(0, np.linalg.norm(U), 40)
        great = (np.cos(arc)[:, None] * X + np.sin(arc)[:, None] * U / np.linalg.norm(U)).T
        return [
            go.Scatter3d(x=_seg(X, X + U)[0], y=_seg(X, X + U)[1], z=_seg(X, X + U)[2], mode="lines",
                         line={"color": "#9467bd", "width": 7}, name="tangent vector tu"),
            go.Scatter3d(x=_seg(np.zeros(3), X + U)[0], y=_seg(np.zeros(3), X + U)[1],
                         z=_seg(np.zeros(3), X + U)[2], mode="lines",
                         line={"color": "#9467bd", "width": 3, "dash": "dash"}, name="ray through x + tu"),
            go.Scatter3d(x=great[0], y=great[1], z=great[2], mode="lines", line={"color": "#ff7f0e", "width": 7},
                         name="great circle to Exp_x(tu)"),
            go.Scatter3d(x=[r[0]], y=[r[1]], z=[r[2]], mode="markers",
                         marker={"color": "#9467bd", "symbol": "square", "size": 6},
                         name=f"retraction R_x(tu), |R − Exp| = {gap:.1e}"),
            go.Scatter3d(x=[ex[0]], y=[ex[1]], z=[ex[2]], mode="markers",
                         marker={"color": "#ff7f0e", "symbol": "x", "size": 7}, name="Exp_x(tu)"),
        ]

    fig = interactive.controlled_figure(draw, values=lengths, value_label="step length t", static=static,
                                        start=int(np.argmin(np.abs(np.asarray(lengths) - 1.0))))
    interactive.style(fig, height=600)
    fig.update_layout(legend={"y": -0.02}, scene=_scene(1.3), margin={"t": 10})
    return fig


def _scene(reach=1.15, camera_eye=(1.3, -1.3, 0.9)):
    axis = {"range": [-reach, reach], "title": "", "showticklabels": False}
    return {"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube",
            "camera": {"eye": dict(zip("xyz", camera_eye))}}


def rgd_plot(A=None, *, x0=None, lrs=None, steps: int = 30, rules=("fixed", "armijo", "bb"),
             start_lr: float = 0.2):
    r"""Make the Plotly version of :func:`rgd_stepper`: a slider for the step size, buttons for the rule.

    Runs :func:`ncbook.rgd.run` on the Rayleigh quotient :math:`f(x) = x^\top A x` for every step
    size in ``lrs`` and every rule, when the figure is made; left, the iterates on a rotatable
    sphere with the eigenvectors of ``A`` (its critical points); right, the gap
    :math:`f(x_t) - \lambda_{\min}` on a log scale.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    from . import interactive

    go = _go()
    lrs = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.32, 0.34, 0.4, 0.6, 1.0, 2.0] if lrs is None else list(lrs)
    A3, x03, _, steps, _ = _rgd_inputs(A, x0, lrs[0], steps, "fixed")
    if A3.shape[0] != 3:
        raise ValueError(f"A must have shape (3, 3) for the 3-D view, got {A3.shape}")
    rules = list(rules)
    for r in rules:
        _rgd_inputs(A3, x03, lrs[0], steps, r)
    evals, evecs = np.linalg.eigh(A3)
    fig = _subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "xy"}]], column_widths=[0.5, 0.5])
    colors = ("#2ca02c", "#ff7f0e", "#d62728")
    static = [_at(interactive.sphere_surface(opacity=0.4), 1, 1),
              _at(go.Scatter3d(x=[x03[0].item()], y=[x03[1].item()], z=[x03[2].item()], mode="markers",
                               marker={"color": "black", "size": 5}, name="start x₀"), 1, 1)]
    for i in range(3):
        v = np.c_[evecs[:, i], -evecs[:, i]]
        static.append(_at(go.Scatter3d(x=v[0], y=v[1], z=v[2], mode="markers",
                                       marker={"color": colors[i], "size": 5, "symbol": "diamond"},
                                       name=f"±eigenvector, λ = {evals[i]:g}"), 1, 1))

    def draw(rule, lr):
        s = _rgd_state(A3, x03, _real(lr, "lrs[i]", 0.0, 1e3, open_low=True), steps, rule)
        p, gap = s["path"], s["gap"]
        return [
            _at(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="lines+markers",
                             marker={"size": 3, "color": "#1f77b4"}, line={"color": "#1f77b4", "width": 4},
                             text=[f"t = {t}" for t in range(len(p))], name=f"RGD iterates ({rule})"), 1, 1),
            _at(go.Scatter(x=np.arange(len(gap)), y=np.where(gap > 0, gap, np.nan), mode="lines+markers",
                           marker={"size": 4}, line={"color": "#1f77b4", "width": 2.5},
                           name=f"gap f(x_t) − λ_min, final {s['final_gap']:.1e}"), 1, 2),
        ]

    start = int(np.argmin(np.abs(np.asarray(lrs) - start_lr)))
    fig = interactive.controlled_figure(draw, values=lrs, value_label="step size", options=rules,
                                        option_label="rule", static=static, start=start, fig=fig)
    interactive.style(fig, height=560)
    fig.update_layout(scene=_scene())
    fig.update_xaxes(title_text="iteration t", row=1, col=2)
    fig.update_yaxes(title_text="f(x_t) − λ_min", type="log", exponentformat="power", row=1, col=2)
    return fig


def tau_plot(*, taus=None, Ks=(2, 4, 10, 100), bar_Ks=(2, 4, 10), tau_max: float = 30.0,
             start_tau: float = 5.0):
    r"""Make the Plotly version of :func:`tau_explorer`: a slider for :math:`\tau`, buttons for :math:`K`.

    Left, the closed-form optimal loss :math:`f^\star(\tau)` of :func:`ncbook.ufm.optimal_loss` for
    each ``K`` in ``Ks`` with the chosen :math:`\tau` marked; right, the softmax probabilities of a
    class-0 feature at the simplex ETF with ``K`` classes, computed from the logits
    :math:`\tau H W^\top` (:func:`ncbook.ufm.logits`) for every slider position.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    from . import interactive

    go = _go()
    tau_max = check_tau(tau_max)
    Ks = tuple(check_positive_int(k, "Ks[i]", minimum=2) for k in Ks)
    bar_Ks = [check_positive_int(k, "bar_Ks[i]", minimum=2) for k in bar_Ks]
    taus = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30] if taus is None else list(taus)
    taus = [check_tau(t) for t in taus]
    fig = _subplots(rows=1, cols=2, horizontal_spacing=0.14)
    colors = interactive.class_colors(len(Ks))
    grid = np.linspace(tau_max / 400, tau_max, 400)
    static = [_at(go.Scatter(x=grid, y=[ufm.optimal_loss(k, t) for t in grid], mode="lines",
                             line={"color": c, "width": 2.5}, name=f"f*(τ), K = {k}"), 1, 1)
              for c, k in zip(colors, Ks)]

    def draw(K, tau):
        s = _tau_state(tau, K, Ks, tau_max)
        return [
            _at(go.Scatter(x=[tau] * len(Ks), y=[s["optimal_loss"][k] for k in Ks], mode="markers",
                           marker={"color": colors, "size": 10, "line": {"color": "black", "width": 1}},
                           name=f"τ = {tau:g}"), 1, 1),
            _at(go.Bar(x=np.arange(K), y=s["probs"], marker={"color": ["#2ca02c"] + ["#999999"] * (K - 1)},
                       name=f"p_j, K = {K}: p_0 = {s['p_correct']:.3f}, loss {s['etf_loss']:.3g}"), 1, 2),
        ]

    start = int(np.argmin(np.abs(np.asarray(taus) - start_tau)))
    fig = interactive.controlled_figure(draw, values=taus, value_label="inverse temperature τ",
                                        options=bar_Ks, option_label="classes K", static=static, start=start,
                                        fig=fig)
    for b, k in zip(fig.layout.updatemenus[0].buttons, bar_Ks):
        b.label = f"K = {k}"
    interactive.style(fig, height=540)
    fig.update_xaxes(title_text="inverse temperature τ", row=1, col=1)
    fig.update_yaxes(title_text="optimal loss f*(τ)", type="log", exponentformat="power", row=1, col=1)
    fig.update_xaxes(title_text="class j", dtick=1, row=1, col=2)
    fig.update_yaxes(title_text="probability p_j of a class-0 feature", range=[0, 1.05], row=1, col=2)
    return fig


def features_plot(snapshots, y, *, values, value_label: str = "epoch", unit_sphere=(), start: int = 0,
                  height: int = 520):
    r"""Rotatable 3-D views of features and classifier directions, one scene per run, a slider over time.

    Parameters
    ----------
    snapshots : dict ``{run name: [(H, W), ...]}``, one ``(H, W)`` per slider value; ``H`` is
        ``(N, 3)`` (features as rows), ``W`` is ``(K, 3)`` (classifier rows)
    y : array-like ``(N,)`` int, the class of each feature (colours of :func:`ncbook.plotting.class_colors`)
    values : sequence, the slider values (epochs or iterations)
    unit_sphere : run names whose features lie on the unit sphere (a shaded sphere is drawn)

    Classifier directions are drawn as lines from the origin, scaled to the radius of the scene.
    """
    from . import interactive

    go = _go()
    names = list(snapshots)
    values = list(values)
    if not names or any(len(snapshots[n]) != len(values) for n in names):
        raise ValueError("snapshots must hold one (H, W) pair per slider value for every run")
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    K = int(y.max()) + 1
    colors = interactive.class_colors(K)

    def arr(t):
        return np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64)

    reach = {n: 1.0 if n in unit_sphere else max(np.abs(arr(H)).max() for H, _ in snapshots[n]) for n in names}
    fig = _subplots(rows=1, cols=len(names), specs=[[{"type": "scene"}] * len(names)],
                    horizontal_spacing=0.02)
    static = [_at(interactive.sphere_surface(opacity=0.3), 1, c + 1) for c, n in enumerate(names)
              if n in unit_sphere]

    def draw(j):
        out = []
        for c, n in enumerate(names):
            H, W = (arr(t) for t in snapshots[n][j])
            Wn = W / np.linalg.norm(W, axis=1, keepdims=True) * reach[n]
            for k in range(K):
                Hk = H[y == k]
                out.append(_at(go.Scatter3d(x=Hk[:, 0], y=Hk[:, 1], z=Hk[:, 2], mode="markers",
                                            marker={"size": 2.5, "color": colors[k]}, name=f"class {k}",
                                            legendgroup=f"class {k}", showlegend=c == 0), 1, c + 1))
                out.append(_at(go.Scatter3d(x=[0, Wn[k, 0]], y=[0, Wn[k, 1]], z=[0, Wn[k, 2]], mode="lines",
                                            line={"color": colors[k], "width": 8}, legendgroup=f"class {k}",
                                            name=f"classifier {k}", showlegend=False), 1, c + 1))
        return out

    fig = interactive.controlled_figure(draw, values=list(range(len(values))), value_label=value_label,
                                        static=static, start=start, fig=fig,
                                        format_value=lambda j: f"{values[j]}")
    interactive.style(fig, height=height)
    for c, n in enumerate(names):
        fig.update_layout({("scene" if c == 0 else f"scene{c + 1}"): _scene(1.1 * reach[n])})
        fig.add_annotation(text=n, x=(c + 0.5) / len(names), xref="paper", xanchor="center", y=0, yref="paper",
                           yanchor="top", showarrow=False, font={"size": interactive.FONT_SIZE})
    return fig


def etf_plot(T, *, features=None, y=None, title=None):
    r"""Rotatable 3-D view of unit vectors ``T`` ``(K, 3)`` (e.g. a simplex ETF) on the sphere.

    Draws each vector as a point and a line from the origin, the edges between them, and
    optionally ``features`` ``(N, 3)`` with labels ``y`` in the same class colours.
    """
    from . import interactive

    go = _go()
    T = np.asarray(T.detach().cpu() if isinstance(T, torch.Tensor) else T, dtype=np.float64)
    if T.ndim != 2 or T.shape[1] != 3:
        raise ValueError(f"T must have shape (K, 3), got {T.shape}")
    colors = interactive.class_colors(T.shape[0])
    fig = go.Figure([interactive.sphere_surface(opacity=0.3)])
    for a in range(len(T)):
        for b in range(a + 1, len(T)):
            fig.add_trace(go.Scatter3d(x=_seg(T[a], T[b])[0], y=_seg(T[a], T[b])[1], z=_seg(T[a], T[b])[2],
                                       mode="lines", line={"color": "#666", "width": 3}, showlegend=False,
                                       hoverinfo="skip"))
    if features is not None:
        Hf, yf = np.asarray(features, dtype=np.float64), np.asarray(y)
        for k, c in enumerate(colors):
            fig.add_trace(go.Scatter3d(x=Hf[yf == k, 0], y=Hf[yf == k, 1], z=Hf[yf == k, 2], mode="markers",
                                       marker={"size": 2.5, "color": c}, name=f"features of class {k}"))
    for k, c in enumerate(colors):
        fig.add_trace(go.Scatter3d(x=[0, T[k, 0]], y=[0, T[k, 1]], z=[0, T[k, 2]], mode="lines+markers",
                                   marker={"size": [0, 7], "color": c}, line={"color": c, "width": 7},
                                   name=f"vector {k}"))
    interactive.style(fig, title=title, height=500)
    fig.update_layout(scene=_scene())
    return fig
