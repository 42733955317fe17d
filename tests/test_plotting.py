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
