"""Memory that comes back: a full garbage collection now and then, and freed memory handed back.

Every page run leaves reference cycles behind (the page script's namespace and the functions
in it, Plotly's figure objects), and only Python's full collection frees them.  Streamlit's
collection after every run is off (``.streamlit/config.toml``: on the Train page it held the
GIL once a second), and the interpreter's own full collection waits until the heap has grown
by a quarter, which on a heap the size of torch's lets the garbage of many closed sessions
pile up.  So one thread of the process collects every ``COLLECT_EVERY_S`` seconds, a pause
that a rerun meets at most that seldom, and then asks the C allocator to hand freed pages
back to the system (glibc's ``malloc_trim``): without that a process keeps the resident size
of its busiest moment.  ``python -m benchmarks.hostile --attack session-churn`` shows the
server's memory before, right after and a while after a hundred sessions came and went.

The same thread empties the upload store of sessions gone for good: Streamlit keeps a closed
tab's session for a reconnect (``server.disconnectedSessionTTL``) and then drops it without
ending it, so the files uploaded in it would stay in its upload store for the life of the
process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from collections.abc import Callable

import streamlit as st
from streamlit import config, runtime

log = logging.getLogger(__name__)
COLLECT_EVERY_S = 60.0


def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (macOS, musl)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def collect() -> None:
    """One full collection, then freed memory back to the system."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def forget_gone_uploads(uploads, is_active: Callable[[str], bool], gone_since: dict[str, float], now: float, window: float) -> None:
    """Remove the uploaded files of sessions not connected for longer than ``window`` seconds
    (``gone_since``: session id -> when it was first seen not connected, kept between calls)."""
    try:
        sessions = set(getattr(uploads, "file_storage", {}))  # Streamlit's in-memory store; another has none to empty
    except RuntimeError:  # it changed while read: the next round reads it
        return
    for session in sessions:
        if is_active(session):
            gone_since.pop(session, None)
        elif now - gone_since.setdefault(session, now) > window:
            uploads.remove_session_files(session)
            del gone_since[session]
    for session in set(gone_since) - sessions:
        del gone_since[session]


@st.cache_resource
def start_collector() -> threading.Event:
    """Start the collecting thread once per process; setting the returned event stops it."""
    stop = threading.Event()
    gone_since: dict[str, float] = {}

    def loop():
        while not stop.wait(COLLECT_EVERY_S):
            try:
                if runtime.exists():
                    server = runtime.get_instance()
                    window = config.get_option("server.disconnectedSessionTTL") + COLLECT_EVERY_S
                    forget_gone_uploads(server.uploaded_file_mgr, server.is_active_session, gone_since, time.monotonic(), window)
                collect()
            except Exception:  # noqa: BLE001 - never let housekeeping end the thread
                log.exception("the periodic clean-up failed")

    threading.Thread(target=loop, name="sae-memory", daemon=True).start()
    return stop
