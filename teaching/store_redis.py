"""The class store on Redis (``SAE_REDIS_URL``): every replica behind the load balancer sees the same class.

Each collection is one Redis hash under ``sae:class:`` with an expiry, so whatever the app fails
to delete is gone at the class's end of life anyway.  A writer holds a Redis lock on its scope (a
class, or the server for starting classes), reads, and sends all its writes in one MULTI/EXEC, so
a change is applied whole or not at all and no two writers of one class interleave.
"""

from __future__ import annotations

from contextlib import contextmanager

from redis import Redis, RedisError
from redis.exceptions import LockError

from teaching import bounds
from teaching.records import BufferedRecords, Unavailable

PREFIX = "sae:class:"


class RedisBackend:
    """:class:`teaching.records.Backend` on the Redis at ``url``."""

    def __init__(self, url: str, prefix: str = PREFIX):
        self.prefix = prefix
        # Bounded waits: an unreachable Redis is a one-line error in seconds, not a page that hangs.
        self.redis = Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30)

    def _key(self, collection: str) -> str:
        return self.prefix + collection

    def _get(self, collection, item):
        return self.redis.hget(self._key(collection), item)

    def _items(self, collection):
        return self.redis.hgetall(self._key(collection))

    @contextmanager
    def transaction(self, scope: str, write: bool):
        try:
            if not write:
                yield BufferedRecords(self._get, self._items)
                return
            lock = self.redis.lock(self.prefix + "lock:" + scope, timeout=bounds.LOCK_WAIT_S, blocking_timeout=bounds.LOCK_WAIT_S)
            if not lock.acquire():
                raise Unavailable("The class is busy: try again in a moment.")
            try:
                records = BufferedRecords(self._get, self._items)
                yield records
                self._apply(records)
            finally:
                try:
                    lock.release()
                except LockError:
                    pass  # it outlived its timeout; whoever holds it now keeps it
        except RedisError as error:
            raise Unavailable(f"The class store cannot be reached: {type(error).__name__}") from None

    def _apply(self, records: BufferedRecords) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for collection in records.drops:
            pipe.delete(self._key(collection))
        for collection, item in records.deletes:
            pipe.hdel(self._key(collection), item)
        for (collection, item), (value, ttl) in records.puts.items():
            key, ms = self._key(collection), int(ttl * 1000)
            pipe.hset(key, item, value)
            pipe.pexpire(key, ms, nx=True)  # a new hash: its first expiry
            pipe.pexpire(key, ms, gt=True)  # then only ever later, so no record dies before its time
        pipe.execute()

    def snapshot(self) -> dict:
        found = {}
        for key in self.redis.scan_iter(match=self.prefix + "*"):
            if key.startswith(self.prefix + "lock:"):
                continue
            collection = key[len(self.prefix) :]
            found.update({(collection, item): value for item, value in self.redis.hgetall(key).items()})
        return found

    def close(self) -> None:
        self.redis.close()
