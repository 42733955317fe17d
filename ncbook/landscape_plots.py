r"""Low-dimensional pictures of the UFM landscape: three classes on the circle and on the sphere.

Top layer (it may import plotly and matplotlib). The computations are small and exact:

* :func:`circle_slice` evaluates the loss of ``K = 3`` classes, one sample each, in the plane, with
  classifier angles :math:`(0, a, b)` and every feature on (``sign=+1``) or opposite to (``sign=-1``)
  its classifier: a 2-D slice of the 6-dimensional landscape that contains the ETF configurations, the
  fully collapsed point and the one-dimensional critical points.
* :func:`slice_critical_points` finds the critical points of the *full* problem that lie on that
  slice (Newton's method from a grid of slice points, kept when it stays on the slice).
* :func:`rgd_angle_path` runs RGD on the full problem and records the classifier angles.
* :func:`tangent_plane_slice` evaluates the loss on the plane spanned by two tangent directions at a
  point (for instance the most negative and most positive Hessian eigenvectors of a saddle).
* :func:`circle_explorer` assembles a plotly figure with a slider for :math:`\tau` and buttons for
  the configuration; it needs no kernel once rendered.

Introduced in: chapter 06 (the landscape).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import landscape, ufm
from ._checks import check_positive_int, check_tau
from .sphere import retract

__all__ = [
    "circle_slice",
    "slice_critical_points",
    "rgd_angle_path",
    "tangent_plane_slice",
    "circle_explorer",
]

_Y3 = torch.arange(3)


def _sign(sign):
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 (features on their classifiers) or -1 (opposite), got {sign!r}")
    return sign


def _config(a, b, sign):
    """``W (..., 3, 2)`` at angles ``(0, a, b)`` (radians) and ``H = sign * W``."""
    ang = torch.stack([torch.zeros_like(a), a, b], -1)
    W = torch.stack([torch.cos(ang), torch.sin(ang)], -1)
    return W, sign * W


def circle_slice(tau: float, *, sign: int = 1, n_grid: int = 121):
    r"""Compute the loss over a two-angle slice of the ``K = 3``, ``n = 1``, ``d = 2`` problem.

    The slice is :math:`w_k = (\cos\theta_k, \sin\theta_k)`, :math:`\theta = (0, a, b)`,
    :math:`h_k = \mathrm{sign}\cdot w_k`.

    Returns
    -------
    (angles, Z) : ``angles (n_grid,)`` in degrees on ``[0, 360]``; ``Z (n_grid, n_grid)`` with
    ``Z[i, j]`` the loss at ``a = angles[j]``, ``b = angles[i]``.
    """
    tau = check_tau(tau)
    n_grid = check_positive_int(n_grid, "n_grid", minimum=3)
    sign = _sign(sign)
    deg = np.linspace(0.0, 360.0, n_grid)
    t = torch.tensor(np.deg2rad(deg), dtype=torch.float64)
    B, A = torch.meshgrid(t, t, indexing="ij")
    W, H = _config(A, B, sign)
    logits = tau * H @ W.transpose(-1, -2)  # (n, n, 3, 3), row i: sample of class i
    Z = (torch.logsumexp(logits, -1) - torch.diagonal(logits, dim1=-2, dim2=-1)).mean(-1)
    return deg, Z.numpy()


def _angles(W):
    """Angles (degrees, in [0, 360)) of ``w_2, w_3`` relative to ``w_1``, orientation fixed."""
    ang = torch.atan2(W[:, 1], W[:, 0])
    rel = torch.rad2deg(ang - ang[0]) % 360.0
    rel = torch.where(rel > 360.0 - 1e-6, torch.zeros_like(rel), rel)  # 359.9999... is 0
    return float(rel[1]), float(rel[2])


def slice_critical_points(tau: float, *, sign: int = 1, grid: int = 6, tol: float = 1e-11):
    r"""Critical points of the full ``K = 3, n = 1, d = 2`` problem that lie on :func:`circle_slice`.

    Newton's method (:func:`ncbook.landscape.newton_critical_point`) runs from a ``grid x grid``
    lattice of slice points and from the symmetric configurations (ETF, collapsed, one-dimensional;
    at these it stops at once if they are critical); a result is kept when its gradient norm is at most ``tol`` and its
    features are still ``sign`` times their classifiers (so it lies on the slice). Reflections
    :math:`(a, b) \mapsto (360 - a, 360 - b)` are equivalent and both are reported.

    Returns
    -------
    list of dict with keys ``a``, ``b`` (degrees), ``loss``, ``label``, ``min_eig``
    (from :func:`ncbook.landscape.classify_critical_point`).
    """
    tau = check_tau(tau)
    sign = _sign(sign)
    grid = check_positive_int(grid, "grid", minimum=2)
    found: list[dict] = []
    lattice = np.linspace(0.0, 2 * math.pi, grid, endpoint=False) + 0.3
    pairs = [(a0, b0) for a0 in lattice for b0 in lattice]
    # the symmetric configurations (ETF, collapsed, one-dimensional) as exact starts too
    pairs += [(math.radians(a0), math.radians(b0)) for a0, b0 in
              ((120, 240), (0, 0), (0, 180), (180, 180))]
    for a0, b0 in pairs:
        if True:
            W0, H0 = _config(torch.tensor(a0, dtype=torch.float64), torch.tensor(b0, dtype=torch.float64),
                             sign)
            W, H, g, ok = landscape.newton_critical_point(W0, H0, _Y3, tau, tol=tol)
            if not ok or float((H - sign * W).abs().max()) > 1e-8:
                continue
            a, b = _angles(W)
            for aa, bb in ((a, b), ((360.0 - a) % 360.0, (360.0 - b) % 360.0)):
                if all(min(abs(aa - p["a"]), 360 - abs(aa - p["a"])) > 1e-4
                       or min(abs(bb - p["b"]), 360 - abs(bb - p["b"])) > 1e-4 for p in found):
                    rep = landscape.classify_critical_point(W, H, _Y3, tau, grad_tol=tol, eig_tol=1e-6)
                    found.append(dict(a=aa, b=bb, loss=rep.loss, label=rep.label, min_eig=rep.min_eig))
    return sorted(found, key=lambda p: (p["loss"], p["a"], p["b"]))


def rgd_angle_path(tau: float, a0: float, b0: float, *, sign: int = 1, steps: int = 200,
                   lr: float = 1.0):
    r"""RGD on the full problem from the slice point ``(a0, b0)`` (degrees); classifier angles per step.

    The features move freely (they need not stay on the slice); the path records the angles of
    :math:`w_2, w_3` relative to :math:`w_1`, i.e. the projection of the path onto the slice's axes.

    Returns
    -------
    (a, b, loss, configs) : arrays ``(steps+1,)`` of angles (degrees) and losses, and the list of
    ``(W, H)`` numpy pairs along the path.
    """
    tau = check_tau(tau)
    steps = check_positive_int(steps, "steps")
    W, H = _config(torch.tensor(math.radians(a0), dtype=torch.float64),
                   torch.tensor(math.radians(b0), dtype=torch.float64), _sign(sign))
    a, b, f, configs = [], [], [], []
    for _ in range(steps + 1):
        aa, bb = _angles(W)
        a.append(aa)
        b.append(bb)
        f.append(float(ufm.loss(W, H, _Y3, tau)))
        configs.append((W.numpy().copy(), H.numpy().copy()))
        gW, gH = ufm.rgrad(W, H, _Y3, tau)
        W, H = retract(W, -lr * gW), retract(H, -lr * gH)
    return np.array(a), np.array(b), np.array(f), configs


def tangent_plane_slice(W, H, y, tau, dir1, dir2, *, extent: float = 1.5, n_grid: int = 41):
    r"""Loss on :math:`(s, t) \mapsto f(R_x(s\,u_1 + t\,u_2))` for tangent directions ``dir1``, ``dir2``.

    ``dir1``, ``dir2`` are pairs ``(dW, dH)`` (for instance from the Hessian's eigenvectors); the
    retraction is row normalization. Returns ``(s (n_grid,), Z (n_grid, n_grid))`` with
    ``Z[i, j]`` the loss at ``s = s[j]``, ``t = s[i]``.
    """
    W, H, y, tau = ufm.check_problem(W, H, y, tau)
    n_grid = check_positive_int(n_grid, "n_grid", minimum=3)
    if not (isinstance(extent, (int, float)) and math.isfinite(extent) and extent > 0):
        raise ValueError(f"extent must be a finite number > 0, got {extent!r}")
    s = np.linspace(-extent, extent, n_grid)
    Z = np.empty((n_grid, n_grid))
    for i, t in enumerate(s):
        for j, u in enumerate(s):
            Wt = retract(W, u * dir1[0] + t * dir2[0])
            Ht = retract(H, u * dir1[1] + t * dir2[1])
            Z[i, j] = float(ufm.loss(Wt, Ht, y, tau))
    return s, Z


def circle_explorer(taus=(0.5, 1.0, 2.0, 4.0, 8.0), *, n_grid: int = 73,
                    path_start=(40.0, 70.0), path_steps: int = 150):
    r"""Build a plotly figure of :func:`circle_slice` with a slider for :math:`\tau`.

    Buttons choose the configuration (features on, or opposite to, their classifiers).

    For every :math:`\tau` and both configurations it shows the loss over the classifier angles
    ``(a, b)``, the critical points of the full problem on the slice (:func:`slice_critical_points`,
    by label) and an RGD path of the full problem from ``path_start`` (:func:`rgd_angle_path`).
    Built with ``ncbook.interactive.controlled_figure``: everything is precomputed, so the figure
    works in a static page with no kernel.
    """
    import plotly.graph_objects as go

    from . import interactive

    taus = [check_tau(t) for t in taus]
    if len(taus) < 2:
        raise ValueError(f"taus must hold at least 2 values > 0, got {len(taus)}")
    n_grid = check_positive_int(n_grid, "n_grid", minimum=3)
    options = {"features on classifiers": 1, "features opposite": -1}
    symbols = {"global minimizer": "star", "strict saddle": "x", "second-order critical": "diamond"}

    def draw(option, tau):
        sign = options[option]
        deg, Z = circle_slice(tau, sign=sign, n_grid=n_grid)
        traces = [go.Heatmap(x=deg, y=deg, z=Z, colorscale="Viridis", colorbar=dict(title="loss"),
                             hovertemplate="a=%{x:.0f}, b=%{y:.0f}<br>loss=%{z:.4f}<extra></extra>")]
        crit = slice_critical_points(tau, sign=sign, grid=4)
        for label, symbol in symbols.items():
            pts = [p for p in crit if p["label"] == label]
            traces.append(go.Scatter(
                x=[p["a"] for p in pts], y=[p["b"] for p in pts], mode="markers", name=label,
                marker=dict(symbol=symbol, size=12, color="white", line=dict(color="black", width=1)),
                text=[f"{label}, loss {p['loss']:.4f}" for p in pts], hoverinfo="text"))
        pa, pb, _, _ = rgd_angle_path(tau, *path_start, sign=sign, steps=path_steps)
        xa, xb = pa.astype(float).tolist(), pb.astype(float).tolist()
        jumps = np.flatnonzero((np.abs(np.diff(pa)) > 180) | (np.abs(np.diff(pb)) > 180))
        for j in jumps[::-1]:  # break the line where it wraps around the torus
            xa.insert(j + 1, None)
            xb.insert(j + 1, None)
        traces.append(go.Scatter(x=xa, y=xb, mode="lines", name="RGD path (full problem)",
                                 line=dict(color="red", width=2), hoverinfo="skip"))
        return traces

    start = min(range(len(taus)), key=lambda i: abs(taus[i] - 2.0))
    fig = interactive.controlled_figure(draw, values=taus, value_label="inverse temperature τ",
                                        options=list(options), start=start)
    interactive.style(fig, height=600, legend_outside=False)
    # legend in a row above the buttons; the slider clear of the axis title
    fig.update_layout(legend=dict(orientation="h", x=1.0, xanchor="right", y=1.1, yanchor="bottom",
                                  font_size=11), margin=dict(t=120, b=60))
    fig.layout.sliders[0].pad = dict(t=70, b=10)
    fig.update_xaxes(title_text="angle a of w_2 (degrees)", range=[0, 360], dtick=60)
    fig.update_yaxes(title_text="angle b of w_3 (degrees)", range=[0, 360], dtick=60)
    return fig
