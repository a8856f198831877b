"""A start where spikes flow: before the first step, make every layer fire at a target rate.

At the tutorial's initialisation the spikes thin out layer after layer, and at some
settings (thresh 2, or one time step) none reach the decoder: then only the last
bias gets a gradient, and a student reads "this setting cannot learn" when what
failed is the start.  A LIF with threshold θ and input I behaves like one with
threshold 1 and input I/θ, and every LIF here but one sits behind a learnable scale
(a BatchNorm weight, or a Linear layer), so that scale can be set where spikes flow.

``calibrate`` does it on one batch of training images, in signal order (each layer
sees the calibrated layers before it): for each spiking layer it finds, by bisection
on a log scale, the factor on the scale in front of it that makes the layer fire at
``target`` of its neuron-steps, and multiplies it in.  This is LSUV (Mishkin & Matas,
2016) with the firing rate in place of the variance.

``dec0`` has no weights in front of it (its input is the linear layer's spikes): it
is reached through the linear layer's rate only, and at some settings it cannot fire
at all (``sae.model.layers_that_cannot_fire``).
"""

from __future__ import annotations

import torch
from torch import nn

from sae.model import SpikingAutoencoder, buffers_kept

# Each calibrated layer and the module whose weight scales its input.
SCALED_BY = {"enc1": "bn1", "enc2": "bn2", "enc3": "bn3", "latent": "to_latent", "linear": "from_latent", "dec1": "bn4", "dec2": "bn5"}
TARGET_RATE = 0.15  # about what the trained models fire at (checkpoints/README.md)
FACTOR_RANGE = (1 / 16, 64.0)
BISECTIONS = 7  # the factor to within 2**(10/128), about 6 %


@torch.no_grad()
def layer_rates(model: SpikingAutoencoder, images: torch.Tensor) -> dict[str, float]:
    """Each spiking layer's firing rate on ``images`` as the first training step sees them (batch statistics),
    leaving BatchNorm's running statistics as they were."""
    with buffers_kept(model):
        _, trace = model.train()(images, trace=True)
    return trace.spike_rates()


@torch.no_grad()
def calibrate(model: SpikingAutoencoder, images: torch.Tensor, target: float = TARGET_RATE) -> dict[str, float]:
    """Scale ``model`` in place so each layer of ``SCALED_BY`` fires at about ``target`` on ``images``.

    Returns the factor applied per layer: 1.0 where the rate was already within a
    factor of 1.5 of the target, and where even the largest factor leaves the layer all
    but silent (behind a dec0 that cannot fire, its input is the same for every image:
    scaling it up only moves the output away from the data)."""
    factors = {}
    for layer, owner in SCALED_BY.items():
        module = model.layers[owner]
        originals = [p.clone() for p in _scaled(module)]

        def set_factor(factor: float, module=module, originals=originals) -> None:
            for p, p0 in zip(_scaled(module), originals):
                p.copy_(p0 * factor)

        def rate_at(factor: float, layer=layer) -> float:
            set_factor(factor)
            return layer_rates(model, images)[layer]

        if target / 1.5 <= rate_at(1.0) <= target * 1.5:
            factors[layer] = 1.0
            continue
        if rate_at(FACTOR_RANGE[1]) < target / 10:  # silent whatever the scale (its input never changes): leave it
            factors[layer] = 1.0
            set_factor(1.0)
            continue
        low, high = FACTOR_RANGE
        for _ in range(BISECTIONS):  # the rate grows with the factor: bisect log(factor)
            middle = (low * high) ** 0.5
            low, high = (middle, high) if rate_at(middle) < target else (low, middle)
        factors[layer] = (low * high) ** 0.5
        set_factor(factors[layer])
    return factors


def _scaled(module: nn.Module) -> list[torch.Tensor]:
    """What multiplies a layer's input: a BatchNorm's weight, or a Linear's weight and bias."""
    return [module.weight] if isinstance(module, nn.BatchNorm2d) else [module.weight, module.bias]
