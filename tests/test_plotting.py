"""Smoke tests of ncbook.plotting: each helper draws what it is given onto an Axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ncbook import etf, plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_plot_curves_drops_nonpositive_values_on_log_axis():
    ax = plotting.plot_curves({"a": [1.0, 0.1, 0.0, 1e-3], "b": torch.tensor([2.0, 1.0])})
    assert ax.get_yscale() == "log"
    xs = ax.lines[0].get_xdata()
    assert list(xs) == [0, 1, 3]
    assert len(ax.lines) == 2


def test_plot_taylor_draws_reference_slope():
    t = np.logspace(-4, 0, 9)
    ax = plotting.plot_taylor(t, t**2, slope=2.0, expected=2)
    assert len(ax.lines) == 2
    ref = ax.lines[1].get_ydata()
    assert np.allclose(ref, t**2)


def test_plot_spectrum_colours_signs():
    ax = plotting.plot_spectrum([-1.0, 0.0, 2.0])
    colors = ax.collections[0].get_facecolors()
    assert len(colors) == 3 and not np.allclose(colors[0], colors[2])


def test_gram_circle_sphere_and_nc_history():
    W = etf.simplex_etf(3, 2)
    y = torch.arange(3).repeat_interleave(4)
    plotting.plot_gram(W @ W.T)
    ax = plotting.plot_circle_configuration(W, W[y], y, title="ETF")
    assert ax.get_title() == "ETF"
    ax3 = plt.figure().add_subplot(projection="3d")
    plotting.draw_sphere(ax3)
    axes = plotting.plot_nc_history({"run": {"epoch": [0, 5, 10], "nc1": [1.0, 0.1, 0.01]}}, keys=("nc1",))
    assert len(axes) == 1 and len(axes[0].lines) == 1


def test_class_colors_beyond_ten():
    assert len(plotting.class_colors(3)) == 3
    assert len(set(plotting.class_colors(20))) == 20


def test_style_is_a_context_that_leaves_the_global_settings_alone():
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    with plotting.style():
        assert mpl.rcParams["axes.spines.top"] is False
        assert tuple(mpl.rcParams["figure.figsize"])[0] == plotting.COLUMN_WIDTH_IN
    assert dict(mpl.rcParams) == before


def test_figsize_is_a_fraction_of_the_column():
    w, h = plotting.figsize(0.5, 0.8)
    assert w == pytest.approx(0.5 * plotting.COLUMN_WIDTH_IN) and h == pytest.approx(0.8 * w)
    # never more than 1.2 columns: the book would shrink it below 85 % of its size
    assert plotting.COLUMN_WIDTH_IN * plotting.STYLE["figure.dpi"] * 1.2 / 0.85 < 1366
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="width must be in"):
            plotting.figsize(bad)
    with pytest.raises(ValueError, match="aspect"):
        plotting.figsize(1.0, 0)


def test_text_sizes_are_readable_at_the_column_width():
    px = {k: plotting.STYLE[k] * plotting.STYLE["figure.dpi"] / 72
          for k in ("font.size", "xtick.labelsize", "ytick.labelsize", "legend.fontsize")}
    assert min(px.values()) >= 12  # >= 10 px even when shown at 85 % of the native size
