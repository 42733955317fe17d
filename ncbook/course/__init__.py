"""The teaching kit: self-grading checks, student/instructor editions, an otter-grader assignment, quizzes.

- :mod:`ncbook.course.checks`: ``check_rgrad(my_rgrad)`` and one check per coding exercise, returning
  a :class:`~ncbook.course.checks.CheckResult`; :func:`~ncbook.course.checks.report` collects them
  into a DataFrame.
- :mod:`ncbook.course.editions`: ``python -m ncbook.course student-edition OUTDIR`` (solutions
  removed) and ``instructor-edition OUTDIR``, generated from the chapter sources.
- :mod:`ncbook.course.otter`: ``python -m ncbook.course otter OUTDIR`` writes an ``otter assign``
  master notebook of the coding exercises.
- :mod:`ncbook.course.quizzes`: self-contained HTML+JS quizzes that answer in the static book.

A top-layer module: it imports the core (and ``models``), nothing in ``ncbook`` imports it.
Introduced in: the Exercises sections and the instructor's guide.
"""

from .checks import *  # noqa: F401,F403
from .checks import __all__ as _checks_all
from .quizzes import quiz, quiz_html

__all__ = list(_checks_all) + ["quiz", "quiz_html"]
