"""Facts for the instructor's guide, computed from the chapter sources (so the guide cannot drift).

:func:`chapter_table` lists, per chapter of ``_toc.yml``, its prerequisites (the chapters its
**What you'll need** section links to), its exercises by kind, their estimated minutes, a reading
estimate, and whether it mentions a GPU. :func:`assignment_table` lists the coding exercises with
their checks. Introduced in: the instructor's guide.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .checks import CHECKS
from .editions import chapter_paths, exercises

__all__ = ["WORDS_PER_MINUTE", "chapter_table", "assignment_table"]

WORDS_PER_MINUTE = 100  # a slow reading speed: the chapters are dense with math and code


def _title(md: Path) -> str:
    return next(ln[2:].strip() for ln in md.read_text().splitlines() if ln.startswith("# "))


def _needs(text: str) -> list[str]:
    block = text.split("**What you'll need**", 1)[1].split("\n## ", 1)[0] if "**What you'll need**" in text else ""
    return sorted(set(re.findall(r"\{doc\}`(\d\d)_\w+`", block)))


def _reading_minutes(text: str) -> int:
    body = text.split("## Exercises", 1)[0]
    prose = re.sub(r"```\{code-cell\}.*?```", " ", body, flags=re.S)  # code is run, not read word by word
    words = len(re.findall(r"[A-Za-z]+", prose))
    return 5 * math.ceil(words / WORDS_PER_MINUTE / 5)


def chapter_table(root: Path | None = None):
    """One row per chapter: prerequisites, exercises by kind, minutes, GPU mention (a DataFrame)."""
    import pandas as pd

    rows = []
    for md in chapter_paths(root):
        text, exs = md.read_text(), exercises(md)
        rows.append({
            "chapter": md.stem[:2], "title": _title(md), "needs chapters": ", ".join(_needs(text)) or "-",
            "exercises": len(exs), "coding": sum(e.kind == "Coding" for e in exs),
            "proof": sum(e.kind == "Proof" for e in exs), "experiment": sum(e.kind == "Experiment" for e in exs),
            "reading (min)": _reading_minutes(text), "exercises (min)": sum(e.minutes for e in exs),
            "mentions a GPU": bool(re.search(r"\bGPU\b", text)),
        })
    return pd.DataFrame(rows)


def assignment_table(root: Path | None = None):
    """One row per coding exercise: chapter, label, difficulty, minutes, the function to write, its check."""
    import pandas as pd

    rows = []
    for md in chapter_paths(root):
        for e in exercises(md):
            for c in e.checks:
                rows.append({"chapter": md.stem[:2], "exercise": e.label, "difficulty": e.difficulty,
                             "minutes": e.minutes, "learner writes": CHECKS[c].signature,
                             "check": f"course.{c}({CHECKS[c].answer})"})
    return pd.DataFrame(rows)
