"""Explore's figures skip plotly.py's validation for speed; the browser must get the same figure."""

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io
import plotly.tools
import pytest
import torch

from sae.inference import run_digit
from sae.model import SAEConfig, SpikingAutoencoder
from sae.plots import inside


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    model = SpikingAutoencoder(SAEConfig()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return run_digit(model, torch.rand(1, 1, 32, 32), num_steps=4)


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
