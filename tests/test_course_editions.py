"""Tests of ``ncbook.course.editions``: the exercise conventions hold in every chapter of ``_toc.yml``,
the student edition has no solution and runs with every check "not attempted yet", the instructor
edition keeps the solutions, and the command line writes both."""

from __future__ import annotations

import re
import subprocess
import sys

import jupytext
import nbformat
import pytest

from ncbook.course import checks, editions

CHAPTERS = editions.chapter_paths()
IDS = [p.stem for p in CHAPTERS]


def test_chapters_come_from_the_toc():
    assert len(CHAPTERS) >= 8 and all(p.exists() for p in CHAPTERS)
    assert [p.stem[:2] for p in CHAPTERS] == sorted(p.stem[:2] for p in CHAPTERS)


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_exercise_conventions(md):
    exs = editions.exercises(md)
    assert len(exs) >= 4, f"{md.name} has {len(exs)} exercises, at least 4 wanted"
    assert sum(e.kind == "Coding" for e in exs) >= 2, f"{md.name} needs at least two coding exercises"
    for e in exs:
        assert e.has_hint, f"{e.label}: no {{hint}} with :class: dropdown inside the exercise"
        assert e.has_solution, f"{e.label}: no solution block"
        assert 5 <= e.minutes <= 90 and e.difficulty in editions.DIFFICULTIES
        assert e.label.startswith(f"ex-{md.stem[:2]}-")
    if "```{prf:proof}" in md.read_text():
        assert any(e.kind == "Proof" for e in exs), f"{md.name} proves things but has no proof exercise"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_student_edition_drops_solutions_and_keeps_stubs_hints_checks(md):
    student, teacher = editions.edition(md, "student"), editions.edition(md, "instructor")
    text = "\n".join(c.source for c in student.cells)
    assert "solution-start" not in text and "**Solution.**" not in text and ".full_marks" not in text
    assert "exercise-start" not in text and "```{hint}" not in text
    markdown = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    assert "```{" not in markdown and "{prf:ref}`" not in markdown, "MyST left that Jupyter cannot render"
    exs = editions.exercises(md)
    assert text.count("<summary>Hint</summary>") == len(exs)
    assert len(re.findall(r"^### Exercise \d+\.\d+ ", text, flags=re.M)) == len(exs)
    stubs = [c for c in student.cells if "answer-stub" in c.metadata.get("tags", [])]
    assert len(stubs) == sum(e.kind == "Coding" for e in exs)
    assert all("raise NotImplementedError" in c.source for c in stubs)
    calls = [c for e in exs for c in e.checks]
    assert sum(1 for c in student.cells if "check" in c.metadata.get("tags", [])) == len(calls)
    teacher_text = "\n".join(c.source for c in teacher.cells)
    assert teacher_text.count("**Solution.**") == len(exs) and teacher_text.count(".full_marks") >= len(calls)
    # Everything before the exercises is the same chapter in both editions.
    assert len(teacher.cells) > len(student.cells)


def _exercise_cells(nb):
    start = next(i for i, c in enumerate(nb.cells) if "### Exercise " in c.source)
    return [c for c in nb.cells[start - 1:] if c.cell_type == "code"]


@pytest.mark.slow  # executes every chapter's exercise sections in a kernel: make test only, not make check
def test_student_exercise_sections_of_every_chapter_run_and_say_not_attempted():
    """One kernel runs the exercise sections (stubs, checks, quizzes) of all chapters' student editions.

    They must not depend on the chapter body (checked statically below, with the rest of the chapter
    executed by the book build)."""
    from nbclient import NotebookClient

    cells = [nbformat.v4.new_code_cell("import warnings\nwarnings.filterwarnings('ignore')")]
    n_checks = 0
    for md in CHAPTERS:
        section = _exercise_cells(editions.edition(md, "student"))
        n_checks += sum("check" in c.metadata.get("tags", []) for c in section)
        cells += section
    for i, c in enumerate(cells):
        c.id = f"all-{i:03d}"
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                         "language": "python"}})
    # immediate: the outputs are in; a graceful shutdown only costs a second
    NotebookClient(nb, timeout=120, kernel_name="python3", shutdown_kernel="immediate").execute()
    outputs = [o for c in nb.cells if "check" in c.metadata.get("tags", []) for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert text.count("not attempted yet") == n_checks == len(checks.CHECKS)
    assert "Traceback" not in text and "Error" not in text


@pytest.mark.slow  # starts a Python subprocess: make test only, not make check
def test_command_line_writes_both_editions(tmp_path):
    from ncbook.course.__main__ import main

    out = subprocess.run([sys.executable, "-m", "ncbook.course", "student-edition", str(tmp_path / "student")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert main(["instructor-edition", str(tmp_path / "instructor")]) == 0  # the same entry point, in-process
    for kind in ("student", "instructor"):
        written = sorted(p.stem for p in (tmp_path / kind).glob("*.ipynb"))
        assert written == sorted(IDS)
        nbformat.validate(nbformat.read(tmp_path / kind / f"{IDS[0]}.ipynb", as_version=4))
    with pytest.raises(ValueError, match="kind must be"):
        editions.edition(CHAPTERS[0], "teacher")


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_student_edition_is_the_built_chapter_then_its_exercise_section(md):
    """Why the student edition runs top to bottom without executing it again.

    Its code is the chapter's code up to the exercises (which the book build executed, one verdict
    per chapter in ``tests/test_execution.py``) followed by the exercise section, which
    ``test_student_exercise_sections_of_every_chapter_run_and_say_not_attempted`` runs on its own. The
    section reads no name before it binds it, other than builtins (that standalone run would fail
    otherwise), and the body binds none of those: so the body cannot change what the section does.
    """
    from test_colab import _tree, bindings

    student = editions.edition(md, "student")
    code = [c for c in student.cells if c.cell_type == "code"]
    section = _exercise_cells(student)
    body = code[: len(code) - len(section)]
    assert code[len(body):] == section, f"{md.name}: code cells after the exercise section"
    built = [c.source.strip() for c in jupytext.read(md).cells if c.cell_type == "code"]
    assert [c.source.strip() for c in body] == built[: len(body)], f"{md.name}: the body differs from the chapter"
    body_binds = set().union(*(bindings(_tree(c.source))[0] for c in body))
    # names read in the section and bound nowhere in it (function bodies look names up late)
    binds, frees = zip(*(bindings(_tree(c.source)) for c in section))
    reads_first = set().union(*frees) - set().union(*binds)
    assert not reads_first & body_binds, f"{md.name}: the exercises read names of the body: {reads_first & body_binds}"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_instructor_edition_runs_the_code_the_book_build_executed(md):
    """The instructor edition's code cells are the chapter's own, in order, so the book build (one
    execution per chapter, ``tests/test_execution.py``), where every solution cell asserts its check's
    ``.full_marks``, runs exactly this code; executing the edition again would only repeat it."""
    chapter = [c.source.strip() for c in jupytext.read(md).cells if c.cell_type == "code"]
    teacher = editions.edition(md, "instructor")
    assert [c.source.strip() for c in teacher.cells if c.cell_type == "code"] == chapter
    solutions = "\n".join(c.source for c in teacher.cells if c.cell_type == "code")
    assert solutions.count(".full_marks") >= sum(len(e.checks) for e in editions.exercises(md))
