"""The network in the page, in a real browser: onnxruntime-web and plotly.js from static/vendor/,
the model's step graphs from static/models/.

The page's network is held to torch by the calibrated rule of benchmarks/browser_equivalence.py
(float64 truth, torch fp32's own spread, at least one flip per image allowed) on 10 MNIST test
digits at 4 settings; a slider drag redraws with no message to the server; the release writes
the value back into the link; a lab click is decoded in the page; a blocked model file falls
back to the server with one line.  Timings are the benchmark's job (benchmarks/in_page.py).
"""

from __future__ import annotations

import base64
import os

import numpy as np
import pytest
import torch
from playwright.sync_api import Page, expect

from benchmarks import browser_equivalence as eq
from explorer.in_page import vendored
from sae.analysis import latent
from sae.data.mnist import mnist_tensors
from sae.io.checkpoints import default_checkpoint_path, load_checkpoint
from tests.browser.conftest import wait_for_app

VIEWPORT = {"width": 1400, "height": 1600}
DIGITS = 10
READY = "n => window.saeInPage && window.saeInPage.{view} && window.saeInPage.{view}.frames > n"


@pytest.fixture(scope="module", autouse=True)
def vendor_files():
    if not vendored():
        message = "static/vendor/ is not installed (make vendor)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_checkpoint_path()).model.eval()


def open_in_page(page: Page, url: str, view: str = "explore") -> None:
    page.set_default_timeout(120_000)  # the first visit exports the model's graphs on a busy machine
    page.set_viewport_size(VIEWPORT)
    page.goto(url)
    page.wait_for_function(READY.format(view=view), arg=0)
    wait_for_app(page)


def frames(page: Page, view: str = "explore") -> int:
    return page.evaluate(f"() => window.saeInPage.{view}.frames")


def decoded(text: str, dtype, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(shape)


def page_run(page: Page, model, images: torch.Tensor, setting) -> eq.Run:
    """The page's network on ``images`` (window.saeInPage.explore.runBatch), as a Run."""
    thresh, beta, steps = setting
    payload = {"images": base64.b64encode(images.numpy().astype(np.float32).tobytes()).decode(), "batch": len(images)}
    out = page.evaluate("a => window.saeInPage.explore.runBatch(a)", {**payload, "thresh": thresh, "beta": beta, "steps": steps})
    shapes = eq.layer_shapes(model)
    spikes = {n: decoded(out["spikes"][n], np.uint8, (steps, len(images), *shapes[n])) for n in eq.SPIKING_LAYERS}
    outputs = decoded(out["outputs"], np.float32, (steps, len(images), *shapes["output"]))[:, :, 0].astype(np.float64)
    return eq.Run(spikes, outputs)


def test_the_pages_network_is_the_torch_model_within_the_calibrated_rule(page: Page, app_url, model):
    open_in_page(page, f"{app_url}/explore")
    images = mnist_tensors(train=False)[0][:DIGITS]
    for setting in eq.SETTINGS:
        truth = eq.torch_run(model, images, setting, dtype=torch.float64)
        limit = eq.allowed(eq.torch_spread(model, images, setting, truth), truth, images)
        found = eq.differences(page_run(page, model, images, setting), truth, images)
        assert eq.within_rule(found, limit) == [], (setting, found, limit)
        assert truth.spikes["latent"].mean() > 0.01  # spikes were compared, not silence


def test_dragging_thresh_redraws_in_the_page_with_no_message_to_the_server_and_the_release_sets_the_link(page: Page, app_url):
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)) if "_stcore/stream" in ws.url else None)
    open_in_page(page, f"{app_url}/explore?source=MNIST&index=3")
    titles = set()
    before, messages = frames(page), len(sent)
    for value in np.linspace(0.4, 2.0, 9):
        drawn = frames(page)
        page.evaluate(
            "v => { const s = document.querySelector('input[data-setting=thresh]'); s.value = v;"
            " s.dispatchEvent(new Event('input', {bubbles: true})); }",
            f"{value:.2f}",
        )
        page.wait_for_function(READY.format(view="explore"), arg=drawn)
        titles.add(page.evaluate("() => document.querySelector('[data-fig=playback]').layout.title.text"))
    assert frames(page) > before and len(titles) > 2  # redrawn with other reconstructions while dragging
    assert len(sent) == messages  # and the server heard nothing
    page.evaluate("() => document.querySelector('input[data-setting=thresh]').dispatchEvent(new Event('change', {bubbles: true}))")
    page.wait_for_function("() => location.search.includes('thresh=2')")
    wait_for_app(page)
    assert len(sent) > messages
    sidebar_thresh = page.locator("[data-testid=stSidebar] input[type=range][aria-label^=thresh]")
    assert float(sidebar_thresh.evaluate("s => s.value")) == pytest.approx(2.0)  # the sidebar follows
    # ... and the other way round: the sidebar's slider moves the page's.
    drawn = frames(page)
    sidebar_thresh.focus()
    sidebar_thresh.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('input[data-setting=thresh]').value === '2.05'")
    page.wait_for_function(READY.format(view="explore"), arg=drawn)


def test_a_lab_click_flips_a_spike_and_the_page_draws_its_own_decode(page: Page, app_url, model):
    open_in_page(page, f"{app_url}/lab?lab_a=5", view="lab")
    before = frames(page, "lab")
    cell = page.locator("[data-testid=in-page-lab] [data-grid] [data-n='2'][data-t='0']")  # neuron 2 at step 1
    was = cell.get_attribute("class")
    cell.click()
    page.wait_for_function(READY.format(view="lab"), arg=before)
    assert cell.get_attribute("class") != was and "spike you" in cell.get_attribute("title")  # shown as your edit
    shown = np.array(page.evaluate("() => document.querySelector('[data-fig=decoded]').data[2].z"), dtype=np.float32)
    config = model.config
    own = latent.encode_digit(model, mnist_tensors(train=False)[0][5:6], config.neuron_settings())
    flipped = latent.flip(own.code, 2, 0)
    torch_flipped = latent.decode_codes(model, flipped).images[0]
    torch_own = latent.decode_codes(model, own.code).images[0]
    assert np.abs(shown - torch_flipped).max() < 1e-3 < np.abs(shown - torch_own).max()
    page.wait_for_function("t => location.search.includes('lab_code=' + t)", arg=latent.code_to_text(flipped))


def test_a_blocked_model_file_falls_back_to_the_server_and_says_so_in_one_line(page: Page, app_url):
    page.route("**/app/static/models/**", lambda route: route.abort())
    page.set_default_timeout(120_000)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{app_url}/explore")
    line = page.get_by_text("could not run in this browser")
    expect(line).to_have_count(1, timeout=120_000)
    assert "\n" not in line.text_content()
    page.locator(".st-key-explore_playback .main-svg").first.wait_for()  # today's figures, from the server
    wait_for_app(page)
    expect(page.locator("[data-testid=in-page-explore]")).to_have_count(0)
