"""The fast path: the same model and arithmetic, compiled with ``torch.compile``.

Inductor fuses the element-wise LIF updates, which are most of the eager time on a
CPU; the model code is unchanged, so the outputs match the eager model (tests hold
both against the tutorial).  Compiled graphs are cached on disk by Inductor, so
only the first run on a machine pays the compile time.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from sae.train import reconstruction_loss

# Keep Inductor's cache with the project unless the user chose a place.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "inductor"))


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` compiled for fixed shapes (one graph per batch size and setting)."""
    return torch.compile(model, dynamic=False)


def compiled_forward(model: torch.nn.Module) -> torch.nn.Module:
    return compiled(model)


def fast_train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: str = "last"):
    """One optimizer step (forward, MSE, backward, update) using the compiled model."""
    fast = compiled(model)

    def step(images):
        optimizer.zero_grad(set_to_none=True)
        value = reconstruction_loss(fast, images, loss)
        value.backward()
        optimizer.step()
        return value

    return step
