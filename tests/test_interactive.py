"""ncbook.interactive: plotly figures shown the same way in the book, Jupyter and Colab."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import yaml
from matplotlib.colors import to_hex

from ncbook import interactive, plotting

ROOT = Path(__file__).resolve().parents[1]


def _line(option, value):
    return [go.Scatter(x=[0, 1, 2], y=[0, value, 2 * value], name=f"{option}: slope {value:g}"),
            go.Scatter(x=[1], y=[value], mode="markers")]


def _spec(html):
    m = re.search(r'<script type="application/json" id="[^"]+-spec">(.*?)</script>', html, re.S)
    assert m, "no figure JSON in the HTML"
    return json.loads(m.group(1))


def test_to_html_embeds_the_figure_and_draws_it_with_the_site_loader():
    fig = interactive.style(go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="</script><b>")), title="a title")
    html = interactive.to_html(fig, div_id="fig-1")
    assert '<div class="ncbook-plotly" id="fig-1"' in html
    spec = _spec(html)  # the trace name cannot end the script tag early
    assert spec["data"][0]["name"] == "</script><b>"
    assert spec["layout"]["title"]["text"] == "a title"
    assert "window.ncbookPlotly.ready(draw, document.getElementById(id))" in html  # drawn when near the screen
    # the CDN is only a fallback for a notebook without the book's loader, never the first choice
    assert html.index("window.ncbookPlotly") < html.index("cdn.plot.ly")
    assert html.count("<script") == 2  # no copy of plotly.js inside the figure


def test_to_html_ids_differ_between_figures():
    fig = go.Figure(go.Scatter(x=[1], y=[1]))
    ids = {re.search(r'id="([^"]+)"', interactive.to_html(fig)).group(1) for _ in range(5)}
    assert len(ids) == 5


def test_show_outside_colab_sends_plotly_json_and_html(monkeypatch):
    shown = []
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    interactive.show(fig)
    (bundle, raw), = shown
    assert raw is True
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/html"}
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["type"] == "scatter"
    assert _spec(bundle["text/html"])["data"] == bundle["application/vnd.plotly.v1+json"]["data"]


def test_show_in_colab_uses_plotlys_colab_renderer(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr("plotly.io.show", lambda fig, renderer=None: calls.append(renderer))
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: pytest.fail("display() used in Colab"))
    interactive.show(go.Figure())
    assert calls == ["colab"]


@pytest.mark.parametrize("bad", [None, {"data": []}, "figure"])
def test_show_and_to_html_reject_what_is_not_a_plotly_figure(bad):
    with pytest.raises(TypeError, match="fig must be a plotly"):
        interactive.show(bad)
    with pytest.raises(TypeError, match="fig must be a plotly"):
        interactive.to_html(bad)


def test_style_sizes_text_for_the_column_and_puts_the_legend_outside_the_data():
    fig = interactive.style(go.Figure(go.Scatter(x=[1], y=[1])), height=380)
    assert fig.layout.font.size >= 12 and fig.layout.xaxis.tickfont.size >= 10
    assert fig.layout.height == 380
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y > 1  # above the axes
    assert len(interactive.to_html(fig)) < 8000  # no 40 kB template in every figure


def test_class_colors_are_the_matplotlib_class_colors():
    for K in (3, 10, 12):
        assert interactive.class_colors(K) == [to_hex(c) for c in plotting.class_colors(K)]


def test_slider_steps_hold_what_draw_computed_for_every_value_and_option():
    values, options = [0.5, 1.0, 2.0], ["left", "right"]
    fig = interactive.controlled_figure(_line, values=values, value_label="slope", options=options,
                                        static=[go.Scatter(x=[0, 2], y=[0, 0], name="axis")], start=1)
    assert len(fig.data) == 1 + 2 * 2  # the static trace, then two traces per option
    slider, = fig.layout.sliders
    assert slider.active == 1 and [s.label for s in slider.steps] == ["0.5", "1", "2"]
    for step, v in zip(slider.steps, values):
        args, idx = step.args
        assert list(idx) == [1, 2, 3, 4]  # the static trace is never touched
        want = [t for o in options for t in _line(o, v)]
        assert args["y"] == [list(t.y) for t in want]
        assert args["name"] == [t.name for t in want]
    # the figure starts at values[start]; only the first option is visible
    assert list(fig.data[1].y) == [0, 1.0, 2.0]
    assert [t.visible for t in fig.data[1:]] == [True, True, False, False]


def test_buttons_switch_visibility_only_so_they_compose_with_the_slider():
    fig = interactive.controlled_figure(_line, values=[1, 2], value_label="slope", options=["a", "b", "c"],
                                        option_label="run")
    menu, = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == ["a", "b", "c"]
    for i, b in enumerate(menu.buttons):
        args, idx = b.args
        assert set(args) == {"visible"}  # a button never resets the data the slider chose
        assert args["visible"] == [k // 2 == i for k in range(6)]
    for step in fig.layout.sliders[0].steps:
        assert "visible" not in step.args[0]  # and the slider never changes which option shows
    assert any(a.text == "run:" for a in fig.layout.annotations)


def test_single_option_figure_has_a_slider_and_no_buttons():
    fig = interactive.controlled_figure(lambda v: [go.Scatter(x=[0, 1], y=[0, v])], values=np.linspace(0, 1, 4),
                                        value_label="v")
    assert len(fig.layout.sliders[0].steps) == 4 and not fig.layout.updatemenus
    assert fig.layout.sliders[0].steps[3].args[0]["y"] == [[0.0, 1.0]]


def test_controlled_figure_rejects_bad_arguments():
    with pytest.raises(ValueError, match="values must hold at least 2"):
        interactive.controlled_figure(_line, values=[1], value_label="v", options=["a", "b"])
    with pytest.raises(ValueError, match="options must hold at least 2"):
        interactive.controlled_figure(_line, values=[1, 2], value_label="v", options=["a"])
    with pytest.raises(ValueError, match="start must be an index"):
        interactive.controlled_figure(_line, values=[1, 2], value_label="v", options=["a", "b"], start=2)
    with pytest.raises(ValueError, match="draw returned no traces"):
        interactive.controlled_figure(lambda v: [], values=[1, 2], value_label="v")

    def unstable(v):
        return [go.Scatter(x=[v], y=[v])] if v < 2 else [go.Bar(x=[v], y=[v])]

    with pytest.raises(ValueError, match="same traces for every value"):
        interactive.controlled_figure(unstable, values=[1, 2], value_label="v")


def test_sphere_surface_lies_on_the_unit_sphere():
    s = interactive.sphere_surface(n=20)
    r = np.sqrt(np.asarray(s.x) ** 2 + np.asarray(s.y) ** 2 + np.asarray(s.z) ** 2)
    assert np.allclose(r, 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="opacity"):
        interactive.sphere_surface(opacity=0)


def test_the_book_serves_plotly_once_from_its_assets():
    """The loader the book puts on every page fetches the one copy that fetch_assets.sh vendors."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert "ncbook-plotly.js" in cfg["html_js_files"] and "book/_js" in cfg["html_static_path"]
    assert "_assets" in cfg["html_static_path"]
    loader = (ROOT / "book" / "_js" / "ncbook-plotly.js").read_text()
    assert interactive.PLOTLY_ASSET in loader
    script = (ROOT / "scripts" / "fetch_assets.sh").read_text()
    assert '"$dest/plotly/plotly.min.js"' in script and interactive.PLOTLY_ASSET == "plotly/plotly.min.js"


