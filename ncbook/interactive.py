r"""Interactive figures that need no kernel: plotly, shown the same way in the book, Jupyter and Colab.

A plotly figure keeps its 3-D rotation, sliders and buttons in plain HTML, so a precomputed figure
stays interactive in the static book, where no Python runs. This module has three parts:

* :func:`show` displays a figure so that it works everywhere the course is read. In the built book
  the page loads ``plotly.min.js`` once, from the site's own ``_static/plotly/`` folder (the small
  loader ``book/_js/ncbook-plotly.js`` fetches it on the first figure of a page), so nothing leaves
  the machine and the library is not repeated in every figure. In Jupyter (Lab, Notebook 7, VS Code)
  the ``application/vnd.plotly.v1+json`` output is drawn by plotly's own renderer; in Colab, whose
  outputs are isolated frames, the figure goes through plotly's ``"colab"`` renderer.
* :func:`style` applies the house style (text readable at the book's column width, legends outside
  the data, the class colours of :func:`ncbook.plotting.class_colors`).
* :func:`controlled_figure` is the one mechanism behind every slider of the course: ``draw(option,
  value)`` is run for every value of a slider and every option of a button row, *here, in Python*,
  and the results are stored in the figure. A slider step replaces the data of the traces; a button
  switches which option's traces are visible. Because the two controls set different properties of
  the traces, they compose: the slider keeps its position when a button is pressed, and the
  reverse.

Introduced in: chapter 02 (optimization on the sphere).
"""

from __future__ import annotations

import html
import json
import math
import sys
import uuid
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "PLOTLY_ASSET",
    "class_colors",
    "style",
    "to_html",
    "show",
    "controlled_figure",
    "sphere_surface",
    "curves_figure",
    "NARROW_PX",
    "narrow_layout",
]

#: Where the book serves plotly.js, relative to the site's ``_static/`` folder.
PLOTLY_ASSET = "plotly/plotly.min.js"

#: Text sizes in CSS px. The book's column is about 700-830 px wide at 1366 px, and a plotly
#: figure is drawn at the width of the column, so these are the sizes the reader sees.
FONT_SIZE = 14
TICK_SIZE = 12

#: Below this container width (CSS px) a figure with panels side by side stacks them (a phone).
NARROW_PX = 600

#: Height in px that each stacked panel gets on a narrow screen (3-D scenes a little more).
PANEL_PX = {"xy": 260, "scene": 300}

#: At most this tall (px) on a narrow screen: panels, slider and buttons fit on one phone screen
#: (about 390 x 844 px, less the page header), so a control and what it moves are seen together.
NARROW_MAX_PX = 840

#: How much lower (px) the slider and buttons sit on a narrow screen, clear of the axis title.
CONTROLS_SHIFT_PX = 30
#: Longest title line on a phone (characters of a 14 px title at 390 px).
NARROW_TITLE_CHARS = 42

#: Trace properties a slider step may replace (data, labels and colours; never the trace type).
DATA_KEYS = ("x", "y", "z", "u", "v", "w", "text", "name", "marker.color", "marker.size",
             "line.color", "hovertext")


def _go():
    import plotly.graph_objects as go

    return go


def class_colors(K: int) -> list[str]:
    """Return the class colours of :func:`ncbook.plotting.class_colors` as ``"#rrggbb"`` strings."""
    from matplotlib.colors import to_hex

    from . import plotting

    return [to_hex(c) for c in plotting.class_colors(K)]


