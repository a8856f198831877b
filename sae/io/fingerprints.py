"""Identities for cache keys: fingerprints of a model's weights and of an image's pixels."""

from __future__ import annotations

import hashlib
import threading
import weakref

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


_served: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model object -> its fingerprint
_served_lock = threading.Lock()


def served_model_fingerprint(model) -> str:
    """:func:`model_fingerprint` of a model whose weights no longer change (one loaded to be
    served), hashed once per model object rather than once per use.

    Held weakly: when the model is freed its entry goes, so a later model that Python
    happens to place at the same address (the same ``id()``) is hashed afresh."""
    with _served_lock:
        key = _served.get(model)
    if key is None:
        key = model_fingerprint(model)
        with _served_lock:
            _served[model] = key
    return key


def digit_fingerprint(digit: torch.Tensor | np.ndarray) -> str:
    """A short content hash of an image, to key cached results by what was drawn."""
    array = digit.detach().cpu().numpy() if torch.is_tensor(digit) else np.asarray(digit)
    return hashlib.blake2b(np.ascontiguousarray(array, dtype=np.float32).tobytes(), digest_size=12).hexdigest()
