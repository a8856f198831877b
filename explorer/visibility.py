"""Lock and hide: which controls of the page a lesson link keeps disabled or leaves out.

A lesson link (``teaching.links``) names controls in ``lock=`` and ``hide=``.  app.py calls
:func:`read_link` before the sidebar and the page draw anything; every widget call site then asks:

- :func:`shown` (``False``: the control is not drawn at all; Streamlit sends every element it
  draws to the browser, so a hidden control must not be drawn, not merely be invisible);
- :func:`locked` (``True``: drawn with ``disabled=True``, the value the link set and no other);
- :func:`tabs` for a tab bar, which Streamlit cannot disable: locked shows the open tab alone,
  hidden shows its content without a bar.

The names are those of ``teaching.controls.CONTROLS``.  Only ``lock`` and ``hide`` are read here
(the values of a link reach the widgets through the URL as usual); the lists are decoded again
only when the page or the lists change, and what a hand-edited or outdated link got wrong is said
in one plain-text line each by :func:`show_corrections`.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from teaching.controls import BY_NAME
from teaching.links import HIDDEN, LOCKED, SHOWN, LessonLink, decode

_STATE = "_visibility"  # (page, raw lock, raw hide) -> what was decoded; one writer: this module


@dataclass(frozen=True)
class _Seen:
    key: tuple
    link: LessonLink
    corrections: tuple[str, ...]


def read_link(page: str) -> None:
    """Take ``lock`` / ``hide`` of the address for ``page`` (a name of ``teaching.controls.PAGES``)."""
    raw = {name: st.query_params.get_all(name) for name in ("lock", "hide") if name in st.query_params}
    key = (page, tuple(sorted((k, tuple(v)) for k, v in raw.items())))
    seen = st.session_state.get(_STATE)
    if seen is None or seen.key != key:
        decoded = decode(raw, page)
        seen = _Seen(key, decoded.link, decoded.corrections)
        st.session_state[_STATE] = seen
        _seed_hidden_values(seen.link)
    _keep_hidden_values(seen.link)


def _seed_hidden_values(link: LessonLink) -> None:
    """A bound widget takes its value from the address when it is drawn; a hidden one never is, so
    the value the link gives it is set here (read with the same parser, ``teaching.links``)."""
    for name in link.hidden:
        widget = BY_NAME[name].widget
        if widget and widget not in st.session_state and (value := _linked_value(name)) is not None:
            st.session_state[widget] = _widget_value(value)


def _linked_value(name: str):
    """Control ``name``'s value in the address (read with ``teaching.links``), or None."""
    seen = st.session_state.get(_STATE)
    if seen is None or name not in st.query_params:
        return None
    return decode({name: st.query_params.get_all(name)}, seen.key[0]).link.values.get(name)


def _widget_value(value):
    return list(value) if isinstance(value, tuple) else value  # a multiselect holds a list


def _keep_hidden_values(link: LessonLink) -> None:
    """A widget that is not drawn loses its value at the end of the run (Streamlit's cleanup);
    writing the value back before the page draws keeps what the link or the lesson set."""
    for name in link.hidden:
        widget = BY_NAME[name].widget
        if widget and widget in st.session_state:
            st.session_state[widget] = st.session_state[widget]


def _link() -> LessonLink | None:
    seen = st.session_state.get(_STATE)
    return seen.link if seen is not None else None


def state(name: str) -> str:
    """``"shown"``, ``"locked"`` or ``"hidden"`` for control ``name`` on the current page."""
    link = _link()
    return link.visibility(name) if link is not None else SHOWN


def shown(name: str) -> bool:
    return state(name) != HIDDEN


def locked(name: str) -> bool:
    return state(name) == LOCKED


def draw(name: str, widget, *args, key: str, fallback=None, disabled: bool = False, **kwargs):
    """``widget(*args, key=key, **kwargs)`` for control ``name``: disabled while it is locked (or
    ``disabled``), and not drawn at all while hidden; then the value it keeps (or ``fallback``) is returned."""
    if not shown(name):
        return st.session_state.get(key, fallback)
    return widget(*args, key=key, disabled=disabled or locked(name), **kwargs)


def corrections() -> tuple[str, ...]:
    seen = st.session_state.get(_STATE)
    return seen.corrections if seen is not None else ()


def show_corrections() -> None:
    """One plain-text line per thing the link's lock/hide lists got wrong (never Markdown: a link wrote them)."""
    for line in corrections():
        st.text(f"Link: {line}")


class _Closed:
    """A tab that is not open: nothing is drawn in it."""

    open = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Open:
    """The open tab of a locked or hidden tab bar: its content is drawn in place."""

    open = True

    def __init__(self, container):
        self._container = container

    def __enter__(self):
        return self._container.__enter__()

    def __exit__(self, *exc):
        return self._container.__exit__(*exc)


def tabs(name: str, labels, *, key: str, **kwargs):
    """``st.tabs(labels, key=key, **kwargs)`` for control ``name``; locked: a bar with the open tab
    only (a tab bar has no ``disabled``); hidden: no bar, the open tab's content alone.  Returns one
    container per label, as ``st.tabs`` does, with ``.open`` set on the open one."""
    labels = list(labels)
    if shown(name) and not locked(name):
        return st.tabs(labels, key=key, **kwargs)
    current = st.session_state.get(key, _linked_value(name))  # never drawn yet: the address gives its value
    current = current if current in labels else kwargs.get("default") or labels[0]
    if locked(name):
        only = st.tabs([current], key=key, **kwargs)[0]
        return [only if label == current else _Closed() for label in labels]
    st.session_state[key] = current  # not drawn: kept for the link and for the lesson player
    return [_Open(st.container()) if label == current else _Closed() for label in labels]