def style(fig, *, title: str | None = None, height: int = 460, legend_outside: bool = True):
    """Apply the house style to a plotly figure in place and return it.

    White background, a light grid, 14 px text and 12 px tick labels (readable at the column
    width on a laptop and a phone), the legend in rows above the plot so that it covers no data
    (plotly widens the top margin to fit it), and a fixed ``height`` in px (the width follows the
    column). A ``title`` is set above everything.
    """
    _check_fig(fig)
    fig.update_layout(
        template="none",  # plotly's own templates add ~40 kB of JSON to every figure
        paper_bgcolor="white",
        plot_bgcolor="white",
        font={"size": FONT_SIZE, "family": "Helvetica, Arial, sans-serif"},
        height=int(height),
        autosize=True,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        colorway=class_colors(10),
        hoverlabel={"font_size": TICK_SIZE},
        legend_itemsizing="constant",
    )
    axis = {"tickfont_size": TICK_SIZE, "gridcolor": "#e6e6e6", "zerolinecolor": "#bdbdbd",
            "linecolor": "#444", "showline": True, "ticks": "outside", "automargin": True}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    scene_axis = {"tickfont_size": TICK_SIZE - 2, "backgroundcolor": "white", "gridcolor": "#e6e6e6",
                  "showbackground": True, "zerolinecolor": "#bdbdbd"}
    fig.update_scenes(xaxis=scene_axis, yaxis=scene_axis, zaxis=scene_axis)
    if title:
        fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left", "xref": "paper", "y": 1.0,
                                 "yref": "container", "yanchor": "top", "automargin": True,
                                 "pad": {"t": 8}, "font_size": FONT_SIZE + 2})
    if legend_outside:  # above the plot: the slider and buttons own the space below it
        fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0,
                                  "font_size": TICK_SIZE})
    return fig


def _check_fig(fig):
    go = _go()
    if not isinstance(fig, go.Figure):
        raise TypeError(f"fig must be a plotly.graph_objects.Figure, got {type(fig).__name__}")


def _figure_json(fig) -> str:
    """Serialize the figure as JSON (numpy arrays become plotly's compact typed-array form)."""
    import plotly.io as pio

    return pio.to_json(fig, validate=False)


