"""AppTest of the home and Explore pages: every input path, the settings, the URL, bad input.

No JavaScript runs under AppTest, so the canvas is driven by putting what its JS
would send (a PNG data URL) into its session-state slot.  Values shown on the
page are checked against the model run directly, so a page that showed stale or
wrong numbers would fail.
"""

from __future__ import annotations

import gc
import io
import json
import re
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import sae.io.checkpoints as checkpoints
from explorer import links
from explorer.canvas import png_data_url
from sae.analysis.inference import run_digit
from sae.data.images import prepare_digit
from sae.data.mnist import mnist_tensors
from sae.model import SAEConfig, SpikingAutoencoder

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 60  # seconds per script run; generous for a busy 2-core machine


@pytest.fixture(scope="module", autouse=True)
def a_checkpoint(tmp_path_factory):
    """The shipped checkpoint when present; otherwise an untrained one in a temporary user folder."""
    if checkpoints.default_checkpoint_path().exists():
        yield
        return
    folder = tmp_path_factory.mktemp("user_checkpoints")
    torch.manual_seed(0)
    checkpoints.save_checkpoint(folder / "fixture.pt", SpikingAutoencoder(), metrics={"test_mse": 0.1})
    patch = pytest.MonkeyPatch()
    patch.setattr(checkpoints, "USER_DIR", folder)
    yield
    patch.undo()


def open_app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"engine": "server", **(query or {})})  # the server path: no JavaScript runs here
    return at


def explore(query: dict | None = None) -> AppTest:
    at = open_app(query).switch_page("pages/views/explore.py").run()
    assert not at.exception, at.exception
    return at


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawing_of_a_one() -> Image.Image:
    """What the canvas holds after one stroke: white ink on a black 280x280 square."""
    image = Image.new("RGBA", (280, 280), "black")
    ImageDraw.Draw(image).line([(150, 40), (130, 240)], fill="white", width=22)
    return image


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def network_metrics(at: AppTest) -> dict[str, str]:
    """The metrics that depend only on the digit and the settings (not on the forward's timing)."""
    return {label: value for label, value in metrics(at).items() if not label.startswith("Forward")}


def texts(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.caption, *at.markdown, *at.info, *at.warning, *at.error])


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def one_line_warning(at: AppTest) -> str:
    assert len(at.warning) == 1, [w.value for w in at.warning]
    message = at.warning[0].value
    assert "\n" not in message and 0 < len(message) <= 200
    return message


def assert_page_still_works(at: AppTest) -> None:
    """After bad input: no exception, the sidebar and source picker still there and usable."""
    assert not at.exception
    assert at.slider(key="sb_thresh").value > 0
    at.segmented_control(key="source").set_value("MNIST").run()
    assert not at.exception and "Reconstruction MSE" in metrics(at)


def expected_mse(at: AppTest) -> float:
    settings = at.session_state["settings"]
    return run_digit(settings.model, at.session_state["explore_digit"].image, settings.neuron).mse


# --- home ---------------------------------------------------------------------------------


def test_home_explains_the_network_and_shows_the_lif_update_with_the_current_values():
    at = open_app().run()
    assert not at.exception
    assert at.title[0].value.endswith("Spiking Autoencoder Explorer")
    assert len(at.latex) == 1 and r"\beta" in at.latex[0].value
    at.slider(key="sb_thresh").set_value(0.5).run()
    at.slider(key="sb_beta").set_value(0.8).run()
    page = texts(at)
    assert "β = 0.8" in page and "θ = thresh = 0.5" in page
    assert [link.proto.page for link in at.get("page_link")] == ["explore", "explore", "train", "compare"]


# --- explore: drawing ----------------------------------------------------------------------


def test_before_any_stroke_an_example_digit_is_explained_and_shown():
    at = explore()
    assert at.segmented_control(key="source").value == "Draw"
    assert "Showing an example" in at.info[0].value
    digit = at.session_state["explore_digit"].image
    assert tuple(digit.shape) == (1, 1, 32, 32)
    assert torch.equal(digit, mnist_tensors(train=False)[0][:1])
    assert float(metrics(at)["Reconstruction MSE"]) == pytest.approx(expected_mse(at), abs=1e-4)


