"""What app.py does around every page for the teacher's tools: the lesson step, lock and hide, the projector.

:func:`before_page` runs after ``st.navigation`` and before anything is drawn (a lesson step may
set widget values or switch page only then); :func:`above_page` after the sidebar, just before the
page: the projector's switch in the sidebar, its style, the link's corrections and the lesson panel.
"""

from __future__ import annotations

import streamlit as st

from explorer import lesson_player, projector, visibility
from teaching.controls import PAGES

_BY_PATH = {path: name for name, path in PAGES.items()}


def page_name(page) -> str:
    """The name ``teaching.controls`` uses for an ``st.Page`` (by its url_path; Home's is empty)."""
    return _BY_PATH.get(page.url_path, "home")


def before_page(page) -> None:
    name = page_name(page)
    lesson_player.open_step(name)
    visibility.read_link(name)


def above_page(page) -> None:
    projector.switch(st.sidebar, key="sb_projector")
    projector.apply_style()
    visibility.show_corrections()
    lesson_player.panel(page_name(page))
