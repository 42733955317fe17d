r"""Student and instructor editions of the chapters, generated from the MyST sources.

One source of truth: the chapter ``book/NN_*.md``. Conventions inside its ``## Exercises`` section
(they are tested for every chapter listed in ``_toc.yml``):

- every exercise is a sphinx-exercise gated block, ``exercise-start`` ... ``exercise-end``, whose
  first paragraph is the label line ``**Coding** · medium · about 20 min`` (kind: Coding, Proof or
  Experiment; difficulty: easy, medium or hard; minutes);
- a hint is a ``{hint}`` admonition with ``:class: dropdown`` inside the exercise block, so a
  learner opens it separately from the solution;
- a coding exercise has an answer cell tagged ``answer-stub`` (a function whose body raises
  ``NotImplementedError``) and a cell tagged ``check`` that calls ``course.check_...`` on it;
- the solution is a gated block ``solution-start`` ... ``solution-end``; its code cells run at build,
  and for a coding exercise the first solution cell redefines the answer function and asserts
  ``.full_marks`` of the same check.

The **student edition** drops every solution block (its prose and its code cells) and keeps the
stubs, the hints and the checks, so it runs top to bottom with every check answering "not
attempted yet". The **instructor edition** keeps the solutions. Both turn the sphinx-exercise and
hint directives into plain Markdown (a heading, ``<details>``), which Jupyter and Colab render.

Introduced in: the instructor's guide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ExerciseInfo", "repo_root", "chapter_paths", "exercises", "edition", "write_edition",
           "LABEL_RE", "KINDS", "DIFFICULTIES"]

KINDS = ("Coding", "Proof", "Experiment")
DIFFICULTIES = ("easy", "medium", "hard")
LABEL_RE = re.compile(r"^\*\*(Coding|Proof|Experiment)\*\* · (easy|medium|hard) · about (\d+) min$")
_EX_START = re.compile(r"^```\{exercise-start\}\s*$")
_SOL_START = re.compile(r"^```\{solution-start\}\s*(\S+)\s*$")
_END = re.compile(r"^```\{(exercise|solution)-end\}\s*$")
_HINT = re.compile(r"^```\{hint\}\s*$")


def repo_root() -> Path:
    """Return the checkout that holds ``_toc.yml`` (this package sits in ``<root>/ncbook/course``)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "_toc.yml").exists():
        raise FileNotFoundError(f"no _toc.yml in {root}: the editions are built from a checkout of the course")
    return root


def chapter_paths(root: Path | None = None) -> list[Path]:
    """Return the numbered chapters ``book/NN_*.md`` in the order of ``_toc.yml``."""
    import yaml

    root = Path(root) if root else repo_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [root / f"{f}.md" for f in files if re.match(r"book/\d\d_", f)]


@dataclass(frozen=True)
class ExerciseInfo:
    """One exercise as the chapter source declares it."""

    chapter: str  # file stem, e.g. "03_rgd_by_hand"
    label: str
    kind: str
    difficulty: str
    minutes: int
    has_hint: bool
    has_solution: bool
    checks: tuple  # names of course.check_* called in the exercise's check cells


def _exercise_section(cells):
    """Index range of the cells from '## Exercises' up to (not including) the quiz/further reading."""
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    return start


def exercises(md: Path) -> list[ExerciseInfo]:
    """Parse the exercises of a chapter source; raise ValueError when one breaks the conventions."""
    import jupytext

    md = Path(md)
    nb = jupytext.read(md)
    out, cur, in_sol = [], None, False
    for cell in nb.cells[_exercise_section(nb.cells):]:
        if cell.cell_type == "code":
            tags = cell.metadata.get("tags", [])
            if cur is not None and "check" in tags:
                cur["checks"] += re.findall(r"course\.(check_\w+)\(", cell.source)
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if _EX_START.match(line):
                label = lines[i + 1].split(":label:")[-1].strip() if i + 1 < len(lines) else ""
                after = [ln for ln in lines[i + 2:] if ln.strip() and ln.strip() != "```"]
                m = LABEL_RE.match(after[0]) if after else None
                if not m:
                    raise ValueError(f"{md.name}: exercise {label!r} must start with a line like "
                                     f"'**Coding** · medium · about 20 min', got {after[:1]}")
                cur = {"label": label, "kind": m[1], "difficulty": m[2], "minutes": int(m[3]),
                       "has_hint": False, "has_solution": False, "checks": []}
                out.append(cur)
            elif _HINT.match(line) and cur is not None and not in_sol:
                cur["has_hint"] = cur["has_hint"] or (i + 1 < len(lines) and ":class: dropdown" in lines[i + 1])
            elif _SOL_START.match(line):
                in_sol = True
                if cur is None or _SOL_START.match(line)[1] != cur["label"]:
                    raise ValueError(f"{md.name}: solution {line!r} does not follow its exercise")
                cur["has_solution"] = True
            elif _END.match(line) and "solution" in line:
                in_sol = False
    return [ExerciseInfo(md.stem, **{**e, "checks": tuple(e["checks"])}) for e in out]


