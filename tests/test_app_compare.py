"""AppTest of the Compare page: the two questions, the grid, A/B, trained models, links and the cache.

The app runs on checkpoints written here (small models whose weights are scaled so
every layer fires), never on trained ones: the sidebar gets them through the user
folder and the "trained for the setting" registry through ``trained_for_setting.TRAINED_DIR``.
Every number a chart shows is checked against a fresh ``sae.analysis.sweep`` call.
"""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from explorer.state import ChosenDigit
from sae.analysis import sweep, trained_for_setting
from sae.analysis.two_settings import ab_compare
from sae.data.mnist import mnist_tensors, pick_digits
from sae.io import checkpoints
from sae.model import NeuronSettings, SAEConfig, SpikingAutoencoder

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
COMPARE = "pages/views/compare.py"
MODEL, OTHER = "cmp_test_model", "cmp_other_model"
DIGITS = 24  # small sweeps keep the test quick on 2 cores
TIMEOUT = 240


def firing_model(seed: int, **config) -> SpikingAutoencoder:
    torch.manual_seed(seed)
    model = SpikingAutoencoder(SAEConfig(**config))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    return model.eval()


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """The sidebar's model and three of the six trained-for-the-setting checkpoints, in temp folders."""
    user, trained_dir = tmp_path / "user", tmp_path / "trained"
    checkpoints.save_checkpoint(user / f"{MODEL}.pt", firing_model(0))
    checkpoints.save_checkpoint(user / f"{OTHER}.pt", firing_model(4))
    models = {
        "compare_T1_thr1.pt": firing_model(1, num_steps=1),
        "compare_T5_thr1.pt": firing_model(2),
        "compare_T5_thr2.pt": firing_model(3, thresh=2.0),
    }
    for name, model in models.items():
        checkpoints.save_checkpoint(trained_dir / name, model, metrics={"test_mse": 0.0123, "spike_rates": {}})
    monkeypatch.setattr(checkpoints, "USER_DIR", user)
    monkeypatch.setattr(trained_for_setting, "TRAINED_DIR", trained_dir)
    st.cache_resource.clear()  # the process-wide result cache: every test starts cold
    yield {"trained": trained_dir, "models": models}
    st.cache_resource.clear()


def open_compare(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"ckpt": MODEL, "c_n": str(DIGITS), **params})
    at.switch_page(COMPARE)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def charts(at) -> dict:
    """Plotly specs by title (untitled ones by position)."""
    found = {}
    for i, element in enumerate(at.get("plotly_chart")):
        spec = json.loads(element.proto.spec)
        title = spec["layout"].get("title", {}).get("text") or f"#{i}"
        found[title] = spec
    return found


