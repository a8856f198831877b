"""The projector view: large type, thick lines, high contrast, the sidebar folded, nothing but the figures.

On when the address says ``projector=1`` (read once per session, then the switch decides) or when
the switch on the Teach page or in the sidebar is on.  The page's own widgets, texts and notes are
still drawn and sent (a projector view hides nothing secret) but left out of the picture by one
style sheet; charts are restyled by ``sae.plots.projector`` in ``explorer.charts.chart``.  What a
teacher needs to drive a lesson (the lesson panel, the teacher's desk) sits in containers marked
:data:`KEEP` and stays.
"""

from __future__ import annotations

import streamlit as st

from teaching.controls import BY_NAME

_ON = "_projector"  # one writer: this module
KEEP = "projector_keep"  # the key (and so the CSS class st-key-...) of containers that stay on the projector

# Everything in the main area that is not a figure, a caption, a metric or kept is left out; type
# grows and contrast goes to black on white.  Selectors are Streamlit 1.67's data-testid names
# (tests/browser/test_teaching_browser.py checks the result in Chromium).
CSS = f"""
<style>
.stApp, .stMain {{ background: #fff; color: #000; }}
.stApp {{ font-size: 22px; }}
[data-testid=stHeader] {{ display: none; }}
.stMain .block-container {{ padding-top: 1rem; max-width: 100%; }}
.stMain [data-testid=stElementContainer]:not(:has([data-testid=stPlotlyChart], [data-testid=stImage],
  [data-testid=stCaptionContainer], [data-testid=stMetric])):not(.st-key-{KEEP} *) {{ display: none; }}
.stMain [role=tablist]:not(.st-key-{KEEP} *), .stMain [data-testid=stExpander]:not(.st-key-{KEEP} *) {{ display: none; }}
[data-testid=stCaptionContainer], [data-testid=stCaptionContainer] * {{ font-size: 22px; color: #000; line-height: 1.3; }}
.st-key-{KEEP} p, .st-key-{KEEP} li, .st-key-{KEEP} label {{ font-size: 24px; color: #000; }}
.stMain [data-testid=stMetricValue], .stMain [data-testid=stMetricValue] * {{ font-size: 52px; color: #000; }}
.stMain [data-testid=stMetricLabel] p {{ font-size: 24px; color: #000; }}
.st-key-{KEEP} h1, .st-key-{KEEP} h2, .st-key-{KEEP} h3 {{ font-size: 40px; color: #000; }}
</style>
"""


def read_flag() -> None:
    """The address's ``projector=`` on the session's first run; afterwards the switches decide."""
    if _ON in st.session_state:
        return
    raw = st.query_params.get("projector")
    on = False
    if raw is not None:
        try:
            on, _ = BY_NAME["projector"].kind.parse("projector", raw)
        except ValueError:  # not on or off: the link's value is left out (the URL parser says so)
            on = False
    st.session_state[_ON] = on


def is_on() -> bool:
    return bool(st.session_state.get(_ON, False))


def sidebar_state() -> str:
    """``initial_sidebar_state`` for ``st.set_page_config``: folded in the projector view."""
    read_flag()
    return "collapsed" if is_on() else "auto"


def _set(on: bool) -> None:
    st.session_state[_ON] = on
    if on:
        st.query_params["projector"] = "1"
    else:
        st.query_params.pop("projector", None)


def _switched(key: str) -> None:
    _set(bool(st.session_state[key]))


def switch(where=st, key: str = "projector_switch") -> None:
    """The projector view's switch (``where``: ``st`` or ``st.sidebar``); each place has its own key."""
    if st.session_state.get(key) != is_on():  # the other switch (or the link) changed it
        st.session_state[key] = is_on()
    where.toggle("Projector view", key=key, on_change=_switched, args=(key,), help="Large type, thick lines, only the figures.")


def apply_style() -> None:
    """The projector's style sheet, on every run while the view is on (constant text: nothing from a link)."""
    if is_on():
        st.html(CSS)
        if "projector" not in st.query_params:
            st.query_params["projector"] = "1"  # a copied address opens the same view