def test_curves_figure_slides_between_precomputed_curve_sets():
    curves = {1.0: {"a, lr 1": [1.0, 0.5, 0.0], "b, lr 1": [1.0, 0.1, 0.01]},
              2.0: {"a, lr 2": [1.0, 0.2, 0.05], "b, lr 2": [1.0, 0.9, 0.8]}}
    fig = interactive.curves_figure(curves, value_label="lr", xlabel="t", ylabel="gap",
                                    background={"other": [1.0, 1.0, 1.0]}, start=2.0)
    assert fig.layout.sliders[0].active == 1 and fig.layout.yaxis.type == "log"
    args = fig.layout.sliders[0].steps[0].args[0]
    assert args["name"] == ["a, lr 1", "b, lr 1"]
    assert np.isnan(args["y"][0][2])  # a zero gap is left out of a log axis, not drawn at 1e-300
    with pytest.raises(ValueError, match="same number of curves"):
        interactive.curves_figure({1: {"a": [1]}, 2: {}}, value_label="v", xlabel="", ylabel="")


def _two_panels(n_steps=8, scene=False):
    from plotly.subplots import make_subplots

    specs = [[{"type": "scene" if scene else "xy"}, {"type": "xy"}]]
    fig = make_subplots(rows=1, cols=2, specs=specs)

    def draw(option, value):
        left = (go.Scatter3d(x=[0, value], y=[0, 1], z=[0, 1]) if scene
                else go.Scatter(x=[0, value], y=[0, 1]))
        left.meta = {"row": 1, "col": 1}
        right = go.Scatter(x=[0, 1], y=[value, 0], name=f"{option}")
        right.meta = {"row": 1, "col": 2}
        return [left, right]

    fig = interactive.controlled_figure(draw, values=list(range(n_steps)), value_label="v",
                                        options=["a", "b"], option_label="rule", fig=fig)
    fig.add_annotation(text="right panel", x=0.8, xref="paper", y=0.0, yref="paper", showarrow=False)
    return interactive.style(fig, height=500)


