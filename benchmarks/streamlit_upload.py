"""Uploading a file into a Streamlit session the way ``st.file_uploader``'s frontend does.

The frontend asks the session where to put the file (a ``file_urls_request``
over the websocket: ``Session.file_urls``), PUTs it as multipart form data to
``/_stcore/upload_file/<session id>/<file id>`` with the XSRF cookie echoed in an
``X-Xsrftoken`` header, and then sends the widget's state (the file's id, name
and size) with the next rerun.  ``put_file`` streams the body, so a large upload
costs this client no memory; ``attach`` sets the widget's state.
"""

from __future__ import annotations

import asyncio
import http.client
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlparse

from streamlit.proto.WidgetStates_pb2 import WidgetState

from benchmarks.streamlit_session import Session

XSRF_COOKIE = "_streamlit_xsrf"
CHUNK = 1 << 20
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Upload:
    """What the server answered, and what the widget's state needs to name the file."""

    status: int
    reason: str
    name: str
    size: int
    file_urls: object  # the FileURLs proto the session handed out

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def xsrf_cookie(base_url: str) -> str:
    """The XSRF cookie the health check sets, as the frontend gets it (empty when XSRF protection is off)."""
    parsed = urlparse(base_url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", parsed.path.rstrip("/") + "/_stcore/health")
        response = connection.getresponse()
        response.read()
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        return cookies[XSRF_COOKIE].value if XSRF_COOKIE in cookies else ""
    finally:
        connection.close()


def _multipart(name: str, chunks: Iterator[bytes], boundary: str) -> tuple[bytes, Iterator[bytes], bytes]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    return head, chunks, f"\r\n--{boundary}--\r\n".encode()


def _zeros(size: int) -> Iterator[bytes]:
    block = bytes(min(size, CHUNK))
    left = size
    while left > 0:
        yield block[: min(left, CHUNK)]
        left -= CHUNK


def _put(base_url: str, upload_url: str, name: str, data: bytes | None, size: int) -> tuple[int, str]:
    """The PUT itself (blocking): the HTTP status and reason, or 0 when the server hung up mid-body."""
    boundary = uuid.uuid4().hex
    head, body, tail = _multipart(name, iter([data]) if data is not None else _zeros(size), boundary)
    cookie = xsrf_cookie(base_url)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(head) + size + len(tail))}
    if cookie:
        headers.update({"Cookie": f"{XSRF_COOKIE}={cookie}", "X-Xsrftoken": cookie})

    def chunks():
        yield head
        yield from body
        yield tail

    parsed = urlparse(base_url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=TIMEOUT_S)
    try:
        connection.request("PUT", upload_url, body=chunks(), headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.reason
    except (BrokenPipeError, ConnectionResetError) as error:  # the server stopped reading: refused
        return 0, f"connection closed while sending ({type(error).__name__})"
    finally:
        connection.close()


async def put_file(session: Session, name: str, data: bytes | None = None, size: int | None = None) -> Upload:
    """Upload ``data`` (or ``size`` zero bytes, streamed) as file ``name`` into ``session``.

    The HTTP part runs in a thread, so the other sessions of this event loop keep reading."""
    (urls,) = await session.file_urls([name])
    size = len(data) if data is not None else int(size or 0)
    status, reason = await asyncio.to_thread(_put, session.base_url, urls.upload_url, name, data, size)
    return Upload(status, reason, name, size, urls)


def attach(session: Session, widget_id: str, upload: Upload) -> None:
    """The uploader widget's state naming ``upload``, as the frontend sends it with the next rerun."""
    state = WidgetState(id=widget_id)
    info = state.file_uploader_state_value.uploaded_file_info.add()
    info.name, info.size, info.file_id = upload.name, upload.size, upload.file_urls.file_id
    info.file_urls.CopyFrom(upload.file_urls)
    session.widget_states[widget_id] = state
