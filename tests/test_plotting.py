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


def test_label_gives_words_for_metric_keys():
    assert plotting.label("nc1") == "NC1 (within-class variability)"
    assert plotting.label("test_acc") == "test accuracy"
    assert plotting.label("test_nc2").startswith("NC2")  # listed
    assert plotting.label("test_grad_norm") == "test Riemannian gradient norm"  # prefix rule
    assert plotting.label("my own label") == "my own label"  # passes through


def test_nc_history_axes_in_words_integer_epochs_and_one_legend_outside():
    runs = {
        "normalized": {"epoch": [0, 1, 2, 3], "nc1": [1.0, 0.5, 0.2, 0.1], "nc2": [1, 0.5, 0.3, 0.2]},
        "regularized": {"epoch": [0, 1, 2, 3], "nc1": [1.0, 0.7, 0.5, 0.4], "nc2": [1, 0.8, 0.6, 0.5]},
    }
    axes = plotting.plot_nc_history(runs, keys=("nc1", "nc2"), title="two runs")
    assert axes[0].get_ylabel() == plotting.LABELS["nc1"] and axes[0].get_xlabel() == "epoch"
    ticks = axes[0].xaxis.get_major_locator().tick_values(0, 3)
    assert np.allclose(ticks, np.round(ticks))  # no half epochs
    fig = axes[0].figure
    assert all(ax.get_legend() is None for ax in axes)  # no legend over the data
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == [
        "normalized", "regularized"]
    assert fig.get_suptitle() == "two runs"
    # legend="axes" keeps the old per-panel legends
    axes = plotting.plot_nc_history(runs, keys=("nc1",), legend="axes")
    assert axes[0].get_legend() is not None and not axes[0].figure.legends


def test_figure_legend_collects_each_label_once():
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 1], label="x")
    b.plot([0, 1], label="x")
    b.plot([1, 0], label="y")
    b.legend()
    leg = plotting.figure_legend(fig)
    assert [t.get_text() for t in leg.get_texts()] == ["x", "y"] and b.get_legend() is None
    fig2, _ = plt.subplots()
    assert plotting.figure_legend(fig2) is None


def test_gram_without_colorbar_and_sphere_with_depth():
    fig, axes = plt.subplots(1, 2)
    plotting.plot_gram(etf.etf_gram(4), ax=axes[0], colorbar=False, label="class")
    assert len(fig.axes) == 2  # no colour-bar axes added
    plotting.plot_gram(etf.etf_gram(4), ax=axes[1], label="class")
    assert len(fig.axes) == 3 and axes[1].get_xlabel() == "class"
    ax3 = plt.figure().add_subplot(projection="3d")
    plotting.draw_sphere(ax3)
    face = ax3.collections[0].get_facecolors()[:, :3]
    assert np.ptp(face.mean(axis=1)) > 0.1  # shaded: a bright side and a dark side
    assert len(ax3.lines) > 0  # meridians and parallels
    ax4 = plt.figure().add_subplot(projection="3d")
    plotting.draw_sphere(ax4, grid=False)
    assert len(ax4.lines) == 0


def test_circle_configuration_labels_its_axes():
    W = etf.simplex_etf(3, 2)
    y = torch.arange(3).repeat_interleave(2)
    ax = plotting.plot_circle_configuration(W, W[y], y)
    assert ax.get_xlabel() and ax.get_ylabel()
