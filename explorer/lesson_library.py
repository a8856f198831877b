"""The lessons the app offers, and where links point: shared by the lesson player, the Teach page and the class.

The library (``teaching.lessons.load_library``: the shipped ``lessons/`` folder, then ``SAE_LESSONS_DIR``)
is read again whenever a lesson file is added, removed or changed, and otherwise kept once per
process: every session reads the same immutable lessons, and a teacher's new file needs no restart.
"""

from __future__ import annotations

import re

import streamlit as st

from teaching import bounds
from teaching.controls import PAGES
from teaching.lessons import Library, lesson_folders, load_library

LOCAL_ADDRESS = "http://localhost:8501"  # where `make run` serves, when the browser gives no address
MAX_ADDRESS_CHARS = 200
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def _signature() -> tuple:
    """The lesson files as (path, modified, size): a new, removed or edited file changes it."""
    found = []
    for folder in lesson_folders():
        if folder.is_dir():
            files = sorted(p for p in folder.glob("*.toml") if p.is_file())[: bounds.MAX_LESSON_FILES + 1]
            found += [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files]
    return tuple(found)


@st.cache_resource(max_entries=4, show_spinner=False)
def _library(signature: tuple) -> Library:
    return load_library()


def library() -> Library:
    """Every lesson that can be opened, by name, and one line for each file left out."""
    try:
        return _library(_signature())
    except OSError as error:  # the teacher's folder went away between the listing and the reading
        return Library({}, (f"the lesson folders cannot be read: {error.strerror or 'error'}",))


def plain(text: str) -> str:
    """``text`` (from a lesson file or a student) as Markdown that shows it exactly: every sign Markdown,
    LaTeX or a link could read is escaped, so a lesson's prose reads as written and nothing else."""
    return _MARKUP.sub(r"\\\1", str(text))


def app_address() -> str:
    """The app's address as this browser reached it (scheme, host, path prefix), without the page:
    the start of every link a teacher hands out."""
    url = st.context.url or LOCAL_ADDRESS
    url = url.split("?", 1)[0].rstrip("/")
    last = url.rpartition("/")[2]
    if last in PAGES.values() and last and url.count("/") > 2:
        url = url.rpartition("/")[0]
    return url if valid_address(url) is None else LOCAL_ADDRESS  # the browser's address is not trusted text


def valid_address(text: str) -> str | None:
    """Why ``text`` cannot start a link (None: it can): http(s), a host, no spaces or quotes."""
    if len(text) > MAX_ADDRESS_CHARS:
        return f"an address has at most {MAX_ADDRESS_CHARS} characters"
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?(/[A-Za-z0-9._~\-/]*)?", text):
        return "an address looks like http://host:8501 or https://school.example/sae"
    return None
