"""Identities for cache keys (fingerprints of weights and images) and a bounded, shared result cache."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

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


class ResultCache:
    """A bounded, thread-safe least-recently-used cache of computed results.

    ``get_or_compute`` runs one computation at a time: on a 2-core CPU parallel
    sweeps only slow each other down, and a second session asking for the same
    key finds it computed when its turn comes."""

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._compute_lock = threading.Lock()
        self.computed = 0  # how many times a result was computed, not found

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def get_or_compute(self, key, compute: Callable[[], object]):
        found = self.get(key)
        if found is not None:
            return found
        with self._compute_lock:
            found = self.get(key)
            if found is not None:
                return found
            value = compute()
            self.computed += 1
        self.put(key, value)
        return value
