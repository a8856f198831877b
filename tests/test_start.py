"""sae.training.calibration: the calibrated start fires at the target rate wherever weights can make it, and nowhere else."""

import pytest
import torch

from sae.model import SAEConfig, layers_that_cannot_fire
from sae.training.calibration import SCALED_BY, TARGET_RATE, calibrate, layer_rates
from sae.training.loop import seeded_model


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    images = torch.zeros(8, 1, 32, 32)
    images[:, :, 8:24, 12:20] = torch.rand(8, 1, 16, 8)  # a stroke of ink on black, like a digit
    return images


@pytest.mark.parametrize("thresh, num_steps", [(1.0, 2), (2.0, 2)])
def test_every_reachable_layer_fires_near_the_target(batch, thresh, num_steps):
    model = seeded_model(SAEConfig(thresh=thresh, num_steps=num_steps), seed=0)
    before = layer_rates(model, batch)
    running = [b.clone() for b in model.buffers()]
    factors = calibrate(model, batch)
    after = layer_rates(model, batch)
    assert set(factors) == set(SCALED_BY)
    cannot = layers_that_cannot_fire(model.config.neuron_settings())
    for layer in SCALED_BY:
        if layer.startswith("dec") and cannot:
            assert after[layer] == 0.0  # nothing reaches the decoder past a dec0 that cannot fire
            assert factors[layer] == 1.0  # and what cannot fire is left as it was, not scaled up in vain
        else:
            assert TARGET_RATE / 1.6 <= after[layer] <= TARGET_RATE * 1.6, (layer, before[layer], after[layer])
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), running))  # BatchNorm's running statistics untouched
    if thresh == 1.0:
        assert before["latent"] < 0.01 < after["latent"]  # the tutorial's start: the latent code is silent
