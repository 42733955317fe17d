"""Tests of ncbook.widgets: controls exist, slider changes redraw, static fallbacks, checked inputs."""

import math
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ncbook import ufm, widgets  # noqa: E402

ipywidgets = pytest.importorskip("ipywidgets")


@pytest.fixture
def shown(monkeypatch):
    """Collect the figures a widget draws (instead of printing their repr outside IPython)."""
    figs = []
    monkeypatch.setattr(widgets, "_show", figs.append)
    yield figs
    for f in figs:
        plt.close(f)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _controls(w):
    return {c.description: c for c in w.children if isinstance(c, ipywidgets.ValueWidget)}


# --------------------------------------------------------------------------- tangent explorer

def test_tangent_explorer_controls_and_redraw(shown):
    w = widgets.tangent_explorer()
    assert isinstance(w, ipywidgets.interactive) and isinstance(w, ipywidgets.VBox)
    c = _controls(w)
    assert isinstance(c["angle θ"], ipywidgets.FloatSlider)
    assert isinstance(c["step α"], ipywidgets.FloatSlider)
    assert len(shown) == 1 and isinstance(shown[0], Figure)
    c["angle θ"].value = 2.0
    assert w.result["angle"] == 2.0
    assert len(shown) == 2 and len(shown[-1].axes) == 2
    np.testing.assert_allclose(w.result["x"], [math.cos(2.0), math.sin(2.0)])
    c["step α"].value = 0.1
    assert w.result["step"] == 0.1 and len(shown) == 3


def test_tangent_state_numbers():
    A = widgets.DEFAULT_A2
    s = widgets._tangent_state(1.1, 0.3, A)
    # the Riemannian gradient is tangent and is the derivative of f along the circle
    assert s["tangency"] < 1e-14
    h = 1e-6
    f = lambda th: np.array([math.cos(th), math.sin(th)]) @ A @ np.array([math.cos(th), math.sin(th)])
    assert abs(s["slope"] - (f(1.1 + h) - f(1.1 - h)) / (2 * h)) < 1e-8
    np.testing.assert_allclose(s["rgrad"] + s["normal"], s["egrad"])
    # retraction and exponential map agree to third order: halving the step divides the gap by ~8
    g1 = widgets._tangent_state(1.1, 0.02, A)["gap"]
    g2 = widgets._tangent_state(1.1, 0.01, A)["gap"]
    assert 7.0 < g1 / g2 < 9.0


def test_tangent_figure_static():
    fig = widgets.tangent_figure(angle=0.3, step=0.5)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    plt.close(fig)


# --------------------------------------------------------------------------- RGD stepper

def test_rgd_stepper_controls_and_redraw(shown):
    w = widgets.rgd_stepper(steps=40)
    c = _controls(w)
    assert isinstance(c["step size"], ipywidgets.FloatLogSlider)
    assert isinstance(c["steps"], ipywidgets.IntSlider)
    assert isinstance(c["rule"], ipywidgets.Dropdown)
    assert w.result["final_gap"] < 1e-10  # lr 0.2 < 2 / (2 (4 - 1)): converges to the bottom eigenvector
    assert w.result["path"].shape == (41, 3)
    np.testing.assert_allclose(np.linalg.norm(w.result["path"], axis=1), 1.0, atol=1e-12)
    c["step size"].value = 0.5  # beyond 2/L = 1/3: the iterates zigzag and the gap stalls
    assert w.result["lr"] == pytest.approx(0.5)
    assert w.result["final_gap"] > 1e-3
    c["rule"].value = "armijo"  # backtracking rescues the same initial step
    assert w.result["rule"] == "armijo" and w.result["final_gap"] < 1e-10
    c["steps"].value = 5
    assert w.result["path"].shape == (6, 3)
    assert len(shown) == 4


def test_rgd_figure_circle_and_sphere():
    fig = widgets.rgd_figure(0.1, 10, A=np.diag([1.0, 3.0]))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    fig3 = widgets.rgd_figure(0.2, 10, rule="bb")
    assert fig3.axes[0].name == "3d"
    plt.close(fig)
    plt.close(fig3)


# --------------------------------------------------------------------------- tau explorer

