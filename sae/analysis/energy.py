"""Synaptic operations counted from the actual spikes, and a compute-only energy estimate.

A spiking layer works only when a spike arrives: each input spike adds its weights
to every membrane it reaches, one accumulate (AC) per connection::

    ACs(layer)  = sum over the input spikes s of fan_out(s)
    fan_out     = out_features                                   (Linear)
                = C_out * (kernel taps of s that land on the output)  (Conv2d, ConvTranspose2d)

For a 3x3 kernel at stride 1 that is C_out * 9 away from the borders and fewer at
them; at stride 2 it is about C_out * 9 / 4 (a tap lands only every other pixel).
The counts here are exact for any stride and padding (see :func:`fan_out`).

The first conv sees analog pixels, so it multiplies: it costs its dense
multiply-accumulates (MACs) at every step.  The same network run as an ordinary,
non-spiking network does every connection once per pass::

    MACs(layer) = sum over every input element of fan_out  (= in * out for Linear)

Energy at 45 nm, fp32 (Horowitz, ISSCC 2014): 0.9 pJ per AC, 4.6 pJ per MAC::

    E_spiking = 0.9 pJ * ACs + 4.6 pJ * MACs(conv1) * T
    E_dense   = 4.6 pJ * MACs * passes                      (passes = 1 or T)

Compute only: memory access (fetching weights, reading and writing membranes),
often the larger cost in hardware, is left out, and so are the membrane updates
themselves (one leak multiply per neuron and step) and the BatchNorms (folded into
the weights at inference).  The numbers compare operation counts, not chips.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PJ_PER_AC = 0.9  # accumulate, 32-bit float add, 45 nm
PJ_PER_MAC = 4.6  # multiply-accumulate, 32-bit float (3.7 pJ multiply + 0.9 pJ add), 45 nm
SOURCE = "Horowitz, ISSCC 2014 (45 nm, fp32)"

# (layer with the weights, the spiking layer whose spikes it receives; None = the image's pixels).
# ``unflatten`` has no weights: each spike of ``linear`` reaches one ``dec0`` neuron (fan-out 1).
CONNECTIONS = (
    ("conv1", None), ("conv2", "enc1"), ("conv3", "enc2"), ("to_latent", "enc3"), ("from_latent", "latent"),
    ("unflatten", "linear"), ("deconv1", "dec0"), ("deconv2", "dec1"), ("deconv3", "dec2"),
)  # fmt: skip


@dataclass(frozen=True)
class LayerOps:
    """One connection's work: what feeds it, how many inputs arrived, what they cost."""

    layer: str
    source: str  # "image" or the spiking layer that feeds it
    kind: str  # "MAC" (analog input) or "AC" (spikes)
    inputs: int  # input spikes over all steps (for the image: pixels x steps)
    ops: int  # the spiking network's operations over all steps, of ``kind``
    dense_macs: int  # the same layer in a non-spiking network, one pass

    @property
    def joules(self) -> float:
        return self.ops * (PJ_PER_MAC if self.kind == "MAC" else PJ_PER_AC) * 1e-12


@dataclass(frozen=True)
class OpsReport:
    """Operation counts of one forward (one image) and what they would cost at 45 nm."""

    layers: tuple[LayerOps, ...]
    num_steps: int

    @property
    def synops(self) -> int:
        """Accumulates triggered by spikes, all layers, all steps."""
        return sum(r.ops for r in self.layers if r.kind == "AC")

    @property
    def spiking_macs(self) -> int:
        """The multiply-accumulates the spiking network still does (the first conv, every step)."""
        return sum(r.ops for r in self.layers if r.kind == "MAC")

    @property
    def dense_macs_one_pass(self) -> int:
        return sum(r.dense_macs for r in self.layers)

    @property
    def dense_macs_all_steps(self) -> int:
        return self.dense_macs_one_pass * self.num_steps

    @property
    def spiking_joules(self) -> float:
        return (self.synops * PJ_PER_AC + self.spiking_macs * PJ_PER_MAC) * 1e-12

    @property
    def dense_joules_one_pass(self) -> float:
        return self.dense_macs_one_pass * PJ_PER_MAC * 1e-12

    @property
    def dense_joules_all_steps(self) -> float:
        return self.dense_macs_all_steps * PJ_PER_MAC * 1e-12

    def rows(self) -> list[dict]:
        """One plain dict per connection, for a table or a CSV."""
        return [
            {
                "layer": r.layer,
                "input": r.source,
                "kind": r.kind,
                "inputs": r.inputs,
                "ops": r.ops,
                "dense MACs (1 pass)": r.dense_macs,
                "energy (nJ)": r.joules * 1e9,
            }
            for r in self.layers
        ]


