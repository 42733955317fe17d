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
* :func:`circle_explorer` assembles a plotly figure with sliders for :math:`\tau` and for the
  configuration along an RGD path; it needs no kernel once rendered.

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
    r"""Loss over the slice :math:`w_k = (\cos\theta_k, \sin\theta_k)`, :math:`\theta = (0, a, b)`,
    :math:`h_k = \mathrm{sign}\cdot w_k` (``K = 3``, ``n = 1``, ``d = 2``).

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


def circle_explorer(taus=(0.5, 1.0, 2.0, 4.0, 8.0), *, n_grid: int = 73, path_tau_index: int = 2,
                    path_start=(40.0, 70.0), path_steps: int = 120, frames: int = 25):
    r"""A plotly figure: the aligned slice of :func:`circle_slice` with a slider for :math:`\tau`,
    and the configuration on the circle with a slider along an RGD path.

    Left: the loss over the classifier angles ``(a, b)`` (one heatmap per :math:`\tau`, with the critical
    points of the full problem on the slice and an RGD path). Right: the classifiers (large markers)
    and features (small) of the configuration picked by the second slider, on the unit circle; its
    position is marked on the left. Everything is precomputed, so the figure works in a static page.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    taus = [check_tau(t) for t in taus]
    if not taus:
        raise ValueError("taus must be a non-empty sequence of numbers > 0")
    if not (isinstance(path_tau_index, int) and 0 <= path_tau_index < len(taus)):
        raise ValueError(f"path_tau_index must index taus (0..{len(taus) - 1}), got {path_tau_index!r}")
    frames = check_positive_int(frames, "frames", minimum=2)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.12,
                        subplot_titles=("loss over the classifier angles (features on classifiers)",
                                        "configuration on the circle"))
    groups = []
    paths = {}
    for k, tau in enumerate(taus):
        deg, Z = circle_slice(tau, n_grid=n_grid)
        crit = slice_critical_points(tau, grid=4)
        pa, pb, pf, configs = rgd_angle_path(tau, *path_start, steps=path_steps)
        paths[k] = (pa, pb, pf, configs)
        vis = k == path_tau_index
        first = len(fig.data)
        fig.add_trace(go.Heatmap(x=deg, y=deg, z=Z, colorscale="Viridis", visible=vis,
                                 colorbar=dict(title="loss", x=0.52, len=0.9),
                                 hovertemplate="a=%{x:.0f}°, b=%{y:.0f}°<br>loss=%{z:.4f}<extra></extra>"),
                      row=1, col=1)
        symbols = {"global minimizer": "star", "strict saddle": "x", "second-order critical": "diamond"}
        fig.add_trace(go.Scatter(
            x=[p["a"] for p in crit], y=[p["b"] for p in crit], mode="markers", visible=vis,
            marker=dict(symbol=[symbols.get(p["label"], "circle") for p in crit], size=11,
                        color="white", line=dict(color="black", width=1)),
            text=[f"{p['label']}, loss {p['loss']:.4f}" for p in crit], hoverinfo="text",
            name="critical points", showlegend=False), row=1, col=1)
        jumps = np.flatnonzero((np.abs(np.diff(pa)) > 180) | (np.abs(np.diff(pb)) > 180))
        xa, xb = pa.astype(float).tolist(), pb.astype(float).tolist()
        for j in jumps[::-1]:  # break the line where it wraps around the torus
            xa.insert(j + 1, None)
            xb.insert(j + 1, None)
        fig.add_trace(go.Scatter(x=xa, y=xb, mode="lines", visible=vis, line=dict(color="red", width=2),
                                 name="RGD path", showlegend=False, hoverinfo="skip"), row=1, col=1)
        groups.append(list(range(first, len(fig.data))))
    n_tau_traces = len(fig.data)
    pa, pb, pf, configs = paths[path_tau_index]
    idx = np.unique(np.round(np.geomspace(1, len(pa), frames)).astype(int) - 1)
    circle = np.linspace(0, 2 * math.pi, 200)
    fig.add_trace(go.Scatter(x=np.cos(circle), y=np.sin(circle), mode="lines", line=dict(color="grey"),
                             showlegend=False, hoverinfo="skip"), row=1, col=2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    W0, H0 = configs[idx[0]]
    fig.add_trace(go.Scatter(x=W0[:, 0], y=W0[:, 1], mode="markers", marker=dict(size=16, color=colors),
                             name="classifiers w_k", hoverinfo="skip"), row=1, col=2)
    fig.add_trace(go.Scatter(x=H0[:, 0], y=H0[:, 1], mode="markers",
                             marker=dict(size=8, color=colors, symbol="circle-open", line=dict(width=3)),
                             name="features h_k", hoverinfo="skip"), row=1, col=2)
    fig.add_trace(go.Scatter(x=[pa[idx[0]]], y=[pb[idx[0]]], mode="markers",
                             marker=dict(size=12, color="red", symbol="circle"), name="current",
                             showlegend=False, hoverinfo="skip"), row=1, col=1)
    i_W, i_H, i_cur = n_tau_traces + 1, n_tau_traces + 2, n_tau_traces + 3
    tau_steps = []
    for k, tau in enumerate(taus):
        visible = [i in groups[k] for i in range(n_tau_traces)]
        tau_steps.append(dict(method="restyle", label=f"{tau:g}",
                              args=[{"visible": visible}, list(range(n_tau_traces))]))
    cfg_steps = []
    for t in idx:
        W_, H_ = configs[t]
        cfg_steps.append(dict(method="restyle", label=str(int(t)), args=[
            {"x": [W_[:, 0].tolist(), H_[:, 0].tolist(), [float(pa[t])]],
             "y": [W_[:, 1].tolist(), H_[:, 1].tolist(), [float(pb[t])]]}, [i_W, i_H, i_cur]]))
    fig.update_layout(
        width=700, height=470, margin=dict(l=50, r=20, t=60, b=140),
        legend=dict(orientation="h", x=0.62, y=-0.08),
        sliders=[dict(active=path_tau_index, steps=tau_steps, x=0.0, len=0.55, y=-0.12,
                      currentvalue=dict(prefix="inverse temperature tau = ")),
                 dict(active=0, steps=cfg_steps, x=0.62, len=0.38, y=-0.12,
                      currentvalue=dict(prefix=f"RGD step (tau = {taus[path_tau_index]:g}): "))])
    fig.update_xaxes(title_text="angle a of w_2 (degrees)", range=[0, 360], row=1, col=1)
    fig.update_yaxes(title_text="angle b of w_3 (degrees)", range=[0, 360], row=1, col=1)
    fig.update_xaxes(title_text="first coordinate", range=[-1.2, 1.2], row=1, col=2)
    fig.update_yaxes(title_text="second coordinate", range=[-1.2, 1.2], scaleanchor="x2", row=1, col=2)
    return fig