def to_html(fig, *, div_id: str | None = None) -> str:
    """HTML for one figure: a ``div``, the figure's JSON and a short script that draws it.

    The script draws with ``window.ncbookPlotly`` when the page has the book's loader (plotly.js
    from the site's assets, loaded once per page; the figure is drawn when it nears the screen),
    with ``window.Plotly`` when plotly.js is already
    there, and otherwise loads the matching plotly.js from plotly's CDN (a notebook with a network).
    """
    _check_fig(fig)
    from plotly.offline import get_plotlyjs_version

    div_id = div_id or f"ncbook-plotly-{uuid.uuid4().hex[:12]}"
    height = fig.layout.height or 460
    spec = _figure_json(fig)
    narrow = narrow_layout(fig)
    if narrow is not None:  # the two layouts the page switches between, next to the figure
        spec = spec[:-1] + ', "ncbook_responsive": ' + json.dumps(
            {"narrow": narrow, "wide": _wide_values(fig, narrow), "below": NARROW_PX},
            cls=_json_encoder()) + "}"
    spec = spec.replace("</", "<\\/")  # never close the script tag early
    cdn = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    config = json.dumps({"responsive": False, "displaylogo": False,  # refitted by the script below
                         "modeBarButtonsToRemove": ["sendDataToCloud", "lasso2d", "select2d"]})
    return (
        f'<div class="ncbook-plotly" id="{html.escape(div_id)}" style="width:100%;height:{int(height)}px">'
        f"</div>\n"
        f'<script type="application/json" id="{html.escape(div_id)}-spec">{spec}</script>\n'
        "<script>(function () {\n"
        f'  var id = "{div_id}", config = {config};\n'
        "  function put(o, path, v) {  // o.a[0].b = v for path 'a[0].b'\n"
        '    var k = path.replace(/\\[/g, ".").replace(/\\]/g, "").split("."), i;\n'
        "    for (i = 0; i < k.length - 1; i++) { o = o[k[i]] || (o[k[i]] = {}); }\n"
        "    o[k[k.length - 1]] = v;\n"
        "  }\n"
        '  var text = document.getElementById(id + "-spec").textContent, s = JSON.parse(text);\n'
        "  var div = document.getElementById(id), r = s.ncbook_responsive, mode = null, drawn = false;\n"
        "  function wanted() { return r && div.clientWidth < r.below ? \"narrow\" : \"wide\"; }\n"
        "  function apply(m) {  // panels side by side (wide) or stacked (narrow)\n"
        "    var u = r[m], k;\n"
        '    div.style.height = u.height + "px";  // at once: the page must not move when it draws\n'
        "    // Once drawn, the figure is drawn afresh from its spec: after Plotly.relayout of its panels'\n"
        "    // domains, a slider's animation leaves a 3-D view that no longer turns (plotly 7.1).\n"
        "    if (drawn) { window.Plotly.purge(div); s = JSON.parse(text); }\n"
        "    for (k in u) { put(s.layout, k, u[k]); }\n"
        "    mode = m;\n"
        "    if (drawn) { draw(); }\n"
        "  }\n"
        "  if (r) { apply(wanted()); }\n"
        "  // Refit whenever the div changes size, also when the page's columns settle after a window\n"
        "  // resize or a phone's rotation (plotly's own handler sees only the resize event itself),\n"
        "  // 100 ms after the last change. The size is set explicitly: plotly's autosize (its own\n"
        "  // responsive mode, Plots.resize) leaves a 3-D view that no longer turns (plotly 7.1).\n"
        "  var timer = null;\n"
        "  function refit() {\n"
        "    if (r && wanted() !== mode) { apply(wanted()); return; }\n"
        "    var fl = div._fullLayout, w = div.clientWidth;\n"
        "    if (drawn && fl && w > 0 && Math.abs(fl.width - w) > 1) {\n"
        "      window.Plotly.relayout(div, {width: w, height: fl.height});\n"
        "    }\n"
        "  }\n"
        "  function fit() { clearTimeout(timer); timer = setTimeout(refit, 100); }\n"
        '  if ("ResizeObserver" in window) { new ResizeObserver(fit).observe(div); }\n'
        '  else { window.addEventListener("resize", fit); }\n'
        "  function draw() {\n"
        "    drawn = true;\n"
        "    window.Plotly.newPlot(id, s.data, s.layout, config).then(function (gd) {\n"
        "      if (s.frames) { return window.Plotly.addFrames(gd, s.frames); }\n"
        "    });\n"
        "  }\n"
        "  if (window.ncbookPlotly) { window.ncbookPlotly.ready(draw, document.getElementById(id)); }\n"
        "  else if (window.Plotly) { draw(); }\n"
        '  else { var t = document.createElement("script"); t.src = "' + cdn + '";\n'
        "         t.onload = draw; document.head.appendChild(t); }\n"
        "})();</script>"
    )


def _panels(layout: dict) -> list[dict]:
    """Return the panels of a layout (set explicitly, as make_subplots does): one per x axis or scene.

    Each is ``{"kind": "xy" | "scene", "x": [x0, x1], "keys": [layout keys of its domains]}``;
    an x axis's y axis is the one it is anchored to.
    """
    panels = []
    for key, val in layout.items():
        if key.startswith("xaxis") and isinstance(val, dict) and "domain" in val:
            y = "yaxis" + key[len("xaxis"):]
            y = "yaxis" + val["anchor"][1:] if str(val.get("anchor", "")).startswith("y") else y
            panels.append({"kind": "xy", "x": list(val["domain"]), "keys": [f"{key}.domain"],
                           "y_keys": [f"{y}.domain"] if y in layout else []})
        elif key.startswith("scene") and isinstance(val, dict) and "x" in val.get("domain", {}):
            panels.append({"kind": "scene", "x": list(val["domain"]["x"]),
                           "keys": [f"{key}.domain.x"], "y_keys": [f"{key}.domain.y"]})
    return panels


