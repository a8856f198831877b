"""The fast paths: the same model, with its element-wise work compiled by ``torch.compile``.

``fuse(model)`` (the default fast path) compiles only the LIF update, the ten or
so element-wise operations per layer and step that dominate eager time besides
the convolutions, into one kernel each way.  Convolutions, BatchNorm and linear
layers keep running the same aten kernels in the same order, and Inductor's C++
keeps the LIF arithmetic's rounding, so the result is bit-exact to the eager
model, and so to the tutorial's code, in fp32 (tests/test_engine.py).

``compiled(model)`` compiles the whole forward, BatchNorm included.  It is
faster, but Inductor computes BatchNorm's statistics in a different order, and in
fp32 that rounding difference flips the rare spikes that sit within an ulp of a
threshold, so its results are close to, not equal to, the tutorial's.

Compiled kernels are cached on disk by Inductor: only the first run on a machine
pays the compile time.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from sae.model import LIF, lif_step, reconstruction_loss

# Keep Inductor's cache with the project unless the user chose a place.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "inductor"))

# One compiled kernel for every layer: dynamic shapes, so the nine layer shapes and
# any batch size share it instead of recompiling per shape.
_fused_lif_step = torch.compile(lif_step, dynamic=True)


def fuse(model: nn.Module) -> nn.Module:
    """Switch ``model``'s LIF layers, in place, to the compiled update; returns ``model``."""
    for module in model.modules():
        if isinstance(module, LIF):
            module.step = _fused_lif_step
    return model


def unfuse(model: nn.Module) -> nn.Module:
    """Undo :func:`fuse`: back to the eager update (the class's ``step``)."""
    for module in model.modules():
        if isinstance(module, LIF):
            module.__dict__.pop("step", None)
    return model


def compiled(model: nn.Module) -> nn.Module:
    """The whole ``model`` compiled for fixed shapes (not bit-exact in fp32; see above)."""
    return torch.compile(model, dynamic=False)


def fast_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss: str = "last", whole: bool = False):
    """One optimizer step (forward, MSE, backward, update) on the fused or the whole-compiled model."""
    fast = compiled(model) if whole else fuse(model)

    def step(images):
        optimizer.zero_grad(set_to_none=True)
        value = reconstruction_loss(fast, images, loss)
        value.backward()
        optimizer.step()
        return value

    return step
