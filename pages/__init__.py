"""The app's pages: one short layout script each, in ``pages/views/``; ``app.py`` lists them.

The files directly in this folder are not pages.  Streamlit starts every process
in its legacy multipage mode when a ``pages/`` folder sits beside the entry
script, and leaves it only when ``st.navigation`` first runs; until then a deep
link such as ``/explore?index=42`` (a class arriving at a freshly started
server) runs ``pages/explore.py`` itself, without ``app.py``, or shows "Page not
found" when there is no such file.  So each page's URL has a file here that only
hands over to :func:`enter_app`: ``app.py`` runs, its ``st.navigation`` switches
the legacy mode off and picks the real page from the same URL.  Once any session
has run, these files are never run again.
"""

import runpy
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"


def enter_app() -> None:
    """Run app.py (the sidebar, st.navigation, the page the URL asks for) from a legacy-mode page."""
    runpy.run_path(str(APP), run_name="__main__")
