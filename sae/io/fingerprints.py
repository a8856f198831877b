"""Identities for cache keys: fingerprints of a model's weights and of an image's pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def model_fingerprint(model) -> str:
    """A short hash of every weight and buffer: the model's identity for a cache key.

    Two checkpoints with the same name but different weights get different keys."""
    h = hashlib.blake2b(digest_size=12)
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def digit_fingerprint(digit: torch.Tensor | np.ndarray) -> str:
    """A short content hash of an image, to key cached results by what was drawn."""
    array = digit.detach().cpu().numpy() if torch.is_tensor(digit) else np.asarray(digit)
    return hashlib.blake2b(np.ascontiguousarray(array, dtype=np.float32).tobytes(), digest_size=12).hexdigest()
