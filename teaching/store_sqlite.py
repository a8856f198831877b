"""The class store in one SQLite file: the default, with no server to run (stdlib ``sqlite3``).

One table of records, WAL mode (readers never wait for the writer), one connection per process
behind a lock, and every change in one ``BEGIN IMMEDIATE`` transaction, so two processes sharing
the file (replicas on one host) serialise their writes and a crash leaves no half-made change.
Records past their lifetime are deleted whenever a transaction writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from teaching.records import BufferedRecords, Unavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    collection TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (collection, item)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_expires ON records (expires);
"""
BUSY_TIMEOUT_S = 10  # another process holding the write lock: wait this long, then fail with one line


class SqliteBackend:
    """:class:`teaching.records.Backend` on the SQLite file at ``path`` (its folder is made if missing)."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise Unavailable(f"The class store cannot be opened: {error}") from None

    def _get(self, collection, item):
        row = self._db.execute("SELECT value FROM records WHERE collection = ? AND item = ?", (collection, item)).fetchone()
        return row[0] if row else None

    def _items(self, collection):
        return self._db.execute("SELECT item, value FROM records WHERE collection = ?", (collection,)).fetchall()

    @contextmanager
    def transaction(self, scope: str, write: bool):
        """One transaction (``scope`` is not needed: SQLite lets one writer in at a time)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as error:
                raise Unavailable(f"The class store is busy or unreadable: {error}") from None
            try:
                records = BufferedRecords(self._get, self._items)
                yield records
                if write:
                    self._apply(records)
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                self._rollback()
                raise Unavailable(f"The class store failed: {error}") from None
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _apply(self, records: BufferedRecords) -> None:
        now = time.time()
        db = self._db
        db.execute("DELETE FROM records WHERE expires <= ?", (now,))
        db.executemany("DELETE FROM records WHERE collection = ?", [(c,) for c in records.drops])
        db.executemany("DELETE FROM records WHERE collection = ? AND item = ?", list(records.deletes))
        db.executemany(
            "INSERT OR REPLACE INTO records (collection, item, value, expires) VALUES (?, ?, ?, ?)",
            [(c, item, value, now + ttl) for (c, item), (value, ttl) in records.puts.items()],
        )

    def snapshot(self) -> dict:
        with self._lock:
            return {(c, item): value for c, item, value in self._db.execute("SELECT collection, item, value FROM records")}

    def close(self) -> None:
        with self._lock:
            self._db.close()
