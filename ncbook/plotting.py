"""House style and the figures the chapters share.

Every function draws on a matplotlib ``Axes`` it is given (or makes one) and returns it, so a
chapter can compose figures; nothing here computes results, it only draws what it is handed.

Introduced in: chapter 02 (optimization on the sphere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "COLUMN_WIDTH_IN",
    "LABELS",
    "label",
    "style",
    "figsize",
    "use_style",
    "class_colors",
    "new_axes",
    "figure_legend",
    "plot_curves",
    "plot_nc_history",
    "plot_taylor",
    "plot_spectrum",
    "plot_gram",
    "draw_sphere",
    "plot_circle_configuration",
]

#: Width of the book's text column in inches at the style's dpi: the column is about 760 px wide
#: at a 1366 px window (sphinx-book-theme), and figures are stored at 110 dpi. A figure of this
#: width is shown at its own size, so 10 pt text stays at about 15 px on screen.
COLUMN_WIDTH_IN = 6.8

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.figsize": (COLUMN_WIDTH_IN, 3.6),
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.5,
    "legend.frameon": False,
}


#: Words for the metric keys of training records and NC reports (``ncbook.train``, ``ncbook.metrics``):
#: axis labels say what is measured, not the dictionary key. :func:`label` looks a key up here.
LABELS = {
    "nc1": "NC1 (within-class variability)",
    "nc2": "NC2 (distance of W from an ETF)",
    "nc2_means": "NC2 of the class means",
    "nc3": "NC3 (classifier–mean mismatch)",
    "nc3_centered": "NC3 with centred means",
    "loss": "training loss",
    "acc": "training accuracy",
    "test_loss": "test loss",
    "test_acc": "test accuracy",
    "test_nc1": "NC1 of the test features",
    "test_nc2": "NC2 of the test class means",
    "test_nc3": "NC3 on the test features",
    "gap": "loss gap f − f*",
    "grad_norm": "Riemannian gradient norm",
    "epoch": "epoch",
    "iteration": "iteration t",
    "time_s": "time (s)",
}


def label(key: str) -> str:
    """Words for a metric key: ``label("nc1") == "NC1 (within-class variability)"``.

    Unknown keys come back unchanged (a caller's own label passes through), a ``test_`` prefix
    of an unlisted metric becomes ``"test "``.
    """
    if key in LABELS:
        return LABELS[key]
    if key.startswith("test_") and key[5:] in LABELS:
        return "test " + LABELS[key[5:]]
    return key


@contextlib.contextmanager
def style():
    """Context manager: the course's matplotlib style inside the ``with`` block only.

    The previous settings come back on exit, so a learner's own matplotlib state is untouched.
    """
    with mpl.rc_context(STYLE):
        yield


def figsize(width: float = 1.0, aspect: float = 0.55) -> tuple[float, float]:
    """``(width, height)`` in inches for a figure ``width`` times the column wide, ``aspect`` high.

    ``width`` in ``(0, 1.2]`` (a figure at most a little wider than the column, so it is never
    shrunk below 85 % of its size), ``aspect`` = height / width.
    """
    if not 0 < width <= 1.2:
        raise ValueError(f"width must be in (0, 1.2] (a fraction of the column), got {width}")
    if not 0 < aspect <= 3:
        raise ValueError(f"aspect must be in (0, 3], got {aspect}")
    w = width * COLUMN_WIDTH_IN
    return (w, w * aspect)


def use_style() -> None:
    """Apply the course's matplotlib style globally (what the chapters do once, at the top).

    Prefer ``with plotting.style():`` in library code: it leaves the global settings alone.
    """
    mpl.rcParams.update(STYLE)


def _np(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def class_colors(K: int):
    """``K`` distinguishable colours (tab10, then a sampled colormap beyond 10 classes)."""
    if K <= 10:
        return [plt.get_cmap("tab10")(k) for k in range(K)]
    return [plt.get_cmap("turbo")(t) for t in np.linspace(0.05, 0.95, K)]


def new_axes(ax=None, **subplot_kw):
    """Return ``ax`` or a fresh ``Axes`` in a new figure."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(subplot_kw=subplot_kw or None)
    return ax


def figure_legend(fig, *, loc: str = "outside lower center", ncol: int | None = None, **kwargs):
    """One legend for the whole figure, outside the panels, so it covers no data.

    Collects the labelled artists of every ``Axes`` of ``fig`` (each label once, in order of
    appearance) and places them with ``fig.legend(loc=loc)``; a constrained-layout figure makes room
    for an ``"outside ..."`` location. ``ncol`` defaults to all entries in one row (at most 4).
    Returns the legend, or ``None`` when nothing is labelled.
    """
    handles, labels = [], []
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if not labels:
        return None
    for ax in fig.axes:  # one legend for all: drop the panels' own
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    return fig.legend(handles, labels, loc=loc, ncol=ncol or min(len(labels), 4), **kwargs)


def plot_curves(curves: Mapping[str, Sequence[float]], *, x=None, ax=None, logy: bool = True, xlabel="iteration",
                ylabel="", title=None):
    """Plot named curves (e.g. ``{"rgd": gap_history}``), on a log y-axis by default.

    Non-positive values are dropped on a log axis (a gap of exactly 0 has no logarithm).
    """
    ax = new_axes(ax)
    for name, values in curves.items():
        v = _np(values).astype(float)
        t = np.arange(len(v)) if x is None else _np(x)[: len(v)]
        keep = v > 0 if logy else np.isfinite(v)
        ax.plot(t[keep], v[keep], label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    return ax


def plot_nc_history(histories: Mapping[str, Mapping[str, Sequence[float]]], *, keys=("nc1", "nc2", "nc3"),
                    x_key="epoch", axes=None, logy=True, title=None, legend="figure"):
    """One panel per metric, one line per run: ``histories = {"normalized": {"epoch": [...], "nc1": [...]}, ...}``.

    Parameters
    ----------
    histories : mapping run label -> mapping metric key -> sequence
        The records of each run (``x_key`` and the ``keys`` among them).
    keys : sequence of str
        Metrics, one panel each; the y-axes are labelled in words (:data:`LABELS`).
    x_key : str
        The column on the x-axis (``"epoch"`` or ``"iteration"``); ticks are whole numbers.
    axes : sequence of Axes, optional
        Panels to draw on (default: a new figure of one row, the column wide).
    logy : bool
        Log-scale y-axes.
    title : str, optional
        A title for the figure (``suptitle``); without it each panel is titled by its metric.
    legend : {"figure", "axes", None}
        With several runs: one legend below the panels (default, it covers no data), one per panel,
        or none.

    Returns
    -------
    numpy.ndarray of Axes
    """
    from matplotlib.ticker import MaxNLocator

    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=figsize(1.0, 0.42 if len(keys) > 2 else 0.5),
                               constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        for name, h in histories.items():
            if key in h:
                plot_curves({name: h[key]}, x=h.get(x_key), ax=ax, logy=logy, xlabel=label(x_key),
                            ylabel=label(key))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        if title is None:
            ax.set_title(key.upper().replace("TEST_", "test "))
        if len(histories) > 1 and legend == "axes":
            ax.legend()
    fig = axes[0].figure
    if len(histories) > 1 and legend == "figure":
        figure_legend(fig)
    if title:
        fig.suptitle(title)
    return axes


def plot_taylor(steps, remainders, *, slope=None, expected=None, ax=None, label="remainder"):
    """Log-log plot of a Taylor remainder against the step size, with the fitted and expected slopes.

    Parameters
    ----------
    steps, remainders : array-like, shape ``(m,)``
    slope : float, optional, the fitted slope (shown in the legend)
    expected : float, optional, draws a reference line of this slope through the middle point
    """
    ax = new_axes(ax)
    t, r = _np(steps).astype(float), _np(remainders).astype(float)
    keep = r > 0
    ax.loglog(t[keep], r[keep], "o-", label=label if slope is None else f"{label} (slope {slope:.2f})")
    if expected is not None and keep.any():
        i = np.flatnonzero(keep)[len(np.flatnonzero(keep)) // 2]
        ax.loglog(t, r[i] * (t / t[i]) ** expected, "k--", lw=1, label=f"slope {expected:g}")
    ax.set_xlabel("step size t")
    ax.set_ylabel("|remainder|")
    ax.legend()
    return ax


def plot_spectrum(eigenvalues, *, ax=None, title=None, tol=1e-9):
    """Stem plot of sorted Hessian eigenvalues, negative ones in red, (numerically) zero ones in grey."""
    ax = new_axes(ax)
    ev = np.sort(_np(eigenvalues).astype(float))
    colors = np.where(ev < -tol, "tab:red", np.where(ev > tol, "tab:blue", "0.5"))
    ax.scatter(np.arange(len(ev)), ev, c=colors, s=12)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("eigenvalue index (sorted)")
    ax.set_ylabel("eigenvalue")
    if title:
        ax.set_title(title)
    return ax


def plot_gram(G, *, ax=None, title=None, vmin=-1.0, vmax=1.0, label="index", colorbar=True):
    """Heat map of a Gram (cosine) matrix on a symmetric colour scale, integer ticks on both axes.

    ``label`` names both axes (e.g. ``"class"``); ``colorbar=False`` leaves the colour bar out, for
    a row of panels that shares one (``fig.colorbar(ax.images[0], ax=axes)``).
    """
    from matplotlib.ticker import MaxNLocator

    ax = new_axes(ax)
    im = ax.imshow(_np(G), cmap="RdBu_r", vmin=vmin, vmax=vmax)
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.set_xlabel(label)
    ax.set_ylabel(label)
    if title:
        ax.set_title(title)
    return ax


def draw_sphere(ax, *, alpha=0.22, color="#9ecae1", grid: bool = True):
    """Draw a shaded, translucent unit sphere on a 3-D ``Axes`` and fix an equal aspect.

    The surface is lit from the upper left (``matplotlib.colors.LightSource``), so the ball has a
    bright and a dark side, and ``grid`` adds faint meridians and parallels: both give the picture
    depth. Points and curves drawn afterwards stay visible through the surface (``alpha``).
    """
    from matplotlib.colors import LightSource

    u, v = np.mgrid[0 : 2 * np.pi : 48j, 0 : np.pi : 24j]
    ax.plot_surface(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color=color, alpha=alpha,
                    linewidth=0, shade=True, lightsource=LightSource(azdeg=315, altdeg=45))
    if grid:
        t = np.linspace(0, 2 * np.pi, 121)
        for lat in np.linspace(-60, 60, 5) * np.pi / 180:  # parallels
            ax.plot(np.cos(lat) * np.cos(t), np.cos(lat) * np.sin(t), np.full_like(t, np.sin(lat)),
                    color="0.45", lw=0.4, alpha=0.5)
        for lon in np.arange(0, 180, 30) * np.pi / 180:  # meridians (full great circles)
            ax.plot(np.cos(lon) * np.cos(t), np.sin(lon) * np.cos(t), np.sin(t), color="0.45", lw=0.4,
                    alpha=0.5)
    ax.set_box_aspect((1, 1, 1))
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-1.05, 1.05)
    return ax


def plot_circle_configuration(W, H, y, *, ax=None, title=None):
    """2-D picture of classifiers (large circles) and features (small triangles), coloured by class.

    ``W`` is ``(K, 2)``, ``H`` is ``(N, 2)``; the unit circle is drawn for reference.
    """
    ax = new_axes(ax)
    W, H, y = _np(W), _np(H), _np(y)
    colors = class_colors(W.shape[0])
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="0.7", lw=0.8)
    for k, c in enumerate(colors):
        ax.scatter(*H[y == k].T, marker="^", s=14, color=c, alpha=0.7)
        ax.scatter(*W[k], marker="o", s=120, color=c, edgecolor="k", zorder=3)
    ax.set_aspect("equal")
    ax.set_xlabel("coordinate 1")
    ax.set_ylabel("coordinate 2")
    if title:
        ax.set_title(title)
    return ax
