"""The Teach page's lesson-link builder: a page, values for its controls, and per control shown, locked or hidden.

Every control of the chosen page (``teaching.controls.CONTROLS``: the sidebar's first, then the
page's own) gets a row: an input for its value (empty: the page's default) and, when a student could
touch it, whether it is shown, locked or hidden.  The link is ``teaching.links.LessonLink``'s short
URL; ``teaching.links.link_problems`` says what is wrong with it, one plain line each.
"""

from __future__ import annotations

import streamlit as st

from explorer.lesson_library import plain
from teaching.controls import EVERY_PAGE, PAGE_TITLES, Choice, Number, Several, controls_on
from teaching.links import HIDDEN, LOCKED, SHOWN, LessonLink, link_problems
from teaching.qr import QRError, qr_png

BUILDER_PAGES = ("explore", "lab", "compare", "train", "home")
APP_KEYS = frozenset({"lesson", "lesson_step", "join", "desk", "projector"})  # the app's own switches: not a control to set here
CHOICES = (SHOWN, LOCKED, HIDDEN)


def _value(control, where, key: str):
    """An input for the control's value; None when left empty (the page's default)."""
    kind, common = control.kind, {"label": control.label, "key": key, "label_visibility": "collapsed"}
    if isinstance(kind, Number):
        step = kind.range.step or (1 if kind.range.integer else None)
        cast = int if kind.range.integer else float
        return where.number_input(
            min_value=cast(kind.range.low),
            max_value=cast(kind.range.high),
            value=None,
            step=cast(step) if step else None,
            placeholder="default",
            **common,
        )
    if isinstance(kind, Several):
        picked = where.multiselect(options=kind.options, format_func=kind.choice.label, placeholder="default", **common)
        return tuple(picked) or None
    if isinstance(kind, Choice):
        return where.selectbox(options=kind.options, format_func=kind.label, index=None, placeholder="default", **common)
    return where.text_input(placeholder="default", **common) or None


def _rows(page: str, controls) -> tuple[dict, set, set]:
    values, locked, hidden = {}, set(), set()
    for control in controls:
        if control.name in APP_KEYS:
            continue
        label, value, seen = st.columns([2, 2, 2], vertical_alignment="center")
        label.markdown(plain(control.label))
        if control.has_value:
            values[control.name] = _value(control, value, f"tl_{page}_{control.name}")
        if control.widget or not control.has_value:  # a student can touch it: shown, locked or hidden
            how = seen.segmented_control(
                control.label, CHOICES, default=SHOWN, required=True, key=f"tl_{page}_{control.name}_seen", label_visibility="collapsed"
            )
            if how == LOCKED:
                locked.add(control.name)
            elif how == HIDDEN:
                hidden.add(control.name)
    return {k: v for k, v in values.items() if v is not None}, locked, hidden


def build(page: str, values: dict, locked, hidden, projector: bool) -> tuple[LessonLink | None, list[str]]:
    """The link, or None and one line per problem."""
    problems = link_problems(page, values, locked, hidden)
    if problems:
        return None, problems
    link = LessonLink(page, values, frozenset(locked), frozenset(hidden))
    return (link.with_values({"projector": True}) if projector else link), []


def show(address: str) -> None:
    page = st.selectbox("Page", BUILDER_PAGES, format_func=PAGE_TITLES.get, key="tl_page")
    projector = st.checkbox("Open it in the projector view", key="tl_projector")
    values, locked, hidden = {}, set(), set()
    groups = (
        ("The sidebar", [c for c in controls_on(page) if c.pages == EVERY_PAGE]),
        (PAGE_TITLES[page], [c for c in controls_on(page) if c.pages != EVERY_PAGE]),
    )
    for title, controls in groups:
        if controls:
            with st.expander(f"{title}: values, and what students see", expanded=page != "train"):
                got = _rows(page, controls)
                values.update(got[0])
                locked |= got[1]
                hidden |= got[2]
    link, problems = build(page, values, locked, hidden, projector)
    for problem in problems:
        st.text(problem)
    if link is None:
        return
    url = link.url(address)
    st.code(url, language=None, wrap_lines=True)
    st.link_button("Open it", url, icon=":material/open_in_new:")
    try:
        st.image(qr_png(url, scale=6), caption="Project this: a phone camera opens the link.", width=320)
    except QRError as error:
        st.text(str(error))
