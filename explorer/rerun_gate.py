"""At most two Explore reruns run their Python at once, over all sessions; the others wait their turn.

Why: every session's script runs in a thread of one server process, and those
threads share one GIL.  A class moving sliders makes many Explore reruns a second,
each tens of milliseconds of Python (the sidebar, the figures, Streamlit's own
work).  Unlimited, a dozen or more ran at once and took 5 ms turns at the GIL in
rotation: every one of them finished late, and the event loop thread that sends
their results got its turn as rarely (py-spy under load: most script threads
waiting for the GIL).  Two at a time: one builds its page while the other waits on
the forward process (sae/runs/forward_process.py, no GIL), and a rerun that arrives
queues on a lock (no GIL) and then runs at full speed.  ``python -m benchmarks.load
--sessions 30`` measures it (the figures are in docs/performance.md).

Only Explore is gated: Compare's first sweep of a setting takes seconds and must
not hold up the class, and Home is too light to matter.  Fragment reruns (a tab
switch) do not pass through app.py and are not gated.  A rerun never waits more
than ``MAX_WAIT_S``; past that it runs anyway (a stuck rerun cannot stall the class).
"""

from __future__ import annotations

import contextlib
import threading

import streamlit as st

AT_ONCE = 2
GATED_PAGES = frozenset({"explore"})  # url_path of the pages in app.py
MAX_WAIT_S = 30.0


@st.cache_resource
def _slots() -> threading.BoundedSemaphore:
    """One semaphore for the whole process (st.cache_resource: shared by every session)."""
    return threading.BoundedSemaphore(AT_ONCE)


@contextlib.contextmanager
def rerun_slot(page):
    """Hold one of the ``AT_ONCE`` places while ``page`` (an ``st.Page``) runs, if it is a gated page."""
    if getattr(page, "url_path", None) not in GATED_PAGES:
        yield
        return
    slots = _slots()
    acquired = slots.acquire(timeout=MAX_WAIT_S)
    try:
        yield
    finally:
        if acquired:
            slots.release()
