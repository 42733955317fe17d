"""Static checks of the book: the table of contents, each chapter's skeleton and its .ipynb twin.

These run in milliseconds; building and rendering the book is tested in ``test_build.py``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from ncbook import config

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def is_chapter(doc: str) -> bool:
    """Whether a toc entry is a numbered chapter (``book/NN_name``), not the intro or an appendix."""
    return re.match(r"book/\d\d_", doc) is not None


def chapters() -> list[Path]:
    """The numbered chapters (MyST notebooks) listed in the toc."""
    return [ROOT / f"{f}.md" for f in toc_files() if is_chapter(f)]


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


def _load_sync_script():
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "scripts/sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _load_sync_script()


def first_code_cell(path: Path):
    return next(c for c in jupytext.read(path).cells if c.cell_type == "code")


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_first_cell_installs_ncbook_only_in_colab(md: Path):
    first = first_code_cell(md)
    assert "hide-cell" in first.metadata.get("tags", []), "the setup cell must be hidden (tag hide-cell)"
    src = first.source
    assert '"google.colab" in sys.modules' in src, "install only when running in Colab"
    assert f"ncbook[widgets,data] @ git+{config.REPO_URL}@" in src, "install from ncbook.config.REPO_URL"
    # Outside Colab the cell only imports sys and silences one warning: every other statement is inside the test.
    tree = ast.parse(src)
    outside = [ast.unparse(s) for s in tree.body if not isinstance(s, ast.If)]
    assert outside == ["import sys", "import warnings",
                       "warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')"]
    (guard,) = [s for s in tree.body if isinstance(s, ast.If)]
    assert ast.unparse(guard.test) == "'google.colab' in sys.modules" and not guard.orelse


@pytest.mark.parametrize("path", [*CHAPTERS, ROOT / "book/_templates/chapter_template.md"],
                         ids=[*IDS, "template"])
def test_setup_cell_is_the_generated_one(path: Path):
    assert first_code_cell(path).source == sync.setup_cell(), f"{path.name}: run `make notebooks`"


def test_setup_cell_pins_the_release_of_this_tree():
    import ncbook

    Version(ncbook.__version__)  # a valid version, hence a valid tag name
    assert sync.install_ref() == f"v{ncbook.__version__}"
    assert sync.repo_url() == config.REPO_URL
    assert sync.install_requirement() == f"ncbook[widgets,data] @ git+{config.REPO_URL}@v{ncbook.__version__}"
    assert f'"{sync.install_requirement()}"' in sync.setup_cell()


def test_setup_cell_keeps_colab_widget_stack():
    """pip must keep Colab's ipywidgets 7.7.1 (an upgrade inside a running kernel half-loads the new one)."""
    src = sync.setup_cell()
    assert '["install", "--quiet", ncbook_requirement]' in src
    assert not re.search(r"--upgrade|\"-U\"|--force|--no-deps|ipywidgets|restart", src)
    (spec,) = [r for r in map(Requirement, importlib.metadata.requires("ncbook")) if r.name == "ipywidgets"]
    assert spec.marker.evaluate({"extra": "widgets"}), "ipywidgets comes with the [widgets] extra"
    assert spec.specifier.contains("7.7.1") and spec.specifier.contains("8.1.5"), spec


def uses_default_device(md: Path) -> bool:
    """True when a chapter's code lets ncbook pick the device (CUDA when there is one)."""
    return any(c.cell_type == "code" and "config.default_device(" in c.source for c in jupytext.read(md).cells)


def test_gpu_chapters_are_those_that_use_a_gpu():
    assert set(sync.GPU_CHAPTERS) <= set(IDS), "GPU_CHAPTERS names a chapter that does not exist"
    assert set(sync.GPU_CHAPTERS) == {md.stem for md in CHAPTERS if uses_default_device(md)}


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_colab_runtime_of_the_twin(md: Path):
    meta = json.loads(md.with_suffix(".ipynb").read_text())["metadata"]
    if md.stem in sync.GPU_CHAPTERS:
        assert meta["accelerator"] == "GPU" and meta["colab"]["gpuType"] == "T4", meta
    else:
        assert "accelerator" not in meta and "gpuType" not in meta["colab"], meta


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
