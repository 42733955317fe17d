"""Benchmark: what each page of the built book weighs in a browser (its HTML, and everything it loads).

Run from the repository root after ``make book`` (headless Debian chromium, offline):

    .venv/bin/python benchmarks/page_weight.py            # a Markdown table, one row per page
    .venv/bin/python benchmarks/page_weight.py --json out.json

Each page of ``_toc.yml`` is opened at 1366 px in a fresh browser context (empty cache) and left
until the network is idle (MathJax fonts and plotly.js are fetched on demand). "HTML" is the
page's own document; "loaded" is the sum of the bodies of every response the page received
(scripts, styles, fonts, images, plotly.js), so a site-wide asset counts on every page that loads it.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
sys.path.insert(0, str(ROOT / "tests"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def toc_pages() -> list[str]:
    """The pages of ``_toc.yml`` (as ``book/intro``), in order."""
    from test_book import toc_files

    return toc_files()


def weigh(browser, base: str, doc: str) -> dict:
    """Open ``doc`` and return the bytes of its HTML and of every response it loaded."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    sizes = {}

    def on_response(response):
        try:
            sizes[response.url] = len(response.body())
        except Exception:  # noqa: BLE001 - redirects and aborted requests have no body
            sizes.setdefault(response.url, 0)

    page.on("response", on_response)
    url = f"{base}/{doc}.html"
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(500)
    context.close()
    return {"page": doc, "html_bytes": sizes.get(url, 0), "loaded_bytes": sum(sizes.values()),
            "requests": len(sizes)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if not (HTML / "index.html").exists():
        sys.exit("no built book: run `make book` first")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        sys.exit("chromium not found (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--headless", "--no-sandbox", "--disable-gpu"])
        rows = [weigh(browser, base, doc) for doc in toc_pages()]
        browser.close()
    server.shutdown()
    mb = 1e6
    print("| page | HTML (MB) | loaded (MB) | requests |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['page']} | {r['html_bytes'] / mb:.2f} | {r['loaded_bytes'] / mb:.2f} | {r['requests']} |")
    print(f"| all pages | {sum(r['html_bytes'] for r in rows) / mb:.2f} | "
          f"{sum(r['loaded_bytes'] for r in rows) / mb:.2f} | {sum(r['requests'] for r in rows)} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
