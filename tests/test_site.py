"""Build the book with warnings as errors, then open every page in headless Chromium.

The build executes every chapter in FAST mode (cached in ``_build/.jupyter_cache``). The browser
checks are what a reader would notice on a phone (each page opens 390 px wide) and on a laptop (the
same page then widened to 1366 px, as a resized window or a rotated tablet does): pages load with a
clean console and no request leaving the machine, math is typeset by the vendored MathJax (no raw
TeX, no MathJax error, no equation cut), figures are not shrunk and fit their column, code fits the
column, every control of every interactive figure changes what is drawn, the sidebar opens (and,
on a phone, closes again), search works, the Colab button opens a notebook that exists. One browser
serves the whole module; each page is loaded once.
Chromium comes from Debian (``apt-get install chromium``); set ``NCBOOK_CHROMIUM`` to use another.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_book import ROOT, is_chapter, toc_files

HTML = ROOT / "_build" / "html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# no_cover: these tests run no ncbook code in this process (the build and the browser are other
# processes), and coverage's tracer would slow the browser driver's busy Python side by a fifth.
pytestmark = [pytest.mark.slow, pytest.mark.no_cover]


@pytest.fixture(scope="module")
def build_log(book_build) -> str:
    """The log of the README's build (``jupyter-book build . -W -n --keep-going``), run once per session.

    ``book_build`` (``conftest.py``) runs it through ``scripts/build_book.py``, which reuses the
    execution cache of an earlier ``make book`` unless ``ncbook`` or the configuration changed.
    """
    log = book_build.log
    assert book_build.returncode == 0, f"book build failed (exit {book_build.returncode}):\n{log[-8000:]}"
    return log


def test_book_builds_without_warnings(build_log):
    warnings = [ln for ln in build_log.splitlines() if re.search(r"\b(WARNING|ERROR):", ln)]
    assert not warnings, "\n".join(warnings[:30])
    assert (HTML / "index.html").exists()
    for f in toc_files():
        assert (HTML / f"{f}.html").exists(), f"{f}.html was not built"


def test_vendored_assets_are_used_not_cdns(build_log):
    page = (HTML / "book" / "intro.html").read_text()
    assert "_static/mathjax/es5/tex-mml-chtml.js" in page
    assert "cdn.jsdelivr.net/npm/mathjax" not in page
    assert (HTML / "_static" / "mathjax" / "es5" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


def _chromium() -> str:
    exe = os.environ.get("NCBOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("Chromium not found: install it (Debian: apt-get install chromium) or set NCBOOK_CHROMIUM")
    return exe


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(build_log):
    """Serve ``_build/html`` on a loopback port for the browser."""
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


#: Widths of the two readers: a laptop and a phone.
WIDTHS = (1366, 390)
#: Longest code line a chapter may show (the column holds about 88 characters of code).
CODE_LINE_LIMIT = 88


def _open(browser, url, width=1366):
    """Open ``url`` in a fresh context ``width`` px wide; record errors and every request."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors, failed, outside = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    resp = page.goto(url, wait_until="load")
    page.outside = outside
    return page, resp, errors, failed


def _wait_for_mathjax(page):
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
    page.evaluate("() => MathJax.startup.promise")


# What is drawn, as a short hash (FNV-1a over the JSON of the traces' data and the 3-D camera):
# compared in the page, so that no large string crosses to Python at every poll.
_PLOTLY_SIGNATURE = """(gd) => { const s = JSON.stringify([
    gd.data.map(t => [t.visible, t.name, t.x, t.y, t.z]),
    (gd._fullLayout.scene || {}).camera || null]);
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
    return (h >>> 0).toString(16) + ':' + s.length; }"""


def _holds(page, predicate: str, arg=None, *, timeout: int, polling="raf") -> bool:
    """Whether the JavaScript ``predicate(arg)`` becomes true in the page within ``timeout`` ms."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(predicate, arg=arg, timeout=timeout, polling=polling)
    except PlaywrightTimeout:
        return False
    return True


def _changed(page, handle, before: str, what: str) -> str:
    """Wait (at most 10 s) until the figure's signature differs from ``before``; fail naming ``what``."""
    if not _holds(page, f"([gd, before]) => ({_PLOTLY_SIGNATURE})(gd) !== before", [handle, before],
                  timeout=10000, polling=100):
        pytest.fail(f"{what} changed nothing")
    return handle.evaluate(_PLOTLY_SIGNATURE)


