"""Synaptic operations counted by hand on tiny layers, against independent counts on the real
model, and the energy arithmetic (0.9 pJ per accumulate, 4.6 pJ per multiply-accumulate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sae.analysis import energy
from sae.analysis.inference import run_digit
from sae.data.mnist import mnist_tensors
from sae.io.checkpoints import default_checkpoint_path, load_checkpoint


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_checkpoint_path()).model.eval()


@pytest.fixture(scope="module")
def digit():
    return mnist_tensors(train=False)[0][:1]


def test_a_3x3_conv_at_stride_1_by_hand():
    """Conv2d(1 -> 2, 3x3, stride 1, padding 1) on a 3x3 input: a corner pixel reaches 4
    outputs per channel, an edge pixel 6, the centre 9; two output channels double it."""
    conv = nn.Conv2d(1, 2, 3, stride=1, padding=1)
    assert energy.fan_out(conv, (1, 3, 3))[0].tolist() == [[8, 12, 8], [12, 18, 12], [8, 12, 8]]
    spikes = np.zeros((2, 1, 3, 3), np.uint8)  # [T, C, H, W]
    spikes[0, 0, 1, 1] = 1  # the centre, once: 18
    spikes[:, 0, 0, 2] = 1  # a corner, at both steps: 2 x 8
    assert energy.synaptic_ops(conv, spikes) == 18 + 16
    assert energy.dense_macs(conv, (1, 3, 3)) == 2 * (4 * 4 + 6 * 4 + 9)  # every pixel once: 98


def test_a_stride_2_conv_by_hand():
    """Conv2d(3x3, stride 2, padding 1) on 4 pixels per side gives 2 outputs per side (windows
    centred on 0 and 2): pixels 0, 2, 3 fall in one window, pixel 1 in two."""
    conv = nn.Conv2d(2, 5, 3, stride=2, padding=1)
    per_side = np.array([1, 2, 1, 1])
    fan = energy.fan_out(conv, (2, 4, 4))
    assert np.array_equal(fan[0], 5 * np.outer(per_side, per_side)) and np.array_equal(fan[1], fan[0])
    spikes = np.zeros((1, 2, 4, 4), np.uint8)
    spikes[0, 1, 1, 1] = 1  # in 2 x 2 windows, 5 channels: 20
    spikes[0, 0, 3, 0] = 1  # 1 x 1 window: 5
    assert energy.synaptic_ops(conv, spikes) == 25


def test_a_transposed_conv_by_hand():
    """ConvTranspose2d(3x3, stride 2, padding 1, output_padding 1), 2 -> 4 pixels per side: input
    pixel i paints outputs 2i-1, 2i, 2i+1; for i = 0 the first falls off the border (2 left)."""
    deconv = nn.ConvTranspose2d(1, 3, 3, stride=2, padding=1, output_padding=1)
    assert energy.fan_out(deconv, (1, 2, 2))[0].tolist() == [[12, 18], [18, 27]]
    spikes = np.ones((3, 1, 2, 2), np.uint8)
    assert energy.synaptic_ops(deconv, spikes) == 3 * (12 + 18 + 18 + 27)
    # One dense pass does every connection once: 1 input channel x 75.
    assert energy.dense_macs(deconv, (1, 2, 2)) == 75


def test_a_linear_layer_and_a_reshape_by_hand():
    linear = nn.Linear(4, 7)
    spikes = np.array([[1, 0, 1, 0], [0, 0, 1, 0]], np.uint8)  # 3 spikes
    assert energy.synaptic_ops(linear, spikes) == 3 * 7
    assert energy.dense_macs(linear, (4,)) == 28
    assert energy.synaptic_ops(nn.Unflatten(1, (2, 2)), spikes) == 3  # one target each
    with pytest.raises(ValueError, match="no operation count"):
        energy.fan_out(nn.ReLU(), (4,))


@pytest.mark.parametrize(
    "layer, shape",
    [
        ("conv1", (1, 32, 32)),
        ("conv2", (32, 16, 16)),
        ("conv3", (64, 8, 8)),
        ("deconv1", (128, 4, 4)),
        ("deconv2", (64, 8, 8)),
        ("deconv3", (32, 16, 16)),
    ],
)
def test_dense_counts_match_the_products_a_convolution_really_does(model, layer, shape):
    """Independently: unfold the input with its zero padding; every (non-padding input,
    weight, output channel) product is one MAC.  A transposed conv is the adjoint of a conv,
    so its products are those of the conv it inverts, read backwards."""
    module = model.layers[layer]
    c_in, h, w = shape
    if isinstance(module, nn.Conv2d):
        patches = F.unfold(torch.ones(1, 1, h, w), module.kernel_size, padding=module.padding, stride=module.stride)
        products = int(patches.sum()) * c_in * module.out_channels
    else:
        out = module(torch.zeros(1, c_in, h, w)).shape[-1]
        patches = F.unfold(torch.ones(1, 1, out, out), module.kernel_size, padding=module.padding, stride=module.stride)
        products = int(patches.sum()) * c_in * module.out_channels
    assert energy.dense_macs(module, shape) == products


def test_the_shipped_network_counted_layer_by_layer(model, digit):
    """Each connection's accumulates equal the sum of a same-geometry layer with all-ones
    weights applied to the real spikes (each spike adds 1 per connection it reaches)."""
    result = run_digit(model, digit)
    report = energy.count_operations(model, result.spikes)
    by_layer = {r.layer: r for r in report.layers}
    assert [r.layer for r in report.layers] == [c[0] for c in energy.CONNECTIONS]
    for row in report.layers[1:]:
        module = model.layers[row.layer]
        s = torch.as_tensor(result.spikes[row.source], dtype=torch.float64)
        if isinstance(module, nn.Conv2d):
            ones = torch.ones(module.out_channels, module.in_channels, *module.kernel_size, dtype=torch.float64)
            expected = F.conv2d(s, ones, stride=module.stride, padding=module.padding).sum()
        elif isinstance(module, nn.ConvTranspose2d):
            ones = torch.ones(module.in_channels, module.out_channels, *module.kernel_size, dtype=torch.float64)
            expected = F.conv_transpose2d(s, ones, stride=module.stride, padding=module.padding, output_padding=module.output_padding).sum()
        elif isinstance(module, nn.Linear):
            expected = s.sum() * module.out_features
        else:
            expected = s.sum()
        assert row.kind == "AC" and row.ops == int(expected) > 0, row.layer
        assert row.inputs == int(s.sum())
    # The first conv multiplies analog pixels at every step: 32 channels x 47 x 47 taps inside the image.
    assert by_layer["conv1"].kind == "MAC" and by_layer["conv1"].dense_macs == 32 * 47 * 47
    assert by_layer["conv1"].ops == 5 * 32 * 47 * 47 and report.spiking_macs == by_layer["conv1"].ops
    # One dense pass, by hand: per side, a 3x3 stride-2 conv from 2n pixels has 3n - 1 taps inside.
    dense = {
        "conv1": 32 * 47**2,
        "conv2": 64 * 32 * 23**2,
        "conv3": 128 * 64 * 11**2,
        "to_latent": 2048 * 32,
        "from_latent": 32 * 2048,
        "unflatten": 0,
        "deconv1": 128 * 64 * 11**2,
        "deconv2": 64 * 32 * 23**2,
        "deconv3": 32 * 47**2,
    }
    assert {r.layer: r.dense_macs for r in report.layers} == dense
    assert report.dense_macs_one_pass == 4_421_696 and report.dense_macs_all_steps == 5 * 4_421_696
    assert report.synops == sum(r.ops for r in report.layers[1:])
    # Energy: 0.9 pJ per AC, 4.6 pJ per MAC.
    assert report.spiking_joules == pytest.approx((report.synops * 0.9 + report.spiking_macs * 4.6) * 1e-12)
    assert report.dense_joules_one_pass == pytest.approx(4_421_696 * 4.6e-12)
    assert report.dense_joules_all_steps == pytest.approx(5 * 4_421_696 * 4.6e-12)
    assert sum(r.joules for r in report.layers) == pytest.approx(report.spiking_joules)
    assert report.spiking_joules < report.dense_joules_one_pass  # the point of spikes, on this digit
    rows = report.rows()
    assert rows[0]["layer"] == "conv1" and rows[0]["ops"] == 5 * 32 * 47 * 47


def test_fewer_spikes_fewer_operations(model, digit):
    counts = []
    for thresh in (0.5, 1.0, 2.0, 4.0):
        result = run_digit(model, digit, model.config.neuron_settings(thresh=thresh))
        counts.append(energy.count_operations(model, result.spikes).synops)
    assert counts == sorted(counts, reverse=True) and counts[0] > 2 * counts[-1]
    runs = [run_digit(model, digit, model.config.neuron_settings(num_steps=n)) for n in (2, 5, 10)]
    reports = [energy.count_operations(model, r.spikes) for r in runs]
    assert [r.num_steps for r in reports] == [2, 5, 10]
    assert [r.spiking_joules for r in reports] == sorted(r.spiking_joules for r in reports)


def test_silence_costs_only_the_first_convolution(model):
    shapes = {
        "enc1": (32, 16, 16),
        "enc2": (64, 8, 8),
        "enc3": (2048,),
        "latent": (32,),
        "linear": (2048,),
        "dec0": (128, 4, 4),
        "dec1": (64, 8, 8),
        "dec2": (32, 16, 16),
    }
    silent = {name: np.zeros((3, *shape), np.uint8) for name, shape in shapes.items()}
    report = energy.count_operations(model, silent)
    assert report.num_steps == 3 and report.synops == 0 and report.spiking_macs == 3 * 32 * 47 * 47
    with pytest.raises(ValueError, match="spikes of 'dec2'"):
        energy.count_operations(model, {k: v for k, v in silent.items() if k != "dec2"})
    with pytest.raises(ValueError, match="different numbers of steps.*'dec1': 4"):
        energy.count_operations(model, {**silent, "dec1": np.zeros((4, 64, 8, 8), np.uint8)})
