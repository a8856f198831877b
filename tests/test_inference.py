"""sae.analysis.inference: one digit through the model, its numbers, and the exports."""

import csv
import io

import numpy as np
import pytest
import torch

from sae.analysis.inference import SPIKING_LAYERS, latent_raster_csv, run_digit, single_thread, trace_npz_bytes
from sae.io.fingerprints import digit_fingerprint
from sae.limits import THRESH
from sae.model import LAYER_NAMES, NeuronSettings, SAEConfig, SpikingAutoencoder

LAYER_SHAPES = {
    "enc1": (32, 16, 16),
    "enc2": (64, 8, 8),
    "enc3": (128, 4, 4),
    "latent": (16,),
    "linear": (2048,),
    "dec0": (128, 4, 4),
    "dec1": (64, 8, 8),
    "dec2": (32, 16, 16),
    "output": (1, 32, 32),
}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SpikingAutoencoder(SAEConfig(latent_dim=16, num_steps=4)).eval()


@pytest.fixture(scope="module")
def digit():
    torch.manual_seed(1)
    image = torch.zeros(1, 1, 32, 32)
    image[0, 0, 6:26, 12:20] = torch.rand(20, 8)
    return image


def test_result_holds_numpy_arrays_of_every_layer_without_the_batch_axis(model, digit):
    result = run_digit(model, digit, model.config.neuron_settings(num_steps=3, thresh=0.2))
    assert result.input.shape == (32, 32) and result.recon_steps.shape == (3, 32, 32)
    for name in LAYER_NAMES:
        assert result.spikes[name].shape == (3, *LAYER_SHAPES[name])
        assert result.mem[name].shape == (3, *LAYER_SHAPES[name])
        assert result.spikes[name].dtype == np.uint8 and result.mem[name].dtype == np.float32
    assert np.array_equal(result.input, digit[0, 0].numpy())
    assert result.device == "cpu" and result.forward_ms > 0


def test_reconstruction_is_the_models_output_at_the_same_settings(model, digit):
    settings = NeuronSettings(thresh=0.3, beta=0.8, num_steps=6)
    result = run_digit(model, digit, settings)
    with torch.no_grad():
        expected = model(digit, settings=settings, every_step=True)
    assert np.allclose(result.recon_steps, expected[:, 0, 0].numpy(), atol=1e-6)
    assert np.allclose(result.recon, expected[-1, 0, 0].numpy(), atol=1e-6)
    assert result.mse == pytest.approx(float(((expected[-1, 0, 0] - digit[0, 0]) ** 2).mean()), rel=1e-5)


def test_missing_settings_fall_back_to_the_checkpoints_config(model, digit):
    result = run_digit(model, digit)
    assert result.settings == NeuronSettings(thresh=1.0, beta=0.5, num_steps=4) and result.num_steps == 4
    assert result.recon_steps.shape[0] == 4


def test_spike_counts_and_rates_match_the_models_trace(model, digit):
    result = run_digit(model, digit, model.config.neuron_settings(thresh=0.1, num_steps=5))
    with torch.no_grad():
        _, trace = model(digit, settings=model.config.neuron_settings(thresh=0.1, num_steps=5), trace=True)
    rates = trace.spike_rates()
    assert set(result.firing_rates()) == set(SPIKING_LAYERS) == set(rates)
    for name in SPIKING_LAYERS:
        assert result.firing_rate(name) == pytest.approx(rates[name])
        assert result.spike_count(name) == int(trace.spikes[name].sum())
    assert sum(result.spike_counts().values()) > 0, "a low threshold should make something fire"


def test_the_highest_threshold_fires_less_in_every_layer(model, digit):
    trained, high = run_digit(model, digit).spike_counts(), run_digit(model, digit, model.config.neuron_settings(thresh=THRESH.high)).spike_counts()
    assert all(high[layer] <= trained[layer] for layer in trained)
    assert sum(high.values()) < sum(trained.values())


def test_rejects_anything_but_one_image(model):
    with pytest.raises(ValueError, match=r"\[1, 1, H, W\]"):
        run_digit(model, torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError):
        run_digit(model, torch.zeros(32, 32))


def test_single_thread_restores_the_callers_setting():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that "back to the caller's setting" is not 1 == 1
    try:
        with single_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with single_thread():
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_npz_export_round_trips_the_whole_trace(model, digit):
    result = run_digit(model, digit, model.config.neuron_settings(thresh=0.2, num_steps=3))
    archive = np.load(io.BytesIO(trace_npz_bytes(result)))
    assert np.array_equal(archive["input"], result.input)
    assert np.array_equal(archive["recon_steps"], result.recon_steps)
    for name in LAYER_NAMES:
        assert np.array_equal(archive[f"spikes_{name}"], result.spikes[name])
        assert np.array_equal(archive[f"mem_{name}"], result.mem[name])
    assert float(archive["thresh"]) == pytest.approx(0.2) and int(archive["num_steps"]) == 3


def test_raster_csv_has_one_row_per_latent_neuron_and_one_column_per_step(model, digit):
    result = run_digit(model, digit, model.config.neuron_settings(thresh=0.1, num_steps=4))
    rows = list(csv.reader(io.StringIO(latent_raster_csv(result))))
    assert rows[0] == ["neuron", "step_1", "step_2", "step_3", "step_4"]
    assert len(rows) == 1 + 16
    values = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert np.array_equal(values, result.spikes["latent"].T)
    assert [int(row[0]) for row in rows[1:]] == list(range(16))


def test_fingerprint_follows_content_not_identity():
    a = torch.zeros(1, 1, 32, 32)
    b = a.clone()
    assert digit_fingerprint(a) == digit_fingerprint(b) == digit_fingerprint(a.numpy())
    b[0, 0, 3, 3] = 0.5
    assert digit_fingerprint(a) != digit_fingerprint(b)
