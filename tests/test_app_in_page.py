"""AppTest of the in-page engine's glue (explorer/in_page.py): what the components are given,
what the app does with what they send back, and the fallback to the server.

No JavaScript runs under AppTest: a component's messages are put into its session-state slot,
as its JavaScript would send them (tests/browser/test_in_page_browser.py runs the real thing).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import explorer.in_page as in_page
from sae.analysis import latent
from sae.data.mnist import mnist_tensors
from sae.io.browser_model import ExportError
from sae.io.checkpoints import default_checkpoint_path, load_checkpoint
from sae.io.fingerprints import model_fingerprint
from sae.model import SPIKING_LAYERS, SAEConfig, SpikingAutoencoder

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 120  # the first run exports the model's graphs


@pytest.fixture(scope="module", autouse=True)
def models_folder(tmp_path_factory):
    """The exported graphs go to a temporary folder (made once for the module)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(in_page, "MODELS", tmp_path_factory.mktemp("models"))
    yield in_page.MODELS
    patch.undo()


def page(path: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()  # the home page first, as a visitor arrives
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def component(at: AppTest, name: str):
    found = [c for c in at.get("bidi_component") if c.proto.component_name == name]
    return found[0] if found else None


def data_of(element) -> dict:
    return json.loads(element.proto.json)


def plotly_keys(at: AppTest) -> set[str]:
    return {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}


def test_explore_runs_in_the_page_with_the_sidebars_model_settings_and_digit(models_folder):
    at = page("pages/views/explore.py")
    view = component(at, "sae_in_page_explore")
    assert view is not None
    data = data_of(view)
    settings = at.session_state["settings"]
    fingerprint = model_fingerprint(settings.model)
    for part in ("encoder", "decoder"):
        name = data["model"][part].rsplit("/", 1)[1]
        assert fingerprint in name and (models_folder / name).is_file()
        assert data["model"][part].startswith("/app/static/models/")
    assert data["model"]["shapes"]["enc1"] == [32, 16, 16] and data["model"]["shapes"]["latent"] == [settings.model.config.latent_dim]
    assert np.array_equal(np.float32(data["image"]), at.session_state["explore_digit"].image.flatten().numpy())  # exactly the digit
    assert data["settings"] == {"thresh": settings.neuron.thresh, "beta": settings.neuron.beta, "steps": settings.neuron.num_steps}
    assert data["layers"] == [*SPIKING_LAYERS, "output"]
    assert data["module"].startswith("/app/static/in_page/explore.js?v=")
    assert data["urls"]["wasmGzipped"] == data["urls"]["wasm"] + ".gz"  # make vendor keeps it gzipped
    for url in data["urls"].values():
        assert (ROOT / "static" / url.removeprefix("/app/static/")).is_file()
    # The figures the page draws are not sent by the server; the server's own parts stay.
    assert "Reconstruction MSE" not in {m.label for m in at.metric} and not at.tabs
    assert not plotly_keys(at) and at.get("image")  # no Plotly chart at all: the browser need not load Streamlit's Plotly
    assert any(b.label.startswith("Trace") for b in at.get("download_button"))


def _write_back_script():
    import streamlit as st

    from explorer.in_page import write_settings_back

    st.session_state.update({"sb_thresh": 1.0, "sb_beta": 0.5, "sb_steps": 5})
    write_settings_back(st.session_state["sent"])


@pytest.mark.parametrize(
    "sent, kept",
    [
        ({"thresh": 0.7, "beta": 0.85, "steps": 9}, (0.7, 0.85, 9)),
        ({"thresh": "lots", "beta": 7, "steps": [1]}, (1.0, 1.0, 5)),  # no number: dropped; out of range: clamped
        ({"thresh": -3, "steps": 9.5}, (0.05, 0.5, 5)),
        ({}, (1.0, 0.5, 5)),
    ],
)
def test_settings_released_in_the_page_are_checked_before_they_reach_the_sidebar(sent, kept):
    """The browser sends them (tests/browser/test_in_page_browser.py drives the release itself)."""
    at = AppTest.from_function(_write_back_script)
    at.session_state["sent"] = sent
    at.run()
    assert not at.exception
    assert (at.session_state["sb_thresh"], at.session_state["sb_beta"], at.session_state["sb_steps"]) == kept


def test_an_uploaded_checkpoint_gets_graphs_of_its_own_weights(models_folder):
    torch.manual_seed(5)
    upload = SpikingAutoencoder(SAEConfig(latent_dim=8))
    buffer = io.BytesIO()
    torch.save(upload.state_dict(), buffer)
    at = page("pages/views/explore.py")
    shipped = data_of(component(at, "sae_in_page_explore"))["model"]
    at.file_uploader(key="sb_upload").set_value(("mine.pt", buffer.getvalue(), "application/octet-stream")).run()
    assert not at.exception and at.session_state["settings"].checkpoint_name == "uploaded: mine.pt"
    model = data_of(component(at, "sae_in_page_explore"))["model"]
    assert model_fingerprint(at.session_state["settings"].model) in model["encoder"] and model["encoder"] != shipped["encoder"]
    assert (models_folder / model["encoder"].rsplit("/", 1)[1]).is_file()
    assert model["shapes"]["latent"] == [8] and model["shapes"]["linear"] == shipped["shapes"]["linear"]


def test_when_the_page_cannot_compute_it_says_so_in_one_line_and_the_server_draws_todays_figures():
    at = page("pages/views/explore.py")
    at.session_state["in_page_explore"] = {"failure": "this browser has no WebAssembly"}
    at.run()
    assert not at.exception
    assert component(at, "sae_in_page_explore") is None
    lines = [i.value for i in at.info if "could not run in this browser" in i.value]
    assert len(lines) == 1 and "no WebAssembly" in lines[0] and "\n" not in lines[0]
    assert "Reconstruction MSE" in {m.label for m in at.metric} and "explore_playback" in plotly_keys(at)
    at.switch_page("pages/views/latent_lab.py").run()  # the whole session stays on the server
    assert component(at, "sae_in_page_lab") is None and "lab_decoded" in plotly_keys(at)


def test_the_server_path_can_be_asked_for_in_the_link_without_a_line():
    at = page("pages/views/explore.py", {"engine": "server"})
    assert component(at, "sae_in_page_explore") is None
    assert "explore_playback" in plotly_keys(at) and not [i for i in at.info if "server" in i.value]


def test_the_projector_view_draws_the_servers_figures_restyled_and_says_nothing_of_it():
    """The projector's style sheet keeps charts, not the page's component, and its figures are the
    server's in the projector's type sizes (explorer/charts.py)."""
    at = page("pages/views/explore.py", {"projector": "1", "source": "MNIST"})
    assert component(at, "sae_in_page_explore") is None and "explore_playback" in plotly_keys(at)
    assert not [i for i in at.info if "server" in i.value]
    at.sidebar.toggle(key="sb_projector").set_value(False).run()  # off again: the page computes
    assert component(at, "sae_in_page_explore") is not None


def test_without_the_vendored_files_the_server_computes_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(in_page, "VENDOR_SUMS", tmp_path / "SHA256SUMS")
    in_page._vendor_files.cache_clear()
    try:
        at = page("pages/views/explore.py")
    finally:
        in_page._vendor_files.cache_clear()
    assert component(at, "sae_in_page_explore") is None
    assert [i.value for i in at.info if "make vendor" in i.value] and "explore_playback" in plotly_keys(at)


def test_a_model_whose_graphs_cannot_be_made_is_run_on_the_server_with_one_line(monkeypatch, tmp_path):
    exports = []

    def failing(model):
        exports.append(model)
        raise ExportError("the exporter does not know this layer")

    monkeypatch.setattr(in_page, "MODELS", tmp_path)  # no graphs made yet
    monkeypatch.setattr(in_page, "export_onnx_in_child", failing)
    at = page("pages/views/explore.py")
    assert component(at, "sae_in_page_explore") is None and "explore_playback" in plotly_keys(at)
    lines = [i.value for i in at.info if "could not be prepared for the browser" in i.value]
    assert len(lines) == 1 and "does not know this layer" in lines[0]
    at.run()
    assert len(exports) == 1  # not tried again on every rerun


def test_the_lab_editor_runs_in_the_page_on_the_digits_own_code():
    at = page("pages/views/latent_lab.py")
    editor = component(at, "sae_in_page_lab")
    assert editor is not None and "lab_decoded" not in plotly_keys(at)
    data = data_of(editor)
    model = load_checkpoint(default_checkpoint_path()).model.eval()
    own = latent.encode_digit(model, mnist_tensors(train=False)[0][0:1], at.session_state["settings"].neuron)  # digit A: test image #0
    assert (data["neurons"], data["steps"]) == own.code.shape
    assert data["own"] == own.code.ravel().tolist() and data["code"] == data["own"]
    assert np.array_equal(np.float32(data["own_recon"]), own.recon.ravel())
    assert (data["thresh"], data["beta"]) == (at.session_state["settings"].neuron.thresh, at.session_state["settings"].neuron.beta)
