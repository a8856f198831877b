"""Reading what a page showed, without a server: links in Markdown, new lines, short quotes, a table.

The hostile-class benchmark (benchmarks/hostile.py) asks of every page an
attacker opened: did a traceback show, did one line say what happened, did a
value the link carried come back as a live link or image?  These are the
answers, as plain functions of the texts a ``benchmarks.streamlit_session.Session``
collected, so they are tested on their own (tests/test_page_reading.py).

``live_links`` follows the Markdown Streamlit renders (CommonMark with GitHub's
extensions): inline links and images, ``<scheme:...>`` autolinks and bare
``http(s)://`` / ``www.`` addresses; backslash escapes and code spans make text
literal.  Raw HTML is not rendered by Streamlit unless a page allows it, so it is
not looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*)>")
BARE_URL = re.compile(r"(?:https?://|www\.)[^\s<]+")
WWW_AFTER = set(" \t\n*_~()[]")
TRAILING = set("?!.,:*_~'\"]")
MAX_QUOTE = 120


@dataclass(frozen=True)
class Link:
    """A link or image a Markdown renderer makes: its kind, its visible text and its target."""

    kind: str  # "link", "image", "autolink" or "bare URL"
    text: str
    target: str

    def __str__(self) -> str:
        if self.kind in ("link", "image"):
            return f"{self.kind} [{self.text}]({self.target})"
        return f"{self.kind} {self.target}"


def _marked_chars(markdown: str) -> list[tuple[str, str]]:
    """The text as (character, how) pairs: how is "" for a character that can be markup,
    "escaped" after a backslash, "code" inside a code span (both are shown as they are)."""
    chars, i = [], 0
    while i < len(markdown):
        c = markdown[i]
        if c == "\\" and i + 1 < len(markdown) and markdown[i + 1] in PUNCTUATION:
            chars.append((markdown[i + 1], "escaped"))
            i += 2
        elif c == "`":
            run = len(markdown[i:]) - len(markdown[i:].lstrip("`"))
            close = re.compile(rf"(?<!`){'`' * run}(?!`)").search(markdown, i + run)
            end = close.end() if close else i + run  # no closing run: the backticks are plain text
            chars.extend((ch, "code" if close else "escaped") for ch in markdown[i:end])
            i = end
        else:
            chars.append((c, ""))
            i += 1
    return chars


def _matching(chars, start: int, opening: str, closing: str) -> int | None:
    """The index of the markup ``closing`` that balances the markup ``opening`` at ``start``."""
    depth = 0
    for j in range(start, len(chars)):
        c, how = chars[j]
        if how:
            continue
        depth += c == opening
        depth -= c == closing
        if depth == 0:
            return j
    return None


def _inline_links(chars) -> list[tuple[int, int, Link]]:
    """``[text](target)`` and ``![alt](target)``, with where each starts and ends."""
    found, i = [], 0
    while i < len(chars):
        if chars[i] != ("[", ""):
            i += 1
            continue
        close = _matching(chars, i, "[", "]")
        if close is None or close + 1 >= len(chars) or chars[close + 1] != ("(", ""):
            i += 1
            continue
        end = _matching(chars, close + 1, "(", ")")
        if end is None:
            i += 1
            continue
        target = "".join(c for c, _ in chars[close + 2 : end]).strip().split(" ")[0]  # [text]() links to nowhere, but links
        image = i > 0 and chars[i - 1] == ("!", "")
        text = "".join(c for c, _ in chars[i + 1 : close])
        found.append((i - image, end + 1, Link("image" if image else "link", text, target)))
        i = end + 1
    return found


def _bare_urls(text: str, taken: list[tuple[int, int]]) -> list[Link]:
    """GitHub's extended autolinks: an ``http(s)://`` address after anything but a letter, a ``www.``
    address at a line's start or after a space or one of ``( * _ [ ] ~``."""
    found = []
    for match in BARE_URL.finditer(text):
        start, url = match.start(), match.group()
        before = text[start - 1] if start else " "
        allowed = before in WWW_AFTER if url.startswith("www.") else not (before.isascii() and before.isalpha())
        if any(a <= start < b for a, b in taken) or not allowed:
            continue
        while url and (url[-1] in TRAILING or (url[-1] == ")" and url.count(")") > url.count("("))):
            url = url[:-1]
        host = url.split("://", 1)[-1].split("/", 1)[0]
        if host and host != "www.":
            found.append(Link("bare URL", url, url))
    return found


def live_links(markdown: str) -> list[Link]:
    """Every link and image that rendering ``markdown`` makes (what an injected value could become)."""
    chars = _marked_chars(markdown)
    inline = _inline_links(chars)
    links = [link for _, _, link in inline]
    taken = [(a, b) for a, b, _ in inline]
    markup = "".join(c if not how else "\0" for c, how in chars)  # an escaped < starts no autolink
    for match in AUTOLINK.finditer(markup):
        if not any(a <= match.start() < b for a, b in taken):
            links.append(Link("autolink", match.group(1), match.group(1)))
            taken.append(match.span())
    shown = "".join(c if how != "code" else "\0" for c, how in chars)  # escaped text still reads as an address
    links += _bare_urls(shown, taken)
    return links


def links_to(markdown: str, needle: str) -> list[Link]:
    """The live links or images in ``markdown`` whose target contains ``needle``."""
    return [link for link in live_links(markdown) if needle in link.target]


def quote(text: str, limit: int = MAX_QUOTE) -> str:
    """One line of a page's text, cut to ``limit`` characters, for a report."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def new_lines(before: list[str], after: list[str]) -> list[str]:
    """The lines of ``after`` that ``before`` did not show, in order, each once."""
    seen, fresh = set(before), []
    for line in after:
        if line not in seen:
            seen.add(line)
            fresh.append(line)
    return fresh


def mentioning(lines: list[str], *words: str) -> list[str]:
    """The lines that name any of ``words`` as a whole word (case-insensitive): "view" is not in "overview"."""
    patterns = [re.compile(rf"(?<!\w){re.escape(w)}(?!\w)", re.IGNORECASE) for w in words if w]
    return [line for line in lines if any(p.search(shown(line)) for p in patterns)]


def shown(line: str) -> str:
    """``line`` as a reader sees it: the app escapes Markdown in what it repeats (``no\\_such``)."""
    return re.sub(r"\\(.)", r"\1", line)


def link_value(query_string: str, name: str) -> str | None:
    """The last value of ``name`` in a query string (None when the link has none)."""
    values = parse_qs(query_string, keep_blank_values=True).get(name)
    return values[-1] if values else None


TIME_LEFT = re.compile(r"about (\d+):(\d\d) left")


def minutes_left(texts: list[str]) -> float | None:
    """The Train page's latest "about M:SS left", in minutes (None before it shows one)."""
    for text in reversed(texts):
        found = TIME_LEFT.search(text)
        if found:
            return int(found.group(1)) + int(found.group(2)) / 60
    return None


def cache_bytes(metrics_text: str, cache_type: str) -> int | None:
    """The bytes Streamlit's ``/_stcore/metrics`` reports for one cache (e.g. "UploadedFileManager"), summed."""
    found = re.findall(rf'^cache_memory_bytes{{cache_type="{re.escape(cache_type)}"[^}}]*}} (\d+)', metrics_text, re.MULTILINE)
    return sum(int(n) for n in found) if found else None


def cpu_model(lscpu_output: str) -> str:
    """The "Model name" line of ``lscpu``."""
    for line in lscpu_output.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Model name":
            return value.strip()
    return "unknown CPU"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table; a cell's ``|`` is escaped and its line breaks become spaces."""

    def cell(value) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
