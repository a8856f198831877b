"""One way to put a figure on a page: a Plotly chart whose camera button saves a named PNG,
restyled for the projector while the projector view is on (``sae.plots.projector``)."""

from __future__ import annotations

import streamlit as st

from explorer import projector
from sae.plots.inside import png_download_config
from sae.plots.projector import for_projector


def chart(fig, name: str, key: str | None = None, **select):
    """``st.plotly_chart`` of ``fig``, saved as ``name``.png from its camera button; the widget key
    is ``key`` (default: ``name``).  ``select`` goes to st.plotly_chart (on_select, selection_mode)."""
    if projector.is_on():
        fig = for_projector(fig)
    return st.plotly_chart(fig, key=key or name, config=png_download_config(name), **select)
