"""Write each chapter's ``.ipynb`` twin from its MyST ``.md`` source (outputs stripped).

Colab opens the ``.ipynb``; the ``.md`` is the source we edit and review. ``tests/test_book.py``
checks that the two agree, so run ``make notebooks`` after editing a chapter.
Usage: ``python scripts/sync_notebooks.py [--check] [book/NN_name.md ...]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]


def chapter_sources() -> list[Path]:
    """The MyST notebook sources: ``book/*.md`` files that carry a jupytext header."""
    return sorted(p for p in (ROOT / "book").glob("*.md") if p.read_text().startswith("---\njupytext:"))


def render(md: Path) -> str:
    nb = jupytext.read(md)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:03d}"  # deterministic ids, so re-rendering an unchanged chapter changes nothing
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("jupytext", None)
    nb.metadata["colab"] = {"provenance": []}
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    return jupytext.writes(nb, fmt="ipynb")


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a).resolve() for a in argv if a != "--check"] or chapter_sources()
    stale = []
    for md in paths:
        target = md.with_suffix(".ipynb")
        text = render(md)
        if target.exists() and target.read_text() == text:
            continue
        if check:
            stale.append(target.relative_to(ROOT))
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("out of date (run `make notebooks`): " + ", ".join(map(str, stale)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
