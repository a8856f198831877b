"""The class's limits on a real ``streamlit run`` server: sessions per address and per server, and
the server's own upload cap.

Sessions speak Streamlit's websocket protocol (``benchmarks.load.Session``); the upload goes to
the upload URL as a script would send it, straight past the browser's own size check.
"""

from __future__ import annotations

import http.client
import re
import urllib.request
from http.cookies import SimpleCookie
from urllib.parse import urlparse

import pytest

from benchmarks.load import ROOT, Session, streamlit_server, wait_healthy
from tests.conftest import run_async

FULL = "The class is full"


class Tab(Session):
    """A session that also remembers its id and the headings and plain texts the server drew."""

    session_id = ""

    def _handle(self, msg) -> None:
        if msg.WhichOneof("type") == "new_session" and msg.new_session.initialize.session_id:
            self.session_id = msg.new_session.initialize.session_id
        super()._handle(msg)

    def _element(self, element, *args, **kwargs) -> None:
        kind = element.WhichOneof("type")
        if kind in ("heading", "text"):
            self.texts = (self.texts + [getattr(element, kind).body])[-200:]
        super()._element(element, *args, **kwargs)


def put(url: str, session_id: str, *, declared: int | None, body: bytes = b"", chunks: int = 0) -> int:
    """The HTTP status of an upload to ``session_id``: ``declared`` bytes announced (the body not sent),
    or ``chunks`` MB sent without a length, or ``body`` sent whole."""
    parsed = urlparse(url)
    with urllib.request.urlopen(url + "/_stcore/health", timeout=30) as response:
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
    xsrf = cookies["_streamlit_xsrf"].value if "_streamlit_xsrf" in cookies else ""
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    boundary = "----sae-test"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.pt"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    try:
        connection.putrequest("PUT", f"/_stcore/upload_file/{session_id}/test-file")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Cookie", f"_streamlit_xsrf={xsrf}")
        connection.putheader("X-Xsrftoken", xsrf)
        if declared is not None:
            connection.putheader("Content-Length", str(declared))
            connection.endheaders()
        elif chunks:
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            try:
                for part in (head, *(b"\0" * (1 << 20) for _ in range(chunks)), tail):
                    connection.send(b"%x\r\n%s\r\n" % (len(part), part))
                connection.send(b"0\r\n\r\n")
            except OSError:  # the server stopped reading: its answer is waiting
                pass
        else:
            data = head + body + tail
            connection.putheader("Content-Length", str(len(data)))
            connection.endheaders(data)
        return connection.getresponse().status
    finally:
        connection.close()


def uploads_held(url: str) -> int:
    """The bytes Streamlit's upload store holds (its own count, from /_stcore/metrics)."""
    with urllib.request.urlopen(url + "/_stcore/metrics", timeout=30) as response:
        text = response.read().decode(errors="replace")
    return sum(int(n) for n in re.findall(r'^cache_memory_bytes\{cache_type="UploadedFileManager"[^}]*\} (\d+)', text, re.MULTILINE))


@pytest.mark.slow
def test_sessions_per_address_and_the_server_upload_cap(tmp_path):
    env = {"SAE_USER_CHECKPOINTS": str(tmp_path / "user"), "SAE_MAX_SESSIONS": "3", "SAE_SESSIONS_PER_ADDRESS": "2"}
    log = tmp_path / "streamlit.log"
    with streamlit_server(ROOT, env=env, log=log) as (url, process):
        wait_healthy(url, process)

        async def visit():
            async with Tab(url, "") as first, Tab(url, "") as second:
                runs = [await first.rerun(timeout=120), await second.rerun(timeout=120)]
                async with Tab(url, "") as third:
                    runs.append(await third.rerun(timeout=120))
                    refused = list(third.texts)
                    statuses = {
                        "150 MB announced": put(url, first.session_id, declared=150 << 20),
                        "25 MB without a length": put(url, first.session_id, declared=None, chunks=25),
                    }
                    held = uploads_held(url)
                    statuses["1 MB"] = put(url, first.session_id, declared=None, body=b"\0" * (1 << 20))
                    await first.__aexit__(None, None, None)  # a tab closes: its place is free
                    third.texts.clear()
                    runs.append(await third.rerun(timeout=120))
                    admitted = list(third.texts)
                return runs, [first, second, third], refused, admitted, statuses, held

        runs, tabs, refused, admitted, statuses, held = run_async(visit())
    assert [run.status for run in runs] == ["ok"] * 4, log.read_text()
    assert not any(tab.exceptions for tab in tabs)
    assert FULL not in tabs[0].texts[:10] and FULL not in tabs[1].texts[:10]
    assert FULL in refused
    assert any(t.startswith("Your network address already has 2 sessions open, the most one address may have (2)") for t in refused)
    assert FULL not in admitted and any("Spiking Autoencoder Explorer" in t for t in admitted)
    assert statuses == {"150 MB announced": 413, "25 MB without a length": 413, "1 MB": 204}
    assert held == 0  # nothing of a refused upload is kept
