"""The layers of ncbook (DESIGN.md section 5), checked on the import graph, function-level imports included.

The import-linter contracts live in ``pyproject.toml`` (``[tool.importlinter]``); grimp, the graph
library under import-linter, reads every import statement of a module, including those inside
functions, and the first test checks that it does. The other checks say what import-linter cannot:
the math core imports nothing but torch, numpy, geoopt, the standard library and itself, and no
module reaches for another module's private (underscore) functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "ncbook"
CORE = {"sphere", "etf", "ufm", "rgd", "geoopt_rgd", "landscape", "diagnostics", "metrics", "_checks",
        "solve", "stepsize"}
# config (the FAST switch, devices, storage) sits under the core; only it may reach for google.colab.
BASE = {"config"}
PRESENTATION = {"plotting", "widgets", "course", "interactive", "landscape_plots", "tables"}
CORE_MAY_IMPORT = {"torch", "numpy", "geoopt"}
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("ncbook", include_external_packages=True, cache_dir=None)


def _function_level_imports() -> list[tuple[str, str]]:
    """(importer, imported) for every ``from . import x`` / ``from .x import y`` inside a function."""
    found = []
    for name in MODULES:
        tree = ast.parse((PKG / f"{name}.py").read_text())
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.level == 1:
                    targets = [node.module] if node.module else [a.name for a in node.names]
                    found += [(f"ncbook.{name}", f"ncbook.{t.split('.')[0]}") for t in targets]
    return found


def test_the_graph_sees_imports_inside_functions(graph):
    lazy = _function_level_imports()
    assert lazy, "no function-level import left to check the checker with"
    missed = [(a, b) for a, b in lazy if not graph.direct_import_exists(importer=a, imported=b)]
    assert not missed, f"grimp does not see these function-level imports: {missed}"


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_core_imports_only_torch_numpy_geoopt_and_itself(graph):
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    core = sorted(CORE & set(MODULES))
    assert {"sphere", "ufm", "rgd"} <= set(core)
    bad = {}
    for name in core:
        imported = graph.find_modules_directly_imported_by(f"ncbook.{name}")
        outside = sorted(m for m in imported if not (
            m.split(".")[0] in stdlib | CORE_MAY_IMPORT
            or (m.startswith("ncbook.") and m.split(".")[1] in CORE | BASE)))
        if outside:
            bad[name] = outside
    assert not bad, f"math-core modules import outside the core, torch, numpy and geoopt: {bad}"


def test_only_presentation_modules_import_presentation_modules(graph):
    """Everything that is not presentation (the core and the training stack, new modules included)."""
    bad = [(m, i) for m in MODULES if m not in PRESENTATION
           for i in graph.find_modules_directly_imported_by(f"ncbook.{m}")
           if i.startswith("ncbook.") and i.split(".")[1] in PRESENTATION]
    assert not bad, f"imports of presentation modules ({sorted(PRESENTATION)}) from below them: {bad}"


def _private_uses() -> set[tuple[str, str]]:
    """(module, 'other._name') for each use of another ncbook module's private function or name.

    Counts ``from .other import _name``, ``from . import other`` followed by ``other._name``, and
    ``import ncbook.other as o`` followed by ``o._name``; dunder names and the private module
    ``_checks`` (whose functions are public to the package) are fine.
    """
    uses = set()
    for name in MODULES:
        tree = ast.parse((PKG / f"{name}.py").read_text())
        aliases = {}  # local name -> ncbook module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("ncbook")):
                mod = (node.module or "").removeprefix("ncbook").lstrip(".")
                for a in node.names:
                    if not mod:  # from . import other [as o]
                        aliases[a.asname or a.name] = a.name
                    elif mod != name and a.name.startswith("_") and not a.name.startswith("__"):
                        uses.add((name, f"{mod}.{a.name}"))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("ncbook.") and a.asname:
                        aliases[a.asname] = a.name.split(".")[1]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases[node.value.id] != name):
                uses.add((name, f"{aliases[node.value.id]}.{node.attr}"))
    return uses


# Known uses left by the untangled core (issue 12); new ones fail test_no_new_private_uses.
KNOWN_PRIVATE_USES: set[tuple[str, str]] = set()


def test_no_new_private_uses():
    new = sorted(_private_uses() - KNOWN_PRIVATE_USES)
    assert not new, f"modules calling another module's private names (make them public or move them): {new}"


def test_no_module_uses_another_modules_private_names():
    assert not _private_uses(), sorted(_private_uses())
