"""Build the book with warnings as errors, then open every page in headless Chromium.

The build executes every chapter in FAST mode (cached in ``_build/.jupyter_cache``). The browser
checks are what a reader would notice: pages load, math is typeset by the vendored MathJax (no raw
TeX), images load, widgets render, the Colab button opens a notebook that exists, search works.
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
from test_book import ROOT, toc_files

HTML = ROOT / "_build" / "html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


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


def _open(browser, url):
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    resp = page.goto(url, wait_until="load")
    return page, resp, errors, failed


def _wait_for_mathjax(page):
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
    page.evaluate("() => MathJax.startup.promise")


@pytest.mark.browser
@pytest.mark.parametrize("doc", toc_files())
def test_page_renders(browser, site, doc):
    page, resp, errors, failed = _open(browser, f"{site}/{doc}.html")
    try:
        assert resp is not None and resp.status == 200
        text = page.inner_text("main")
        assert len(text) > 300, f"{doc}: page is nearly empty"
        if page.locator("main .math").count():  # Sphinx loads MathJax only on pages with math
            _wait_for_mathjax(page)
        raw = page.evaluate("""() => Array.from(document.querySelectorAll('main .math'))
                                   .filter(e => !e.querySelector('mjx-container') && /\\\\[(\\[]/.test(e.textContent))
                                   .map(e => e.textContent.slice(0, 60))""")
        assert not raw, f"{doc}: math left untypeset: {raw[:5]}"
        if page.locator("main .math").count():
            assert page.locator("main mjx-container").count() > 0, f"{doc}: MathJax did not typeset"
        page.wait_for_load_state("networkidle")
        broken = page.evaluate("""() => Array.from(document.images)
                                      .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)""")
        assert not broken, f"{doc}: images failed to load: {broken}"
        if re.match(r"book/\d\d_", doc):
            assert page.locator("main img").count() > 0, f"{doc}: a chapter without a single figure"
        local_failed = [u for u in failed if urlparse(u).hostname == "127.0.0.1" and not u.endswith("/favicon.ico")]
        assert not local_failed, f"{doc}: local resources failed to load: {local_failed}"
        widget_views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if widget_views:
            page.wait_for_selector(".jupyter-widgets", timeout=30000)
        # Harmless: thebe's double declaration, the theme's first-visit mode message, and the
        # browser's own "Failed to load resource" lines (failed requests are checked above, by URL).
        harmless = ("THEBE_JS_URL", "Got invalid theme mode", "Failed to load resource")
        serious = [e for e in errors if not any(h in e for h in harmless)]
        assert not serious, f"{doc}: console errors: {serious}"
    finally:
        page.close()


@pytest.mark.browser
def test_some_page_has_live_widgets(browser, site):
    pages = [f for f in toc_files() if "application/vnd.jupyter.widget-view+json" in (HTML / f"{f}.html").read_text()]
    assert pages, "no page embeds an ipywidgets view"
    page, *_ = _open(browser, f"{site}/{pages[0]}.html")
    try:
        page.wait_for_selector(".jupyter-widgets", timeout=30000)
        assert page.locator(".jupyter-widgets").count() > 0
    finally:
        page.close()


@pytest.mark.browser
def test_colab_links_open_notebooks_that_exist(browser, site):
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split())
    chapters = [f for f in toc_files() if re.match(r"book/\d\d_", f)]
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
def test_search_finds_simplex(browser, site):
    page, *_ = _open(browser, f"{site}/search.html?q=simplex")
    try:
        page.wait_for_selector("#search-results li", timeout=30000)
        assert page.locator("#search-results li").count() > 0
    finally:
        page.close()


def test_a_failing_cell_fails_the_build_loudly(tmp_path):
    """With our configuration a cell that raises stops the build and the log shows the traceback."""
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["sphinx"]["config"]["html_static_path"] = []
    cfg["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in cfg["sphinx"]["local_extensions"].items()}
    cfg["sphinx"]["config"].pop("html_extra_path")
    cfg["sphinx"]["config"].pop("html_js_files")
    cfg["sphinx"]["config"].pop("mathjax_path")
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