# ---------------------------------------------------------------------------------------------
# editions

_DIRECTIVE = re.compile(r"^```\{(prf:\w+|admonition|note|warning|tip|important)\}\s*(.*)$")
_ROLE = re.compile(r"\{(?:prf:ref|ref|doc|numref|py:func|cite|cite:p|cite:t)\}`([^`]+)`")


def _plain_roles(line: str) -> str:
    """MyST roles that Jupyter does not render become their target in italics, e.g. *def-02-exp*."""
    return _ROLE.sub(lambda m: f"*{m[1].split('<')[-1].rstrip('>')}*", line)


def _rewrite_markdown(text: str, state: dict, keep_solutions: bool) -> str:
    """Drop (student) or relabel (instructor) solution blocks; turn directives into plain Markdown."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        m = _DIRECTIVE.match(line)
        if m and not (state["in_solution"] and not keep_solutions):
            name = m[1].split(":")[-1].capitalize()
            arg = m[2].strip()
            title = arg if m[1] == "admonition" else (f"{name} ({arg})" if arg else name)
            out.append(f"**{_plain_roles(title)}.**")
            i += 1
            while i < len(lines) and lines[i].startswith(":"):
                i += 1  # directive options (:label:, :class:)
            state.setdefault("open", []).append("directive")
            continue
        if line.strip() == "```" and state.get("open"):
            state["open"].pop()  # the end of a directive turned into plain text
            i += 1
            continue
        dropping = state["in_solution"] and not keep_solutions
        if line.startswith("```") and line.strip() != "```" and not line.startswith("```{") and not dropping:
            state.setdefault("open", []).append("code")  # a fenced code block inside a directive: keep it
            out.append(line)
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                out.append(lines[i])
                i += 1
            out.append("```")
            state["open"].pop()
            i += 1
            continue
        line = _plain_roles(line)
        if _SOL_START.match(line):
            state["in_solution"] = True
            i += 1
            while i < len(lines) and lines[i].startswith(":"):
                i += 1  # directive options
            i += 1  # the closing fence
            if keep_solutions:
                out.append("**Solution.**")
            continue
        if _END.match(line):
            if "solution" in line:
                state["in_solution"] = False
            i += 2  # the directive and its closing fence
            continue
        if state["in_solution"] and not keep_solutions:
            i += 1
            continue
        if _EX_START.match(line):
            state["n"] += 1
            label = lines[i + 1].split(":label:")[-1].strip()
            out.append(f"### Exercise {state['chapter']}.{state['n']} (`{label}`)")
            i += 3
            continue
        if _HINT.match(line):
            j = i + 1
            while j < len(lines) and lines[j].startswith(":"):
                j += 1
            k = j
            while k < len(lines) and lines[k].strip() != "```":
                k += 1
            body = [_plain_roles(ln) for ln in lines[j:k]]
            out += ["<details><summary>Hint</summary>", ""] + body + ["", "</details>"]
            i = k + 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip("\n")


def edition(md: Path, kind: str):
    """Return the chapter ``md`` as an nbformat notebook of the given ``kind`` ("student" or "instructor")."""
    import jupytext
    import nbformat

    if kind not in ("student", "instructor"):
        raise ValueError(f"kind must be 'student' or 'instructor', got {kind!r}")
    md = Path(md)
    nb = jupytext.read(md)
    keep = kind == "instructor"
    state = {"in_solution": False, "n": 0, "chapter": md.stem[:2].lstrip("0") or "0"}
    cells = [nbformat.v4.new_markdown_cell(
        f"*{kind.capitalize()} edition of `book/{md.name}`, generated by "
        f"`python -m ncbook.course {kind}-edition`; edit the chapter source, not this file.*")]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = _rewrite_markdown(cell.source, state, keep)
            if text.strip():
                cells.append(nbformat.v4.new_markdown_cell(text))
        elif not state["in_solution"] or keep:
            new = nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))
            cells.append(new)
    out = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for i, c in enumerate(out.cells):
        c.id = f"{kind}-{i:03d}"
    return out


def write_edition(outdir, kind: str, root: Path | None = None) -> list[Path]:
    """Write every chapter of ``_toc.yml`` as ``OUTDIR/NN_name.ipynb``; return the paths written."""
    import nbformat

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for md in chapter_paths(root):
        target = outdir / f"{md.stem}.ipynb"
        nbformat.write(edition(md, kind), target)
        written.append(target)
    return written
