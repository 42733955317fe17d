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

Chapters run two at a time. Before jupyter-book starts, every chapter (a ``book/*.md`` with a
kernelspec) that the execution cache does not hold is executed here, in a pool of as many workers as
there are cores (at most ``NCBOOK_BUILD_JOBS``, default 2), exactly as myst-nb would (same cwd, per-cell
timeout of ``_config.yml``, no errors allowed), and added to the cache; jupyter-book then finds
every chapter there. A chapter that fails here is left out of the cache, so jupyter-book executes
it once more and reports its traceback the usual way (the build fails).

Usage: ``python scripts/build_book.py`` (what ``make book`` and the tests' ``book_build`` run).
Exit status: that of jupyter-book.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
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


def sources_hash(inputs: str) -> str:
    """SHA-256 over every file the site is built from: ``inputs`` (:func:`inputs_hash`) and ``SOURCES``."""
    return hashlib.sha256((inputs + _hash(SOURCES)).encode()).hexdigest()


def command(full: bool) -> list[str]:
    """The jupyter-book command line (``--all`` re-reads every page)."""
    jb = Path(sys.executable).with_name("jupyter-book")
    return [str(jb), "build", ".", "-W", "-n", "--keep-going"] + (["--all"] if full else [])


def _holds(stamp: Path, state: str) -> bool:
    return stamp.is_file() and stamp.read_text().strip() == state


def _chapters() -> list[Path]:
    """The notebook pages: ``book/*.md`` files whose front matter names a kernel."""
    return [p for p in sorted((ROOT / "book").glob("*.md")) if "\nkernelspec:" in p.read_text().split("\n---", 1)[0]]


def _execute(path: str, timeout: int):
    """Worker: execute one chapter as myst-nb's cache mode does; return (path, notebook, seconds, error)."""
    import jupytext
    from jupyter_cache.executors.utils import single_nb_execution

    sys.path.insert(0, str(ROOT / "_ext"))
    import nbclient_widget_sync

    nbclient_widget_sync.apply()  # the stall fix the build loads (see _ext/nbclient_widget_sync.py)
    nb = jupytext.read(path)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    return path, nb, result.time, None if result.err is None else result.exc_string


def preexecute(env: dict) -> None:
    """Execute, in parallel, the chapters the execution cache lacks, and cache those that pass."""
    import jupytext
    import yaml
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(CACHE))
    stale = []
    for md in _chapters():
        try:
            cache.match_cache_notebook(jupytext.read(md))
        except KeyError:
            stale.append(str(md))
    jobs = min(len(stale), os.cpu_count() or 1, int(os.environ.get("NCBOOK_BUILD_JOBS", "2")))
    if jobs < 2:  # one chapter, or one core: jupyter-book executes it as usual
        return
    timeout = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]
    print(f"build_book: executing {len(stale)} chapters, {jobs} at a time", flush=True)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernels inherit the build's environment (FAST mode, inline backend)
    try:
        with ProcessPoolExecutor(jobs) as pool:
            futures = [pool.submit(_execute, md, timeout) for md in stale]
            for future in as_completed(futures):
                path, nb, seconds, error = future.result()
                name = Path(path).relative_to(ROOT)
                if error is None:
                    cache.cache_notebook_bundle(CacheBundleIn(nb, path, data={"execution_seconds": seconds}),
                                                check_validity=False, overwrite=True)
                    print(f"build_book: {name} executed in {seconds:.1f} s", flush=True)
                else:  # jupyter-book runs it again and reports the traceback
                    print(f"build_book: {name} failed; jupyter-book will report it", flush=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)


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
    everything = sources_hash(state)
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
    # kernels run in book/: they import this tree's ncbook, whatever else an editable install points at
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    preexecute(env)
    # Sphinx (7.4) does not overwrite a static file that is already there: a changed CSS or JS file
    # would never reach the site of an incremental build. Let it copy them all again.
    shutil.rmtree(BUILD / "html" / "_static", ignore_errors=True)
    rc = _run_logged(command(full=not fresh), env)
    if rc == 0:  # a failed build may leave pages with warnings: no stamp, read every page next time
        STAMP.write_text(state + "\n")
        SOURCES_STAMP.write_text(everything + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