def test_a_stroke_on_the_canvas_is_normalised_and_run():
    at = explore()
    drawing = drawing_of_a_one()
    at.session_state["explore_canvas"] = {"png": png_data_url(png(drawing))}
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state["explore_digit"].label == "your drawing"
    assert torch.equal(at.session_state["explore_digit"].image, prepare_digit(drawing))
    assert float(metrics(at)["Reconstruction MSE"]) == pytest.approx(expected_mse(at), abs=1e-4)
    seen = plotly_specs(at)[0]
    assert seen["layout"]["title"]["text"].startswith("what the network sees")


def test_a_blank_canvas_gets_one_line_and_the_page_keeps_working():
    at = explore()
    at.session_state["explore_canvas"] = {"png": png_data_url(png(Image.new("RGB", (280, 280), "black")))}
    at.run()
    assert "blank" in one_line_warning(at).lower()
    assert "Reconstruction MSE" not in metrics(at)
    assert_page_still_works(at)


def test_garbage_from_the_canvas_is_refused_in_one_line():
    at = explore()
    at.session_state["explore_canvas"] = {"png": "data:image/png;base64,AAAA"}
    at.run()
    one_line_warning(at)
    assert_page_still_works(at)


# --- explore: the MNIST picker ---------------------------------------------------------------


def test_mnist_by_index_shows_that_test_image_and_its_label():
    images, labels = mnist_tensors(train=False)
    at = explore()
    at.segmented_control(key="source").set_value("MNIST").run()
    at.number_input(key="index").set_value(42).run()
    assert not at.exception
    assert torch.equal(at.session_state["explore_digit"].image, images[42:43])
    assert f"#42: a **{int(labels[42])}**" in texts(at)
    assert at.session_state["explore_digit"].label == f"MNIST test #42 (a {int(labels[42])})"


def test_mnist_by_class_jumps_to_that_class_and_random_stays_in_it():
    labels = mnist_tensors(train=False)[1]
    at = explore({"source": "MNIST"})
    at.selectbox(key="class").set_value("3").run()
    first_three = int(np.flatnonzero(labels.numpy() == 3)[0])
    assert at.number_input(key="index").value == first_three
    seen = set()
    for _ in range(3):
        next(b for b in at.button if b.label == "Random").click().run()
        index = at.number_input(key="index").value
        assert int(labels[index]) == 3
        seen.add(index)
    assert len(seen) > 1, "Random should move between images of the class"
    assert at.selectbox(key="class").value == "3"


def test_an_index_outside_the_class_drops_the_class_filter():
    labels = mnist_tensors(train=False)[1]
    at = explore({"source": "MNIST"})
    at.selectbox(key="class").set_value("3").run()
    not_three = int(np.flatnonzero(labels.numpy() != 3)[5])
    at.number_input(key="index").set_value(not_three).run()
    assert at.selectbox(key="class").value == "any"
    assert int(labels[at.number_input(key="index").value]) != 3


# --- explore: upload -----------------------------------------------------------------------


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="explore_upload").set_value((name, content, "application/octet-stream")).run()
    return at


def explore_upload() -> AppTest:
    at = explore({"source": "Upload"})
    assert "Upload a picture" in one_line_warning(at)
    return at


def test_an_uploaded_picture_is_normalised_like_mnist():
    # a dark digit on white paper, off-centre, any size: the opposite polarity of MNIST
    photo = Image.new("L", (600, 400), 255)
    ImageDraw.Draw(photo).line([(420, 60), (400, 330)], fill=0, width=40)
    at = upload(explore_upload(), "digit.png", png(photo))
    assert not at.warning and not at.exception
    assert torch.equal(at.session_state["explore_digit"].image, prepare_digit(photo))
    assert at.session_state["explore_digit"].label == "upload digit.png"
    assert len(at.image) == 1  # the upload as it came, beside the normalised view
    assert float(metrics(at)["Reconstruction MSE"]) == pytest.approx(expected_mse(at), abs=1e-4)


