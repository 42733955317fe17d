"""Tests of ``ncbook.course.otter``: the master notebook has otter 7's structure, and otter's own
tooling, offline and without Docker, assigns it and grades the solution at 100% and the unedited
student notebook at 0%."""

from __future__ import annotations

import glob
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from ncbook.course import checks, otter


def test_master_notebook_has_one_question_per_check():
    nb = otter.master_notebook()
    raw = [c.source for c in nb.cells if c.cell_type == "raw"]
    assert raw[0].startswith("# ASSIGNMENT CONFIG") and f"name: {otter.ASSIGNMENT_NAME}" in raw[0]
    questions = [s.split("name: ")[1].split("\n")[0] for s in raw if s.startswith("# BEGIN QUESTION")]
    assert sorted(questions) == sorted(i.exercise.replace("-", "_") for i in checks.CHECKS.values())
    assert raw.count("# BEGIN SOLUTION") == raw.count("# END SOLUTION") == len(questions)
    assert raw.count("# BEGIN TESTS") == raw.count("# END QUESTION") == len(questions)
    solutions = [c.source for c in nb.cells if c.cell_type == "code" and "    # BEGIN SOLUTION" in c.source]
    assert len(solutions) == len(questions)
    n_tests = sum(1 for c in nb.cells if c.cell_type == "code" and "# BEGIN TEST CONFIG" in c.source)
    assert n_tests == sum(checks.quiet_run(n, None).max_score for n in checks.CHECKS)
    prompts = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "```{" not in prompts, "the prompts must be plain Markdown, not MyST directives"


def test_solution_functions_are_self_contained():
    """Each solution runs with only the master notebook's setup cell (no chapter variables)."""
    nb = otter.master_notebook()
    ns: dict = {}
    exec(otter._SETUP, ns)  # noqa: S102 (our own generated code)
    for cell in nb.cells:
        if cell.cell_type == "code" and "    # BEGIN SOLUTION" in cell.source:
            exec(cell.source, ns)  # noqa: S102
    for info in checks.CHECKS.values():
        assert checks.quiet_run(info.name, ns[info.answer]).full_marks, info.name


def test_solution_function_splits_signature_docstring_and_body():
    source = 'import math\n\ndef f(x):\n    """Twice x."""\n    y = 2 * x\n    return y\n'
    assert otter._solution_function(source, "f") == ("def f(x):", '    """Twice x."""', "    y = 2 * x\n    return y")
    assert otter._solution_function("def g():\n    return 1\n", "g") == ("def g():", "", "    return 1")
    with pytest.raises(ValueError, match="defines no function 'h'"):
        otter._solution_function(source, "h")


def test_write_master_writes_the_master_notebook(tmp_path):
    path = otter.write_master(tmp_path / "out")
    assert path == tmp_path / "out" / "ncbook_exercises.ipynb"
    written = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
    assert written == [(c.cell_type, c.source) for c in otter.master_notebook().cells]  # ids are fresh


@pytest.mark.slow
@pytest.mark.no_cover  # otter and nbconvert run here, ncbook only in their kernels (its code: the tests above)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # otter's own dependencies (traitlets, nbconvert)
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # sockets of the kernels otter starts and leaves to the GC
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_otter_assigns_and_grades_offline(tmp_path):
    """otter assign, then otter's non-containerized grader on the solution (100%) and a blank (0%)."""
    from otter.run import main as otter_run

    master = otter.write_master(tmp_path / "master")
    exe = Path(sys.executable).with_name("otter")
    # --no-run-tests: assign would run the solution against its tests; otter's grader does that below
    out = subprocess.run([str(exe), "assign", "--no-run-tests", str(master), str(tmp_path / "dist")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    zips = glob.glob(str(tmp_path / "dist" / "autograder" / "*.zip"))
    assert len(zips) == 1
    solution = tmp_path / "dist" / "autograder" / master.name
    student = tmp_path / "dist" / "student" / master.name
    text = "\n".join(c.source for c in nbformat.read(student, as_version=4).cells)
    assert "BEGIN SOLUTION" not in text and "sigma_b = centred.T @ centred" not in text  # solutions stripped
    full = otter_run(str(solution), autograder=zips[0], output_dir=None, no_logo=True)
    blank = otter_run(str(student), autograder=zips[0], output_dir=None, no_logo=True)
    # otter's log server threads stop up to a second later and drop their socket unclosed: let them
    # finish here, under this test's ResourceWarning filter, not in whichever test runs next.
    for thread in threading.enumerate():
        if "serve_until_stopped" in thread.name:
            thread.join(timeout=10)
    assert full.possible == sum(checks.quiet_run(n, None).max_score for n in checks.CHECKS)
    assert full.total == full.possible, {k: (v.score, v.possible) for k, v in full.results.items()}
    assert blank.total == 0 and blank.possible == full.possible
