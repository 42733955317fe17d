r"""Self-check quizzes that answer in a static HTML page, with no kernel and nothing loaded remotely.

:func:`quiz` returns an ``IPython.display.HTML`` object holding the questions, a small stylesheet
and an inline script, all self-contained: the built book page shows it, and so do Jupyter and
Colab. A question is a dict:

- multiple choice: ``{"question": str, "choices": [str, ...], "answer": int, "explain": str}``
  (``answer`` is the index of the right choice);
- numeric: ``{"question": str, "answer": float, "tol": float, "explain": str}``; the reader types a
  number, it is right when it lies within ``tol`` of ``answer`` (compute ``answer`` with ncbook in
  the cell, so the quiz can never disagree with the library).

Text may hold ``$...$`` math (written out as ``\\(...\\)``, which the page's MathJax typesets)
and backtick code spans.

Introduced in: the "Self-check quiz" section of every chapter.
"""

from __future__ import annotations

import html
import json
import math
import re

__all__ = ["quiz", "quiz_html", "validate_questions"]

_STYLE = """
.ncb-quiz{border:1px solid #c8d1dc;border-radius:6px;padding:.6em 1em;margin:1em 0}
.ncb-q{margin:.8em 0}.ncb-q-text{font-weight:600;margin-bottom:.3em}
.ncb-choice{display:block;margin:.25em 0;padding:.3em .7em;border:1px solid #9aa5b1;border-radius:4px;
background:#f7f9fb;cursor:pointer;text-align:left;width:100%}
.ncb-choice.ncb-right{background:#d9f2de;border-color:#2e7d32}.ncb-choice.ncb-wrong{background:#fbe0e0;border-color:#c62828}
.ncb-feedback{margin:.3em 0;font-style:italic}
.ncb-feedback.ncb-right{color:#2e7d32}.ncb-feedback.ncb-wrong{color:#c62828}
.ncb-input{padding:.2em .4em;width:10em}
"""

# Binds the buttons of one quiz (found by id), once; shows "Correct" / "Not quite" and the explanation.
_SCRIPT = """
(function(){
  var root = document.getElementById(%(id)s);
  if (!root || root.dataset.bound) return;
  root.dataset.bound = "1";
  function show(q, ok){
    var fb = q.querySelector(".ncb-feedback");
    fb.className = "ncb-feedback " + (ok ? "ncb-right" : "ncb-wrong");
    fb.textContent = ok ? "Correct." : "Not quite; try again.";
    if (ok) { q.querySelector(".ncb-explain").hidden = false; }
  }
  root.querySelectorAll(".ncb-q").forEach(function(q){
    var answer = q.dataset.answer;
    q.querySelectorAll(".ncb-choice").forEach(function(b){
      b.addEventListener("click", function(){
        var ok = b.dataset.i === answer;
        b.classList.add(ok ? "ncb-right" : "ncb-wrong");
        show(q, ok);
      });
    });
    var submit = q.querySelector(".ncb-submit");
    if (submit) {
      var input = q.querySelector(".ncb-input");
      var check = function(){
        var v = parseFloat(input.value.replace(",", "."));
        show(q, isFinite(v) && Math.abs(v - parseFloat(answer)) <= parseFloat(q.dataset.tol));
      };
      submit.addEventListener("click", check);
      input.addEventListener("keydown", function(e){ if (e.key === "Enter") check(); });
    }
  });
})();
"""


def _text(s: str) -> str:
    r"""Escape HTML, turn `code` spans into <code> and ``$math$`` into ``\(math\)``.

    ``\(...\)`` is what MathJax 3 (the book's) and Jupyter both typeset by default; ``$`` is not.
    """
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(s, quote=False))
    return re.sub(r"\$([^$]+)\$", lambda m: f"\\({m[1]}\\)", s)


def validate_questions(questions) -> list[dict]:
    """Check the question dicts (see the module docstring); raise ValueError naming what is wrong."""
    if not isinstance(questions, (list, tuple)) or not questions:
        raise ValueError("questions must be a non-empty list of dicts")
    out = []
    for i, q in enumerate(questions):
        if not isinstance(q, dict) or not isinstance(q.get("question"), str) or not isinstance(q.get("explain"), str):
            raise ValueError(f"question {i} must be a dict with str 'question' and 'explain'")
        if "choices" in q:
            ch = q["choices"]
            if not isinstance(ch, (list, tuple)) or len(ch) < 2 or not all(isinstance(c, str) for c in ch):
                raise ValueError(f"question {i}: 'choices' must be a list of at least two strings")
            a = q.get("answer")
            if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < len(ch):
                raise ValueError(f"question {i}: 'answer' must be the index of a choice (0..{len(ch) - 1}), got {a!r}")
        else:
            a, tol = q.get("answer"), q.get("tol")
            for name, v in (("answer", a), ("tol", tol)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ValueError(f"question {i}: numeric questions need a finite number {name!r}, got {v!r}")
            if tol <= 0:
                raise ValueError(f"question {i}: 'tol' must be > 0, got {tol!r}")
        out.append(q)
    return out


def quiz_html(questions, key: str) -> str:
    """Return the quiz as one self-contained HTML fragment (style, questions, inline script)."""
    questions = validate_questions(questions)
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", key):
        raise ValueError(f"key must be a non-empty str of letters, digits, '-' or '_', got {key!r}")
    qid = f"ncb-quiz-{key}"
    # mathjax_process: Sphinx's MathJax skips the page body except elements of this class.
    parts = [f'<div class="ncb-quiz mathjax_process" id="{qid}"><style>{_STYLE}</style>',
             "<p><strong>Self-check.</strong> Click an answer (or type a number and press Check); "
             "nothing is recorded.</p>"]
    for i, q in enumerate(questions, 1):
        if "choices" in q:
            attrs = f'data-kind="choice" data-answer="{q["answer"]}"'
            body = "".join(f'<button type="button" class="ncb-choice" data-i="{j}">{_text(c)}</button>'
                           for j, c in enumerate(q["choices"]))
        else:
            attrs = f'data-kind="numeric" data-answer="{float(q["answer"])!r}" data-tol="{float(q["tol"])!r}"'
            body = ('<input type="text" class="ncb-input" aria-label="your answer"> '
                    '<button type="button" class="ncb-submit">Check</button>')
        parts.append(f'<div class="ncb-q" {attrs}><div class="ncb-q-text">{i}. {_text(q["question"])}</div>{body}'
                     f'<p class="ncb-feedback" aria-live="polite"></p>'
                     f'<p class="ncb-explain" hidden>{_text(q["explain"])}</p></div>')
    parts.append(f"<script>{_SCRIPT % {'id': json.dumps(qid)}}</script></div>")
    return "".join(parts)


def quiz(questions, key: str):
    """Display-ready quiz: an ``IPython.display.HTML`` of :func:`quiz_html` (put it last in a cell)."""
    from IPython.display import HTML

    return HTML(quiz_html(questions, key))
