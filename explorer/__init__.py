"""Streamlit glue shared by the pages: the sidebar, cached resources, the canvas component.

The model math lives in ``sae``; this package only turns widgets into ``sae`` calls.
"""
