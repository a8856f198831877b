"""Every value a link carries is read by the project before any widget or page sees it.

A link is untrusted text: ``?index=1e400`` or a 100 kB number breaks Streamlit's own
URL-to-widget code (it catches ValueError, not OverflowError), and a value repeated
in a Markdown message can carry a live link or a remote image.  So app.py calls
:func:`read_link` first in every run, before the sidebar or the page draws anything:

- every parameter the page reads is parsed by its control in ``teaching.controls``
  (one table of every URL control, ranges from ``sae.limits``);
- a value out of range is replaced in the URL by the corrected one, a value that
  cannot be used at all is removed from it, so a widget bound to the URL
  (``bind="query-params"``) only ever finds a value it can read;
- each correction is one plain line (``teaching.controls.echo`` cuts and masks the
  input), kept until the next page change and shown by :func:`show_lines`.

Pages add their own replacements here too (a checkpoint the link names that is not
here, a device this server lacks: :func:`say`), so every line about a link is shown
in one place.  The lesson keys ``lock`` and ``hide`` are not read here (a lesson link's
visibility is handled apart) and parameters no page reads are left as they are.
"""

from __future__ import annotations

import re

import streamlit as st
from streamlit.runtime.state.session_state_proxy import get_session_state

from teaching.controls import BY_NAME, EVERY_PAGE, PAGES, controls_on
from teaching.links import Reading, read_query

_PAGE_NAMES = {path: name for name, path in PAGES.items()}
_READ, _LINES = "_link_reading", "_link_lines"  # this run's reading; (page path, lines) since the last page change
ICON = ":material/link_off:"  # marks a line about the link, apart from the page's own warnings
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")


def page_name(url_path: str) -> str | None:
    """The table's name of the page at ``url_path`` (app.py's url_path), or None for a page it does not list."""
    return _PAGE_NAMES.get(url_path)


def _read_names(page: str | None) -> set[str]:
    """The parameters ``page`` reads: its controls with a value, and the sidebar's on any page."""
    controls = controls_on(page) if page is not None else [c for c in BY_NAME.values() if c.pages == EVERY_PAGE]
    return {c.name for c in controls if c.has_value}


def read_link(url_path: str) -> Reading:
    """Parse the link's values for the page at ``url_path`` and correct the URL in place (app.py, first in a run).

    Runs in every run, so a value brought back by the browser's history is read too; the
    lines are renewed on a page change, or when the link brings new corrections."""
    page = page_name(url_path)
    names = _read_names(page)
    with get_session_state().query_params() as params:
        raw = {key: params.get_all(key) for key in params if key in names}
        reading = read_query(raw, page or "home")
        _correct(params, raw, reading)
    st.session_state[_READ] = reading
    kept = st.session_state.get(_LINES)
    if kept is None or kept[0] != url_path or reading.corrections:
        st.session_state[_LINES] = (url_path, list(reading.corrections))
    return reading


def _correct(params, raw: dict[str, list[str]], reading: Reading) -> None:
    """Write each value back as the table formats it (corrected, or as given in its one form)
    and remove what could not be used, before any widget reads the URL.

    Streamlit seeds a bound widget from the URL as the run began, not from ``st.query_params``,
    so both are set here; the browser's address bar follows."""
    changed = False
    for key, texts in raw.items():
        if key not in reading.values:
            params.remove_param(key)
            changed = True
            continue
        control = BY_NAME[key]
        value = reading.values[key]
        if control.multi and not value and texts != [""]:
            params.remove_param(key)  # every entry was refused: the page's default, not "none picked"
            changed = True
            continue
        wanted = control.kind.format(value)
        if wanted != texts:
            params.set_corrected_value(key, wanted if control.multi else wanted[0], "string_array_value" if control.multi else "string_value")
            changed = True
    if changed:
        params.set_initial_query_params_from_current()


def value(name: str, default=None):
    """The value the link gives control ``name`` (after corrections), or ``default`` when it gives none."""
    reading = st.session_state.get(_READ)
    return reading.values.get(name, default) if reading is not None else default


def given(name: str) -> bool:
    """Whether the link gives control ``name`` a usable value."""
    reading = st.session_state.get(_READ)
    return reading is not None and name in reading.values


def say(line: str) -> None:
    """One more line about the link, from a page that replaced a value it names (say it once)."""
    kept = st.session_state.get(_LINES)
    if kept is not None and line not in kept[1]:
        kept[1].append(line)


def plain(text: str) -> str:
    """``text`` with every character Markdown (and Streamlit's ``:colour[...]``) would read escaped,
    so it shows as written in any element that renders Markdown."""
    return _MARKDOWN.sub(r"\\\1", text)


def show_lines(where=None) -> None:
    """The lines about this page's link, one plain warning each."""
    kept = st.session_state.get(_LINES)
    for line in kept[1] if kept else ():
        (where or st).warning(plain(line), icon=ICON)