@pytest.mark.parametrize("scene", [False, True])
def test_narrow_layout_stacks_side_by_side_panels_full_width(scene):
    fig = _two_panels(scene=scene)
    out = interactive.narrow_layout(fig)
    left_x, left_y = ("scene.domain.x", "scene.domain.y") if scene else ("xaxis.domain", "yaxis.domain")
    assert out[left_x] == [0.0, 1.0] and out["xaxis2.domain" if not scene else "xaxis.domain"] == [0.0, 1.0]
    top = out[left_y]
    bottom = out["yaxis2.domain" if not scene else "yaxis.domain"]
    assert 0.0 <= bottom[0] < bottom[1] < top[0] < top[1] <= 1.0  # the first panel on top
    assert fig.layout.height < out["height"] <= interactive.NARROW_MAX_PX  # one phone screen
    notes = {a["text"]: a for a in out["annotations"]}
    assert notes["rule:"]["x"] == 0.0 and notes["rule:"]["y"] == 0  # the buttons' label stays,
    shift = interactive.CONTROLS_SHIFT_PX  # ... as far below the plot as the buttons move
    assert notes["rule:"]["yshift"] == fig.layout.annotations[0].yshift - shift
    assert out["sliders[0].pad.t"] == fig.layout.sliders[0].pad.t + shift
    assert out["updatemenus[0].pad.t"] == fig.layout.updatemenus[0].pad.t + shift
    assert notes["right panel"]["y"] == pytest.approx(bottom[0])  # a panel's label moves with it
    assert 0.0 <= notes["right panel"]["x"] <= 1.0
    assert out["sliders[0].font.color"] == "rgba(0,0,0,0)"  # 8 step labels would overlap
    assert fig.layout.sliders[0].currentvalue.font.color  # the current value stays readable


def test_narrow_layout_keeps_few_slider_labels_and_moves_a_single_panels_controls_only():
    assert "sliders[0].font.color" not in interactive.narrow_layout(_two_panels(n_steps=4))
    single = interactive.controlled_figure(lambda v: [go.Scatter(x=[0, v], y=[0, 1])], values=[1, 2],
                                           value_label="v")
    out = interactive.narrow_layout(single)
    shift = interactive.CONTROLS_SHIFT_PX
    assert out == {"height": (single.layout.height or 460) + shift,
                   "sliders[0].pad.t": (single.layout.sliders[0].pad.t or 0) + shift}
    assert "ncbook_responsive" in _spec(interactive.to_html(single))
    plain = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"title": {"text": "short"}})
    assert interactive.narrow_layout(plain) is None  # nothing to change on a phone
    assert "ncbook_responsive" not in _spec(interactive.to_html(plain))


def test_narrow_layout_wraps_a_long_title():
    title = "simplex ETF, K = 4 in R^3: a regular tetrahedron with its features"
    out = interactive.narrow_layout(go.Figure(layout={"title": {"text": title}}))
    lines = out["title.text"].split("<br>")
    assert len(lines) > 1 and max(map(len, lines)) <= interactive.NARROW_TITLE_CHARS
    assert " ".join(lines) == title
    assert out["title.automargin"] is False and out["margin.t"] >= 16 + 21 * len(lines)  # room for the title


def test_to_html_embeds_both_layouts_and_switches_below_the_narrow_width():
    fig = _two_panels()
    spec = _spec(interactive.to_html(fig))
    r = spec["ncbook_responsive"]
    assert r["below"] == interactive.NARROW_PX
    assert set(r["narrow"]) == set(r["wide"])
    assert r["wide"]["xaxis.domain"] == list(fig.layout.xaxis.domain)
    assert r["wide"]["height"] == 500
    html = interactive.to_html(fig)
    assert "ResizeObserver" in html and "Plotly.purge(div); s = JSON.parse(text)" in html
    assert "Plotly.relayout(div, {width: w, height: fl.height})" in html and '"responsive": false' in html
    assert html.count("<script") == 2
