"""Write each chapter's setup cell and ``.ipynb`` twin from its MyST ``.md`` source (outputs stripped).

Colab opens the ``.ipynb``; the ``.md`` is the source we edit and review. ``tests/test_book.py``
checks that the two agree, so run ``make notebooks`` after editing a chapter.

This script also owns two things that must be the same in every chapter:

* the hidden **setup cell** (the first code cell of each chapter and of the chapter template). It is
  written from :data:`SETUP_CELL` with the repository URL of ``_config.yml`` and the install pin
  :func:`install_ref` (the release tag ``v<ncbook.__version__>``), so the ``ncbook`` that Colab
  installs is the one the notebook was generated with;
* the **Colab runtime** of each twin: chapters in :data:`GPU_CHAPTERS` open on a GPU runtime
  (:data:`COLAB_GPU_METADATA`), the others on the default CPU runtime.

Usage: ``python scripts/sync_notebooks.py [--check] [book/NN_name.md ...]``. With ``--check`` nothing
is written; the script lists what is out of date and exits with status 1.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import jupytext
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "book" / "_templates" / "chapter_template.md"

#: Chapters whose experiments use a GPU when there is one (``config.default_device``): their twins
#: ask Colab for a GPU runtime. Every other chapter runs on the CPU (it pins ``device="cpu"`` or
#: trains nothing), so it keeps Colab's default runtime. ``tests/test_book.py`` checks this list
#: against the chapters' code.
GPU_CHAPTERS = ("08_deep_networks",)

#: Notebook metadata as Colab writes it for a notebook saved with "Runtime > Change runtime type > T4 GPU".
COLAB_GPU_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
COLAB_CPU_METADATA = {"colab": {"provenance": []}}

#: The setup cell. Everything it does happens inside the ``google.colab`` test, so elsewhere (a local
#: Jupyter, the book build, the tests) it only silences one warning. pip installs the pinned ncbook
#: and what Colab lacks (geoopt, mnist1d); Colab's own torch, ipywidgets (7.7.1), plotly and numpy
#: meet ncbook's lower bounds, so pip keeps them and the kernel needs no restart.
SETUP_CELL = '''\
# Setup: in Google Colab, install the course package; elsewhere this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import importlib
    import subprocess

    # The ncbook release this notebook goes with (`make notebooks` writes the tag).
    ncbook_requirement = "{requirement}"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(pip + ["install", "--quiet", ncbook_requirement], check=True)
    importlib.invalidate_caches()  # so this kernel finds what pip just added
import warnings

warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated")'''

# The first code cell of a MyST notebook: its fence, its options, then its source up to the closing fence.
_FIRST_CELL = re.compile(r"(```\{code-cell\}[^\n]*\n(?::[^\n]*\n)*\n?)(.*?)(\n```\n)", re.S)


def repo_url() -> str:
    """The repository URL, named once in ``_config.yml`` (``repository.url``)."""
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def install_ref() -> str:
    """The git ref the setup cell installs: the release tag ``v<ncbook.__version__>``."""
    text = (ROOT / "ncbook" / "__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if version is None:
        raise ValueError('ncbook/__init__.py must define __version__ = "X.Y.Z"')
    return f"v{version.group(1)}"


def install_requirement() -> str:
    """The pip requirement of the setup cell: ``ncbook[widgets,data] @ git+<url>@<ref>``."""
    return f"ncbook[widgets,data] @ git+{repo_url()}@{install_ref()}"


def setup_cell() -> str:
    """The source of the setup cell, as every chapter must have it."""
    return SETUP_CELL.replace("{requirement}", install_requirement())


def chapter_sources() -> list[Path]:
    """The MyST notebook sources: ``book/*.md`` files that carry a jupytext header."""
    return sorted(p for p in (ROOT / "book").glob("*.md") if p.read_text().startswith("---\njupytext:"))


def with_setup_cell(text: str) -> str:
    """The MyST text ``text`` with its first code cell replaced by :func:`setup_cell`."""
    match = _FIRST_CELL.search(text)
    if match is None:
        raise ValueError("a chapter must start with a setup code cell (see book/_templates/chapter_template.md)")
    if not match.group(2).startswith("# Setup:"):
        return text  # a page without a setup cell (e.g. the instructor's guide) keeps its first cell
    return text[: match.start(2)] + setup_cell() + text[match.end(2) :]


def colab_metadata(md: Path) -> dict:
    """The Colab metadata of a chapter's twin: a GPU runtime for :data:`GPU_CHAPTERS`, else none."""
    return COLAB_GPU_METADATA if md.stem in GPU_CHAPTERS else COLAB_CPU_METADATA


def render(md: Path, text: str | None = None) -> str:
    """The ``.ipynb`` twin of ``md`` (or of the MyST ``text`` given for it): no outputs, fixed ids."""
    nb = jupytext.reads(md.read_text() if text is None else text, fmt="md:myst")
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:03d}"  # deterministic ids, so re-rendering an unchanged chapter changes nothing
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("jupytext", None)
    nb.metadata.pop("accelerator", None)
    nb.metadata.update(copy.deepcopy(colab_metadata(md)))
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    return jupytext.writes(nb, fmt="ipynb")


def _update(path: Path, text: str, check: bool, stale: list[Path]) -> None:
    if path.exists() and path.read_text() == text:
        return
    if check:
        stale.append(path.relative_to(ROOT))
    else:
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    check = "--check" in argv
    named = [Path(a).resolve() for a in argv if a != "--check"]
    stale: list[Path] = []
    if not named:  # a full run also keeps the chapter template's setup cell current
        _update(TEMPLATE, with_setup_cell(TEMPLATE.read_text()), check, stale)
    for md in named or chapter_sources():
        source = with_setup_cell(md.read_text())
        _update(md, source, check, stale)
        _update(md.with_suffix(".ipynb"), render(md, source), check, stale)
    if stale:
        print("out of date (run `make notebooks`): " + ", ".join(map(str, stale)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
