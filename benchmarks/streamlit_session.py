"""One Streamlit session driven over its websocket protocol, without a browser.

A :class:`Session` speaks Streamlit's own protocol (``/_stcore/stream``, protobuf
``BackMsg`` / ``ForwardMsg`` from ``streamlit.proto``) the way the browser does:
it sends ``rerun_script`` with the query string, the page and the widget states,
keeps the ForwardMsg cache (``cached_message_hashes`` in, ``ref_hash`` out, aged
like the frontend's) and follows fragment ``auto_rerun``.  The time from sending
a rerun to its ``script_finished`` is the server's share of that interaction (the
browser's drawing is not in it).

It also keeps what a test or a benchmark reads back: the widgets the server drew
(by id), the page's texts (markdown, captions, alerts, progress and metrics), the
exceptions shown, and the session id the server gave it (for uploads).

Loopback only, bounded in messages: a runaway server cannot keep a client
reading for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.RootContainer_pb2 import RootContainer
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_CACHED_MESSAGE_AGE = 2  # Streamlit's global.maxCachedMessageAge: the frontend drops older entries
RUN_TIMEOUT_S = 60.0  # one rerun that takes longer than this is reported as a timeout
MAX_MESSAGES = 200_000  # per session: a runaway server cannot keep a client reading for ever
MAX_TEXTS = 200  # texts kept per session, newest last
SIDEBAR = RootContainer.SIDEBAR
MAX_REPLAYED_BYTES = 64 * 1024  # a cached element this small is kept to read again when the server refers to it
FINISHED = {
    ForwardMsg.FINISHED_SUCCESSFULLY: "ok",
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR: "compile error",
    ForwardMsg.FINISHED_EARLY_FOR_RERUN: "interrupted",
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY: "ok",
}
TEXT_OF = {
    "markdown": lambda e: e.markdown.body,
    "progress": lambda e: e.progress.text,
    "alert": lambda e: e.alert.body,
    "metric": lambda e: f"{e.metric.label}: {e.metric.body}",
    "toast": lambda e: e.toast.body,
}
ALERTS = ("alert", "toast")  # the one-line messages a page shows: st.error / warning / info / success, st.toast


@dataclass
class Run:
    """One rerun this client asked for: when it was sent, when (and how) it finished."""

    sent: float
    fragment_id: str = ""
    in_flight: int = 0  # other sessions' reruns waiting for their script_finished when this one was sent
    finished: float | None = None
    status: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else self.finished - self.sent


class Session:
    """One browser tab, as the server sees it: a websocket, a page, widget states and a message cache."""

    in_flight = 0  # reruns sent and not finished, over every session of this process

    def __init__(self, base_url: str, page: str, query_string: str = "", cookie: str | None = None):
        """``cookie``: a ``Cookie`` header the browser would send (``sae_owner=…``: one student's tabs)."""
        parsed = urlparse(base_url)
        if parsed.hostname not in LOOPBACK:
            raise ValueError(f"loopback servers only, not {parsed.hostname!r}")
        self.base_url = base_url.rstrip("/")
        self.ws_url = f"ws://{parsed.netloc}{parsed.path.rstrip('/')}/_stcore/stream"
        self.page_name = page
        self.query_string = query_string
        self.cookie = cookie
        self.page_script_hash = ""
        self.session_id = ""  # the server's id for this session (new_session.initialize)
        self.widget_states: dict[str, object] = {}  # widget id -> WidgetState (what this tab has set)
        self.widgets: dict[str, object] = {}  # widget id -> the element proto this page shows (since the last full run)
        self.texts: list[str] = []  # markdown, captions, progress texts of the runs, newest last (bounded)
        self.alerts: list[str] = []  # the bodies of st.error / warning / info / success / toast, newest last (bounded)
        self.sidebar_alerts: list[str] = []  # the same, of the sidebar only (the settings' lines, not the page's)
        self.exceptions: list[str] = []
        self.cache: dict[str, int] = {}  # message hash -> run count when last sent or referenced
        self.cached_elements: dict[str, object] = {}  # message hash -> its (small) element, for a later ref_hash
        self.run_count = 0
        self.auto_reruns: dict[str, asyncio.Task] = {}
        self.pending: Run | None = None
        self.ws = None
        self._replies: dict[str, asyncio.Future] = {}  # file_urls request id -> its response
        self._reader: asyncio.Task | None = None
        self._messages = 0

    async def __aenter__(self):
        # No Origin header (a non-browser client): Streamlit accepts it and skips the XSRF cookie check.
        headers = {"Cookie": self.cookie} if self.cookie else None
        self.ws = await connect(
            self.ws_url, subprotocols=["streamlit"], max_size=None, compression=None, open_timeout=30, ping_interval=None, additional_headers=headers
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        for task in self.auto_reruns.values():
            task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    # ---- sending

    def _back_msg(self, fragment_id: str = "", auto: bool = False) -> bytes:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_name = self.page_name if not self.page_script_hash else ""
        state.page_script_hash = self.page_script_hash
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        for widget in self.widget_states.values():
            state.widget_states.widgets.append(widget)
        state.cached_message_hashes.extend(self.cache)
        return msg.SerializeToString()

    async def rerun(self, fragment_id: str = "", auto: bool = False, timeout: float = RUN_TIMEOUT_S) -> Run:
        """Send one rerun_script and wait for its script_finished (or the timeout)."""
        run = Run(sent=time.perf_counter(), fragment_id=fragment_id, in_flight=Session.in_flight)
        if self.pending is not None and not self.pending.done.is_set():
            self._finish(self.pending, "interrupted")  # the server drops a run a newer request supersedes
        self.pending = run
        Session.in_flight += 1
        await self.ws.send(self._back_msg(fragment_id, auto))
        try:
            await asyncio.wait_for(run.done.wait(), timeout)
        except TimeoutError:
            self._finish(run, "timeout")
        return run

    def go_to(self, page: str) -> None:
        """The next rerun opens ``page`` (a url path such as "explore"), as a click in the navigation does."""
        self.page_name, self.page_script_hash = page, ""

    def _finish(self, run: Run, status: str) -> None:
        if run.done.is_set():
            return
        run.finished, run.status = time.perf_counter(), status
        Session.in_flight -= 1
        run.done.set()

    def set_slider(self, widget_id: str, value: float) -> None:
        state = WidgetState(id=widget_id)
        state.double_array_value.data.append(float(value))
        self.widget_states[widget_id] = state

    def set_number(self, widget_id: str, value: float | int) -> None:
        """A number_input's value: an int_value for an integer input, as the frontend sends it."""
        state = WidgetState(id=widget_id)
        if isinstance(value, int):
            state.int_value = value
        else:
            state.double_value = float(value)
        self.widget_states[widget_id] = state

    def set_text(self, widget_id: str, value: str) -> None:
        self.widget_states[widget_id] = WidgetState(id=widget_id, string_value=value)

    def press(self, widget_id: str) -> None:
        """A button click: a trigger that is true for one run only (as the frontend sends it)."""
        self.widget_states[widget_id] = WidgetState(id=widget_id, trigger_value=True)

    def release_triggers(self) -> None:
        for key, state in list(self.widget_states.items()):
            if state.WhichOneof("value") == "trigger_value":
                del self.widget_states[key]

    async def file_urls(self, file_names: list[str], timeout: float = 30.0) -> list:
        """Ask the server where to upload files (a ``file_urls_request``, as st.file_uploader does): its FileURLs."""
        request_id = f"r{time.perf_counter_ns()}"
        reply = asyncio.get_running_loop().create_future()
        self._replies[request_id] = reply
        msg = BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.file_names.extend(file_names)
        msg.file_urls_request.session_id = self.session_id
        await self.ws.send(msg.SerializeToString())
        try:
            return list(await asyncio.wait_for(reply, timeout))
        finally:
            self._replies.pop(request_id, None)

    # ---- receiving

    async def _read(self) -> None:
        async for data in self.ws:
            self._messages += 1
            if self._messages > MAX_MESSAGES:
                break
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self._handle(msg)

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = self.run_count
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element" and msg.ByteSize() <= MAX_REPLAYED_BYTES:
                self.cached_elements[msg.hash] = msg.delta.new_element
        if kind == "ref_hash":
            self.cache[msg.ref_hash] = self.run_count
            if msg.ref_hash in self.cached_elements:  # the frontend draws its cached copy: read it again
                self._element(self.cached_elements[msg.ref_hash], msg.metadata.delta_path[:1] == [SIDEBAR])
        elif kind == "new_session":
            self._new_session(msg)
        elif kind == "navigation":
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, msg.metadata.delta_path[:1] == [SIDEBAR])
        elif kind == "auto_rerun":
            self._auto_rerun(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                task = self.auto_reruns.pop(fragment_id, None)
                if task is not None:
                    task.cancel()
        elif kind == "file_urls_response":
            reply = self._replies.get(msg.file_urls_response.response_id)
            if reply is not None and not reply.done():
                reply.set_result(msg.file_urls_response.file_urls)
        elif kind == "script_finished":
            self._script_finished(msg.script_finished)

    def _new_session(self, msg: ForwardMsg) -> None:
        if msg.new_session.initialize.session_id:
            self.session_id = msg.new_session.initialize.session_id
        if msg.new_session.page_script_hash:
            self.page_script_hash = msg.new_session.page_script_hash
        if not msg.metadata.run.fragment_ids:  # a full run starts: the frontend drops its fragment timers
            for task in self.auto_reruns.values():
                task.cancel()
            self.auto_reruns.clear()
            self.widgets.clear()  # and keeps only the widgets this run draws

    def _script_finished(self, code: int) -> None:
        if code == ForwardMsg.FINISHED_SUCCESSFULLY:
            self.run_count += 1
            self.cache = {h: n for h, n in self.cache.items() if self.run_count - n <= MAX_CACHED_MESSAGE_AGE}
            self.cached_elements = {h: e for h, e in self.cached_elements.items() if h in self.cache}
        if self.pending is not None:
            self._finish(self.pending, FINISHED.get(code, str(code)))

    def _element(self, element, in_sidebar: bool = False) -> None:
        kind = element.WhichOneof("type")
        if kind == "exception":
            self.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind in TEXT_OF:
            text = TEXT_OF[kind](element)
            self.texts = (self.texts + [text])[-MAX_TEXTS:]
            if kind in ALERTS:
                self.alerts = (self.alerts + [text])[-MAX_TEXTS:]
                if in_sidebar:
                    self.sidebar_alerts = (self.sidebar_alerts + [text])[-MAX_TEXTS:]
        else:
            proto = getattr(element, kind, None)
            widget_id = getattr(proto, "id", "") if proto is not None else ""
            if widget_id:
                self.widgets[widget_id] = proto
            if kind == "selectbox" and proto.set_value:  # the server chose (a callback, a link): the frontend keeps sending it
                self.widget_states[widget_id] = WidgetState(id=widget_id, string_value=proto.raw_value)

    def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        if fragment_id in self.auto_reruns or interval <= 0:
            return

        async def tick():
            while True:
                await asyncio.sleep(interval)
                if self.pending is None or self.pending.done.is_set():  # the frontend skips a tick while a run goes on
                    try:
                        await self.rerun(fragment_id=fragment_id, auto=True)
                    except ConnectionClosed:  # the session ended between two ticks
                        return

        self.auto_reruns[fragment_id] = asyncio.create_task(tick())

    # ---- reading the page

    def find_widget(self, kind: str, label_start: str):
        """The first widget of this kind ("slider", "button", "selectbox"...) whose label starts so."""
        for proto in self.widgets.values():
            if type(proto).__name__.lower() == kind and proto.label.startswith(label_start):
                return proto
        return None

    def widget_by_key(self, user_key: str):
        """The widget created with ``key=user_key`` (Streamlit ends its id with the key)."""
        return next((w for w in self.widgets.values() if w.id.endswith(user_key)), None)