@pytest.mark.parametrize(
    "name, content",
    [
        ("notes.png", b"this is not an image at all"),
        ("cut.png", png(drawing_of_a_one())[:300]),  # a real PNG header, then nothing
    ],
    ids=["not-an-image", "truncated"],
)
def test_unreadable_uploads_get_one_line(name, content):
    at = upload(explore_upload(), name, content)
    one_line_warning(at)
    assert "Reconstruction MSE" not in metrics(at)
    assert_page_still_works(at)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL warns while the test builds it
def test_a_10000_by_10000_image_is_refused_in_one_line():
    huge = Image.new("1", (10_000, 10_000), 0)
    ImageDraw.Draw(huge).line([(5000, 1000), (5000, 9000)], fill=1, width=800)
    at = upload(explore_upload(), "huge.png", png(huge))
    assert "pixels" in one_line_warning(at)
    assert_page_still_works(at)


def test_an_animated_gif_uses_its_first_frame_and_says_so():
    first = drawing_of_a_one().convert("L")
    second = Image.new("L", (280, 280), 0)
    buffer = io.BytesIO()
    first.save(buffer, format="GIF", save_all=True, append_images=[second], duration=100, loop=0)
    at = upload(explore_upload(), "spin.gif", buffer.getvalue())
    assert not at.warning
    assert any("first frame" in i.value for i in at.info)
    assert torch.allclose(at.session_state["explore_digit"].image, prepare_digit(first), atol=1e-6)


# --- settings and the checkpoint ---------------------------------------------------------------


def test_changing_thresh_reruns_the_network_with_it_and_reset_restores_the_checkpoints():
    at = explore()
    trained = at.session_state["settings"].checkpoint.config.thresh
    before = network_metrics(at)
    at.slider(key="sb_thresh").set_value(0.3).run()
    assert at.session_state["settings"].neuron.thresh == pytest.approx(0.3)
    assert "θ = 0.3:" in texts(at)
    assert float(metrics(at)["Reconstruction MSE"]) == pytest.approx(expected_mse(at), abs=1e-4)
    assert network_metrics(at)["Spikes, all layers"] != before["Spikes, all layers"], "a lower threshold fires more"
    at.slider(key="sb_steps").set_value(8).run()
    assert "after step 8" in texts(at)
    next(b for b in at.button if b.label.startswith("Reset")).click().run()
    assert at.slider(key="sb_thresh").value == pytest.approx(trained)
    assert at.slider(key="sb_steps").value == at.session_state["settings"].checkpoint.config.num_steps
    assert network_metrics(at) == before


def test_results_are_kept_for_the_server_bounded_in_bytes_and_none_in_the_session(monkeypatch):
    import explorer.cached
    from sae.runs.forward_process import default_worker
    from sae.runs.shared_results import ResultCache

    calls, made = [], []
    worker = default_worker()
    real_run_digit = worker.run_digit

    def run_digit(model, digit, settings):
        calls.append(settings)
        result = real_run_digit(model, digit, settings)
        made.append(weakref.ref(result))
        return result

    monkeypatch.setattr(worker, "run_digit", run_digit)
    kept = ResultCache(max_entries=1000, max_bytes=1, size=explorer.cached.nbytes)  # room for the newest result only
    monkeypatch.setattr(explorer.cached, "kept_results", lambda: kept)
    at = explore()
    for thresh in (0.2, 0.3):
        at.slider(key="sb_thresh").set_value(thresh).run()
    computed = len(calls)
    at.slider(key="sb_thresh").set_value(0.3).run()  # the newest: served from the cache
    assert len(calls) == computed
    at.slider(key="sb_thresh").set_value(0.2).run()  # dropped to keep the bound: computed again
    assert len(calls) == computed + 1 and calls[-1].thresh == 0.2 and kept.bytes > 0
    # Streamlit keeps a closed tab's session (its state, fragments, download buttons) for a reconnect,
    # as this AppTest keeps its own: once the cache lets the traces go, none may still be alive.
    kept.clear()
    gc.collect()
    assert made and not [ref for ref in made if ref() is not None]


