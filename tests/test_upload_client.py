"""The benchmarks' upload client against a real ``streamlit run`` server.

benchmarks/hostile.py uploads files the way ``st.file_uploader``'s frontend does
(benchmarks/streamlit_upload.py): ask the session for an upload URL, PUT the file
with the XSRF cookie echoed, name it in the widget's state.  Here a shipped
checkpoint goes in through the sidebar's uploader: the server must accept the PUT
and the sidebar must switch to the upload, on this page and on the next one.
"""

import pytest

from benchmarks.server_launcher import ROOT, streamlit_server, wait_healthy
from benchmarks.streamlit_session import Session
from benchmarks.streamlit_upload import attach, put_file
from tests.conftest import run_async

CHECKPOINT = ROOT / "checkpoints" / "compare_T5_thr1.pt"


def chosen_checkpoint(session) -> str | None:
    """The sidebar's checkpoint as the session holds it (what its browser would send back)."""
    box = session.widget_by_key("sb_checkpoint")
    state = session.widget_states.get(box.id) if box is not None else None
    return state.string_value if state is not None else None


@pytest.mark.slow
def test_a_checkpoint_uploaded_through_the_sidebar_is_used_on_every_page(tmp_path):
    env = {"SAE_USER_CHECKPOINTS": str(tmp_path / "user_checkpoints")}
    with streamlit_server(ROOT, env=env, log=tmp_path / "streamlit.log") as (url, process):
        wait_healthy(url, process)

        async def upload():
            async with Session(url, "explore") as session:
                await session.rerun(timeout=120)
                sent = await put_file(session, "mine.pt", data=CHECKPOINT.read_bytes())
                attach(session, session.widget_by_key("sb_upload").id, sent)
                here = await session.rerun(timeout=120)
                on_explore = chosen_checkpoint(session)
                session.go_to("compare")
                there = await session.rerun(timeout=300)
                return session, sent, here, on_explore, there

        session, sent, here, on_explore, there = run_async(upload())
    log = (tmp_path / "streamlit.log").read_text()
    assert sent.accepted, (sent.status, sent.reason, log[-2000:])
    assert here.status == "ok" and there.status == "ok", log[-2000:]
    assert on_explore == "uploaded: mine.pt"
    assert chosen_checkpoint(session) == "uploaded: mine.pt"  # still the upload on the Compare page
    assert "ckpt=" not in session.query_string  # an upload is this session's own: never in a link
    assert session.exceptions == []
