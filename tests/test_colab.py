"""The chapters' Colab path in a kernel that pretends to be Google Colab, with ipywidgets 7 and 8.

Colab ships its own packages (ipywidgets 7.7.1 for a long time) and imports ``google.colab`` when its
kernel starts. A pretend-Colab kernel starts with

* a fake ``google.colab`` package, imported at start-up by a ``sitecustomize`` (as Colab's kernel does),
  and ``COLAB_RELEASE_TAG`` set (what :func:`ncbook.config.in_colab` reads);
* a fake ``pip`` ahead of the real one: ``python -m pip ...`` records its arguments and installs
  nothing (no network in tests; the kernel already finds ``ncbook`` in the venv);
* for ipywidgets 7, ``.venv/ipywidgets7`` (written by ``make setup`` from
  ``tests/colab-ipywidgets7.txt``) ahead of the venv, so ``import ipywidgets`` gives 7.7.1.

Every chapter executes once per test run, in the book build; here only what differs in Colab runs
again. The Colab path of a chapter differs from the build's in three places: the setup cell (it
installs ``ncbook`` only in Colab), the packages its imports find, and the Colab branch of
:func:`ncbook.interactive.show`, the one way a chapter displays an interactive figure. So, per
ipywidgets major, one kernel runs the interactive cells of one chapter (with the earlier cells they
need, found by the names they read: not the whole chapter), which must display something whose
widgets are all in the saved widget state; then every chapter's setup, parameters and import
cells; and checks that pip was asked for exactly the pinned ncbook. A static test checks that
every interactive cell of every chapter displays through ``interactive.show``, whose Colab branch
``tests/test_interactive.py`` tests.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from queue import Empty
from time import monotonic

import jupytext
import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_book import sync

ROOT = Path(__file__).resolve().parents[1]
IPYWIDGETS7 = ROOT / ".venv" / "ipywidgets7"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

CHAPTERS = [p for p in sync.chapter_sources() if re.match(r"\d\d_", p.name)]  # the numbered chapters

# Method calls that change the object they are called on: a cell making them on a name "defines" it.
_MUTATORS = {"append", "extend", "insert", "update", "add", "setdefault", "pop", "clear", "remove",
             "sort", "load_state_dict", "step", "run", "fit", "train", "zero_grad", "copy_", "fill_", "set"}
# Modules whose use marks a cell as interactive.
_INTERACTIVE_MODULES = ("ipywidgets", "plotly", "ncbook.widgets", "ncbook.interactive")

# --- the fake Colab ------------------------------------------------------------------------------------

_FAKE_FILES = {
    # A namespace-friendly ``google`` package, so that other google.* packages of the venv stay importable.
    "google/__init__.py": '__path__ = __import__("pkgutil").extend_path(__path__, __name__)\n',
    "google/colab/__init__.py": '"""Fake google.colab of tests/test_colab.py."""\nfrom . import drive, output\n',
    "google/colab/output.py": "def enable_custom_widget_manager():\n    pass\n",
    # Mounting Drive asks the learner for consent in Colab: a chapter must offer it, never do it unasked.
    "google/colab/drive.py": (
        "def mount(mountpoint, **kwargs):\n"
        "    raise RuntimeError('tests/test_colab.py: a chapter mounted Google Drive without being asked')\n"
    ),
    "sitecustomize.py": "import google.colab  # noqa: F401  (Colab's kernel imports it at start-up)\n",
    "pip/__init__.py": "",
    "pip/__main__.py": (
        "import json, os, sys\n"
        "with open(os.environ['NCBOOK_FAKE_PIP_LOG'], 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    ),
}


@pytest.fixture(scope="module")
def fake_colab(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake-colab")
    for name, text in _FAKE_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def colab_env(fake: Path, ipywidgets_major: int, pip_log: Path) -> dict[str, str]:
    """The environment of the pretend-Colab kernel."""
    path = [str(fake)]
    if ipywidgets_major == 7:
        if not (IPYWIDGETS7 / "ipywidgets").is_dir():
            pytest.fail(f"{IPYWIDGETS7.relative_to(ROOT)} is missing: run `make setup`")
        path.append(str(IPYWIDGETS7))
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # Colab draws with the inline backend
    env.update(PYTHONPATH=os.pathsep.join(path + [p for p in [env.get("PYTHONPATH")] if p]),
               COLAB_RELEASE_TAG="fake-colab-for-tests", NCBOOK_FAKE_PIP_LOG=str(pip_log), NCBOOK_FAST="1")
    return env


# --- which cells to run --------------------------------------------------------------------------------


def _tree(source: str) -> ast.Module:
    return ast.parse(TransformerManager().transform_cell(source))  # IPython magics become plain Python


def bindings(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names a cell binds or changes, and names it reads before binding them (its free names).

    An over-approximation on purpose (names bound inside functions count too): a cell taken in
    without need costs time, a cell left out makes an interactive cell fail for the wrong reason.
    """
    binds, first_store, loads = set(), {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loads.add((node.id, node.lineno, node.col_offset))
            else:
                binds.add(node.id)
                pos = (node.lineno, node.col_offset)
                first_store[node.id] = min(first_store.get(node.id, pos), pos)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            binds.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load):
            base = node
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):
                binds.add(base.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            loads.add((node.target.id, 0, 0))  # x += 1 reads x first
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.attr in _MUTATORS):
            binds.add(node.func.value.id)
    free = {n for n, line, col in loads if n not in first_store or (line, col) < first_store[n]}
    return binds, free


