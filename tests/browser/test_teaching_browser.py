"""The teacher's tools in Chromium: the QR code a page shows, the projector view, and a reveal.

- The Teach page's QR code is read back by a QR decoder (zxing-cpp) from the PNG the browser
  received, and must be exactly the link the page prints.
- The projector view of lesson (b) at 1280x720 and 1920x1080: the sidebar folded, no control of the
  page in sight, the figures' text at projector sizes.  With ``SAE_DOCS_SCREENSHOTS=<folder>`` the
  screenshots (and the teacher's desk) are also written there: docs/projector-*.png, docs/teacher-view.png.
- A class: the teacher's desk in one browser, a student in another; the student guesses, the desk
  counts it, the teacher reveals, and the student's page shows the answer without a reload.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import wait_for_app

zxingcpp = pytest.importorskip("zxingcpp")  # requirements-dev.txt
SIZES = ((1280, 720), (1920, 1080))


def shot(page, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    folder = os.environ.get("SAE_DOCS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(path.read_bytes())
    return path


def open_page(page, url: str) -> None:
    page.goto(url)
    wait_for_app(page)
    page.wait_for_timeout(1500)  # Plotly draws after the script has finished
    wait_for_app(page)


def test_the_qr_code_on_the_teach_page_reads_back_as_the_link_it_prints(app_page, app_url):
    open_page(app_page, f"{app_url}/teach")
    printed = app_page.locator("[data-testid=stCode] code").first.inner_text().strip()
    assert printed.startswith(app_url)
    src = app_page.locator("[data-testid=stImage] img").first.get_attribute("src")
    data = app_page.request.get(src if src.startswith("http") else app_url + src).body()  # the PNG the browser shows
    decoded = [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]
    assert decoded == [printed]


@pytest.mark.parametrize("width,height", SIZES)
def test_the_projector_view_shows_the_figures_large_and_nothing_else(browser, app_url, tmp_path, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(60_000)
    open_page(page, app_url)
    open_page(page, f"{app_url}/explore?lesson=2-time-steps&lesson_step=1&projector=1")
    expect(page.locator("[data-testid=stSidebar]")).to_have_attribute("data-collapsed", "true")
    expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible()
    for hidden in ("stNumberInput", "stButtonGroup", "stSlider"):  # the page's controls are not in sight
        assert not [e for e in page.locator(f".stMain [data-testid={hidden}]").all() if e.is_visible()], hidden
    title = page.locator("[data-testid=stPlotlyChart] .gtitle").first
    assert float(re.match(r"[\d.]+", title.evaluate("e => getComputedStyle(e).fontSize"))[0]) >= 20
    path = shot(page, f"projector-{width}.png", tmp_path)
    assert Image.open(path).size == (width, height)
    page.close()


def test_a_student_guesses_the_desk_counts_and_the_reveal_reaches_the_student(browser, app_url, tmp_path):
    teacher = browser.new_page(viewport={"width": 1280, "height": 900})
    teacher.set_default_timeout(60_000)
    open_page(teacher, f"{app_url}/teach")
    teacher.get_by_role("tab", name="Live class").click()
    wait_for_app(teacher)
    teacher.get_by_role("button", name="Start a class").click()
    code = teacher.locator("[data-testid=stMetric]", has_text="Join code").locator("[data-testid=stMetricValue]")
    expect(code).to_have_text(re.compile(r"^[A-Z0-9]{6}$"))
    join_code = code.inner_text()
    for step in (2, 3):  # lesson (a), step 3: how many latent neurons still fire at thresh 2?
        teacher.get_by_role("button", name="Next step").click()
        expect(teacher.get_by_text(f"step {step} of 7", exact=False).first).to_be_visible()

    student = browser.new_page(viewport={"width": 1280, "height": 900})
    student.set_default_timeout(60_000)
    open_page(student, f"{app_url}/join?join={join_code}")
    nickname = student.get_by_role("textbox", name="Nickname")
    nickname.fill("ada")
    nickname.press("Enter")
    wait_for_app(student)
    student.get_by_role("button", name="Join").click()
    wait_for_app(student)
    guess = student.get_by_role("spinbutton", name=re.compile("Your guess"))
    guess.fill("0")
    guess.press("Enter")
    wait_for_app(student)
    student.get_by_role("button", name="Send my guess").click()
    expect(student.get_by_text("Waiting for your teacher to show the answer")).to_be_visible()

    answered = teacher.locator("[data-testid=stMetric]", has_text="Answered").locator("[data-testid=stMetricValue]")
    expect(answered).to_have_text("1 of 1", timeout=30_000)
    teacher.get_by_text("Projector view").first.click()  # the desk, as the class sees it
    wait_for_app(teacher)
    teacher.wait_for_timeout(2500)
    expect(teacher.get_by_role("button", name="Reveal the answer")).to_be_visible()  # the desk keeps its buttons
    shot(teacher, "teacher-view.png", tmp_path)
    teacher.get_by_role("button", name="Reveal the answer").click()
    expect(student.get_by_text("Right!")).to_be_visible(timeout=30_000)  # the student's page polled, no reload
    expect(student.locator("[data-testid=stException]")).to_have_count(0)
    expect(teacher.locator("[data-testid=stException]")).to_have_count(0)
    teacher.close()
    student.close()