def test_tau_explorer_controls_and_redraw(shown):
    w = widgets.tau_explorer(Ks=(2, 5))
    c = _controls(w)
    assert isinstance(c["τ"], ipywidgets.FloatSlider) and isinstance(c["K (bars)"], ipywidgets.IntSlider)
    c["τ"].value = 3.0
    c["K (bars)"].value = 7
    r = w.result
    assert r["tau"] == 3.0 and r["K"] == 7 and r["probs"].shape == (7,)
    assert r["optimal_loss"][5] == pytest.approx(ufm.optimal_loss(5, 3.0))
    # at the ETF the cross-entropy is the closed-form optimum and p_correct = exp(-f*)
    assert r["etf_loss"] == pytest.approx(ufm.optimal_loss(7, 3.0), rel=1e-12)
    assert r["p_correct"] == pytest.approx(math.exp(-ufm.optimal_loss(7, 3.0)), rel=1e-12)
    assert len(shown) == 3


def test_tau_figure_static():
    fig = widgets.tau_figure(2.0, K=3, Ks=[3, 10])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_yscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["K = 3", "K = 10"]
    plt.close(fig)


# --------------------------------------------------------------------------- fallback and inputs

@pytest.mark.parametrize("make", [widgets.tangent_explorer, widgets.rgd_stepper, widgets.tau_explorer])
def test_without_ipywidgets_returns_static_figure(monkeypatch, make):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` raise ImportError
    fig = make()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    plt.close(fig)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: widgets.tangent_figure(A=np.eye(3)), ValueError, "A must have shape"),
        (lambda: widgets.tangent_figure(A=[[1.0, 2.0], [0.0, 1.0]]), ValueError, "symmetric"),
        (lambda: widgets.tangent_figure(step=-1.0), ValueError, "step"),
        (lambda: widgets.tangent_explorer(angle="a"), TypeError, "angle"),
        (lambda: widgets.rgd_figure(lr=0.0), ValueError, "lr"),
        (lambda: widgets.rgd_figure(steps=0), ValueError, "steps"),
        (lambda: widgets.rgd_figure(rule="newton"), ValueError, "rule"),
        (lambda: widgets.rgd_figure(x0=[1.0, 0.0]), ValueError, "x0"),
        (lambda: widgets.rgd_stepper(A=np.full((3, 3), np.nan)), ValueError, "finite"),
        (lambda: widgets.tau_figure(tau=0.0), ValueError, "tau"),
        (lambda: widgets.tau_figure(K=1), ValueError, "K"),
        (lambda: widgets.tau_explorer(Ks=()), ValueError, "Ks"),
    ],
)
def test_inputs_are_checked(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --- the plotly versions: interactive in the static page, every slider position computed here ---

def test_tangent_plot_slider_positions_hold_the_computed_retractions():
    fig = widgets.tangent_plot(angles=[0.6, 1.2], steps=(0.3, 0.8))
    assert len(fig.layout.sliders[0].steps) == 2 and len(fig.layout.updatemenus[0].buttons) == 2
    s = widgets.tangent_state(1.2, 0.8)
    names = fig.layout.sliders[0].steps[1].args[0]["name"]
    assert f"retraction R_x, |R − Exp| = {s['gap']:.1e}" in names
    assert widgets.tangent_state(0.6, 0.8)["tangency"] < 1e-14


def test_rgd_plot_has_one_run_per_rule_and_step_size():
    fig = widgets.rgd_plot(lrs=[0.1, 0.2], steps=10)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["fixed", "armijo", "bb"]
    args = fig.layout.sliders[0].steps[1].args[0]
    run = widgets.rgd_state(0.2, 10, rule="armijo")
    path_armijo = args["x"][2]  # traces: (path, gap) per rule, in rule order
    assert np.allclose(path_armijo, np.round(run["path"][:, 0], 5))
    with pytest.raises(ValueError, match="shape"):
        widgets.rgd_plot(A=np.eye(2))


def test_tau_plot_bars_are_the_etf_softmax():
    fig = widgets.tau_plot(taus=[1.0, 5.0], bar_Ks=(2, 4))
    y = fig.layout.sliders[0].steps[1].args[0]["y"]
    assert np.allclose(y[3], np.round(widgets.tau_state(5.0, K=4)["probs"], 5))


def test_features_and_etf_plots_validate_their_input():
    H = [(torch.randn(6, 3), torch.randn(2, 3)) for _ in range(2)]
    fig = widgets.features_plot({"run": H}, [0, 0, 0, 1, 1, 1], values=[0, 5])
    assert [s.label for s in fig.layout.sliders[0].steps] == ["0", "5"]
    with pytest.raises(ValueError, match="one \\(H, W\\) pair per slider value"):
        widgets.features_plot({"run": H[:1]}, [0, 0, 0, 1, 1, 1], values=[0, 5])
    with pytest.raises(ValueError, match="shape \\(K, 3\\)"):
        widgets.etf_plot(np.eye(2))
