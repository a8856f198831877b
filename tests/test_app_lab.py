"""AppTest of the Latent lab: edit the code (clicks and buttons), restore, the neuron atlas, the
blend, the map, the URL round trip, bad links, Explore's digit; and the energy panel on Explore.

AppTest runs no JavaScript and has no Plotly selection API, so a click is what Streamlit's
frontend would send: the chart's widget state, a JSON ``{"selection": {"points": [...]}}``,
put in place of the chart element before the next run (``click``).  What the page shows is
checked against the model run directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Widget

from explorer import links
from sae.analysis import latent
from sae.analysis.energy import count_operations
from sae.data.mnist import mnist_tensors
from sae.io.checkpoints import default_checkpoint_path, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
LAB = "pages/views/latent_lab.py"
TIMEOUT = 240  # the map's first computation encodes 10,000 images on a busy 2-core machine


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_checkpoint_path()).model.eval()


@pytest.fixture(scope="module")
def test_images():
    return mnist_tensors(train=False)


def lab(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"engine": "server", **(query or {})})  # the server path: no JavaScript runs here
    at.run()
    at.switch_page(LAB).run()
    assert not at.exception, at.exception
    return at


class _Selection(Widget):
    """A Plotly chart as the frontend reports it after a click on one point."""

    def __init__(self, element, points):
        self.proto, self.root, self.type, self.key = element.proto, element.root, "plotly_chart", element.key
        self._value = json.dumps({"selection": {"points": points, "point_indices": [p["point_index"] for p in points], "box": [], "lasso": []}})

    @property
    def id(self):
        return self.proto.id

    @property
    def value(self):
        return json.loads(self._value)

    @property
    def _widget_state(self) -> WidgetState:
        state = WidgetState()
        state.id, state.string_value = self.id, self._value
        return state


def chart(at: AppTest, key_prefix: str):
    found = [c for c in at.get("plotly_chart") if c.proto.id.split("-")[-1].startswith(key_prefix)]
    assert len(found) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return found[0]


def spec(at: AppTest, key_prefix: str) -> dict:
    return json.loads(chart(at, key_prefix).proto.spec)


def click(at: AppTest, key_prefix: str, point: dict) -> AppTest:
    """Replace the chart by its clicked state and rerun, as a browser click would."""
    element = chart(at, key_prefix)
    for node in at._tree:
        if isinstance(node, Block):
            for index, child in node.children.items():
                if child is element:
                    node.children[index] = _Selection(element, [point])
                    at.run()
                    assert not at.exception, at.exception
                    return at
    raise AssertionError("chart not found in the tree")


def click_cell(at: AppTest, neuron: int, step: int, steps: int = 5) -> AppTest:
    index = neuron * steps + step
    return click(
        at,
        "lab_editor_",
        {"curve_number": 1, "point_number": index, "point_index": index, "x": step + 1, "y": neuron, "customdata": {"0": neuron, "1": step}},
    )


def z(trace: dict) -> np.ndarray:
    """A heatmap's z from a figure spec (plotly sends numpy arrays as base64 typed arrays)."""
    import base64

    value = trace["z"]
    if isinstance(value, dict):
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return data.reshape([int(n) for n in value["shape"].split(",")]) if "shape" in value else data
    return np.asarray(value, dtype=np.float32)


def editor_code(at: AppTest) -> np.ndarray:
    """The code the editor shows: states 1 (spike) and 2 (added) are spikes."""
    states = z(spec(at, "lab_editor_")["data"][0])
    return np.isin(states, (1, 2)).astype(np.uint8)


def decoded_image(at: AppTest) -> np.ndarray:
    return z(spec(at, "lab_decoded")["data"][2])


def texts(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.caption, *at.markdown, *at.info, *at.warning])


def synops(at: AppTest) -> int:
    return int(next(m.value for m in at.metric if m.label.startswith("Synaptic operations")).replace(",", ""))


# --- editing ----------------------------------------------------------------------------


def test_the_lab_opens_on_the_digits_own_code_and_its_reconstruction(model, test_images):
    at = lab()
    own = latent.encode_digit(model, test_images[0][:1])
    assert np.array_equal(editor_code(at), own.code)
    assert np.allclose(decoded_image(at), own.recon, atol=1e-6)
    assert "lab_code" not in at.query_params
    assert "This is the digit's own code" in texts(at)
    assert synops(at) > 0


