"""The class's fair shares of the pages: the limits, the session caps, Compare's bound and its two lanes.

The lanes are checked by the order in which fake computations finish, never by how long they
take: a computation that blocks on an event stands for a long sweep.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer import admission, cached
from explorer.page_limits import PageLimits
from sae.analysis import sweep
from sae.model import NeuronSettings
from sae.runs.shared_results import ResultCache

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
WAIT_S = 60.0  # a generous bound for a thread to get somewhere on a busy machine; no timing is asserted


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


# --------------------------------------------------------------------------- the limits


def test_limits_come_from_the_environment_and_bad_values_keep_the_default(caplog):
    limits = PageLimits.from_env({"SAE_MAX_SESSIONS": "40", "SAE_COMPARE_WORK": " 5000 ", "SAE_TRUSTED_PROXIES": "0"})
    assert (limits.max_sessions, limits.compare_work, limits.trusted_proxies) == (40, 5000, 0)
    assert limits.sessions_per_address == PageLimits.sessions_per_address
    bad = PageLimits.from_env({"SAE_MAX_SESSIONS": "lots", "SAE_CHECKPOINTS_PER_STUDENT": "0", "SAE_TRUSTED_PROXIES": "-1"})
    assert bad == PageLimits()
    assert len([r for r in caplog.records if "is not a whole number" in r.message]) == 3


def test_the_client_address_is_believed_from_trusted_proxies_only():
    forwarded = "6.6.6.6, 10.0.0.7, 192.168.1.2"  # the browser wrote the first; two proxies appended theirs
    assert PageLimits().client_address("127.0.0.1", forwarded) == "127.0.0.1"
    assert PageLimits(trusted_proxies=1).client_address("127.0.0.1", forwarded) == "192.168.1.2"
    assert PageLimits(trusted_proxies=2).client_address("127.0.0.1", forwarded) == "10.0.0.7"
    assert PageLimits(trusted_proxies=3).client_address("127.0.0.1", "") == "127.0.0.1"


# --------------------------------------------------------------------------- sessions


def test_sessions_are_capped_per_server_and_per_address_and_a_closed_one_frees_its_place():
    table, limits, alive = admission.SessionTable(), PageLimits(max_sessions=3, sessions_per_address=2), {"a", "b", "c", "d"}
    is_alive = alive.__contains__
    assert table.admit("a", "10.0.0.1", limits, is_alive) is None
    assert table.admit("b", "10.0.0.1", limits, is_alive) is None
    refused = table.admit("c", "10.0.0.1", limits, is_alive)
    assert refused.startswith("Your network address already has 2 sessions open") and "(2)" in refused
    assert table.admit("c", "10.0.0.2", limits, is_alive) is None
    full = table.admit("d", "10.0.0.3", limits, is_alive)
    assert full.startswith("This server already has 3 sessions open") and "(3)" in full
    assert table.admit("a", "10.0.0.1", limits, is_alive) is None  # a session already in keeps its place
    alive.discard("b")  # its tab closed
    assert table.admit("d", "10.0.0.3", limits, is_alive) is None and len(table) == 3
    alive.discard("a")
    assert table.admit("a", "10.0.0.1", limits, is_alive, known=True) is None  # reconnected: counted again, no check


def test_a_full_server_shows_the_class_is_full_page_and_nothing_else(monkeypatch):
    table = admission.SessionTable()
    limits = PageLimits(max_sessions=1)
    table.admit("someone else", "10.0.0.9", limits, lambda s: True)
    monkeypatch.setattr(admission, "sessions", lambda: table)
    monkeypatch.setattr(admission, "page_limits", lambda: limits)
    monkeypatch.setattr(admission, "session_alive", lambda s: True)  # the other student is connected
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["The class is full"]
    assert "This server already has 1 sessions open, the most it takes at once (1)" in at.text[0].value
    assert not at.sidebar.slider and "settings" not in at.session_state  # no page, no sidebar, nothing computed
    monkeypatch.setattr(admission, "session_alive", lambda s: False)  # the other student left
    at.button[0].click().run()
    assert not at.exception and [t.value for t in at.title] != ["The class is full"]


# --------------------------------------------------------------------------- Compare's two lanes


def blocking(name: str, order: list, started: threading.Event, release: threading.Event):
    def compute():
        started.set()
        assert release.wait(WAIT_S)
        order.append(name)
        return name

    return compute


def test_a_small_request_does_not_wait_behind_a_big_one():
    cache, order = ResultCache(small_work=1000), []
    big_started, big_release = threading.Event(), threading.Event()
    big = threading.Thread(target=cache.get_or_compute, args=("big", blocking("big", order, big_started, big_release), 50_000))
    big.start()
    assert big_started.wait(WAIT_S)
    small = threading.Thread(target=cache.get_or_compute, args=("small", lambda: order.append("small") or "small", 500))
    small.start()
    small.join(WAIT_S)
    assert order == ["small"], "the small request finished while the big one still held its lane"
    big_release.set()
    big.join(WAIT_S)
    assert order == ["small", "big"] and cache.get("big") == "big" and cache.get("small") == "small"


def test_in_a_lane_the_smallest_waiting_request_goes_next():
    cache, order = ResultCache(small_work=0), []
    first_started, first_release = threading.Event(), threading.Event()
    threads = [threading.Thread(target=cache.get_or_compute, args=("first", blocking("first", order, first_started, first_release), 10))]
    threads[0].start()
    assert first_started.wait(WAIT_S)
    for name, work in (("largest", 90_000), ("smallest", 20_000), ("middle", 50_000)):
        threads.append(threading.Thread(target=cache.get_or_compute, args=(name, lambda n=name: order.append(n) or n, work)))
        threads[-1].start()
        wait_until(lambda n=len(threads) - 1: cache.big.waiting == n, f"{name} waits in line")
    first_release.set()
    for thread in threads:
        thread.join(WAIT_S)
    assert order == ["first", "smallest", "middle", "largest"]


def test_a_second_request_for_the_same_result_waits_for_it_and_does_not_compute_again():
    cache, order = ResultCache(small_work=0), []
    started, release = threading.Event(), threading.Event()
    threads = [threading.Thread(target=cache.get_or_compute, args=("k", blocking("k", order, started, release), 100)) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert started.wait(WAIT_S)
    wait_until(lambda: cache.big.waiting == 2, "the other two wait")
    release.set()
    for thread in threads:
        thread.join(WAIT_S)
    assert order == ["k"] and cache.computed == 1


def test_results_are_bounded_in_bytes_and_the_newest_is_kept():
    cache = ResultCache(max_entries=100, max_bytes=10, size=len)
    for key in "abc":
        cache.put(key, "x" * 4)
    assert cache.get("a") is None and cache.get("b") and cache.get("c") and cache.bytes == 8
    cache.put("big", "y" * 50)  # larger than the bound alone: kept, everything older goes
    assert cache.get("big") and cache.get("c") is None and cache.bytes == 50


# --------------------------------------------------------------------------- Compare's bound


def test_the_work_of_a_sweep_counts_each_run_once_at_its_longest():
    grid = sweep.grid([0.25, 0.5, 1.0, 1.5, 2.0, 3.0], [1, 2, 3, 5, 8, 10], [0.5])
    assert cached.sweep_work(256, grid) == 256 * 6 * 10
    assert cached.sweep_work(1000, sweep.grid([0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5], [50], [0.5])) == 500_000
    assert cached.sweep_work(10, [NeuronSettings(1.0, 0.5, 5), NeuronSettings(1.0, 0.9, 5)]) == 100


def test_the_defaults_fit_the_small_lane_and_the_largest_offered_digits_fit_the_bound():
    limits = PageLimits()
    thresh_tab = sweep.grid([0.25, 0.5, 1.0, 1.5, 2.0, 3.0], [5], [0.5])
    steps_tab = sweep.grid([1.0], [1, 2, 3, 5, 10, 20], [0.5])
    grid_tab = sweep.grid([0.25, 0.5, 1.0, 1.5, 2.0, 3.0], [1, 2, 3, 5, 8, 10], [0.5])
    for settings in (thresh_tab, steps_tab, grid_tab):
        assert cached.sweep_work(256, settings) <= limits.compare_small_work
        assert cached.sweep_work(1000, settings) <= limits.compare_work
    assert cached.sweep_work(256, sweep.grid([0.25, 0.5, 1.0, 1.5, 2.0, 3.0], [50], [0.5])) <= limits.compare_work


def test_a_compare_over_the_bound_is_refused_in_one_line_and_nothing_runs(monkeypatch):
    st.cache_resource.clear()
    calls = []
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: calls.append(a))
    at = AppTest.from_file(APP, default_timeout=300)
    thresholds = ["0.1", "0.25", "0.5", "0.75", "1", "1.5", "2", "3", "4", "5"]
    at.query_params.update({"c_n": "1000", "steps": "50", "c_thresh_values": thresholds, "c_seed": "4321"})
    at.switch_page("pages/views/compare.py").run()
    assert not at.exception and not calls
    [line] = [w.value for w in at.warning]
    assert "500,000 digit-steps" in line and f"allows {PageLimits().compare_work:,} per request" in line


# --------------------------------------------------------------------------- memory


def test_the_uploads_of_a_session_gone_for_good_are_emptied_and_a_reconnect_keeps_its_own():
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    from explorer import memory

    uploads = MemoryUploadedFileManager("/upload")
    for session in ("left", "reconnects", "here"):
        uploads.add_file(session, UploadedFileRec(file_id="f", name="x.pt", type="application/octet-stream", data=b"\0" * 1000))
    connected, gone_since = {"here"}, {}
    memory.forget_gone_uploads(uploads, connected.__contains__, gone_since, now=0.0, window=180.0)
    assert set(uploads.file_storage) == {"left", "reconnects", "here"}  # within the window: kept for a reconnect
    connected.add("reconnects")
    memory.forget_gone_uploads(uploads, connected.__contains__, gone_since, now=100.0, window=180.0)
    memory.forget_gone_uploads(uploads, connected.__contains__, gone_since, now=200.0, window=180.0)
    assert set(uploads.file_storage) == {"reconnects", "here"} and gone_since == {}
    assert uploads.get_files("reconnects", ["f"])[0].data == b"\0" * 1000
