"""Every chapter is executed once per test run, by the book build; one verdict per chapter here.

The build (``book_build`` in ``conftest.py``) executes each chapter in FAST mode and stores the
executed notebook in myst-nb's cache, ``_build/.jupyter_cache``, only if every cell ran; the
chapters' asserts live in their cells. A chapter passes when the cache holds an executed notebook
for its current code cells (the build script clears the cache whenever ``ncbook`` changes, so the
record was made with today's library) with no error output; otherwise the test fails with the
chapter's traceback from the build log.
"""

from __future__ import annotations

import re

import jupytext
import pytest
from jupyter_cache import get_cache
from test_book import CHAPTERS, IDS, ROOT

CACHE = ROOT / "_build" / ".jupyter_cache"

pytestmark = pytest.mark.slow


def _failure(log: str, name: str) -> str:
    """The part of the build log that reports ``name``'s execution failure, or a pointer to the log."""
    start = next((m.start() for m in re.finditer(r"Executing notebook failed", log)
                  if name in log[max(0, m.start() - 400):m.start()]), None)
    if start is None:
        return f"no execution report for {name} in the build log; its last 3000 characters:\n{log[-3000:]}"
    return log[max(0, start - 400):start + 6000]


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_chapter_executes(book_build, md):
    nb = jupytext.read(md)
    try:
        record = get_cache(CACHE).match_cache_notebook(nb)
    except KeyError:
        pytest.fail(f"{md.name} did not execute to the end in the book build:\n{_failure(book_build.log, md.name)}")
    executed = get_cache(CACHE).get_cache_bundle(record.pk).nb
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code if c.source.strip()), \
        f"{md.name}: a code cell was not executed"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{md.name}: error outputs: {[e.get('ename') for e in errors]}"
