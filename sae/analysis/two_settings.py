"""One digit under two settings (the Compare page's A/B view), and what differs between them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sae.analysis.inference import InferenceResult, run_digit
from sae.model import SPIKING_LAYERS, NeuronSettings


@dataclass(frozen=True, eq=False)
class ABResult:
    """Two settings on the same digit (each what the Explore page shows), and what differs."""

    a: InferenceResult
    b: InferenceResult

    @property
    def mse_change(self) -> float:
        return self.b.mse - self.a.mse

    def rate_changes(self) -> dict:
        """B's firing rate minus A's, per spiking layer."""
        a, b = self.a.firing_rates(), self.b.firing_rates()
        return {n: b[n] - a[n] for n in SPIKING_LAYERS}

    def reconstruction_change(self) -> np.ndarray:
        """B's reconstruction minus A's, pixel by pixel."""
        return self.b.recon - self.a.recon

    def latent_flips(self) -> int:
        """Latent (step, neuron) pairs that fire in one setting and not the other, over the steps both ran."""
        t = min(self.a.num_steps, self.b.num_steps)
        return int(np.sum(self.a.spikes["latent"][:t] != self.b.spikes["latent"][:t]))


def ab_compare(model, digit: torch.Tensor, a: NeuronSettings, b: NeuronSettings) -> ABResult:
    """One digit ([1, 1, H, W]) through the traced forward at setting A and at setting B."""
    return ABResult(run_digit(model, digit, a), run_digit(model, digit, b))