def test_a_click_flips_one_spike_once_and_the_decoder_answers(model, test_images):
    at = lab()
    own = latent.encode_digit(model, test_images[0][:1])
    assert own.code[5, 0] == 1
    before = synops(at)
    click_cell(at, 5, 0)
    expected = latent.flip(own.code, 5, 0)
    assert np.array_equal(editor_code(at), expected)
    assert np.allclose(decoded_image(at), latent.decode_codes(model, expected).images[0], atol=1e-6)
    assert not np.allclose(decoded_image(at), own.recon, atol=1e-4)
    assert at.query_params["lab_code"] == latent.code_to_text(expected)
    # The count follows the edited code: one spike fewer into from_latent (2,048 accumulates), and
    # whatever the decoder's layers do with that (they can fire more as well as less).
    edited = latent.edited_spikes(own, expected, latent.decode_codes(model, expected))
    assert synops(at) == count_operations(model, edited).synops != before
    assert "1 cell edited" in texts(at)
    at.toggle(key="lab_energy_chart").set_value(True).run()  # the per-layer counts follow the edited code
    bars = json.loads(chart(at, "lab_energy").proto.spec)["data"][0]
    spiking = dict(zip(bars["y"], z({"z": bars["x"]}).tolist()))
    assert spiking["from_latent ← latent"] == 2048 * int(expected.sum()) == 2048 * (int(own.code.sum()) - 1)
    at.run()  # a rerun without a click (e.g. another widget) flips nothing
    assert np.array_equal(editor_code(at), expected)
    click_cell(at, 5, 0)  # the same cell again, on the fresh chart: back to the own code
    assert np.array_equal(editor_code(at), own.code) and "lab_code" not in at.query_params


def test_buttons_silence_fire_clear_and_restore(model, test_images):
    at = lab()
    own = latent.encode_digit(model, test_images[0][:1]).code
    at.selectbox(key="lab_neuron").set_value(2).run()
    at.button(key="lab_fire").click().run()
    assert editor_code(at)[2].tolist() == [1] * 5 and np.array_equal(np.delete(editor_code(at), 2, 0), np.delete(own, 2, 0))
    at.selectbox(key="lab_neuron").set_value(5).run()
    at.button(key="lab_silence").click().run()
    assert editor_code(at)[5].sum() == 0 and editor_code(at)[2].sum() == 5
    at.button(key="lab_clear").click().run()
    assert editor_code(at).sum() == 0
    assert np.allclose(decoded_image(at), latent.decode_codes(model, np.zeros_like(own)).images[0], atol=1e-6)
    at.button(key="lab_restore").click().run()
    assert np.array_equal(editor_code(at), own) and "lab_code" not in at.query_params


# --- the URL ------------------------------------------------------------------------------


def test_a_shared_link_opens_the_same_edited_code(model, test_images):
    own = latent.encode_digit(model, test_images[0][3:4]).code
    edited = latent.set_neuron(latent.flip(own, 0, 0), 7, firing=True)
    at = lab({"lab_a": "3", "lab_code": latent.code_to_text(edited)})
    assert at.number_input(key="lab_a").value == 3
    assert np.array_equal(editor_code(at), edited)
    assert np.allclose(decoded_image(at), latent.decode_codes(model, edited).images[0], atol=1e-6)
    assert at.query_params["lab_code"] == latent.code_to_text(edited) and not at.warning


def test_a_malformed_code_or_index_in_the_link_is_corrected_with_a_note(model, test_images):
    at = lab({"lab_code": "32x5-zz", "lab_a": "123456"})
    notes = [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning if w.icon == links.ICON]
    assert notes == ["ignored lab_code='32x5-zz': not a latent code", "lab_a 123456 is outside 0–9,999; using 9999"]
    assert np.array_equal(editor_code(at), latent.encode_digit(model, test_images[0][9999:]).code)
    assert "lab_code" not in at.query_params and at.query_params.get("lab_a") in (None, "9999")  # the bad value is gone
    wrong_shape = lab({"lab_code": latent.code_to_text(np.zeros((16, 5), np.uint8))})
    assert "16 x 5 code and this model at these settings uses 32 x 5" in texts(wrong_shape)


def test_another_digit_or_num_steps_starts_from_its_own_code(model, test_images):
    at = lab()
    click_cell(at, 0, 0)
    assert "lab_code" in at.query_params
    at.slider(key="sb_thresh").set_value(0.9).run()  # thresh keeps the edit ...
    assert "lab_code" in at.query_params
    at.number_input(key="lab_a").set_value(4).run()  # ... another digit does not
    assert "lab_code" not in at.query_params
    assert np.array_equal(editor_code(at), latent.encode_digit(model, test_images[0][4:5], model.config.neuron_settings(thresh=0.9)).code)
    at.slider(key="sb_steps").set_value(7).run()
    assert editor_code(at).shape == (32, 7)


# --- the other views ----------------------------------------------------------------------


def test_what_each_neuron_draws(model, test_images):
    at = lab({"lab_view": "What each neuron draws"})
    own = latent.encode_digit(model, test_images[0][:1])
    atlas = latent.neuron_atlas(model, own)
    figure = spec(at, "lab_atlas")
    alone, change = z(figure["data"][0]), z(figure["data"][1])
    assert np.allclose(alone[:32, :32], atlas.alone[0], atol=1e-5)  # the first tile is neuron 0
    assert np.allclose(change[:32, 33:65], atlas.change[1], atol=1e-5)  # the second is neuron 1
    labels = [a["text"] for a in figure["layout"]["annotations"]]
    assert "31" in labels and ("+31" if atlas.added[31] else "−31") in labels
    quiet, loud = int(np.argmin(atlas.effect)), int(np.argmax(atlas.effect))
    assert f"Neuron {quiet} changes almost nothing" in texts(at) and f"neuron {loud} changes the most" in texts(at)


