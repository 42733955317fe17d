"""The self-check quizzes in the built book: on every chapter page of ``_toc.yml`` the quiz is there,
loads nothing from another host, and answers a click with feedback, with no kernel."""

from __future__ import annotations

import pytest
from test_site import CHROMIUM_FLAGS, HTML, _chromium, _wait_for_mathjax, build_log, site  # noqa: F401  (fixtures)

from ncbook.course import editions

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHAPTERS = editions.chapter_paths()


@pytest.fixture(scope="module")
def quiz_browser(site):  # noqa: F811
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_quiz_answers_in_the_static_page(quiz_browser, site, md):  # noqa: F811
    page = quiz_browser.new_page()
    remote = []
    local = (site, f"blob:{site}", "data:")  # blob: and data: URLs made by the page's own scripts
    page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(local) else None)
    page.goto(f"{site}/book/{md.stem}.html", wait_until="load")
    root = page.locator(f"#ncb-quiz-ch{md.stem[:2]}")
    assert root.count() == 1, "the quiz is not in the page"
    source = (HTML / "book" / f"{md.stem}.html").read_text()
    if "\\(" in source.split(f'id="ncb-quiz-ch{md.stem[:2]}"', 1)[1].split("<script>", 1)[0]:
        _wait_for_mathjax(page)
        assert root.locator("mjx-container").count() > 0, "the quiz's math was not typeset"
    q = root.locator(".ncb-q[data-kind='choice']").first
    right = q.get_attribute("data-answer")
    wrong = next(b for b in q.locator(".ncb-choice").all() if b.get_attribute("data-i") != right)
    wrong.click()
    assert q.locator(".ncb-feedback").inner_text() == "Not quite; try again."
    q.locator(f".ncb-choice[data-i='{right}']").click()
    assert q.locator(".ncb-feedback").inner_text() == "Correct."
    assert q.locator(".ncb-explain").is_visible()
    num = root.locator(".ncb-q[data-kind='numeric']").first
    num.locator(".ncb-input").fill(num.get_attribute("data-answer"))
    num.locator(".ncb-submit").click()
    assert num.locator(".ncb-feedback").inner_text() == "Correct."
    assert not remote, f"the page loaded from other hosts: {remote[:5]}"
    assert "jupyterquiz" not in source
    page.close()
