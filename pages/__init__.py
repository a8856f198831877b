"""The app's pages: one short layout script each, in ``pages/views/``.

Why a sub-folder: Streamlit starts every process in its legacy multipage mode
whenever a ``pages/`` folder sits beside the entry script, and in that mode runs
each ``pages/*.py`` on its own, without ``app.py`` (so without the sidebar, for
the first visitors after a restart).  With no page scripts at this level, the
legacy mode has nothing to run but ``app.py`` itself, which hands over to
``st.navigation``.  ``app.py`` lists the pages; nothing here is run directly.
"""