def test_between_two_digits(model, test_images):
    at = lab({"lab_view": "Between two digits", "lab_a": "3", "lab_b": "1"})
    a = latent.encode_digit(model, test_images[0][3:4]).code
    b = latent.encode_digit(model, test_images[0][1:2]).code
    codes = latent.blend(a, b)
    images = latent.decode_codes(model, codes).images
    figure = spec(at, "lab_blend")
    row = z(figure["data"][0])
    assert row.shape == (32, 8 * 34 - 2)
    for s in range(8):
        assert np.allclose(row[:, s * 34 : s * 34 + 32], images[s], atol=1e-5), s
    assert np.array_equal(z(figure["data"][1])[:, 6:11], codes[1])
    differing = int((a != b).any(axis=1).sum())
    assert f"differ in {differing} neurons" in texts(at)


def test_the_map_of_codes_and_a_click_that_opens_a_digit(model, test_images):
    at = lab({"lab_view": "The map of codes"})
    figure = spec(at, "lab_map")
    classes = [t for t in figure["data"] if t["type"] == "scattergl"]
    assert [t["name"] for t in classes] == [str(d) for d in range(10)]
    labels = test_images[1].numpy()
    for t in classes:
        index = z({"z": t["customdata"]}).astype(int)
        assert (labels[index] == int(t["name"])).all()
    assert sum(len(z({"z": t["customdata"]})) for t in classes) == 10_000
    assert any(t.get("name") == "this digit" for t in figure["data"])
    assert "Each dot is one of the 10,000 test images" in texts(at)
    seven = int(np.flatnonzero(labels == 7)[3])
    click(at, "lab_map", {"curve_number": 7, "point_number": 3, "point_index": 3, "customdata": seven})
    assert at.number_input(key="lab_a").value == seven
    assert at.query_params["lab_a"] == str(seven)
    assert np.array_equal(editor_code(at), latent.encode_digit(model, test_images[0][seven : seven + 1]).code)


def test_the_lab_takes_the_digit_chosen_on_explore(model, test_images):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"source": "MNIST", "index": "42", "engine": "server"})
    at.run()
    at.switch_page("pages/views/explore.py").run()
    at.switch_page(LAB).run()
    assert not at.exception
    assert at.number_input(key="lab_a").value == 42
    assert np.array_equal(editor_code(at), latent.encode_digit(model, test_images[0][42:43]).code)


def test_a_drawing_from_explore_is_used_and_the_page_says_a_link_cannot_carry_it(model):
    import io

    from PIL import Image, ImageDraw

    from explorer.canvas import png_data_url

    drawing = Image.new("RGBA", (280, 280), "black")
    ImageDraw.Draw(drawing).line([(150, 40), (130, 240)], fill="white", width=22)
    buffer = io.BytesIO()
    drawing.save(buffer, format="PNG")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["engine"] = "server"
    at.run()
    at.switch_page("pages/views/explore.py").run()
    at.session_state["explore_canvas"] = {"png": png_data_url(buffer.getvalue())}
    at.run()
    drawn = at.session_state["explore_digit"].image
    at.switch_page(LAB).run()
    assert not at.exception
    assert "Digit A is Explore's digit (your drawing). A link cannot carry a drawing" in texts(at)
    assert np.array_equal(editor_code(at), latent.encode_digit(model, drawn).code)
    at.number_input(key="lab_a").set_value(8).run()  # picking a test image leaves the drawing
    assert "A link cannot carry a drawing" not in texts(at)
    assert any(b.label == "Use Explore's digit (your drawing)" for b in at.button)


# --- energy on Explore ----------------------------------------------------------------------


def test_explore_shows_what_the_spikes_cost_and_it_follows_thresh():
    if "show_energy" not in (ROOT / "pages/views/explore.py").read_text():
        pytest.skip("the energy panel is not wired into Explore yet")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"source": "MNIST", "index": "0", "engine": "server"})
    at.run()
    at.switch_page("pages/views/explore.py").run()
    assert not at.exception
    first = synops(at)
    assert "compute-only estimate at 45 nm" in texts(at)
    at.slider(key="sb_thresh").set_value(2.0).run()
    assert synops(at) < first
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("explore_energy")]
    at.toggle(key="explore_energy_chart").set_value(True).run()
    bars = json.loads(chart(at, "explore_energy").proto.spec)["data"][0]
    assert bars["y"][0] == "conv1 ← image" and len(bars["y"]) == 9