def narrow_layout(fig) -> dict | None:
    r"""Return the layout a figure takes on a narrow screen: panels stacked, controls clear, title wrapped.

    A figure of ``plotly.subplots.make_subplots`` with ``n >= 2`` columns of panels is
    cramped below :data:`NARROW_PX`: each panel gets about :math:`390/n` px. Stacked, each panel
    takes the full width and about ``PANEL_PX`` of height; the figure grows by the difference, up
    to ``NARROW_MAX_PX`` so that the panels and their controls fit on one phone screen.
    Annotations placed in paper coordinates inside a column (titles of panels) move with their
    panel; those of the controls (``name="ncbook-control"``) stay. On a phone the x-axis title of
    the (lowest) panel sits where the slider's label starts, so sliders and buttons move down by
    ``CONTROLS_SHIFT_PX`` (a single-column figure grows by as much). Slider step labels that would
    overlap at phone width (more than 6 steps) are hidden; the current value stays written above
    the slider. A title longer than ``NARROW_TITLE_CHARS`` is broken into lines.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure

    Returns
    -------
    dict or None
        ``{"height": px, "xaxis2.domain": [0, 1], "yaxis2.domain": [y0, y1], ...}`` in the dotted
        form of ``Plotly.relayout``, or None when the figure needs no change on a phone (one column
        of panels, no controls, a short title).
    """
    _check_fig(fig)
    layout = fig.layout.to_plotly_json()  # the layout only: serializing the data is the costly part
    out = _stacked(fig, layout)
    has_controls = bool(layout.get("sliders") or layout.get("updatemenus"))
    if out is None and has_controls:
        out = {"height": int(layout.get("height") or 460) + CONTROLS_SHIFT_PX}
    if out is not None:
        out.update(_controls_down(layout, out.get("annotations", layout.get("annotations", []))))
    title = (layout.get("title") or {}).get("text") or ""
    wrapped = _wrap_title(title)
    if wrapped != title:
        out = {} if out is None else out
        lines = wrapped.count("<br>") + 1
        # plotly's title automargin places a multi-line, top-anchored title partly above the figure
        # and lets the legend run into it: the top margin is set for both instead
        rows = math.ceil(_legend_entries(fig) / 2) if layout.get("showlegend", True) else 0
        out["height"] = out.get("height", int(layout.get("height") or 460)) + 21 * (lines - 1)
        out.update({"title.text": wrapped, "title.automargin": False, "title.yanchor": "top",
                    "title.y": round(1 - 12 / out["height"], 4), "margin.t": 22 + 21 * lines + 22 * rows})
    return out


def _legend_entries(fig) -> int:
    """Count the traces that show in the legend (a lit sphere surface shows none by default)."""
    return sum(1 for t in fig.data if t.visible is not False and t.showlegend is not False
               and t.name and not (t.type == "surface" and t.showlegend is None))


def _wrap_title(title: str, width: int | None = None) -> str:
    """Break a plain-text title into lines of at most ``width`` characters (``<br>``, plotly's line break)."""
    width = NARROW_TITLE_CHARS if width is None else width
    if len(title) <= width or "<br>" in title:
        return title
    lines, line = [], ""
    for word in title.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join(lines + [line])


def _controls_down(layout: dict, notes: list) -> dict:
    """Move sliders, buttons and their labels down by ``CONTROLS_SHIFT_PX``; hide step labels that would overlap.

    ``notes`` are the figure's annotations (already moved with their panels when stacked); the
    buttons' label (``name="ncbook-control"``) moves with the buttons.
    """
    out = {}
    if notes:
        out["annotations"] = [dict(a, yshift=a.get("yshift", 0) - CONTROLS_SHIFT_PX)
                              if a.get("name") == "ncbook-control" else a for a in notes]
    for i, sl in enumerate(layout.get("sliders", [])):
        if len(sl.get("steps", [])) > 6:
            out[f"sliders[{i}].font.color"] = "rgba(0,0,0,0)"
        out[f"sliders[{i}].pad.t"] = sl.get("pad", {}).get("t", 0) + CONTROLS_SHIFT_PX
    for i, menu in enumerate(layout.get("updatemenus", [])):
        out[f"updatemenus[{i}].pad.t"] = menu.get("pad", {}).get("t", 0) + CONTROLS_SHIFT_PX
    return out