def interactive_aliases(trees: list[ast.Module]) -> set[str]:
    """Names a chapter binds to ipywidgets, plotly or ncbook.widgets (or to something from them)."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.asname or a.name.split(".")[0] for a in node.names
                             if a.name.startswith(_INTERACTIVE_MODULES))
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if node.module.startswith(_INTERACTIVE_MODULES) or full.startswith(_INTERACTIVE_MODULES):
                        names.add(a.asname or a.name)
    return names


def _loads(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in names for n in ast.walk(node))


def is_interactive(cell, tree: ast.Module, aliases: set[str]) -> bool:
    """A cell that displays a widget or a figure built from ipywidgets, plotly or ncbook's demos.

    That is: tagged ``interactive``; or it calls ``display(...)`` or ``<x>.show(...)`` (but not
    ``plt.show()``); or it ends with an expression that uses one of ``aliases``.
    """
    if "interactive" in cell.metadata.get("tags", []):
        return True
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        on_plt = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "plt"
        shows = (isinstance(f, ast.Name) and f.id == "display") or (
            isinstance(f, ast.Attribute) and f.attr == "show" and not on_plt)
        if shows:
            return True
    last = tree.body[-1] if tree.body else None
    return isinstance(last, ast.Expr) and _loads(last, aliases)


def colab_slice(nb) -> tuple[list[int], list[int]]:
    """Indices (into ``nb.cells``) of the cells to run, and of the interactive cells among them.

    Always the setup cell, the parameters cell and the cell after it (the imports); then each
    interactive cell with, recursively, every earlier cell that binds a name it reads.
    """
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    trees = {i: _tree(nb.cells[i].source) for i in code}
    info = {i: bindings(trees[i]) for i in code}
    # A module is bound by its import cell only: `rgd.run(...)` elsewhere does not redefine `rgd`.
    imports = {i: {(a.asname or a.name).split(".")[0] for n in ast.walk(trees[i])
                   if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names} for i in code}
    modules = set().union(*imports.values())
    info = {i: (binds - (modules - imports[i]), free) for i, (binds, free) in info.items()}
    aliases = interactive_aliases(list(trees.values()))
    start = _start_cells(nb)
    interactive = [i for i in code if i not in start and is_interactive(nb.cells[i], trees[i], aliases)]
    keep, todo = set(start) | set(interactive), list(interactive)
    while todo:
        j = todo.pop()
        for i in code:
            if i < j and i not in keep and info[i][0] & info[j][1]:
                keep.add(i)
                todo.append(i)
    return sorted(keep), interactive


# --- running it ----------------------------------------------------------------------------------------

def _polled(get_msg, step: float = 0.5):
    """``get_msg`` asked every ``step`` seconds until its timeout: a long wait can miss a message."""

    async def get(timeout=None):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            wait = step if deadline is None else max(0.0, min(step, deadline - monotonic()))
            try:
                return await get_msg(timeout=wait)
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise

    return get


class PollingClient(NotebookClient):
    """A NotebookClient that polls its channels in short steps.

    After a cell that displays ipywidgets, nbclient sometimes gets the cell's reply only when its
    timeout fires (jupyter/nbclient#312; seen here as 124 s for a 5 s cell): short polls pick it up.
    """

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        kc.shell_channel.get_msg = _polled(kc.shell_channel.get_msg)
        kc.iopub_channel.get_msg = _polled(kc.iopub_channel.get_msg)
        return kc


PROBE = ("import sys, ipywidgets\n"
         "print(ipywidgets.__version__, 'google.colab' in sys.modules, 'ncbook' in sys.modules)")


def widget_views(cell) -> list[str]:
    return [o["data"][WIDGET_VIEW]["model_id"] for o in cell.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and WIDGET_VIEW in o.get("data", {})]


def models_under(state: dict, model_id: str) -> set[str]:
    """The widget model ``model_id`` and every model its state refers to (``"IPY_MODEL_<id>"``), recursively."""
    seen, todo = set(), [model_id]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += re.findall(r"IPY_MODEL_(\w+)", json.dumps(state.get(m, {}).get("state", {})))
    return seen


def shows_something(cell) -> bool:
    """True when the cell displayed more than a text repr (a widget, an image, HTML such as plotly's)."""
    return any(o.get("output_type") in ("display_data", "execute_result") and set(o.get("data", {})) - {"text/plain"}
               for o in cell.get("outputs", []))


def _execute_like_colab(nb, md: Path, fake: Path, ipywidgets_major: int, tmp_path: Path) -> list:
    """Execute ``nb`` in a pretend-Colab kernel (cwd: the chapter's folder); return pip's recorded calls."""
    pip_log = tmp_path / "pip.jsonl"
    # Colab's kernel starts with matplotlib's inline backend, so a returned Figure is drawn as an image.
    # immediate shutdown: the outputs are in; a graceful one only costs a second
    client = PollingClient(nb, timeout=120, kernel_name="python3", store_widget_state=True, shutdown_kernel="immediate",
                           extra_arguments=["--matplotlib=inline"],
                           resources={"metadata": {"path": str(md.parent)}})
    try:
        client.execute(env=colab_env(fake, ipywidgets_major, pip_log))
    except CellExecutionError as exc:
        pytest.fail(f"{md.name} with ipywidgets {ipywidgets_major} in pretend-Colab:\n{exc}")
    return [json.loads(line) for line in pip_log.read_text().splitlines()] if pip_log.exists() else []


def _check_probe(cell, ipywidgets_major: int):
    version, colab, ncbook_loaded = cell.outputs[0]["text"].split()
    assert version.split(".")[0] == str(ipywidgets_major) and colab == "True" and ncbook_loaded == "True"


def _start_cells(nb) -> list[int]:
    """The setup cell, the parameters cell and the cell after it (the imports)."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    params = [i for i in code if "parameters" in nb.cells[i].metadata.get("tags", [])]
    return code[: code.index(params[0]) + 2] if params else code[:2]


#: The chapter whose interactive cells run end to end in pretend-Colab, per ipywidgets major
#: (two interactive figures each, slices of a few seconds).
END_TO_END = {7: "02_sphere_geometry", 8: "05_normalized_ufm"}


def _fresh(cell):
    """A copy of a code cell with a fresh id (the setup cells of all chapters share one)."""
    return nbformat.v4.new_code_cell(cell.source, metadata=cell.metadata)


@pytest.mark.slow
@pytest.mark.no_cover  # only the kernel runs ncbook: coverage's tracer would slow nbclient's loop here
@pytest.mark.parametrize("ipywidgets_major", sorted(END_TO_END), ids=lambda m: f"ipywidgets{m}")
def test_chapters_start_and_draw_in_pretend_colab(ipywidgets_major: int, fake_colab: Path, tmp_path: Path):
    """One pretend-Colab kernel per ipywidgets major runs, in this order:

    1. the interactive cells of one chapter (``END_TO_END``) with the earlier cells they need, its
       setup cell first, as a fresh Colab runtime runs them;
    2. every chapter's setup, parameters and import cells, one chapter after the other;
    3. a probe of what the kernel imported.
    """
    notebooks = {md.stem: jupytext.read(md.with_suffix(".ipynb")) for md in CHAPTERS}
    stem = END_TO_END[ipywidgets_major]
    keep, interactive = colab_slice(notebooks[stem])
    cells = [_fresh(notebooks[stem].cells[i]) for i in keep]
    cells += [_fresh(nb.cells[i]) for nb in notebooks.values() for i in _start_cells(nb)]
    cells.append(nbformat.v4.new_code_cell(PROBE))
    run = nbformat.v4.new_notebook(cells=cells, metadata=notebooks[stem].metadata)
    md = next(p for p in CHAPTERS if p.stem == stem)
    pip_calls = _execute_like_colab(run, md, fake_colab, ipywidgets_major, tmp_path)
    # each setup cell asks pip for exactly the pinned ncbook: the chapter's own, then every chapter's
    assert pip_calls == [["install", "--quiet", sync.install_requirement()]] * (1 + len(CHAPTERS)), pip_calls
    _check_probe(run.cells[-1], ipywidgets_major)
    state = run.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    assert interactive, f"{md.name}: no interactive cell to run"
    for k in (keep.index(i) for i in interactive):
        cell = run.cells[k]
        assert shows_something(cell), f"{md.name}: this interactive cell displayed no widget or figure:\n{cell.source}"
        for view in widget_views(cell):
            models = models_under(state, view)
            missing = sorted(m for m in models if m not in state)
            assert not missing, f"{md.name}: widget models {missing} are not in the saved state:\n{cell.source}"
            # An interactive widget draws into an Output widget, and a failing redraw lands there, not in the cell.
            for m in models:
                if state[m]["model_name"] == "OutputModel":
                    outs = state[m]["state"].get("outputs", [])
                    errors = [o for o in outs if o.get("output_type") == "error"]
                    assert not errors, f"{md.name}: a widget's output area holds an error: {errors}"
                    assert shows_something({"outputs": outs}), f"{md.name}: a widget's output area is empty"


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_interactive_figures_display_through_interactive_show(md: Path):
    """What makes the end-to-end runs above stand for every chapter: one display path in Colab."""
    nb = jupytext.read(md.with_suffix(".ipynb"))
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    trees = {i: _tree(nb.cells[i].source) for i in code}
    aliases = interactive_aliases(list(trees.values())) - {"show"}
    for i in code:
        cell, tree = nb.cells[i], trees[i]
        uses = any(isinstance(n, ast.Name) and n.id in aliases for n in ast.walk(tree))
        if uses and is_interactive(cell, tree, aliases):
            assert "interactive.show(" in cell.source, (
                f"{md.name}: an interactive cell that does not display through ncbook.interactive.show "
                f"(add the chapter to END_TO_END or use show):\n{cell.source}")


def test_the_slice_finds_the_interactive_cells_and_what_they_need():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import sys"),
        nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import ipywidgets as widgets\nimport numpy as np"),
        nbformat.v4.new_code_cell("a = np.arange(seed + 3)"),
        nbformat.v4.new_code_cell("runs = {}"),
        nbformat.v4.new_code_cell("runs['x'] = a.sum()"),
        nbformat.v4.new_code_cell("assert a.sum() == 3  # not needed"),
        nbformat.v4.new_code_cell("b = 2 * a  # not needed"),
        nbformat.v4.new_code_cell("fig = 1\nwidgets.IntSlider(value=int(runs['x']) + fig)"),
        nbformat.v4.new_code_cell("%matplotlib inline\nprint(seed)"),
        nbformat.v4.new_code_cell("w = widgets.IntSlider()\nassert w.value == 0  # uses ipywidgets, shows nothing"),
        nbformat.v4.new_code_cell("plt.show()\ndisplay(w)"),
        nbformat.v4.new_code_cell("plt.plot(a)\nplt.show()  # matplotlib only"),
        nbformat.v4.new_code_cell("fig = a.tolist()\nfig.show()"),
    ])
    keep, interactive = colab_slice(nb)
    assert interactive == [8, 11, 13]
    assert keep == [0, 1, 2, 3, 4, 5, 8, 10, 11, 13]
