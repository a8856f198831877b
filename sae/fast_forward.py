"""The fast training forward: the tutorial's loops, with the first convolution and BatchNorm run once.

The tutorial presents the same image at every one of the T steps, so ``conv1`` and
``bn1`` compute the same numbers T times.  Here they run once per batch::

    first = bn1(conv1(x))                                    # once: the same at every step
    for t in 0..T-1:  latent[t] = encoder_after_bn1(first)    # the tutorial's first loop, from enc1 on
    outputs = decoder(latent)                                 # the tutorial's second loop

What changes, and what does not:

- BatchNorm normalises ``first`` with the same batch statistics the T calls would
  compute, and its running statistics get the same T updates
  (:func:`batch_norm_repeated`).
- ``conv1``'s gradient is one backward of the sum of the T steps' gradients instead
  of the sum of T backwards: the same math, another fp32 summation order.  So a
  membrane within rounding of a threshold can fire on one path and not the other;
  tests/test_engine.py holds this path to the tutorial's code within tolerances that
  still catch every real mistake (outputs, spike flips, gradients, running
  statistics, a 300-step training run).

Tried and measured slower on this 2-core CPU: running each layer for all T steps at
once (one convolution on B*T images): the batched convolutions took 1.6x as long as
T convolutions of B (a step's activations fit in cache, all T steps' do not), and
channels-last memory made no difference.
"""

from __future__ import annotations

import torch
from torch import nn

from sae.model import SpikingAutoencoder

AFTER_FIRST = 2  # encoder modules from enc1 on (after conv1, bn1)


def batch_norm_repeated(bn: nn.BatchNorm2d, h: torch.Tensor, repeats: int) -> torch.Tensor:
    """``bn(h)`` as if called ``repeats`` times on the same ``h``: the same output (in training,
    normalised by the batch statistics of ``h``), and ``repeats`` updates of the running statistics."""
    if not bn.training:
        return bn(h)
    # momentum 1: the kernel leaves the batch mean and unbiased variance in these buffers.
    mean, var = h.new_zeros(bn.num_features), h.new_ones(bn.num_features)
    out = nn.functional.batch_norm(h, mean, var, bn.weight, bn.bias, training=True, momentum=1.0, eps=bn.eps)
    with torch.no_grad():
        for _ in range(repeats):
            bn.num_batches_tracked += 1
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            bn.running_var.mul_(1 - momentum).add_(var, alpha=momentum)
    return out


def output_membranes(model: SpikingAutoencoder, x: torch.Tensor, record: dict | None = None) -> torch.Tensor:
    """The output membrane at every step, ``[T, B, 1, H, W]``: what ``model(x, every_step=True)``
    returns, with the first conv + BatchNorm once.  A ``record`` (``{"spikes": {}, "mem": {}}``)
    receives each spiking layer's per-step spikes and membranes, as the model's trace does."""
    steps = model.config.num_steps
    first = batch_norm_repeated(model.layers["bn1"], model.layers["conv1"](x), repeats=steps)
    modules, mem = list(model.encoder)[AFTER_FIRST:], {}
    latent = torch.stack([model.run_step(modules, first, mem, None, None, record) for _ in range(steps)])
    return model.decode_steps(latent, None, None, record)