def _stacked(fig, layout: dict) -> dict | None:
    """Return the stacked layout of a figure with side-by-side panels (None for one column)."""
    panels = _panels(layout)
    columns = sorted({(round(p["x"][0], 6), round(p["x"][1], 6)) for p in panels})
    if len(columns) < 2 or any(a[1] > b[0] + 1e-9 for a, b in zip(columns, columns[1:])):
        return None  # one column, or overlapping domains (insets): nothing to stack
    kinds = [max((p["kind"] for p in panels if (round(p["x"][0], 6), round(p["x"][1], 6)) == c),
                 key=lambda k: PANEL_PX[k]) for c in columns]
    heights = [PANEL_PX[k] for k in kinds]
    gap = 75  # px between two stacked panels: the x-axis title of the upper one
    area = sum(heights) + gap * (len(columns) - 1)
    # what is not panels: the title and legend above (one legend entry a line on a phone, at
    # worst), the slider and buttons below
    entries = _legend_entries(fig)
    controls = (230 if layout.get("updatemenus") else 0) or (120 if layout.get("sliders") else 50)
    out = {"height": min(int(area + controls + CONTROLS_SHIFT_PX + 50 + 20 * entries),
                         NARROW_MAX_PX)}
    top, spans = area, []
    for h in heights:  # paper coordinates, from the top
        spans.append([round((top - h) / area, 4), round(top / area, 4)])
        top -= h + gap
    for p in panels:
        j = columns.index((round(p["x"][0], 6), round(p["x"][1], 6)))
        for k in p["keys"]:
            out[k] = [0.0, 1.0]
        for k in p["y_keys"]:
            out[k] = spans[j]
    notes = layout.get("annotations", [])
    if notes:
        moved = []
        for a in notes:
            a = dict(a)
            j = next((i for i, (x0, x1) in enumerate(columns) if x0 - 1e-9 <= a.get("x", -1) <= x1 + 1e-9), None)
            in_panel = a.get("xref") == "paper" and a.get("yref") == "paper" and j is not None
            if in_panel and a.get("name") != "ncbook-control":  # the buttons' label: _controls_down
                x0, x1 = columns[j]
                a["x"] = (a["x"] - x0) / max(x1 - x0, 1e-9)
                a["y"] = spans[j][0] + a.get("y", 0.0) * (spans[j][1] - spans[j][0])
            moved.append(a)
        out["annotations"] = moved
    return out


def _wide_values(fig, narrow: dict) -> dict:
    """Return the figure's own values of the keys of ``narrow`` (what a wide screen switches back to)."""
    layout = fig.layout.to_plotly_json()  # the layout only: serializing the data is the costly part
    out = {}
    for key in narrow:
        v = layout
        for k in key.replace("[", ".").replace("]", "").split("."):
            if isinstance(v, list) and k.isdigit() and int(k) < len(v):
                v = v[int(k)]
            else:
                v = v.get(k) if isinstance(v, dict) else None
        out[key] = list(v) if isinstance(v, tuple) else v
    out["height"] = int(layout.get("height") or 460)
    return out


def _in_colab() -> bool:
    return "google.colab" in sys.modules


def show(fig) -> None:
    """Display a plotly figure so that it works in the static book, in Jupyter and in Colab.

    * Colab: plotly's ``"colab"`` renderer (each output is its own frame there).
    * Elsewhere: one output with two representations, ``application/vnd.plotly.v1+json`` (drawn
      by plotly's renderer in JupyterLab, Notebook 7 and VS Code) and ``text/html`` from
      :func:`to_html` (what the built book shows; plotly.js comes from the site's assets).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    """
    _check_fig(fig)
    if _in_colab():
        import plotly.io as pio

        pio.show(fig, renderer="colab")
        return
    from IPython.display import display

    bundle = {"application/vnd.plotly.v1+json": json.loads(_figure_json(fig)), "text/html": to_html(fig)}
    display(bundle, raw=True)


# ---------------------------------------------------------------------------------------------
# one mechanism for every slider: precompute draw(option, value), store it in the figure
# ---------------------------------------------------------------------------------------------

