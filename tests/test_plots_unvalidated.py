"""Explore's and Train's figures skip plotly.py's validation for speed; the browser must get the same figure."""

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io
import plotly.tools
import pytest
import torch

from sae.analysis.inference import run_digit
from sae.model import SPIKING_LAYERS, SAEConfig, SpikingAutoencoder
from sae.plots import inside, training


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    model = SpikingAutoencoder(SAEConfig()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return run_digit(model, torch.rand(1, 1, 32, 32), model.config.neuron_settings(num_steps=4))


BUILDERS = {
    "digit_image": lambda r: inside.digit_image(r.input),
    "latent_raster": inside.latent_raster,
    "latent_membrane": inside.latent_membrane,
    "layer_activity": inside.layer_activity,
    "layer_membrane enc1": lambda r: inside.layer_membrane(r, "enc1"),
    "layer_membrane latent": lambda r: inside.layer_membrane(r, "latent"),
    "layer_membrane output": lambda r: inside.layer_membrane(r, "output"),
    "reconstruction_playback": inside.reconstruction_playback,
    "digit_comparison": inside.digit_comparison,
}


def as_streamlit_sends(fig) -> dict:
    """What st.plotly_chart puts in its message (plotly_chart.py: to_dict, then to_json unvalidated)."""
    return json.loads(plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), validate=False))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_same_json_as_the_validated_figure(name, result, monkeypatch):
    fast = as_streamlit_sends(BUILDERS[name](result))
    monkeypatch.setattr(inside, "_figure", lambda data, layout, frames=None: go.Figure(data=data, layout=layout, frames=frames))
    assert fast == as_streamlit_sends(BUILDERS[name](result))


def test_builders_do_not_share_mutable_parts(result):
    first = inside.digit_image(result.input)
    first.layout.template.layout.font = {"size": 30}
    first.data[0].colorscale = [[0, "red"], [1, "blue"]]
    second = inside.digit_image(np.zeros((32, 32), np.float32))
    assert "font" not in as_streamlit_sends(second)["layout"]["template"].get("layout", {})
    assert as_streamlit_sends(second)["data"][0]["colorscale"][0] == [0.0, "rgb(0, 0, 0)"]


def a_history(batches: int = 300, evals: int = 4, epochs: int = 2) -> dict:
    rates = {f"rate_{name}": [0.05 * (i + 1) for i in range(evals)] for name in SPIKING_LAYERS}
    return {
        "batch": {"step": list(range(1, batches + 1)), "loss": [1.0 / s for s in range(1, batches + 1)], "elapsed": [0.1] * batches},
        "evals": {"step": list(range(0, 100 * evals, 100)), "test_loss": [0.1 / (i + 1) for i in range(evals)], **rates},
        "epochs": {"epoch": list(range(1, epochs + 1)), "train_loss": [0.05] * epochs, "test_loss": [0.04] * epochs},
    }


DIGITS = torch.linspace(0, 1, 4 * 32 * 32).reshape(4, 1, 32, 32)
EMPTY = {"batch": {"step": [], "loss": []}, "evals": {"step": [], "test_loss": []}, "epochs": {"epoch": [], "train_loss": [], "test_loss": []}}
TRAINING_BUILDERS = {
    "loss_figure": lambda h: training.loss_figure(h, {"tutorial after 10 epochs": 0.05}),
    "loss_figure without references": training.loss_figure,
    "epoch_figure": training.epoch_figure,
    "spike_rate_figure": training.spike_rate_figure,
    "reconstruction_grid": lambda h: training.reconstruction_grid(DIGITS, DIGITS.flip(-1) * 1.2, "step 10"),
}


@pytest.mark.parametrize("history", [a_history(), EMPTY], ids=["a run", "before the first batch"])
@pytest.mark.parametrize("name", list(TRAINING_BUILDERS))
def test_training_charts_send_the_same_json_as_validated_figures(name, history, monkeypatch):
    fast = as_streamlit_sends(TRAINING_BUILDERS[name](history))
    monkeypatch.setattr(training, "plain_figure", lambda data, layout, frames=None: go.Figure(data=data, layout=layout))
    assert fast == as_streamlit_sends(TRAINING_BUILDERS[name](history))


def test_a_labelled_line_is_what_plotlys_add_hline_makes():
    figure = go.Figure()
    line = dict(color="gray", dash="dash", width=1)
    figure.add_hline(y=0.05, line=line, annotation_text="t", annotation_position="top right", annotation_font_color="gray")
    line, note = training._hline(0.05, "t")
    assert figure.to_dict()["layout"]["shapes"] == [line] and figure.to_dict()["layout"]["annotations"] == [note]
