"""Build the book once, re-executing exactly the chapters whose results may have changed.

Runs the README's build, ``jupyter-book build . -W -n --keep-going``, in FAST mode. Executed
chapters are cached by myst-nb in ``_build/.jupyter_cache``, keyed on each chapter's code cells, and
Sphinx re-reads only the pages whose sources changed. Neither notices a change in what the chapters
import (``ncbook``), nor a page left with a warning by a failed build, so this script keeps two
stamps of the hash of ``ncbook/``, the configuration and the pinned versions: ``.ncbook-cache``
(what the execution cache was made with; when it differs, the cache is cleared and every chapter
executes again) and ``.ncbook-build`` (the last build that passed; when it differs, every page is
read again, ``--all``). Right after a passing build, the next one reuses both caches.

When nothing at all changed since the last passing build (the inputs above and every source file
of the site: chapters, pages, CSS/JS, bibliography; ``.ncbook-sources``), jupyter-book is not run:
the log of that build (``_build/.ncbook-build.log``, which every build writes) is printed again, so
``make test`` right after ``make book`` checks the very build ``make book`` made.

Usage: ``python scripts/build_book.py`` (what ``make book`` and the tests' ``book_build`` run).
Exit status: that of jupyter-book.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
STAMP = BUILD / ".ncbook-build"
CACHE_STAMP = BUILD / ".ncbook-cache"
CACHE = BUILD / ".jupyter_cache"
SOURCES_STAMP = BUILD / ".ncbook-sources"
LOG = BUILD / ".ncbook-build.log"
INPUTS = ("ncbook/**/*.py", "_ext/*.py", "_config.yml", "_toc.yml", "constraints.txt", "pyproject.toml")
#: Everything else the site is made from (a change here re-reads pages but re-executes nothing by itself).
SOURCES = ("book/**/*", "_assets/.fetched-*", "scripts/fetch_assets.sh")


def _hash(patterns) -> str:
    h = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(p for p in ROOT.glob(pattern) if p.is_file() and "__pycache__" not in p.parts):
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def inputs_hash() -> str:
    """SHA-256 over the files whose change can alter any executed chapter or any page."""
    return _hash(INPUTS)


def sources_hash() -> str:
    """SHA-256 over every file the site is built from (``INPUTS`` and ``SOURCES``)."""
    return _hash(INPUTS + SOURCES)


def command(full: bool) -> list[str]:
    """The jupyter-book command line (``--all`` re-reads every page)."""
    jb = Path(sys.executable).with_name("jupyter-book")
    return [str(jb), "build", ".", "-W", "-n", "--keep-going"] + (["--all"] if full else [])


def _holds(stamp: Path, state: str) -> bool:
    return stamp.is_file() and stamp.read_text().strip() == state


def _run_logged(cmd, env) -> int:
    """Run ``cmd``, echoing its output and keeping it in ``LOG``."""
    with LOG.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        return proc.wait()


def main() -> int:
    state = inputs_hash()
    everything = sources_hash()
    BUILD.mkdir(exist_ok=True)
    if _holds(STAMP, state) and _holds(SOURCES_STAMP, everything) and LOG.is_file() \
            and (BUILD / "html" / "index.html").is_file():
        sys.stdout.write(LOG.read_text())
        print("build_book: nothing changed since the last passing build; its log is above")
        return 0
    SOURCES_STAMP.unlink(missing_ok=True)
    if not _holds(CACHE_STAMP, state):
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE_STAMP.write_text(state + "\n")
    fresh = _holds(STAMP, state)
    STAMP.unlink(missing_ok=True)
    env = dict(os.environ, NCBOOK_FAST="1")
    env.pop("MPLBACKEND", None)  # kernels must use the inline backend, or figures never reach the page
    rc = _run_logged(command(full=not fresh), env)
    if rc == 0:  # a failed build may leave pages with warnings: no stamp, read every page next time
        STAMP.write_text(state + "\n")
        SOURCES_STAMP.write_text(everything + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