def _restyle_args(traces) -> dict:
    """``{key: [value of trace 0, value of trace 1, ...]}`` over ``DATA_KEYS``.

    A key a trace does not have is sent as ``None`` (plotly resets it to its default, which for a
    key the trace never had is no change).
    """
    flat = [_flatten(t.to_plotly_json()) for t in traces]
    keys = [k for k in DATA_KEYS if any(k in f for f in flat)]
    return {k: [_jsonable(f.get(k)) for f in flat] for k in keys}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _jsonable(v):
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            v = np.round(v, 5)  # 5 decimals: far below a pixel, and a third of the JSON
        return v.tolist()
    if isinstance(v, tuple):
        return list(v)
    return v


def controlled_figure(draw: Callable, *, values: Sequence, value_label: str,
                      options: Sequence[str] | None = None, option_label: str = "",
                      static: Sequence = (), start: int = 0, fig=None,
                      format_value: Callable = "{:g}".format):
    r"""Build a figure with a slider over ``values`` and, optionally, a row of buttons over ``options``.

    ``draw(option, value)`` (``draw(value)`` when ``options`` is None) returns a list of plotly
    traces. It is called here for every option and every value, so every frame the reader can reach
    was computed by code that ran. For one option the traces must have the same number and types
    for every value (only their data change).

    * the **slider** replaces the data (``DATA_KEYS``) of every option's traces by those of the
      chosen value;
    * the **buttons** show one option's traces and hide the others';
    * ``static`` traces (a sphere, a reference curve) are drawn once and never change.

    Parameters
    ----------
    draw : callable ``(option, value) -> list of traces`` (or ``(value) -> list``)
    values : sequence, at least 2 slider positions
    value_label : str, the slider's name shown above it, e.g. ``"step size α"``
    options : sequence of str, optional, at least 2 button labels
    option_label : str, a word shown before the buttons
    static : traces drawn under the controlled ones
    start : int, index in ``values`` shown first
    fig : plotly Figure, optional, to draw into (e.g. one made with subplots); a trace may carry
        ``row``/``col`` through ``trace.meta = {"row": r, "col": c}``
    format_value : callable, how a value is written on the slider

    Returns
    -------
    plotly.graph_objects.Figure
    """
    go = _go()
    values = list(values)
    if len(values) < 2:
        raise ValueError(f"values must hold at least 2 slider positions, got {len(values)}")
    if not isinstance(start, int) or not 0 <= start < len(values):
        raise ValueError(f"start must be an index in [0, {len(values)}), got {start!r}")
    single = options is None
    opts = [None] if single else list(options)
    if not single and len(opts) < 2:
        raise ValueError(f"options must hold at least 2 button labels, got {len(opts)}")

    def call(o, v):
        traces = list(draw(v) if single else draw(o, v))
        if not traces:
            raise ValueError("draw returned no traces")
        return traces

    grid = [[call(o, v) for v in values] for o in opts]  # grid[option][value] -> traces
    for o, row in zip(opts, grid):
        shapes = [[type(t).__name__ for t in traces] for traces in row]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"draw({o!r}, value) must return the same traces for every value")

    fig = go.Figure() if fig is None else fig
    for t in static:
        _add(fig, t)
    first = len(fig.data)
    groups = []
    for i, row in enumerate(grid):
        idx = []
        for t in row[start]:
            t.visible = True if i == 0 else False
            _add(fig, t)
            idx.append(len(fig.data) - 1)
        groups.append(idx)
    controlled = list(range(first, len(fig.data)))

    steps = []
    for j, v in enumerate(values):
        args = _restyle_args([t for row in grid for t in row[j]])
        steps.append({"method": "restyle", "label": format_value(v), "args": [args, controlled]})
    fig.update_layout(sliders=[{
        "active": start, "steps": steps, "pad": {"t": 55, "b": 10}, "y": 0, "yanchor": "top",
        "x": 0, "len": 1.0,
        "currentvalue": {"prefix": f"{value_label} = ", "font": {"size": FONT_SIZE, "color": "#222"}},
        "font": {"size": TICK_SIZE},
    }])
    if not single:
        buttons = []
        for i, o in enumerate(opts):
            vis = [k in groups[i] for k in controlled]
            buttons.append({"method": "restyle", "label": str(o), "args": [{"visible": vis}, controlled]})
        fig.update_layout(updatemenus=[{
            "type": "buttons", "direction": "right", "buttons": buttons, "active": 0,
            "x": 0.0, "xanchor": "left", "y": 0, "yanchor": "top", "pad": {"t": 160},
            "showactive": True, "font": {"size": TICK_SIZE},
        }])
        if option_label:  # the buttons' name goes into the slider's label line
            fig.layout.sliders[0].currentvalue.prefix = f"{value_label} = "
            fig.layout.updatemenus[0].pad.l = 0
            fig.add_annotation(text=f"{option_label}:", x=0.0, xref="paper", xanchor="left", y=0,
                               yref="paper", yanchor="top", showarrow=False, yshift=-138,
                               font={"size": TICK_SIZE}, name="ncbook-control")
    return fig