def test_another_model_uploaded_under_the_same_name_gets_its_own_results(monkeypatch):
    """Explore's results are keyed by the weights' fingerprint: keyed by the name, or by the id() of a
    freed model (which Python may hand to the next one), a re-upload would show the old model's numbers."""
    import explorer.cached

    # As if Python placed every model at the same address: a cache keyed by id() would now serve stale results.
    monkeypatch.setattr(explorer.cached, "id", lambda obj: 0, raising=False)
    at = explore({"source": "MNIST", "index": "3"})
    shown = []
    for seed in range(5):
        torch.manual_seed(seed)
        model = SpikingAutoencoder(SAEConfig())
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3)  # weights that make spikes flow, so each model reconstructs differently
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        del model
        at.file_uploader(key="sb_upload").set_value(("same_name.pt", buffer.getvalue(), "application/octet-stream")).run()
        assert not at.exception and at.session_state["settings"].checkpoint_name == "uploaded: same_name.pt"
        shown.append(metrics(at)["Reconstruction MSE"])
        assert shown[-1] == f"{expected_mse(at):.4f}", f"upload {seed}: the page shows another model's result"
    assert len(set(shown)) == len(shown)


def test_a_checkpoint_with_the_wrong_shapes_is_refused_in_one_line_and_the_old_one_stays():
    at = explore()
    name = at.session_state["settings"].checkpoint_name
    state = SpikingAutoencoder(SAEConfig()).state_dict()
    state["encoder.0.weight"] = torch.zeros(16, 1, 3, 3)  # the tutorial has 32 filters here
    buffer = io.BytesIO()
    torch.save(state, buffer)
    at.file_uploader(key="sb_upload").set_value(("wrong.pt", buffer.getvalue(), "application/octet-stream")).run()
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "\n" not in errors[0] and errors[0].startswith(links.plain("wrong.pt:"))
    assert at.session_state["settings"].checkpoint_name == name
    assert "Reconstruction MSE" in metrics(at)


