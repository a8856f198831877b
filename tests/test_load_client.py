"""The load benchmark's protocol client against a real ``streamlit run`` server.

One session opens /explore and moves the thresh slider once: both runs must reach
``script_finished`` without an exception on the page, so the client the
benchmarks time with (benchmarks/streamlit_session.py) speaks the protocol the
way the browser does.  No timing is asserted here (that is the benchmark's job,
not a unit test's).
"""

import pytest

from benchmarks.server_launcher import ROOT, streamlit_server, wait_healthy
from benchmarks.streamlit_session import Session
from tests.conftest import run_async

pytestmark = pytest.mark.slow  # each test starts a whole app under `streamlit run`


def test_one_session_renders_explore_and_follows_a_slider_move(tmp_path):
    env = {"SAE_USER_CHECKPOINTS": str(tmp_path / "user_checkpoints")}
    with streamlit_server(ROOT, env=env, log=tmp_path / "streamlit.log") as (url, process):
        wait_healthy(url, process)

        async def visit():
            async with Session(url, "explore", "engine=server") as session:  # the server draws the figures it reads
                first = await session.rerun(timeout=120)
                slider = session.find_widget("slider", "thresh")
                assert slider is not None, "no thresh slider on the page"
                session.set_slider(slider.id, 2.0)
                moved = await session.rerun(timeout=60)
                return session, first, moved

        session, first, moved = run_async(visit())
    log = (tmp_path / "streamlit.log").read_text()
    assert first.status == "ok", log
    assert moved.status == "ok", log
    assert session.exceptions == [], session.exceptions
    assert "thresh=2" in session.query_string.split("&")  # the sidebar wrote the new value into the URL
    assert any(text.startswith("Reconstruction MSE") for text in session.texts)


def test_the_warmup_launcher_serves_after_warming_up(tmp_path):
    """``python -m explorer.warmup`` (make run): the log says the warm-up finished before the server
    started, and the first Explore renders from the filled caches."""
    env = {"SAE_USER_CHECKPOINTS": str(tmp_path / "user_checkpoints")}
    log_path = tmp_path / "streamlit.log"
    with streamlit_server(ROOT, env=env, log=log_path, launcher="warmup") as (url, process):
        wait_healthy(url, process, timeout=240)

        async def visit():
            async with Session(url, "explore") as session:
                return session, await session.rerun(timeout=120)

        session, first = run_async(visit())
    log = log_path.read_text()
    assert first.status == "ok" and session.exceptions == [], log
    assert "warm-up done" in log and log.index("warm-up done") < log.index("You can now view"), log
