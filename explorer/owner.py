"""Whose saved checkpoints are these: a random owner id this browser keeps in a cookie.

A session's own token would be lost on a reload, and with it the student's saved runs.
So the owner is a random id (``sae.io.student_checkpoints.new_owner``) kept in a cookie
of the app's own site: the browser sends it with the connection of every later session
(``st.context.cookies``), and a student finds their checkpoints after a reload or the
next lesson on the same browser.  Why a cookie and not the link or a name: a link is
shared (with everyone it is sent to), and a name can be typed by anyone; 128 random
bits in a cookie only this browser sends cannot be guessed.  Without cookies a student
keeps ownership for the session.  The cookie holds no secret beyond that, and nothing
is stored for it on the server but the owner's folder.
"""

from __future__ import annotations

import streamlit as st

from sae.io.student_checkpoints import is_owner, new_owner

COOKIE = "sae_owner"
KEPT_DAYS = 180  # a school term or two
_OWNER, _FROM_COOKIE = "_owner", "_owner_from_cookie"


def _cookie() -> str | None:
    try:
        return st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser connection (tests, the warm-up): no cookie
        return None


def owner() -> str:
    """This browser's owner id: from its cookie, else a new one (written by :func:`keep_in_browser`)."""
    found = st.session_state.get(_OWNER)
    if found is None:
        cookie = _cookie()
        found = cookie if is_owner(cookie) else new_owner()
        st.session_state[_OWNER] = found
        st.session_state[_FROM_COOKIE] = found == cookie
    return found


def keep_in_browser(where=None) -> None:
    """Write the owner id into this browser's cookie, while the browser did not send it back yet."""
    me = owner()
    if st.session_state.get(_FROM_COOKIE):
        return
    days = KEPT_DAYS * 24 * 3600
    script = (
        f"<script>document.cookie = '{COOKIE}={me}; Max-Age={days}; Path=/; SameSite=Strict'"
        " + (location.protocol === 'https:' ? '; Secure' : '');</script>"
    )
    (where or st).html(script, unsafe_allow_javascript=True)