@pytest.mark.parametrize("input_size, latent_dim", [(8, 32), (256, 8)])
def test_a_checkpoint_for_other_images_is_refused_at_upload_and_no_page_breaks(input_size, latent_dim):
    """Made for 8x8 or 256x256 images: one line at upload, and Explore, the lab and Compare run on."""
    model = SpikingAutoencoder(SAEConfig(input_size=input_size, latent_dim=latent_dim))
    payload = {"format": checkpoints.FORMAT, "version": checkpoints.VERSION, "config": model.config.to_dict(), "state_dict": model.state_dict()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    at = explore()
    name = at.session_state["settings"].checkpoint_name
    at.file_uploader(key="sb_upload").set_value(("![x](http://host/t.png).pt", buffer.getvalue(), "application/octet-stream")).run()
    errors = [e.value for e in at.sidebar.error]
    assert errors == [links.plain(f"![x](http://host/t.png).pt: made for {input_size}x{input_size} images; this app feeds the network 32x32 digits")]
    for page in ("pages/views/latent_lab.py", "pages/views/compare.py", "pages/views/explore.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.message for e in at.exception])
        assert at.session_state["settings"].checkpoint_name == name


def test_a_user_checkpoint_named_like_a_shipped_one_is_listed_apart(tmp_path, monkeypatch):
    shipped = [info.name for info in checkpoints.list_checkpoints() if info.shipped]
    assert shipped, "the shipped checkpoints are tracked in git"
    torch.manual_seed(3)
    checkpoints.save_checkpoint(tmp_path / f"{shipped[0]}.pt", SpikingAutoencoder(), metrics={"test_mse": 0.1})
    monkeypatch.setattr(checkpoints, "USER_DIR", tmp_path)
    at = explore()
    options = at.selectbox(key="sb_checkpoint").options
    assert shipped[0] in options and f"{shipped[0]} (trained here)" in options
    assert at.session_state["settings"].checkpoint.path.parent.resolve() == checkpoints.SHIPPED_DIR.resolve()
    at.selectbox(key="sb_checkpoint").set_value(f"{shipped[0]} (trained here)").run()
    assert not at.exception
    assert at.session_state["settings"].checkpoint.path.parent.resolve() == tmp_path.resolve()


# --- the URL ---------------------------------------------------------------------------------


def test_a_shared_url_opens_the_same_digit_settings_and_view():
    images, labels = mnist_tensors(train=False)
    at = explore({"source": "MNIST", "index": "123", "thresh": "0.6", "steps": "7", "view": "Inside a layer", "layer": "dec1"})
    assert torch.equal(at.session_state["explore_digit"].image, images[123:124])
    neuron = at.session_state["settings"].neuron
    assert (neuron.thresh, neuron.num_steps) == (pytest.approx(0.6), 7)
    assert at.selectbox(key="layer").value == "dec1"
    layer_figure = next(s for s in plotly_specs(at) if s["layout"]["title"]["text"].startswith("decoder deconv 1"))
    assert len(layer_figure["frames"]) == 7
    assert at.query_params["thresh"] == "0.6" and at.query_params["steps"] == "7"


def link_lines(at: AppTest) -> list[str]:
    """The lines about the link, as the page shows them (Markdown escaped, so read back plain)."""
    return [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning if w.icon == links.ICON]


def test_bad_url_values_are_corrected_with_a_note():
    at = explore({"thresh": "99", "beta": "x", "source": "Nonsense"})
    assert link_lines(at) == [
        "thresh 99 is outside 0.05–5; using 5",
        "ignored beta='x': not a finite number",
        "ignored source='Nonsense': not one of its choices",
    ]
    assert at.session_state["settings"].neuron.thresh == 5.0
    assert at.segmented_control(key="source").value == "Draw"
    assert "Reconstruction MSE" in metrics(at)


@pytest.mark.parametrize(
    "raw, shown, note",
    [
        ("999999", 9999, "index 999999 is outside 0–9,999; using 9999"),
        ("-5", 0, "index -5 is outside 0–9,999; using 0"),
        ("abc", 0, "ignored index='abc': not an integer"),
    ],
)
def test_an_index_outside_the_test_set_is_corrected_with_a_note(raw, shown, note):
    images, _ = mnist_tensors(train=False)
    at = explore({"source": "MNIST", "index": raw})
    assert link_lines(at) == [note]
    assert at.number_input(key="index").value == shown
    assert torch.equal(at.session_state["explore_digit"].image, images[shown : shown + 1])
    assert at.query_params.get("index") in (None, str(shown))  # the bad value is gone from the link


# --- views and exports -------------------------------------------------------------------------


def test_each_view_builds_only_when_open_and_charts_save_as_png():
    at = explore()
    titles = [s["layout"].get("title", {}).get("text", "") for s in plotly_specs(at)]
    assert any(t.startswith("latent spike raster") for t in titles)
    assert not any(t.startswith("spikes per layer") for t in titles), "a closed tab was built"
    at.session_state["view"] = "Spikes per layer"
    at.run()
    titles = [s["layout"].get("title", {}).get("text", "") for s in plotly_specs(at)]
    assert any(t.startswith("spikes per layer") for t in titles)
    assert not any(t.startswith("latent spike raster") for t in titles)
    for chart in at.get("plotly_chart"):
        config = json.loads(chart.proto.config)
        assert config["toImageButtonOptions"]["format"] == "png"


def test_the_layer_view_follows_the_chosen_layer():
    at = explore({"view": "Inside a layer"})
    at.selectbox(key="layer").set_value("enc3").run()
    figure = next(s for s in plotly_specs(at) if s["layout"]["title"]["text"].startswith("encoder conv 3"))
    assert len(figure["frames"]) == at.session_state["settings"].neuron.num_steps
    assert "spikes from 2,048 neurons" in texts(at)


def test_downloads_are_offered_for_the_trace_and_the_raster():
    at = explore()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Trace (.npz)", "Latent raster (.csv)"]


def test_settings_where_dec0_cannot_fire_say_so_and_others_do_not():
    at = explore({"thresh": "2", "beta": "0.5"})
    assert any("dec0) **cannot fire at all**" in w.value for w in at.warning)
    at.slider(key="sb_thresh").set_value(1.0).run()
    assert not any("cannot fire" in w.value for w in at.warning)
