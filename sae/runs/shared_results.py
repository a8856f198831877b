"""A bounded, thread-safe cache of results every session may read, computed one at a time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


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
