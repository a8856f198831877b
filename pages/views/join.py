"""Join a class: the join code the teacher shows (or the link its QR code opens) and a nickname; no accounts.

Once in, every page shows the class's lesson step above it (explorer/lesson_player.py), and the
teacher moves the steps.  The seat is this browser tab's only: it is kept in its session, never in
a link, so a copied address does not join anyone.
"""

import streamlit as st

from explorer import live_class
from teaching import bounds
from teaching.controls import BY_NAME


def _code_in_link() -> str:
    """``join=`` of the address (the QR code's link), when it is a join code's shape; else nothing."""
    try:
        return BY_NAME["join"].kind.parse("join", st.query_params.get("join", ""))[0]
    except ValueError:
        return ""


def _join() -> None:
    live_class.join(st.session_state.get("join_code", ""), st.session_state.get("join_nickname", ""))


st.title(":material/groups: Join a class")
state = live_class.seat_state()
if state is not None:
    st.success(f"You are in the class: {state.students} joined. Your teacher's lesson step is shown above each page.")
    st.button("Leave the class", on_click=live_class.leave)
else:
    st.markdown("Type the join code your teacher shows, and a nickname the class will know you by (no account, no e-mail).")
    st.session_state.setdefault("join_code", _code_in_link())
    st.text_input("Join code", key="join_code", max_chars=bounds.JOIN_CODE_LENGTH + 2, placeholder="e.g. K7M2QX")
    st.text_input("Nickname", key="join_nickname", max_chars=bounds.NICKNAME_CHARS, help="Letters, digits, spaces and - _ . '")
    st.button("Join", on_click=_join, type="primary", icon=":material/login:")
