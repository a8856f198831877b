"""The Train page in a real browser: a short run whose charts update by themselves, Stop, Save.

The run is made short (a few thousand images, small batches, a small held-out
set) so the loss chart gets new points every second or so even on a busy 2-core
machine.  The test only reads the page while it waits for updates: no click, no
key press, so any update it sees came from the page's own polling.

``SAE_BROWSER_ONE_MINUTE=1`` also runs the "One minute" preset as it ships and
checks the tutorial's result (test MSE <= 0.05 on all 10,000 test images); it
takes about 80 seconds, so it is opt-in.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sae.io.checkpoints import load_checkpoint
from tests.browser.conftest import saved_file, wait_for_app

VIEWPORT = {"width": 1400, "height": 1000}
# Plotly's decoded copy of the data: the figure sends numpy arrays as base64 typed arrays.
BATCH_POINTS = "gd => ((gd._fullData || []).find(t => t.name === 'batch loss') || {x: []}).x.length"


def open_train(page: Page, app_url: str) -> None:
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{app_url}/train")
    page.get_by_text("Train a spiking autoencoder").wait_for()
    wait_for_app(page)


def set_number(page: Page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    expect(field).to_have_value(str(value))
    wait_for_app(page)


def click(page: Page, key: str) -> None:
    """Click the button with widget key ``key`` (a button with help text is drawn twice, once hidden)."""
    page.locator(f".st-key-{key}").get_by_role("button").click()


def batch_points(page: Page) -> int:
    chart = page.locator(".st-key-train_loss_chart .js-plotly-plot")  # two for a moment while a run starts
    return chart.last.evaluate(BATCH_POINTS) if chart.count() else 0


def watch_updates(page: Page, wanted: int, timeout: float) -> list[tuple[float, int]]:
    """(time, points) each time the loss chart grew, until it grew ``wanted`` times; reads only."""
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while len(seen) <= wanted and time.monotonic() < deadline:
        points = batch_points(page)
        if points and (not seen or points > seen[-1][1]):
            seen.append((time.monotonic(), points))
        page.wait_for_timeout(100)
    return seen


def save_as(page: Page, name: str, user_dir: Path) -> Path:
    """Save the run under ``name``; the file, found in the student's own folder under ``user_dir``."""
    name_field = page.get_by_label("Name", exact=True)
    name_field.fill(name)
    click(page, "tr_save")
    saved = page.get_by_text(f"Saved as {name}")
    saved.wait_for(timeout=180_000)  # the worker's test MSE on 10,000 images may still be coming on a busy CPU
    assert f"{name}.pt" in saved.inner_text()
    return saved_file(user_dir, name)


def start_short_run(page: Page) -> None:
    """A few thousand images in small batches: new loss points every second or so."""
    for label, value in (
        ("Training images", 3000),
        ("Batch size", 16),
        ("Held-out test images", 100),
        ("Epochs", 20),
        ("Time limit (seconds, 0: none)", 300),
    ):
        set_number(page, label, value)
    click(page, "tr_start")
    page.locator(".st-key-train_loss_chart .js-plotly-plot").last.wait_for(timeout=60_000)


def test_a_short_run_updates_by_itself_stops_and_saves(page: Page, app_server, record_property):
    app_url = app_server.url
    open_train(page, app_url)
    start_short_run(page)

    updates = watch_updates(page, wanted=4, timeout=120)
    assert len(updates) >= 3, f"the loss chart grew {len(updates) - 1} times without a click: {updates}"
    gaps = [round(b[0] - a[0], 2) for a, b in zip(updates, updates[1:])]
    print(f"\nloss chart updates (s apart): {gaps}; points: {[p for _, p in updates]}")
    expect(page.get_by_text(re.compile(r"\d+ images/s"))).to_be_visible()

    click(page, "tr_stop")
    asked = time.monotonic()
    page.get_by_text("Stopped. The model keeps").wait_for(timeout=30_000)  # a bound on a hang, not a speed target
    shown_after = time.monotonic() - asked
    # Recorded, not asserted: on a shared machine the clock measures the other tenants as much as the app.
    record_property("stop_shown_after_seconds", round(shown_after, 3))
    print(f"stop shown after {shown_after:.2f} s")
    page.locator(".st-key-tr_save").wait_for()
    wait_for_app(page)
    steps = int(re.search(r"(\d+) steps", page.get_by_text(re.compile(r"of training · \d+ steps")).inner_text()).group(1))
    assert watch_updates(page, wanted=0, timeout=10)[-1][1] == steps  # the results view draws every step
    page.wait_for_timeout(2500)
    assert batch_points(page) == steps, "the chart still grows after Stop"

    path = save_as(page, "browser_run", app_server.user_dir)
    assert path.name == "browser_run.pt" and load_checkpoint(path).metrics["test_images"] == 10_000
    click(page, "tr_open_explore")
    page.get_by_text("Explore the spiking autoencoder").wait_for()
    expect(page.locator("[data-testid=stSidebar]").get_by_role("combobox", name="Checkpoint")).to_have_value("browser_run")


@pytest.mark.skipif(os.environ.get("SAE_BROWSER_ONE_MINUTE") != "1", reason="opt-in: set SAE_BROWSER_ONE_MINUTE=1 (about 80 s)")
def test_the_one_minute_preset_reaches_the_tutorial_result(page: Page, app_server):
    app_url = app_server.url
    open_train(page, app_url)
    click(page, "tr_start")
    updates = watch_updates(page, wanted=10_000, timeout=75)
    gaps = [b[0] - a[0] for a, b in zip(updates, updates[1:])]
    print(f"\nloss chart grew {len(gaps)} times, median {sorted(gaps)[len(gaps) // 2]:.2f} s apart")
    page.get_by_text("Finished: the time limit was reached.").wait_for(timeout=120_000)
    metrics = load_checkpoint(save_as(page, "one_minute", app_server.user_dir)).metrics
    print(
        f"One minute preset: test MSE {metrics['test_mse']:.4f} on {metrics['test_images']} images, "
        f"{metrics['steps']} steps, {metrics['images_seen']} images in {metrics['train_seconds']:.1f} s"
    )
    assert metrics["test_mse"] <= 0.05


def test_two_sessions_train_and_explore_at_once_without_touching_each_other(browser, app_url: str):
    """One tab trains while another explores: the explorer's numbers stay what they were alone."""
    from tests.browser.test_explore_browser import open_explore, thresh_slider

    explorer = browser.new_context().new_page()
    trainer = browser.new_context().new_page()
    metric = explorer.locator("[data-testid=stMetric]").filter(has_text="Reconstruction MSE")

    open_explore(explorer, app_url, "?source=MNIST&index=7")
    alone = metric.inner_text()
    open_train(trainer, app_url)
    start_short_run(trainer)
    assert len(watch_updates(trainer, wanted=2, timeout=90)) >= 2

    slider = thresh_slider(explorer)  # a rerun in the explorer while the other session trains
    value = float(slider.get_attribute("value"))
    for key, shown in (("ArrowRight", value + 0.05), ("ArrowLeft", value)):
        slider.focus()
        slider.press(key)
        explorer.get_by_text(f"θ = {round(shown, 2):g}:").wait_for()
        wait_for_app(explorer)
    assert metric.inner_text() == alone
    assert len(watch_updates(trainer, wanted=1, timeout=30)) >= 2, "the training tab stopped updating"
    click(trainer, "tr_stop")
    trainer.get_by_text("Stopped. The model keeps").wait_for(timeout=30_000)
    explorer.context.close(), trainer.context.close()