def array(value) -> np.ndarray:
    """A Plotly spec's data array: a plain list, or Plotly's typed array ({dtype, bdata, shape})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.array(value, dtype=float)


def page_model(at):
    return at.session_state["settings"].model


def default_digits(count=DIGITS, seed=0):
    images, labels = mnist_tensors(train=False)
    return images[list(pick_digits(labels, "random", count, seed))]


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_thresh_question_on_one_screen(app_env):
    at = open_compare()
    assert at.session_state["c_view"] == "What does thresh do?"
    found = charts(at)
    for title in (
        "Reconstructions as thresh changes",
        "Test MSE vs thresh",
        "Latent spikes of digit 1",
        "Training with a thresh vs switching to it after training",
    ):
        assert any(t.startswith(title) for t in found), (title, list(found))
    # The numbers are the sweep's, on the sidebar's model, its num_steps and beta, and these digits.
    model = page_model(at)
    fresh = sweep.run_sweep(model, default_digits(), [0.25, 0.5, 1.0, 1.5, 2.0, 3.0], [model.config.num_steps])
    assert found["Test MSE vs thresh"]["data"][0]["y"] == pytest.approx([r.mse for r in fresh.results], rel=1e-9)
    rates = next(v for t, v in found.items() if t.startswith("Spike rate per layer vs thresh"))
    enc1 = next(trace for trace in rates["data"] if trace["name"] == "enc1")
    assert enc1["y"] == pytest.approx([r.spike_rates["enc1"] for r in fresh.results])
    assert enc1["y"][0] > enc1["y"][-1], "a higher threshold must leave fewer spikes"
    # A teaching note beside the charts, and the trained series with the missing one named.
    assert "fewer" in captions(at).lower()
    notes = " ".join(i.value for i in at.info)
    assert "compare_T5_thr0.5.pt" in notes and "compare_T5_thr2.pt" not in notes
    table = at.dataframe[0].value
    assert list(table["checkpoint"]) == ["compare_T5_thr0.5.pt", "compare_T5_thr1.pt", "compare_T5_thr2.pt"]
    assert table["test MSE (model card)"].tolist()[1:] == [0.0123, 0.0123]


def test_cached_revisit_returns_the_fresh_numbers(app_env, monkeypatch):
    calls = []
    real = sweep.run_sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: calls.append(a[2:4]) or real(*a, **k))
    at = open_compare()
    first = charts(at)
    assert len(calls) == 1
    values = at.multiselect(key="c_thresh_values")
    values.set_value([0.5, 2.0]).run()
    assert len(calls) == 2 and charts(at)["Test MSE vs thresh"]["data"][0]["x"] == [0.5, 2.0]
    at.multiselect(key="c_thresh_values").set_value([0.25, 0.5, 1.0, 1.5, 2.0, 3.0]).run()
    assert len(calls) == 2, "going back must come from the cache"
    again = charts(at)
    assert again["Test MSE vs thresh"] == first["Test MSE vs thresh"]
    assert again["Reconstructions as thresh changes"] == first["Reconstructions as thresh changes"]
    # ... and the cached numbers are what a fresh sweep computes now.
    model = page_model(at)
    fresh = real(model, default_digits(), [0.25, 0.5, 1.0, 1.5, 2.0, 3.0], [model.config.num_steps])
    assert again["Test MSE vs thresh"]["data"][0]["y"] == [r.mse for r in fresh.results]


def test_another_model_or_other_digits_are_not_served_from_the_cache(app_env, monkeypatch):
    calls = []
    real = sweep.run_sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = open_compare()
    at.number_input(key="c_seed").set_value(1).run()
    assert len(calls) == 2
    at.selectbox(key="sb_checkpoint").set_value(OTHER).run()
    assert not at.exception
    assert len(calls) == 3


def test_num_steps_question_trained_vs_set_after(app_env):
    at = open_compare(c_view="What does num_steps do?")
    found = charts(at)
    assert any(t.startswith("Reconstructions as num_steps changes") for t in found)
    spec = found["Training with a num_steps vs switching to it after training"]
    mse_lines = {trace["name"]: trace for trace in spec["data"] if trace.get("xaxis", "x") == "x"}
    trained, after_line = mse_lines["trained with the setting"], mse_lines["trained at steps 5, thresh 1; set after training"]
    assert trained["x"] == after_line["x"] == [1, 3, 5, 10]
    digits = default_digits()
    t1 = app_env["models"]["compare_T1_thr1.pt"]
    own = sweep.measure(t1, digits, [NeuronSettings(thresh=1.0, beta=0.5, num_steps=1)])[0]
    assert trained["y"][0] == pytest.approx(own.mse, rel=1e-9)
    assert trained["y"][1] is None and trained["y"][3] is None  # T3, T10 not shipped
    reference = app_env["models"]["compare_T5_thr1.pt"]
    after = sweep.measure(reference, digits, [NeuronSettings(thresh=1.0, beta=0.5, num_steps=s) for s in (1, 3, 5, 10)])
    assert after_line["y"] == pytest.approx([r.mse for r in after], rel=1e-9)
    notes = " ".join(i.value for i in at.info)
    assert "compare_T3_thr1.pt" in notes and "compare_T10_thr1.pt" in notes and "compare_T1_thr1.pt" not in notes


def test_sweep_grid_from_a_link(app_env):
    at = open_compare(c_view="Sweep grid", c_grid_thresh=["0.5", "2"], c_grid_steps=["1", "3", "5"], c_grid_beta=["0.25", "0.5"])
    assert at.multiselect(key="c_grid_thresh").value == [0.5, 2.0]
    found = charts(at)
    heat = next(v for t, v in found.items() if t.startswith("Test MSE over"))
    fresh = sweep.run_sweep(page_model(at), default_digits(), [0.5, 2.0], [1, 3, 5], [0.25, 0.5])
    np.testing.assert_allclose(array(heat["data"][0]["z"]), fresh.mse_grid(0.25), rtol=1e-12)
    at.segmented_control(key="c_grid_show_beta").set_value(0.5).run()
    heat = next(v for t, v in charts(at).items() if t.startswith("Test MSE over"))
    np.testing.assert_allclose(array(heat["data"][0]["z"]), fresh.mse_grid(0.5), rtol=1e-12)
    titles = list(charts(at))
    for title in (
        "Spike rate per layer for every setting",
        "Latent spikes of digit 1",
        "Mean spike rate vs thresh",
        "Test MSE vs num_steps",
        "Reconstruction of digit 1 for every thresh × num_steps",
    ):
        assert any(t.startswith(title) for t in titles), (title, titles)


def test_ab_view_shows_the_difference(app_env):
    at = open_compare(c_view="A/B", c_a_thresh="0.5", c_b_thresh="2.0", c_b_steps="3")
    found = charts(at)
    assert len(at.get("plotly_chart")) == 5 + 2 * 6  # five difference charts, six Explore figures for each side
    digit = default_digits()[:1]
    fresh = ab_compare(page_model(at), digit, NeuronSettings(thresh=0.5, beta=0.5, num_steps=5), NeuronSettings(thresh=2.0, beta=0.5, num_steps=3))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Latent flips"] == str(fresh.latent_flips()) and fresh.latent_flips() > 0
    images = next(v for t, v in found.items() if t.startswith("Reconstructions on one scale"))
    np.testing.assert_allclose(array(images["data"][3]["z"]), fresh.reconstruction_change(), atol=1e-6)
    # Make B the same as A: nothing may differ any more.
    at.number_input(key="c_b_thresh").set_value(0.5)
    at.number_input(key="c_b_steps").set_value(5).run()
    assert {m.label: m.value for m in at.metric}["Latent flips"] == "0"
    images = next(v for t, v in charts(at).items() if t.startswith("Reconstructions on one scale"))
    assert not np.any(array(images["data"][3]["z"]))


def test_digits_by_class_and_from_the_explore_page(app_env):
    at = open_compare(c_digits="by class", c_class="7", c_n="5")
    assert "5 test digits of class 7" in captions(at)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"ckpt": MODEL, "c_digits": "from Explore", "c_view": "A/B"})
    at.switch_page(COMPARE)
    at.run()
    assert any("No digit on the Explore page yet" in i.value for i in at.info)
    digit = default_digits(1, seed=5)
    at.session_state["explore_digit"] = ChosenDigit(digit, "MNIST test image 42")
    at.run()
    assert not at.exception and "MNIST test image 42" in captions(at)
    input_panel = next(v for t, v in charts(at).items() if t.startswith("Reconstructions on one scale"))
    np.testing.assert_allclose(array(input_panel["data"][0]["z"]), digit[0, 0].numpy(), atol=1e-7)


def test_a_misnamed_trained_checkpoint_is_left_out(app_env):
    wrong = app_env["trained"] / "compare_T3_thr1.pt"
    checkpoints.save_checkpoint(wrong, firing_model(5, num_steps=7))
    at = open_compare(c_view="What does num_steps do?")
    assert any("compare_T3_thr1.pt was trained with num_steps 7" in w.value for w in at.warning)
    spec = charts(at)["Training with a num_steps vs switching to it after training"]
    assert spec["data"][0]["y"][1] is None


def test_no_trained_checkpoints_is_a_note_not_an_error(app_env, monkeypatch, tmp_path):
    monkeypatch.setattr(trained_for_setting, "TRAINED_DIR", tmp_path / "empty")
    at = open_compare()
    notes = " ".join(i.value for i in at.info)
    assert all(e.filename in notes for e in trained_for_setting.trained_series("thresh"))
    assert not any(t.startswith("Training with a") for t in charts(at))


def test_trained_models_whose_decoder_cannot_fire_are_explained(app_env):
    notes = [i.value for i in open_compare().info]  # the thresh question: T5/thresh 2 is shipped in the fixture
    silent = [n for n in notes if "cannot fire at all" in n]
    assert len(silent) == 1 and silent[0].startswith("**trained with num_steps 5, thresh 2**")
    notes = [i.value for i in open_compare(c_view="What does num_steps do?").info]  # T1/thresh 1 is shipped
    assert [n for n in notes if "cannot fire at all" in n][0].startswith("**trained with num_steps 1, thresh 1**")
