"""A bounded, thread-safe cache of results every session may read, computed in two lanes by size."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager


class Lane:
    """One computation at a time; of those waiting, the smallest goes next (then the earliest).

    On a 2-core CPU parallel sweeps only slow each other down, so a lane runs one;
    taking the smallest first means a quick request is not stuck behind a long one that
    happened to ask a moment earlier.  A long one still runs as soon as nothing smaller
    waits: the work of each is bounded (the caller refuses more), so none waits for ever
    behind an endless stream."""

    def __init__(self):
        self._cond = threading.Condition()
        self._busy = False
        self._waiting: list[tuple[int, int]] = []  # a heap of (work, arrival)
        self._arrivals = itertools.count()

    @contextmanager
    def turn(self, work: int):
        """Wait for this lane, in order of ``work``, and hold it for the ``with`` block."""
        with self._cond:
            ticket = (work, next(self._arrivals))
            heapq.heappush(self._waiting, ticket)
            try:
                while self._busy or self._waiting[0] != ticket:
                    self._cond.wait()
            except BaseException:  # a session stopped while it waited: leave the line
                self._waiting.remove(ticket)
                heapq.heapify(self._waiting)
                self._cond.notify_all()
                raise
            heapq.heappop(self._waiting)
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    @property
    def waiting(self) -> int:
        """How many computations wait for this lane now."""
        with self._cond:
            return len(self._waiting)

    @property
    def busy(self) -> bool:
        """Whether a computation holds the lane now."""
        with self._cond:
            return self._busy


class ResultCache:
    """A bounded, thread-safe least-recently-used cache of computed results.

    Bounded in entries, and with ``max_bytes`` in the bytes of its results as ``size``
    counts them (the newest result is kept even when it alone is larger).

    ``get_or_compute`` computes a missing result in one of two lanes: requests of at
    most ``small_work`` (every page's defaults) in one, larger ones in the other, so a
    student at the defaults never waits behind a big request, and two big ones never
    run at once.  A second session asking for the same key waits in the same lane and
    finds it computed when its turn comes."""

    def __init__(self, max_entries: int = 16, small_work: int = 0, max_bytes: int | None = None, size: Callable[[object], int] | None = None):
        self.max_entries = max_entries
        self.small_work = small_work
        self.max_bytes = max_bytes
        self._size = size or (lambda value: 0)
        self.small, self.big = Lane(), Lane()
        self._items: OrderedDict = OrderedDict()  # key -> (value, bytes)
        self._bytes = 0
        self._lock = threading.Lock()
        self.computed = 0  # how many times a result was computed, not found

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        return None

    def put(self, key, value) -> None:
        size = self._size(value)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > 1 and (len(self._items) > self.max_entries or (self.max_bytes is not None and self._bytes > self.max_bytes)):
                self._bytes -= self._items.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def bytes(self) -> int:
        """The bytes its results hold, as ``size`` counts them."""
        with self._lock:
            return self._bytes

    def lane(self, work: int) -> Lane:
        return self.small if work <= self.small_work else self.big

    def get_or_compute(self, key, compute: Callable[[], object], work: int = 0):
        found = self.get(key)
        if found is not None:
            return found
        with self.lane(work).turn(work):
            found = self.get(key)
            if found is not None:
                return found
            value = compute()
            with self._lock:
                self.computed += 1
            self.put(key, value)  # before the next in line looks for it
        return value
