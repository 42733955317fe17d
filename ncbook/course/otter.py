r"""The coding exercises as an otter-grader assignment (the master-notebook format of ``otter assign``).

``write_master(OUTDIR)`` writes ``OUTDIR/ncbook_exercises.ipynb``: otter 7's raw-cell format, with an
``# ASSIGNMENT CONFIG`` cell, then per coding exercise (one per registered check, in chapter order)
a ``# BEGIN QUESTION`` block holding the prompt (the exercise text from the chapter), a solution
cell (the chapter's own solution function, its body between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` so that otter strips it to ``...`` in the student notebook) and one test cell per
case of the check (partial credit: the test "at least k cases right" for k = 1 .. max score).

An instructor then runs, offline::

    otter assign OUTDIR/ncbook_exercises.ipynb dist
    otter run -a dist/autograder/ncbook_exercises-autograder_*.zip submission.ipynb

``otter run`` grades without Docker in the current environment, which must have ``ncbook``
installed. The solution scores full marks and the unedited student notebook scores zero (tested).

Introduced in: the instructor's guide.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .checks import CHECKS
from .editions import _EX_START, _SOL_START, _rewrite_markdown, chapter_paths

__all__ = ["ASSIGNMENT_NAME", "coding_exercises", "master_notebook", "write_master"]

ASSIGNMENT_NAME = "ncbook-exercises"
_SETUP = """\
import math

import geoopt
import numpy as np
import torch

from ncbook import course, etf, landscape, metrics, models, rgd, sphere, ufm"""


def _solution_function(source: str, name: str) -> tuple[str, str, str]:
    """(signature line, docstring block, body) of ``def name`` in a solution cell."""
    tree = ast.parse(source)
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if fn is None:
        raise ValueError(f"the solution defines no function {name!r}")
    lines = source.splitlines()
    header = "\n".join(lines[fn.lineno - 1:fn.body[0].lineno - 1])
    body = fn.body
    doc = ""
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        doc = "\n".join(lines[body[0].lineno - 1:body[0].end_lineno])
        body = body[1:]
    code = "\n".join(lines[body[0].lineno - 1:fn.end_lineno])
    return header, doc, code


def coding_exercises(root: Path | None = None) -> list[dict]:
    """Per registered check found in a chapter: label, check name, prompt text and solution function."""
    import jupytext

    by_label = {info.exercise: info for info in CHECKS.values()}
    found = []
    for md in chapter_paths(root):
        nb = jupytext.read(md)
        label, prompt, in_prompt, want_solution = None, [], False, False
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for i, line in enumerate(cell.source.splitlines()):
                    if _EX_START.match(line):
                        label = cell.source.splitlines()[i + 1].split(":label:")[-1].strip()
                        prompt, in_prompt = [], label in by_label
                    elif in_prompt and line.startswith("```{exercise-end}"):
                        in_prompt = False
                    elif in_prompt and not line.startswith(":label:"):
                        prompt.append(line)
                    m = _SOL_START.match(line)
                    if m and m[1] in by_label:
                        want_solution = True
            elif want_solution and label in by_label:
                info = by_label[label]
                if f"def {info.answer}(" in cell.source:
                    found.append({"label": label, "check": info.name, "answer": info.answer, "chapter": md.stem,
                                  "prompt": _render_prompt(prompt),
                                  "solution": _solution_function(cell.source, info.answer)})
                    want_solution = False
            elif cell.cell_type == "code" and in_prompt:
                prompt.append("```python\n" + cell.source + "\n```" if "answer-stub" not in
                              cell.metadata.get("tags", []) else "")
    return found


def _render_prompt(lines: list[str]) -> str:
    """Return the exercise text as plain Markdown (hint as <details>), without the directive fences."""
    while lines and lines[0].strip() in ("", "```"):  # the closing fence of exercise-start
        lines = lines[1:]
    text = _rewrite_markdown("\n".join(lines), {"in_solution": False, "n": 0, "chapter": ""}, keep_solutions=False)
    return text.strip()


def _raw(text: str):
    import nbformat

    return nbformat.v4.new_raw_cell(text)


def master_notebook(root: Path | None = None):
    """Build the otter master notebook (nbformat) of every coding exercise."""
    import nbformat
    import yaml

    config = {"name": ASSIGNMENT_NAME, "init_cell": False, "check_all_cell": False, "export_cell": False,
              "run_tests": True, "solutions_pdf": False, "template_pdf": False,
              "tests": {"files": False, "ok_format": False}, "environment": None, "requirements": None}
    cells = [_raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False).strip()),
             nbformat.v4.new_markdown_cell(
                 "# Coding exercises of *Neural collapse with normalized features*\n\n"
                 "Generated by `python -m ncbook.course otter` from the chapter sources. Fill in every "
                 "function; each question's tests are the course's own checks (`ncbook.course`), one point "
                 "per case they try."),
             nbformat.v4.new_code_cell(_SETUP)]
    for ex in coding_exercises(root):
        info = CHECKS[ex["check"]]
        n_cases = _max_score(info)
        header, doc, body = ex["solution"]
        solution = "\n".join(filter(None, [header, doc, "    # BEGIN SOLUTION", body, "    # END SOLUTION"]))
        cells += [_raw(f"# BEGIN QUESTION\nname: {ex['label'].replace('-', '_')}"),
                  nbformat.v4.new_markdown_cell(f"**{ex['label']}** (chapter `{ex['chapter']}`)\n\n{ex['prompt']}"),
                  _raw("# BEGIN SOLUTION"), nbformat.v4.new_code_cell(solution), _raw("# END SOLUTION"),
                  _raw("# BEGIN TESTS")]
        qname = ex["label"].replace("-", "_")
        for k in range(1, n_cases + 1):
            # otter's exception-based tests: one function (its arguments come from the notebook's globals)
            cells.append(nbformat.v4.new_code_cell(
                f'""" # BEGIN TEST CONFIG\npoints: 1\nhidden: false\n""" # END TEST CONFIG\n'
                f"def test_{qname}_{k}(course, {info.answer}):\n"
                f"    assert course.quiet_score({info.name!r}, {info.answer}) >= {k}, \\\n"
                f'        "at most {k - 1} of {n_cases} cases right: run course.{info.name}({info.answer})"\n\n\n'
                f"test_{qname}_{k}(course, {info.answer})"))
        cells += [_raw("# END TESTS"), _raw("# END QUESTION")]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    return nb


def _max_score(info) -> int:
    from . import checks

    return checks.quiet_run(info.name, None).max_score


def write_master(outdir, root: Path | None = None) -> Path:
    """Write ``OUTDIR/ncbook_exercises.ipynb``; return its path."""
    import nbformat

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    target = outdir / "ncbook_exercises.ipynb"
    nbformat.write(master_notebook(root), target)
    return target

