"""The Compare page in a real browser: a small sweep from a link draws its grid, and the link
the page writes back reproduces the same numbers in a fresh tab.

The server runs on a checkpoint written here (so the test needs no shipped weights);
the fixtures of conftest.py start Chromium and wait for the app.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import torch
from conftest import running_app, wait_for_app

from sae.io.checkpoints import save_checkpoint
from sae.model import SpikingAutoencoder

MODEL = "browser_compare_model"
SWEEP = "c_view=Sweep+grid&c_n=16&c_grid_thresh=0.5&c_grid_thresh=2&c_grid_steps=1&c_grid_steps=3"


@pytest.fixture(scope="module")
def compare_url(tmp_path_factory):
    """The app on its own port, with one small checkpoint in the user folder, chosen by the link."""
    user_dir = tmp_path_factory.mktemp("compare_user")
    torch.manual_seed(0)
    model = SpikingAutoencoder()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # untrained weights barely fire; these fire everywhere
    save_checkpoint(user_dir / f"{MODEL}.pt", model)
    with running_app(user_dir, tmp_path_factory.mktemp("compare_server") / "streamlit.log") as url:
        yield f"{url}/compare?ckpt={MODEL}&{SWEEP}"


# A chart's title as plain text (Streamlit's theme wraps titles in <b> tags).
TITLE_JS = "(p) => String((p.layout && p.layout.title && p.layout.title.text) || '').replace(/<[^>]*>/g, '')"


def chart_data(page, title: str):
    """The data of the Plotly chart whose title starts with ``title``, read from the browser."""
    return page.evaluate(
        """(title) => {
            const titleOf = """
        + TITLE_JS
        + """;
            for (const plot of document.querySelectorAll('.js-plotly-plot')) {
                if (titleOf(plot).startsWith(title)) {
                    return plot._fullData.map(trace => ({z: trace.z ? Array.from(trace.z, row => Array.from(row)) : null,
                                                    y: trace.y ? Array.from(trace.y) : null}));
                }
            }
            return null;
        }""",
        title,
    )


def open_sweep(page, url: str) -> None:
    page.set_default_timeout(120_000)
    page.goto(url)
    wait_for_app(page, timeout=120_000)
    page.locator(".gtitle", has_text="Test MSE over 16 digits").wait_for()


def test_small_sweep_draws_its_grid_and_its_link_reproduces_it(page, browser, compare_url):
    open_sweep(page, compare_url)
    grid = page.locator(".js-plotly-plot", has=page.locator(".gtitle", has_text="Reconstruction of digit 1"))
    grid.wait_for()
    ticks = grid.locator(".ytick text, .xtick text").evaluate_all("els => els.map(e => e.textContent)")
    assert {"thresh 0.5", "thresh 2", "steps 1", "steps 3"} <= set(ticks), ticks
    heat = chart_data(page, "Test MSE over 16 digits")
    assert heat is not None and len(heat[0]["z"]) == 2 and len(heat[0]["z"][0]) == 2
    assert page.get_by_text("What to look for:").first.is_visible(), "charts come with a teaching note"

    # Add num_steps 8 in the real multiselect: the sweep reruns and the URL records it.
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="num_steps")
    box.locator("input").click()
    page.keyboard.type("8")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.wait_for_function("() => new URL(location.href).searchParams.getAll('c_grid_steps').includes('8')")
    wait_for_app(page, timeout=120_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (" + TITLE_JS + ")(p)"
        ".startsWith('Test MSE over') && p._fullData[0].z[0].length === 3)"
    )
    wider = chart_data(page, "Test MSE over 16 digits")
    shared = page.url
    assert sorted(parse_qs(urlparse(shared).query)["c_grid_steps"], key=int) == ["1", "3", "8"]

    # The shared link, opened in a new browser context (a new session), shows the same numbers.
    other = browser.new_context().new_page()
    try:
        open_sweep(other, shared)
        assert chart_data(other, "Test MSE over 16 digits") == wider
    finally:
        other.context.close()
