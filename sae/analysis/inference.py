"""One digit through the network, with everything the Explore page shows about it.

``run_digit`` runs a ``[1, 1, H, W]`` image through a model at some
:class:`~sae.model.NeuronSettings` (its own by default), times the forward and returns an
:class:`InferenceResult` holding plain numpy arrays (so a UI can cache it, plot it
and export it without touching torch).  The export helpers turn a result into an
NPZ file (the whole trace) and a CSV (the latent spike raster).
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from sae.io.tables import raster_csv
from sae.model import LAYER_NAMES, SPIKING_LAYERS, NeuronSettings


@dataclass(frozen=True)
class InferenceResult:
    """What one forward did, as numpy arrays with the batch axis removed.

    ``spikes[layer]`` and ``mem[layer]`` are ``[T, *layer shape]`` (spikes as uint8),
    ``recon_steps`` is the output membrane after every step ``[T, H, W]`` and
    ``recon`` the last of them, the network's answer; ``settings`` what the layers ran at.
    """

    input: np.ndarray
    recon_steps: np.ndarray
    spikes: dict[str, np.ndarray]
    mem: dict[str, np.ndarray]
    settings: NeuronSettings
    forward_ms: float
    device: str
    mse: float = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "mse", float(np.mean((self.recon - self.input) ** 2)))

    @property
    def recon(self) -> np.ndarray:
        return self.recon_steps[-1]

    @property
    def num_steps(self) -> int:
        return self.recon_steps.shape[0]

    def step_mse(self) -> list[float]:
        """The reconstruction's MSE after each step (the last one is ``mse``)."""
        return [float(np.mean((s - self.input) ** 2)) for s in self.recon_steps]

    @property
    def error(self) -> np.ndarray:
        """Reconstruction minus input: positive where the network paints too much ink."""
        return self.recon - self.input

    def neurons(self, layer: str) -> int:
        return int(np.prod(self.spikes[layer].shape[1:]))

    def spike_count(self, layer: str) -> int:
        return int(self.spikes[layer].sum(dtype=np.int64))

    def firing_rate(self, layer: str) -> float:
        """Spikes per neuron per step: 0 means silent, 1 means firing every step."""
        return self.spike_count(layer) / (self.neurons(layer) * self.num_steps)

    def spike_counts(self) -> dict[str, int]:
        return {layer: self.spike_count(layer) for layer in SPIKING_LAYERS}

    def firing_rates(self) -> dict[str, float]:
        return {layer: self.firing_rate(layer) for layer in SPIKING_LAYERS}


@contextlib.contextmanager
def single_thread():
    """Run the block with one intra-op thread, then restore this thread's setting.

    One 32x32 image is far too little work to split: two OpenMP threads spend most of
    a forward waiting on each other, and on a busy machine one of them waits for a core
    that another process holds.  With PyTorch's OpenMP backend a thread that has already
    run parallel work (e.g. a training thread) keeps its own count; only threads starting
    during the block see 1.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_digit(model: torch.nn.Module, digit: torch.Tensor, settings: NeuronSettings | None = None) -> InferenceResult:
    """Run ``digit`` ([1, 1, H, W] in [0, 1]) through ``model`` on the model's device.

    ``settings`` default to the checkpoint's own.  The forward time covers the
    network only (device synchronised), not the copy of the trace to numpy.
    """
    if digit.ndim != 4 or digit.shape[:2] != (1, 1):
        raise ValueError(f"expected one image of shape [1, 1, H, W], got {tuple(digit.shape)}")
    settings = model.config.neuron_settings() if settings is None else settings
    device = next(model.parameters()).device
    x = digit.detach().to(device=device, dtype=torch.float32)
    with single_thread(), torch.inference_mode():
        _synchronize(device)
        start = time.perf_counter()
        _, trace = model(x, settings=settings, trace=True, every_step=True)
        _synchronize(device)
        forward_ms = (time.perf_counter() - start) * 1000
    spikes = {name: trace.spikes[name][:, 0].to("cpu", torch.uint8).numpy() for name in LAYER_NAMES}
    mem = {name: trace.mem[name][:, 0].to("cpu", torch.float32).numpy() for name in LAYER_NAMES}
    return InferenceResult(
        input=x[0, 0].cpu().numpy(),
        recon_steps=mem["output"][:, 0],
        spikes=spikes,
        mem=mem,
        settings=settings,
        forward_ms=forward_ms,
        device=str(device),
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def trace_npz_bytes(result: InferenceResult) -> bytes:
    """The whole trace as a compressed ``.npz``: input, reconstructions, and per layer
    ``spikes_<layer>`` / ``mem_<layer>`` of shape [T, ...], plus the settings used."""
    arrays = {
        "input": result.input,
        "recon": result.recon,
        "recon_steps": result.recon_steps,
        "thresh": np.float32(result.settings.thresh),
        "beta": np.float32(result.settings.beta),
        "num_steps": np.int64(result.settings.num_steps),
        "mse": np.float32(result.mse),
    }
    for name in LAYER_NAMES:
        arrays[f"spikes_{name}"] = result.spikes[name]
        arrays[f"mem_{name}"] = result.mem[name]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def latent_raster_csv(result: InferenceResult) -> str:
    """The latent spike raster as CSV: one row per latent neuron, one 0/1 column per step (step_1 first)."""
    return raster_csv(result.spikes["latent"])
