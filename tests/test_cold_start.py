"""A class arriving at a freshly started server: every deep link renders its page, no traceback.

Each arrival is a real session on a real ``streamlit run`` (Streamlit's websocket
protocol, as a browser speaks it: ``benchmarks.streamlit_session.Session``). All 20
connect within 2 s of the health check answering, while the process runs its very first
scripts: the moment Streamlit's legacy ``pages/`` mode is still on. Before the
fix, 9 of 10 such arrivals got a ``KeyError`` page; with only app.py for the legacy
mode to run they got a "Page not found" dialog (see pages/__init__.py).
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from benchmarks.server_launcher import free_port, streamlit_server, wait_healthy
from benchmarks.streamlit_session import Session
from tests.conftest import run_async

pytestmark = pytest.mark.slow  # a whole app under `streamlit run` and twenty sessions

ARRIVALS = 20
WITHIN_S = 2.0


class WatchedSession(Session):
    """A session that also notes Streamlit's "Page not found" dialog (a modal over the page)."""

    def _handle(self, msg) -> None:
        if msg.WhichOneof("type") == "page_not_found":
            self.exceptions.append("Page not found dialog")
        super()._handle(msg)


async def arrive(base_url: str, delay: float, index: int) -> dict:
    await asyncio.sleep(delay)
    async with WatchedSession(base_url, "explore", f"source=MNIST&index={index}") as session:
        sent = time.perf_counter()
        run = await session.rerun(timeout=240)
        done = time.perf_counter()
        return {
            "index": index,
            "delay": delay,
            "status": run.status,
            "exceptions": list(session.exceptions),
            "texts": list(session.texts),
            "sent": sent,
            "done": done,
        }


async def a_class(base_url: str) -> list[dict]:
    delays = [WITHIN_S * i / (ARRIVALS - 1) for i in range(ARRIVALS)]
    return await asyncio.gather(*(arrive(base_url, d, 100 + i) for i, d in enumerate(delays)))


def test_twenty_deep_links_at_a_cold_start_all_render_their_page(tmp_path):
    port = free_port()
    env = {**os.environ, "SAE_USER_CHECKPOINTS": str(tmp_path / "user")}
    with streamlit_server(port=port, env=env, log=tmp_path / "streamlit.log") as (base_url, process):
        wait_healthy(base_url, process)
        arrivals = run_async(a_class(base_url))
    # The class met a cold server: the first arrival's run is the server's first, and others were sent
    # before any page came back.  An order of events, not a clock limit, so a slow machine cannot fail it.
    first_page_back = min(a["done"] for a in arrivals)
    assert sum(a["sent"] < first_page_back for a in arrivals) >= 2, "no arrival overlapped the server's first script run"
    failures = []
    for a in arrivals:
        caption = f"MNIST test image #{a['index']}:"
        if a["status"] != "ok" or a["exceptions"] or not any(t.startswith(caption) for t in a["texts"]):
            failures.append(
                f"#{a['index']} after {a['delay']:.2f} s: {a['status']}, {a['exceptions'][:1]}, "
                f"caption {'found' if any(t.startswith(caption) for t in a['texts']) else 'missing'}"
            )
    assert not failures, f"{len(failures)} of {ARRIVALS} arrivals failed:\n" + "\n".join(failures)
    log = (tmp_path / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-3000:]