def _add(fig, trace):
    meta = trace.meta if isinstance(trace.meta, dict) else {}
    if "row" in meta:
        fig.add_trace(trace, row=meta["row"], col=meta["col"])
    else:
        fig.add_trace(trace)


def sphere_surface(*, opacity: float = 0.35, n: int = 40, color: str = "#9db4d0"):
    """Draw a shaded unit sphere (plotly ``Surface``), lit so that it reads as a ball when rotated."""
    go = _go()
    if not 0.0 < opacity <= 1.0:
        raise ValueError(f"opacity must be in (0, 1], got {opacity}")
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, n), np.linspace(0, np.pi, n // 2))
    return go.Surface(
        x=np.float32(np.cos(u) * np.sin(v)), y=np.float32(np.sin(u) * np.sin(v)), z=np.float32(np.cos(v)),
        colorscale=[[0, color], [1, color]], showscale=False, opacity=opacity,
        lighting={"ambient": 0.55, "diffuse": 0.7, "specular": 0.25, "roughness": 0.6},
        lightposition={"x": 100, "y": 200, "z": 300}, hoverinfo="skip", name="unit sphere",
        showlegend=False,
    )


def curves_figure(curves: dict, *, value_label: str, xlabel: str, ylabel: str, logy: bool = True,
                  background: dict | None = None, start=None, title: str | None = None,
                  format_value: Callable = "{:g}".format, height: int = 420):
    r"""Build a slider over precomputed sets of named curves: ``curves = {value: {name: y, ...}, ...}``.

    Every value holds the same number of curves (the i-th keeps its colour; names may change).
    ``background`` curves (``{name: y}``) are drawn in light grey under them and never change. On
    a log axis non-positive values are left out (a gap of exactly zero has no logarithm).
    """
    go = _go()
    values = list(curves)
    count = len(curves[values[0]]) if values else 0
    if any(len(curves[v]) != count for v in values):
        raise ValueError("curves must hold the same number of curves for every slider value")
    colors = class_colors(max(count, 1))

    def clean(y):
        y = np.asarray(y, dtype=float)
        return np.where(y > 0, y, np.nan) if logy else y

    def draw(v):
        return [go.Scatter(y=clean(y), x=np.arange(len(y)), name=n, mode="lines",
                           line={"color": colors[i], "width": 2.5}) for i, (n, y) in enumerate(curves[v].items())]

    static = [go.Scatter(y=clean(y), x=np.arange(len(y)), name=n, mode="lines", showlegend=False,
                         line={"color": "#d0d0d0", "width": 1}, hoverinfo="skip")
              for n, y in (background or {}).items()]
    fig = controlled_figure(draw, values=values, value_label=value_label, static=static,
                            start=values.index(start) if start in values else 0, format_value=format_value)
    style(fig, title=title, height=height)
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text=ylabel, type="log" if logy else "linear", exponentformat="power")
    return fig


def _json_encoder():
    from plotly.utils import PlotlyJSONEncoder  # numpy values, NaN as null

    return PlotlyJSONEncoder
