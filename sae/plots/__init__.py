"""Plotly figure builders: data in, ``go.Figure`` out; no Streamlit here.

``inside``: what happens inside one forward (rasters, membranes, playback);
``training``: live training charts; ``compare``: sweeps and A/B views.
"""
