"""Static checks of the book: the table of contents, each chapter's skeleton and its .ipynb twin.

These run in milliseconds; building and rendering the book is tested in ``test_build.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext
import pytest
import yaml

from ncbook import config

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def chapters() -> list[Path]:
    """The numbered chapters (MyST notebooks) listed in the toc."""
    return [ROOT / f"{f}.md" for f in toc_files() if re.match(r"book/\d\d_", f)]


CHAPTERS = chapters()
IDS = [p.stem for p in CHAPTERS]


def test_toc_files_exist():
    missing = [f for f in toc_files() if not (ROOT / f"{f}.md").exists()]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_toc_has_the_four_parts_and_appendices():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    captions = [p["caption"] for p in toc["parts"]]
    assert [c.split(".")[0] for c in captions[:4]] == ["I", "II", "III", "IV"]
    assert captions[-1] == "Appendices"
    assert len(CHAPTERS) >= 3


def test_repository_url_is_configured_in_one_place():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["repository"]["url"] == config.REPO_URL
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_chapter_skeleton(md: Path):
    text = md.read_text()
    assert text.startswith("---\njupytext:"), "chapter must be a MyST notebook with a jupytext header"
    sections = ("**What you'll learn**", "**What you'll need**", "## Summary", "## Exercises", "## Further reading")
    for heading in sections:
        assert heading in text, f"{md.name} lacks the section {heading!r} (see book/_templates/chapter_template.md)"
    assert "```{exercise-start}" in text or "```{exercise}" in text, f"{md.name} has no sphinx-exercise exercise"
    tmp = Path(tempfile.gettempdir()).as_posix() + "/"
    assert str(ROOT.parent) not in text and tmp not in text, f"{md.name} names a path of this machine"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_first_cell_installs_ncbook_only_in_colab(md: Path):
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "hide-cell" in first.metadata.get("tags", []), "the setup cell must be hidden (tag hide-cell)"
    src = first.source
    assert '"google.colab" in sys.modules' in src, "install only when running in Colab"
    assert f"ncbook[widgets,data] @ git+{config.REPO_URL}" in src, "install from ncbook.config.REPO_URL"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_ipynb_twin_matches_md(md: Path):
    twin = md.with_suffix(".ipynb")
    assert twin.exists(), f"{twin.name} is missing: run `make notebooks`"
    a, b = jupytext.read(md), jupytext.read(twin)
    cells = lambda nb: [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]
    assert cells(a) == cells(b), f"{twin.name} differs from {md.name}: run `make notebooks`"
    assert all(not c.get("outputs") for c in b.cells if c.cell_type == "code"), f"{twin.name} holds outputs"


def test_sync_script_reports_no_stale_twin():
    out = subprocess.run([sys.executable, str(ROOT / "scripts/sync_notebooks.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_ncbook_module_is_in_the_api_appendix():
    api = (ROOT / "book/appendix_api.md").read_text()
    modules = sorted(p.stem for p in (ROOT / "ncbook").glob("*.py") if not p.stem.startswith("_"))
    missing = [m for m in modules if f".. automodule:: ncbook.{m}" not in api]
    assert not missing, f"book/appendix_api.md does not document: {missing}"


def test_bibliography_has_the_core_references():
    bib = (ROOT / "book/references.bib").read_text()
    for key in ("yaras2022normalized", "papyan2020prevalence", "zhu2021geometric", "boumal2023intro",
                "absil2008optimization", "kochurov2020geoopt", "lu2022neural", "graf2021dissecting"):
        assert f"{{{key}," in bib