# Where a reader would click or drag, read in one call: each slider's rail and state, each button,
# the middle of a 3-D scene (its domain is a fraction of the plot area: the div less its margins).
_CONTROLS = """(gd) => {
    const box = e => { const b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; };
    const fl = gd._fullLayout, r = fl.scene && fl.scene.domain, s = fl._size, b = gd.getBoundingClientRect();
    return {traces: gd.data.length,
            sliders: Array.from(gd.querySelectorAll('.slider-rail-touch-rect')).map((e, i) =>
                Object.assign(box(e), {active: fl.sliders[i].active, n: fl.sliders[i].steps.length})),
            buttons: Array.from(gd.querySelectorAll('g.updatemenu-button')).map(box),
            scene: r ? {x: b.x + s.l + s.w * (r.x[0] + r.x[1]) / 2,
                        y: b.y + s.t + s.h * (1 - (r.y[0] + r.y[1]) / 2)} : null}; }"""


def _check_interactive_figures(page, doc, width):
    """Every slider and every button of every plotly figure changes what is drawn; 3-D views turn.

    Controls are clicked where a reader would click them (``page.mouse``), and a control that is
    hidden or covered therefore changes nothing and fails the check.
    """
    figs = page.locator("main .ncbook-plotly")
    for i in range(figs.count()):
        fig = figs.nth(i)
        fig.scroll_into_view_if_needed()  # figures are drawn when they near the screen
        fig.locator(".main-svg").first.wait_for(timeout=30000)
        label = f"{doc} at {width}px: interactive figure {i + 1}"
        handle = fig.element_handle()
        controls = handle.evaluate(_CONTROLS)
        assert controls["traces"] > 0, f"{label} draws nothing"
        before = handle.evaluate(_PLOTLY_SIGNATURE)
        for r, rail in enumerate(controls["sliders"]):
            target = 0 if rail["active"] > rail["n"] // 2 else rail["n"] - 1  # the far end from where it stands
            page.mouse.click(rail["x"] + rail["w"] * (0.02 + 0.96 * target / (rail["n"] - 1)),
                             rail["y"] + rail["h"] / 2)
            before = _changed(page, handle, before, f"{label}: moving slider {r + 1}")
        buttons = controls["buttons"]
        for k in range(len(buttons) - 1, -1, -1):  # from the last: the first one is active
            page.mouse.click(buttons[k]["x"] + buttons[k]["w"] / 2, buttons[k]["y"] + buttons[k]["h"] / 2)
            before = _changed(page, handle, before, f"{label}: button {k + 1}")
        if controls["scene"]:  # a 3-D view turns when dragged
            x, y = controls["scene"]["x"], controls["scene"]["y"]
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 60, y + 20, steps=5)
            page.mouse.up()
            _changed(page, handle, before, f"{label}: dragging the 3-D view")
        handle.dispose()


_FIGURE_FITS = """() => Array.from(document.querySelectorAll('main .ncbook-plotly'))
    .filter(d => d._fullLayout && Math.abs(d._fullLayout.width - d.clientWidth) > 2)
    .map(d => `${d.id}: drawn ${Math.round(d._fullLayout.width)}px wide in a ${d.clientWidth}px column`)"""