def fan_out(module: nn.Module, in_shape: tuple[int, ...]) -> np.ndarray:
    """How many connections leave each input element of ``module`` (shape ``in_shape``, no batch).

    For a convolution, run it with every weight 1 on an input of ones: d(sum of the
    outputs)/d(input) counts, for each input pixel, the (output pixel, tap) pairs that
    use it: the taps cropped at the borders and the stride's gaps, exactly.
    """
    return _fan_out(_geometry(module), tuple(int(n) for n in in_shape)).copy()


def synaptic_ops(module: nn.Module, spikes) -> int:
    """Accumulates that ``spikes`` (``[T, *in_shape]``, 0/1) trigger in ``module``: sum of spikes x fan-out."""
    spikes = _as_numpy(spikes)
    per_element = spikes.sum(axis=0, dtype=np.int64)  # spikes over all steps, per input element
    return int((per_element * fan_out(module, spikes.shape[1:])).sum(dtype=np.int64))


def dense_macs(module: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of ``module`` as a dense layer, one pass over an input of ``in_shape``."""
    return int(fan_out(module, in_shape).sum(dtype=np.int64))


def count_operations(model: nn.Module, spikes: dict) -> OpsReport:
    """The operation counts of one forward of ``model`` (a SpikingAutoencoder).

    ``spikes[layer]`` is that spiking layer's spikes ``[T, *layer shape]`` (one image,
    no batch axis), as in ``InferenceResult.spikes``; enc1 .. dec2 are needed, all over
    the same T steps: the forward's num_steps, which the first conv's MACs follow.
    """
    needed = [source for _, source in CONNECTIONS if source is not None]
    if missing := [name for name in needed if name not in spikes]:
        raise ValueError(f"count_operations needs the spikes of {missing[0]!r}; got {sorted(spikes)}")
    arrays = {name: _as_numpy(spikes[name]) for name in needed}
    steps = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(steps.values())) != 1:
        raise ValueError(f"the layers' spikes cover different numbers of steps: {steps}")
    num_steps = steps[needed[0]]
    size = model.config.input_size
    rows = []
    for layer, source in CONNECTIONS:
        module = model.layers[layer]
        if source is None:
            shape = (1, size, size)
            macs = dense_macs(module, shape)
            rows.append(LayerOps(layer, "image", "MAC", int(np.prod(shape)) * num_steps, macs * num_steps, macs))
            continue
        s = arrays[source]
        dense = 0 if isinstance(module, nn.Unflatten) else dense_macs(module, s.shape[1:])  # a reshape costs nothing dense
        rows.append(LayerOps(layer, source, "AC", int(s.sum(dtype=np.int64)), synaptic_ops(module, s), dense))
    return OpsReport(tuple(rows), int(num_steps))


# --- geometry -----------------------------------------------------------------------


def _geometry(module: nn.Module) -> tuple:
    """A hashable description of what decides the fan-out (not the weights' values)."""
    if isinstance(module, nn.Linear):
        return ("linear", module.out_features)
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        if module.groups != 1:
            raise ValueError("grouped convolutions are not counted")
        kind = "conv" if isinstance(module, nn.Conv2d) else "convT"
        extra = tuple(module.output_padding) if kind == "convT" else ()
        return (kind, module.out_channels, tuple(module.kernel_size), tuple(module.stride), tuple(module.padding), tuple(module.dilation), extra)
    if isinstance(module, (nn.Unflatten, nn.Flatten, nn.Identity)):
        return ("one-to-one",)
    raise ValueError(f"no operation count for {type(module).__name__}")


@lru_cache(maxsize=64)
def _fan_out(geometry: tuple, in_shape: tuple[int, ...]) -> np.ndarray:
    kind = geometry[0]
    if kind == "linear":
        return np.full(in_shape, geometry[1], np.int64)
    if kind == "one-to-one":
        return np.ones(in_shape, np.int64)
    _, out_channels, kernel, stride, padding, dilation, output_padding = geometry
    channels, height, width = in_shape
    x = torch.ones(1, 1, height, width, dtype=torch.float64, requires_grad=True)
    w = torch.ones(1, 1, *kernel, dtype=torch.float64)
    if kind == "conv":
        y = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    else:
        y = F.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)
    (taps,) = torch.autograd.grad(y.sum(), x)
    per_pixel = taps[0, 0].round().to(torch.int64).numpy() * out_channels
    out = np.broadcast_to(per_pixel, (channels, height, width)).copy()
    out.setflags(write=False)  # cached and shared: callers get copies
    return out


def _as_numpy(spikes) -> np.ndarray:
    if torch.is_tensor(spikes):
        spikes = spikes.detach().to("cpu")
        return spikes.to(torch.int64).numpy() if spikes.dtype.is_floating_point else spikes.numpy()
    return np.asarray(spikes)
