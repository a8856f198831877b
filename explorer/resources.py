"""Process-wide resources, shared by every browser session.

Only read-only things live here: a loaded model is used in eval mode and its
forward keeps no state on the module, so many sessions can run it at once.
Entries are bounded (max_entries) so nothing grows as sessions come and go.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from sae.data.mnist import mnist_tensors
from sae.io.checkpoints import Checkpoint, load_checkpoint


def ready_for_inference(ckpt: Checkpoint, device: str) -> Checkpoint:
    """On ``device``, in eval mode, no gradients: how every page runs a model."""
    ckpt.model.to(device).eval()
    for p in ckpt.model.parameters():
        p.requires_grad_(False)
    return ckpt


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _load_checkpoint_file(path: str, mtime_ns: int, device: str) -> Checkpoint:
    """Keyed by the file's modification time, so a re-saved checkpoint reloads."""
    return ready_for_inference(load_checkpoint(Path(path)), device)


def shared_checkpoint(path: str | Path, device: str) -> Checkpoint:
    """The checkpoint at ``path`` loaded once per process and device."""
    path = Path(path)
    return _load_checkpoint_file(str(path.resolve()), path.stat().st_mtime_ns, device)


@st.cache_resource(show_spinner="Loading MNIST…")
def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10,000 MNIST test images (32x32) and labels; never mutated."""
    return mnist_tensors(train=False)


@st.cache_resource(show_spinner="Loading MNIST…")
def train_set() -> tuple[torch.Tensor, torch.Tensor]:
    """The 60,000 MNIST training images (32x32) and labels; never mutated."""
    return mnist_tensors(train=True)
