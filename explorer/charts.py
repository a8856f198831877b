"""One way to put a figure on a page: a Plotly chart whose camera button saves a named PNG."""

from __future__ import annotations

import streamlit as st

from sae.plots.inside import png_download_config


def chart(fig, name: str, key: str | None = None, **select):
    """``st.plotly_chart`` of ``fig``, saved as ``name``.png from its camera button; the widget key
    is ``key`` (default: ``name``).  ``select`` goes to st.plotly_chart (on_select, selection_mode)."""
    return st.plotly_chart(fig, key=key or name, config=png_download_config(name), **select)
