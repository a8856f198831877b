"""sae.plots.inside: the figures show the trace's numbers, name their axes, and play in the browser."""

import numpy as np
import plotly.io as pio
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae.analysis.inference import run_digit
from sae.model import LAYER_NAMES, SPIKING_LAYERS, SAEConfig, SpikingAutoencoder
from sae.plots import inside

STEPS = 4


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    model = SpikingAutoencoder(SAEConfig(latent_dim=16)).eval()
    image = torch.zeros(1, 1, 32, 32)
    image[0, 0, 5:27, 13:19] = 1.0
    return run_digit(model, image, model.config.neuron_settings(thresh=0.15, num_steps=STEPS))


def all_figures(result):
    figures = {
        "digit_image": inside.digit_image(result.input),
        "latent_raster": inside.latent_raster(result),
        "latent_membrane": inside.latent_membrane(result),
        "layer_activity": inside.layer_activity(result),
        "reconstruction_playback": inside.reconstruction_playback(result),
        "digit_comparison": inside.digit_comparison(result),
    }
    figures.update({f"layer_{name}": inside.layer_membrane(result, name) for name in LAYER_NAMES})
    return figures


def test_every_figure_has_a_title_named_axes_hover_values_and_serialises(result):
    for name, fig in all_figures(result).items():
        layout = fig.layout
        titles = [a.text for a in layout.annotations or ()] + [layout.title.text]
        assert any(titles), f"{name} has no title"
        for trace in fig.data:
            assert trace.hovertemplate and "%{" in trace.hovertemplate, f"{name}: a trace without hover values"
        axis_titles = [axis.title.text for axis in (layout.xaxis, layout.yaxis)]
        if not name.startswith("layer_"):  # tiled maps hide their meaningless pixel axes, hover names the neuron
            assert all(axis_titles), f"{name}: unnamed axis {axis_titles}"
        pio.to_json(fig, validate=True)


def test_latent_raster_shows_neurons_by_steps_of_spikes_with_membrane_on_hover(result):
    fig = inside.latent_raster(result)
    heat = fig.data[0]
    assert np.array_equal(np.asarray(heat.z), result.spikes["latent"].T)
    assert list(heat.x) == list(range(1, STEPS + 1))
    assert np.allclose(np.asarray(heat.customdata), result.mem["latent"].T)
    assert fig.layout.xaxis.title.text == "time step" and fig.layout.yaxis.title.text == "latent neuron"
    assert result.spikes["latent"].sum() > 0, "the fixture should make the latent layer fire"


def test_latent_membrane_puts_white_exactly_at_the_threshold(result):
    fig = inside.latent_membrane(result)
    heat = fig.data[0]
    assert np.allclose(np.asarray(heat.z), result.mem["latent"].T)
    stops = {color: position for position, color in heat.colorscale}
    assert stops[inside.AT] == pytest.approx((result.settings.thresh - heat.zmin) / (heat.zmax - heat.zmin))
    labels = list(heat.colorbar.ticktext)
    assert any("θ" in label and f"{result.settings.thresh:g}" in label for label in labels)
    # every cell above the threshold is a spike (reset by subtraction happens a step later)
    assert np.array_equal(result.mem["latent"] > result.settings.thresh, result.spikes["latent"].astype(bool))


def test_layer_activity_bars_are_firing_rates_in_percent(result):
    bar = inside.layer_activity(result).data[0]
    assert list(bar.x) == list(SPIKING_LAYERS)
    assert np.allclose(bar.y, [100 * result.firing_rate(name) for name in SPIKING_LAYERS])
    assert list(bar.text) == [f"{result.spike_count(name):,}" for name in SPIKING_LAYERS]


@pytest.mark.parametrize("layer", ["enc1", "enc3", "latent", "linear", "dec2", "output"])
def test_layer_membrane_has_one_frame_per_step_and_spike_counts_beside(result, layer):
    fig = inside.layer_membrane(result, layer)
    assert [frame.name for frame in fig.frames] == [str(t) for t in range(1, STEPS + 1)]
    for t, frame in enumerate(fig.frames):
        assert np.array_equal(np.asarray(frame.data[0].z), inside.tile_maps(result.mem[layer][t]), equal_nan=True)
        assert list(frame.traces) == [0]
    counts = inside.tile_maps(result.spikes[layer].sum(axis=0).astype(np.float32))
    assert np.array_equal(np.asarray(fig.data[1].z), counts, equal_nan=True)
    slider = fig.layout.sliders[0]
    assert [list(step.args[0]) for step in slider.steps] == [[str(t)] for t in range(1, STEPS + 1)]
    assert slider.active == STEPS - 1
    assert [b.method for b in fig.layout.updatemenus[0].buttons] == ["animate", "animate"]


def test_unknown_layer_is_refused(result):
    with pytest.raises(ValueError, match="unknown layer"):
        inside.layer_membrane(result, "enc9")


def test_playback_frames_are_the_reconstruction_after_each_step(result):
    fig = inside.reconstruction_playback(result)
    assert len(fig.frames) == STEPS
    for t, frame in enumerate(fig.frames):
        assert np.array_equal(np.asarray(frame.data[0].z), result.recon_steps[t])
        mse = float(np.mean((result.recon_steps[t] - result.input) ** 2))
        assert f"step {t + 1} of {STEPS}" in frame.layout.title.text and f"{mse:.4f}" in frame.layout.title.text
    assert np.array_equal(np.asarray(fig.data[0].z), result.recon)
    play = fig.layout.updatemenus[0].buttons[0]
    assert play.args[0] is None and play.args[1]["frame"]["redraw"] is True


def test_comparison_shows_input_reconstruction_and_their_difference(result):
    fig = inside.digit_comparison(result)
    z = [np.asarray(trace.z) for trace in fig.data]
    assert np.array_equal(z[0], result.input) and np.array_equal(z[1], result.recon)
    assert np.allclose(z[2], result.recon - result.input)
    assert f"{result.mse:.4f}" in fig.layout.annotations[2].text


@settings(max_examples=40, deadline=None)
@given(channels=st.integers(1, 40), height=st.integers(1, 6), width=st.integers(1, 6))
def test_tiling_places_every_value_once_and_the_index_finds_it(channels, height, width):
    values = np.random.default_rng(channels).random((channels, height, width)).astype(np.float32)
    tiled = inside.tile_maps(values)
    index = inside.tile_index(values.shape)
    cells = ~np.isnan(tiled)
    assert cells.sum() == values.size
    assert np.array_equal(np.sort(tiled[cells]), np.sort(values.ravel()))
    channel, row, col, neuron = (index[..., k][cells] for k in range(4))
    assert np.array_equal(tiled[cells], values[channel, row, col])
    assert np.array_equal(np.sort(neuron), np.arange(values.size))
    assert (index[~cells] == -1).all()


@settings(max_examples=30, deadline=None)
@given(size=st.integers(1, 3000))
def test_vectors_wrap_into_a_block_padded_with_blanks(size):
    values = np.arange(size, dtype=np.float32)
    tiled = inside.tile_maps(values)
    assert np.array_equal(tiled[~np.isnan(tiled)], values)
    assert tiled.size - size < tiled.shape[1], "at most one partly filled row"
    index = inside.tile_index((size,))
    assert np.array_equal(index[..., 3][~np.isnan(tiled)], np.arange(size))