def _check_figures_fit(page, doc, width):
    """Every drawn figure is as wide as its column, and a figure that stacks its panels on a phone
    shows the layout for this screen: stacked at 390 px, side by side (its own height) at 1366 px."""
    # plotly refits a figure 100 ms after its div last changed size
    if not _holds(page, f"() => ({_FIGURE_FITS})().length === 0", timeout=5000, polling=100):
        pytest.fail(f"{doc} at {width}px: figures do not fit their column: {page.evaluate(_FIGURE_FITS)}")
    mode = "narrow" if width < 600 else "wide"
    heights = page.evaluate("""(mode) => Array.from(document.querySelectorAll('main .ncbook-plotly')).map(d => {
        const r = JSON.parse(document.getElementById(d.id + '-spec').textContent).ncbook_responsive;
        return r ? [d.id, r[mode].height, d.style.height, d._fullLayout && d._fullLayout.height] : null;
    }).filter(Boolean)""", mode)
    for div_id, want, style, drawn in heights:
        assert style == f"{want}px" and drawn in (None, want), (
            f"{doc} at {width}px: figure {div_id} is {style} high (drawn {drawn}px), not its {mode} {want}px")


# Whether the site navigation is on screen (what playwright calls visible, and wider than a sliver).
_SIDEBAR_SHOWN = """(width) => { const s = document.querySelector('.bd-sidebar-primary');
    if (!s) return false;
    const b = s.getBoundingClientRect(), st = getComputedStyle(s);
    return st.visibility !== 'hidden' && st.display !== 'none'
           && b.width > 50 && b.x + b.width > 10 && b.x < width; }"""


def _sidebar_turns(page, width, was: bool) -> bool:
    """Wait (the theme animates the drawer: at most 5 s) until the sidebar is no longer shown as ``was``."""
    return _holds(page, f"([w, was]) => ({_SIDEBAR_SHOWN})(w) !== was", [width, was], timeout=5000)


def _check_sidebar_opens(page, doc, width):
    """The visible sidebar button opens (or, on a wide screen, toggles) the site navigation."""
    toggles = [t for t in page.locator(".primary-toggle").all() if t.is_visible()]
    assert toggles, f"{doc} at {width}px: no visible sidebar button"
    was = page.evaluate(_SIDEBAR_SHOWN, width)
    toggles[0].click()
    assert _sidebar_turns(page, width, was), f"{doc} at {width}px: the sidebar button does nothing"
    if not was:
        links = page.locator(".bd-sidebar-primary a").first
        assert links.is_visible(), f"{doc} at {width}px: the sidebar shows no links"


def _close_drawer(page, doc, width):
    """On a phone the opened sidebar is a drawer over the page: a tap on the page beside it closes it."""
    page.mouse.click(width - 10, 450)
    assert _sidebar_turns(page, width, True), f"{doc}: a tap beside the sidebar drawer does not close it on a phone"


def _check_quiz(page, doc):
    """The chapter's self-check quiz answers clicks with feedback, with no kernel."""
    quiz_id = f"ncb-quiz-ch{Path(doc).name[:2]}"
    root = page.locator(f"#{quiz_id}")
    assert root.count() == 1, f"{doc}: the quiz is not in the page"
    source = (HTML / f"{doc}.html").read_text()
    assert "jupyterquiz" not in source, f"{doc}: the quiz loads jupyterquiz (it fetches MathJax from a CDN)"
    quiz_html = source.split(f'id="{quiz_id}"', 1)[1].split("<script>", 1)[0]
    if "\\(" in quiz_html:
        _wait_for_mathjax(page)
        assert root.locator("mjx-container").count() > 0, f"{doc}: the quiz's math was not typeset"
    q = root.locator(".ncb-q[data-kind='choice']").first
    right = q.get_attribute("data-answer")
    wrong = next(b for b in q.locator(".ncb-choice").all() if b.get_attribute("data-i") != right)
    wrong.click()
    assert q.locator(".ncb-feedback").inner_text() == "Not quite; try again."
    q.locator(f".ncb-choice[data-i='{right}']").click()
    assert q.locator(".ncb-feedback").inner_text() == "Correct."
    assert q.locator(".ncb-explain").is_visible()
    num = root.locator(".ncb-q[data-kind='numeric']").first
    num.locator(".ncb-input").fill(num.get_attribute("data-answer"))
    num.locator(".ncb-submit").click()
    assert num.locator(".ncb-feedback").inner_text() == "Correct."


