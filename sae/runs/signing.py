"""The training queue's shared secret: the app signs each run, workers sign each event.

Whoever reaches Redis (and knows its password) can write any key in it: enqueue
a job, or add events to another student's run.  The key here never enters Redis:
the app and every ``sae worker`` read it from their environment
(``SAE_QUEUE_KEY``), so a job that nobody with the key made is refused by every
worker, and an event that nobody with the key wrote is dropped by the app.

Without the key, queue mode does not start: the worker exits with one line and
the app fails each run with one line.  An unsigned queue would be a door into
every worker, so there is no unsigned mode.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

QUEUE_KEY_ENV = "SAE_QUEUE_KEY"
MIN_KEY_CHARS = 32  # secrets.token_hex(32) gives 64
MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


class QueueKeyError(RuntimeError):
    """The queue's key is missing or too short; the message is one line that says how to make one."""


def queue_key() -> bytes:
    """``SAE_QUEUE_KEY``, the same on the app and on every worker."""
    raw = os.environ.get(QUEUE_KEY_ENV, "").strip()
    if not raw:
        raise QueueKeyError(f"{QUEUE_KEY_ENV} is not set: the app and every sae worker need the same secret ({MAKE_ONE})")
    if len(raw) < MIN_KEY_CHARS:
        raise QueueKeyError(f"{QUEUE_KEY_ENV} has fewer than {MIN_KEY_CHARS} characters: make a longer one ({MAKE_ONE})")
    return raw.encode()


def canonical(value) -> str:
    """One JSON text per value, whichever side writes it (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sign(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 of ``parts``, each length-prefixed so that no two lists of parts read alike."""
    message = b"".join(f"{len(part.encode())}:".encode() + part.encode() for part in parts)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(key: bytes, signature, *parts: str) -> bool:
    return isinstance(signature, str) and hmac.compare_digest(signature, sign(key, *parts))
