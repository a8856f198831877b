"""Who may open the app: at most so many sessions per server and per client address.

One script can open sessions in a loop, and each connected session holds memory and
a share of the CPU; so app.py asks :func:`refusal` first in every run, and a session
over the class's limits (``explorer.page_limits``) gets a plain "the class is full"
page instead of the app.  A session is counted while its browser is connected: a
closed tab frees its place at once, and a session that reconnects keeps its place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import streamlit as st

from explorer.page_limits import PageLimits, page_limits

ADMITTED = "_admitted"


class SessionTable:
    """The sessions admitted on this server and the address each came from (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._address: dict[str, str] = {}

    def admit(self, session: str, address: str, limits: PageLimits, alive: Callable[[str], bool], known: bool = False) -> str | None:
        """Count ``session`` in, or the one line why the class is full.  Sessions no longer
        ``alive`` are forgotten first.  A ``known`` session (admitted before, now reconnected)
        is counted again without a check: it already had its place."""
        with self._lock:
            for other in [s for s in self._address if s != session and not alive(s)]:
                del self._address[other]
            if session in self._address or known:
                self._address[session] = address
                return None
            if len(self._address) >= limits.max_sessions:
                return (
                    f"This server already has {len(self._address)} sessions open, the most it takes at once "
                    f"({limits.max_sessions}): try again when someone has closed theirs."
                )
            same = sum(1 for a in self._address.values() if a == address)
            if same >= limits.sessions_per_address:
                return (
                    f"Your network address already has {same} sessions open, the most one address may have "
                    f"({limits.sessions_per_address}): close a tab you no longer use, or try again later."
                )
            self._address[session] = address
            return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._address)


@st.cache_resource
def sessions() -> SessionTable:
    return SessionTable()


def session_alive(session_id: str) -> bool:
    """Whether a browser session is still connected (none is, where no server runs: under AppTest
    each test's session is counted alone)."""
    from streamlit import runtime

    return runtime.exists() and runtime.get_instance().is_active_session(session_id)


LOCAL = "localhost"  # Streamlit reports no address for a connection from this machine: they share one


def client_address() -> str:
    """The student's network address (behind trusted proxies: ``PageLimits.client_address``)."""
    return page_limits().client_address(st.context.ip_address, st.context.headers.get("X-Forwarded-For", "")) or LOCAL


def refusal() -> str | None:
    """None when this session may use the app; else the line for the "class is full" page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    session = ctx.session_id if ctx is not None else "no-session"
    why = sessions().admit(session, client_address(), page_limits(), session_alive, known=bool(st.session_state.get(ADMITTED)))
    if why is None:
        st.session_state[ADMITTED] = True
    return why


def show_class_full(why: str) -> None:
    st.title("The class is full")
    st.text(why)
    st.button("Try again", icon=":material/refresh:")
