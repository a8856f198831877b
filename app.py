"""Spiking Autoencoder Explorer: entry point.

Sets the page up, draws the shared sidebar (device, checkpoint, neuron settings)
and runs the page the user chose.  Start it with ``streamlit run app.py``, or with
``python -m explorer.warmup`` (``make run``), which loads everything a first visit
needs before the server takes its first session (explorer/warmup.py).
"""

import streamlit as st

from explorer import admission, links, memory, page_frame, projector
from explorer.rerun_gate import rerun_slot
from explorer.sidebar import render_sidebar

st.set_page_config(page_title="Spiking Autoencoder Explorer", page_icon="⚡", layout="wide", initial_sidebar_state=projector.sidebar_state())
memory.start_collector()  # closed sessions' garbage collected and handed back now and then (explorer/memory.py)
if why := admission.refusal():  # at most so many sessions per server and per address (explorer/admission.py)
    admission.show_class_full(why)
    st.stop()

# Material icons ship with Streamlit, so they render even where no emoji font is installed.
PAGES = [
    st.Page("pages/views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/views/explore.py", title="Explore", icon=":material/biotech:", url_path="explore"),
    st.Page("pages/views/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/views/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("pages/views/latent_lab.py", title="Latent lab", icon=":material/science:", url_path="lab"),
    st.Page("pages/views/teach.py", title="Teach", icon=":material/school:", url_path="teach"),
    st.Page("pages/views/join.py", title="Join a class", icon=":material/groups:", url_path="join"),
]

page = st.navigation(PAGES)
links.read_link(page.url_path)  # every value of the link parsed and corrected before any widget reads it
page_frame.before_page(page)  # a lesson's step, lock and hide (explorer/page_frame.py)
with rerun_slot(page):  # at most two Explore reruns at once over all sessions (explorer/rerun_gate.py)
    link_lines = st.container()  # above the page; the sidebar may add a line (a checkpoint not here)
    render_sidebar()
    links.show_lines(link_lines)
    page_frame.above_page(page)
    page.run()
