"""The record store under the live class: what a backend must do, a write buffer, and the errors.

``teaching.store`` holds every rule of a class and talks only to :class:`Backend`; the two
backends (``teaching.store_sqlite``, ``teaching.store_redis``) implement it on top of
:class:`BufferedRecords`, so each only reads records and applies a transaction's writes at once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class ClassError(Exception):
    """Anything refused; ``str(error)`` is one plain line to show."""


class NotFound(ClassError):
    """An unknown or expired join code, class or seat."""


class Forbidden(ClassError):
    """A wrong teacher key."""


class Refused(ClassError):
    """A request the rules do not allow now: a limit, a flood, a bad answer, a step not revealed."""


class Unavailable(ClassError):
    """The store cannot be reached."""


class Records(Protocol):
    """Keyed text records in named collections, inside one transaction of a :class:`Backend`.

    Reads see this transaction's own writes.  ``ttl_s`` is how long the record may be kept at most
    (the backend deletes it some time after); the rules above do not rely on it."""

    def get(self, collection: str, item: str) -> str | None: ...
    def items(self, collection: str) -> dict[str, str]: ...
    def put(self, collection: str, item: str, value: str, ttl_s: float) -> None: ...
    def delete(self, collection: str, item: str) -> None: ...
    def drop(self, collection: str) -> None: ...


class Backend(Protocol):
    def transaction(self, scope: str, write: bool) -> AbstractContextManager[Records]:
        """All or nothing: the writes of the block are applied together when it ends without an error.
        ``scope`` names what a writer must hold alone (a class id, or ``"server"``)."""
        ...

    def snapshot(self) -> dict:
        """Every record as ``{(collection, item): value}``: for tests and diagnostics."""
        ...


class BufferedRecords:
    """:class:`Records` whose writes wait in ``puts``, ``deletes`` and ``drops`` until the backend applies
    them at once (drops, then deletes, then puts); reads go to ``read_one`` / ``read_all`` with the
    waiting writes on top."""

    def __init__(self, read_one, read_all):
        self._read_one, self._read_all = read_one, read_all
        self.puts: dict[tuple[str, str], tuple[str, float]] = {}
        self.deletes: set[tuple[str, str]] = set()
        self.drops: set[str] = set()

    def get(self, collection, item):
        key = (collection, item)
        if key in self.puts:
            return self.puts[key][0]
        if key in self.deletes or collection in self.drops:
            return None
        return self._read_one(collection, item)

    def items(self, collection):
        found = {} if collection in self.drops else dict(self._read_all(collection))
        for c, item in self.deletes:
            if c == collection:
                found.pop(item, None)
        found.update({item: value for (c, item), (value, _) in self.puts.items() if c == collection})
        return found

    def put(self, collection, item, value, ttl_s):
        self.deletes.discard((collection, item))
        self.puts[(collection, item)] = (value, max(float(ttl_s), 1.0))

    def delete(self, collection, item):
        self.puts.pop((collection, item), None)
        self.deletes.add((collection, item))

    def drop(self, collection):
        self.puts = {key: value for key, value in self.puts.items() if key[0] != collection}
        self.deletes = {key for key in self.deletes if key[0] != collection}
        self.drops.add(collection)
