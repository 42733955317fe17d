"""Tests of ``ncbook.course.guide``: the instructor's guide tables agree with the chapter sources."""

from __future__ import annotations

from test_book import toc_files

from ncbook.course import checks, editions, guide


def test_chapter_table_counts_the_exercises_of_every_toc_chapter():
    table = guide.chapter_table()
    paths = editions.chapter_paths()
    assert table["chapter"].tolist() == [p.stem[:2] for p in paths]
    for (_, row), md in zip(table.iterrows(), paths):
        exs = editions.exercises(md)
        assert row["exercises"] == len(exs) == row["coding"] + row["proof"] + row["experiment"]
        assert row["exercises (min)"] == sum(e.minutes for e in exs)
        assert row["reading (min)"] % 5 == 0 and row["reading (min)"] >= 5
    assert table.loc[table.chapter == "05", "needs chapters"].item() == "01, 02, 03, 04"


def test_assignment_table_lists_every_check_once():
    table = guide.assignment_table()
    assert sorted(c.split("(")[0].removeprefix("course.") for c in table["check"]) == sorted(checks.CHECKS)


def test_the_guide_is_in_the_book():
    assert "book/instructor_guide" in toc_files()