def _check_content(page, doc):
    """What does not depend on the width: text, typeset math without errors, images loaded, code lines."""
    text = page.inner_text("main")
    assert len(text) > 300, f"{doc}: page is nearly empty"
    if page.locator("main .math").count():  # Sphinx loads MathJax only on pages with math
        _wait_for_mathjax(page)
        assert page.locator("main mjx-container").count() > 0, f"{doc}: MathJax did not typeset"
    raw = page.evaluate(r"""() => Array.from(document.querySelectorAll('main .math'))
                               .filter(e => !e.querySelector('mjx-container') && /\\[(\[]/.test(e.textContent))
                               .map(e => e.textContent.slice(0, 60))""")
    assert not raw, f"{doc}: math left untypeset: {raw[:5]}"
    merrors = page.evaluate("() => Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent)")
    assert not merrors, f"{doc}: MathJax errors: {merrors[:5]}"
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=30000)
    broken = page.evaluate("() => Array.from(document.images).filter(i => !i.naturalWidth).map(i => i.src)")
    assert not broken, f"{doc}: images failed to load: {broken}"
    if is_chapter(doc):
        figures = page.locator("main img").count() + page.locator("main .ncbook-plotly").count()
        assert figures > 0, f"{doc}: a chapter without a single figure"
        # The Colab setup cell (hidden, generated by scripts/sync_notebooks.py) holds the install URL.
        long_lines = page.evaluate(r"""(limit) => Array.from(document.querySelectorAll('main .cell_input pre'))
            .filter(p => !p.textContent.includes('ncbook_requirement = '))
            .flatMap(p => p.textContent.split('\n')).filter(l => l.length > limit)""", CODE_LINE_LIMIT)
        assert not long_lines, f"{doc}: {len(long_lines)} code lines over {CODE_LINE_LIMIT}: {long_lines[:3]}"


def _check_width(page, doc, width):
    """Figures at their size and equations whole on a laptop; on a phone, nothing runs off the screen."""
    if width > 600:
        shrunk = page.evaluate("""() => Array.from(document.querySelectorAll('main img'))
            .filter(i => i.naturalWidth > 0 && i.offsetParent !== null && i.clientWidth < 0.85 * i.naturalWidth)
            .map(i => `${i.clientWidth}/${i.naturalWidth}px ${i.src.split('/').pop()}`)""")
        assert not shrunk, f"{doc}: figures shown below 85% of their size: {shrunk}"
        cut = page.evaluate("""() => Array.from(document.querySelectorAll('main mjx-container[display="true"]'))
            .filter(m => m.scrollWidth > m.clientWidth + 2).map(m => m.textContent.slice(0, 50))""")
        assert not cut, f"{doc}: display equations wider than the column: {cut}"
        return
    clipped = page.evaluate("""() => Array.from(document.querySelectorAll('main mjx-container[display="true"]'))
        .filter(m => m.scrollWidth > m.clientWidth + 2 && getComputedStyle(m).overflowX !== 'auto')
        .length""")
    assert not clipped, f"{doc}: {clipped} long equations run off the phone screen"
    # on a phone nothing may widen the page itself: wide content scrolls in its own box
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:  # name what sticks out (a walk over every element: only on failure)
        wide = page.evaluate("""() => Array.from(document.querySelectorAll('main *'))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                         && !e.closest('pre, table, mjx-container, .math, .ncbook-plotly, .cell_output'))
            .slice(0, 5).map(e => e.tagName + '.' + e.className)""")
        pytest.fail(f"{doc}: the page scrolls sideways on a phone by {overflow}px: {wide}")


def _check_at_width(page, doc, width):
    """The checks that depend on the width, then the sidebar button (which leaves the sidebar toggled)."""
    _check_width(page, doc, width)
    if is_chapter(doc):  # figures drawn before (after a resize) and after the clicks fit
        _check_figures_fit(page, doc, width)
        _check_interactive_figures(page, doc, width)
        _check_figures_fit(page, doc, width)
    _check_sidebar_opens(page, doc, width)


