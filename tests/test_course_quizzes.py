"""Tests of ``ncbook.course.quiz``: questions are validated, the HTML is self-contained (nothing
loaded remotely), every chapter of ``_toc.yml`` ends with a quiz, and the quiz answers clicks in a
browser with no kernel (headless Chromium on a standalone page; the built book is tested in
``test_site.py``, with every chapter page)."""

from __future__ import annotations

import ast
import re
import shutil

import jupytext
import pytest

from ncbook import course
from ncbook.course import editions
from ncbook.course import quizzes as quiz

CHAPTERS = editions.chapter_paths()
QUESTIONS = [
    {"question": "Which is right?", "choices": ["this one", "not this one"], "answer": 0, "explain": "Because."},
    {"question": "Two plus two? $2+2$", "answer": 4.0, "tol": 0.01, "explain": "Arithmetic."},
]


@pytest.mark.parametrize("bad, match", [
    ([], "non-empty list"),
    ([{"question": "q", "explain": "e", "choices": ["a"], "answer": 0}], "at least two"),
    ([{"question": "q", "explain": "e", "choices": ["a", "b"], "answer": 2}], "index of a choice"),
    ([{"question": "q", "explain": "e", "answer": float("nan"), "tol": 0.1}], "finite number 'answer'"),
    ([{"question": "q", "explain": "e", "answer": 1.0, "tol": 0.0}], "'tol' must be > 0"),
    ([{"question": 3, "explain": "e", "answer": 1.0, "tol": 0.1}], "str 'question'"),
])
def test_bad_questions_are_rejected_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        quiz.quiz_html(bad, key="k")


def test_quiz_html_is_self_contained():
    html = quiz.quiz_html(QUESTIONS, key="t1")
    assert "http://" not in html and "https://" not in html and " src=" not in html and "@import" not in html
    assert html.count('class="ncb-q"') == 2 and "<script>" in html and 'id="ncb-quiz-t1"' in html
    assert "mathjax_process" in html and "\\(2+2\\)" in html  # Sphinx's MathJax typesets only such elements
    with pytest.raises(ValueError, match="key"):
        quiz.quiz_html(QUESTIONS, key="bad key")


def _quiz_cell(md):
    nb = jupytext.read(md)
    text = md.read_text()
    assert "## Self-check quiz" in text, f"{md.name} has no '## Self-check quiz' section"
    assert text.index("## Self-check quiz") < text.index("## Further reading")
    assert text.index("## Exercises") < text.index("## Self-check quiz")
    cells = [c for c in nb.cells if c.cell_type == "code" and "course.quiz(" in c.source]
    assert len(cells) == 1, f"{md.name}: one quiz cell expected"
    return cells[0]


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_ends_with_a_quiz(md):
    cell = _quiz_cell(md)
    assert "remove-input" in cell.metadata.get("tags", [])
    ns = {"course": course}
    tree = ast.parse(cell.source)
    last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, md.name, "exec"), ns)  # noqa: S102 (the chapter's own cell)
    shown = eval(compile(last, md.name, "eval"), ns)  # noqa: S307
    html = shown.data
    assert html.count('class="ncb-q"') >= 3
    assert f'id="ncb-quiz-ch{md.stem[:2]}"' in html
    for v in re.findall(r'data-answer="([^"]+)"', html):
        assert float(v) == float(v)  # finite numbers, computed by the cell


@pytest.fixture(scope="module")
def chromium_page():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("Chromium not found: install it (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    from test_site import CHROMIUM_FLAGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield b.new_page()
        b.close()


@pytest.mark.browser
def test_quiz_answers_clicks_in_a_static_page(chromium_page, tmp_path):
    page_file = tmp_path / "quiz.html"
    page_file.write_text(f"<!doctype html><html><body>{quiz.quiz_html(QUESTIONS, key='t2')}</body></html>")
    requests = []
    page = chromium_page
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    q1, q2 = page.locator(".ncb-q").nth(0), page.locator(".ncb-q").nth(1)
    assert not q1.locator(".ncb-explain").is_visible()
    q1.locator(".ncb-choice").nth(1).click()
    assert q1.locator(".ncb-feedback").inner_text() == "Not quite; try again."
    q1.locator(".ncb-choice").nth(0).click()
    assert q1.locator(".ncb-feedback").inner_text() == "Correct."
    assert q1.locator(".ncb-explain").is_visible()
    q2.locator(".ncb-input").fill("5")
    q2.locator(".ncb-submit").click()
    assert q2.locator(".ncb-feedback").inner_text() == "Not quite; try again."
    q2.locator(".ncb-input").fill("4.001")
    q2.locator(".ncb-input").press("Enter")
    assert q2.locator(".ncb-feedback").inner_text() == "Correct."
    assert all(u.startswith("file://") for u in requests), requests