@pytest.mark.browser
@pytest.mark.parametrize("doc", toc_files())
def test_page_reads_well(browser, site, doc):
    """What a reader meets on every page, on a phone and on a laptop.

    The page opens as a phone opens it (390 px wide, figures drawn in their phone layout); after the
    phone's checks the window widens to a laptop's 1366 px, as a resized or rotated window does, and
    the checks run again there, so every figure is also tried after switching to its wide layout.
    """
    page, resp, errors, failed = _open(browser, f"{site}/{doc}.html", WIDTHS[1])
    try:
        assert resp is not None and resp.status == 200
        laptop, phone = WIDTHS
        _check_content(page, doc)
        _check_at_width(page, doc, phone)
        _close_drawer(page, doc, phone)
        page.set_viewport_size({"width": laptop, "height": 900})
        _check_at_width(page, doc, laptop)
        if is_chapter(doc):
            _check_quiz(page, doc)
        page.wait_for_load_state("networkidle")  # nothing still loading, so that every failure is seen
        assert not page.outside, f"{doc}: requests leave the machine: {page.outside[:5]}"
        assert not failed, f"{doc}: requests failed: {failed}"
        assert not errors, f"{doc}: console errors: {errors}"
    finally:
        page.context.close()


@pytest.mark.browser
def test_interactive_figures_replace_the_dead_widgets(build_log):
    """The chapters' sliders are plotly figures that need no kernel; plotly.js is served once."""
    pages = {f: (HTML / f"{f}.html").read_text() for f in toc_files() if is_chapter(f)}
    with_figures = [f for f, html in pages.items() if 'class="ncbook-plotly"' in html]
    for ch in ("01_", "02_", "03_", "04_", "05_", "07_"):
        assert any(ch in f for f in with_figures), f"chapter {ch} lost its interactive figure"
    assert (HTML / "_static" / "plotly" / "plotly.min.js").stat().st_size > 1_000_000
    for f, html in pages.items():
        assert "plotly.min.js" not in html, f"{f} embeds or links plotly.js itself"


@pytest.mark.browser
def test_colab_links_open_notebooks_that_exist(browser, site):
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split())
    chapters = [f for f in toc_files() if is_chapter(f)]
    for doc in chapters:
        html = (HTML / f"{doc}.html").read_text()
        links = re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', html)
        assert links, f"{doc}: no Colab launch link"
        for link in links:
            path = link.split("/blob/main/", 1)[1]
            assert path.endswith(".ipynb"), f"{doc}: Colab link does not open a notebook: {link}"
            assert (ROOT / path).exists(), f"{doc}: Colab link points to a missing file {path}"
            assert path in tracked, f"{doc}: {path} is not committed"


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_search_finds_simplex(browser, site, width):
    """The search button opens a search box, and searching lists pages."""
    page, *_ = _open(browser, f"{site}/book/intro.html", width)
    try:
        buttons = [b for b in page.locator("button.search-button, .search-button-field").all() if b.is_visible()]
        assert buttons, f"no visible search button at {width}px"
        buttons[0].click()
        box = page.locator("input[name=q]").locator("visible=true").first
        box.fill("simplex")
        box.press("Enter")
        page.wait_for_selector("#search-results li", timeout=30000)
        assert page.locator("#search-results li").count() > 0
    finally:
        page.context.close()


def test_a_failing_cell_fails_the_build_loudly(tmp_path):
    """With our configuration a cell that raises stops the build and the log shows the traceback."""
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["sphinx"]["config"]["html_static_path"] = []
    cfg["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in cfg["sphinx"]["local_extensions"].items()}
    cfg["sphinx"]["config"].pop("html_extra_path")
    cfg["sphinx"]["config"].pop("html_js_files")
    cfg["sphinx"]["config"].pop("mathjax_path")
    cfg["sphinx"]["config"].pop("html_css_files")
    cfg["sphinx"].pop("local_extensions")
    cfg["html"].pop("favicon")
    cfg.pop("bibtex_bibfiles")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: broken\n")
    (tmp_path / "broken.md").write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
        "  display_name: Python 3\n---\n\n# Broken\n\n```{code-cell} ipython3\n"
        "raise RuntimeError('this cell is meant to fail')\n```\n")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(tmp_path), "-W", "-n", "--keep-going"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "this cell is meant to fail" in log and "RuntimeError" in log
