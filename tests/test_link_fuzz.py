"""Every parameter of every page, fuzzed through the whole app (AppTest): a link is untrusted text.

For each page, every parameter it reads (``teaching.controls``: the sidebar's on every page, the
page's own) is set at once to one hostile value: huge, infinite, NaN, negative, not a number,
100 kB, Markdown / HTML / link / image payloads, a choice no list offers.  The app must show no
traceback, one line per bad value (and nothing for a good one), no link, image or HTML of the
payload in any element that renders Markdown, a URL a second run reads without a correction, and
the page itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer import links
from sae.devices import device_status
from teaching.controls import BY_NAME, PAGES, Refused, controls_on
from teaching.links import read_query

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SCRIPTS = {"home": "pages/views/home.py", "explore": "pages/views/explore.py", "compare": "pages/views/compare.py"}
SCRIPTS |= {"lab": "pages/views/latent_lab.py", "train": "pages/views/train.py", "teach": "pages/views/teach.py", "join": "pages/views/join.py"}
TIMEOUT = 300
PAYLOADS = {
    "huge": "1e400",
    "infinite": "inf",
    "nan": "nan",
    "negative": "-5",
    "negative huge": "-1e400",
    "not a number": "seven",
    "unknown choice": "Nope",
    "markdown link": "[Log in again](http://evil.example/login)",
    "image": "![x](http://evil.example/t.png)",
    "html": "<img src=x onerror=alert(1)><a href='http://evil.example'>hi</a>",
    "bare link": "www.evil.example",
    "colour directive": ":red[alarm] :material/warning:",
}
HUNDRED_KB = "9" * 100_000


def page_params(page: str) -> list[str]:
    return [c.name for c in controls_on(page) if c.has_value]


def open_page(page: str, query: dict) -> tuple[AppTest, list[str]]:
    """The page opened with ``query``, and the lines about the link it showed.

    AppTest finds a page registered under another url_path (the Latent lab's ``lab``) only after
    a first run: then the link is read by Home first (the sidebar's parameters) and by the lab
    (its own), and the lines of both are the link's."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    lines = []
    if page == "lab":
        lines = link_lines(at.run())
    at.switch_page(SCRIPTS[page]).run()
    return at, lines + link_lines(at)


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def link_lines(at: AppTest) -> list[str]:
    return [unescape(w.value) for w in at.warning if w.icon == links.ICON]


def markdown_bodies(at: AppTest) -> list[str]:
    """Every text the page renders as Markdown (and plain text, to be thorough)."""
    kinds = ("markdown", "caption", "warning", "error", "info", "success", "title", "header", "subheader", "text")
    return [str(e.value) for kind in kinds for e in at.get(kind)]


def mentions(line: str, name: str) -> bool:
    starts = (f"ignored {name}=", f"ignored {name}:", f"{name} ")
    return line.startswith(starts) or (name == "ckpt" and line.startswith("checkpoint "))


def expected_bad(page: str, raw: str) -> set[str]:
    """The parameters whose ``raw`` value is refused, corrected or replaced: by the table's parser,
    or by the sidebar (a checkpoint that is not here, a device this machine lacks)."""
    bad = set()
    for name in page_params(page):
        try:
            value, fixed = BY_NAME[name].kind.parse(name, raw) if not BY_NAME[name].multi else (None, None)
        except Refused:
            bad.add(name)
            continue
        if BY_NAME[name].multi:
            bad.add(name)  # none of these payloads is one of a multiselect's numbers
        elif fixed or name == "ckpt" or (name == "device" and device_status().get(value) is not None):
            bad.add(name)
    return bad


def assert_safe_and_working(at: AppTest, page: str) -> None:
    assert not at.exception, [e.message for e in at.exception]
    for body in markdown_bodies(at):
        assert "](" not in body and "<img" not in body and "<a " not in body, body[:200]
        assert not re.search(r"(?<!\\)www\.", body) and "http://evil" not in body and ":red[" not in body, body[:200]
    assert at.title, "the page drew nothing"
    assert at.session_state["settings"].model is not None
    kept = {key: value if isinstance(value, list) else [value] for key, value in at.query_params.items()}
    assert read_query(kept, page).corrections == (), kept  # the URL the browser keeps reads clean


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_every_parameter_of_a_page_set_to_a_hostile_value(page, payload):
    raw = PAYLOADS[payload]
    params = page_params(page)
    at, lines = open_page(page, {name: raw for name in params})
    assert_safe_and_working(at, page)
    bad = expected_bad(page, raw)
    assert bad, "every payload is bad for some parameter"
    for name in params:
        said = [line for line in lines if mentions(line, name)]
        assert len(said) == (name in bad), (name, said)
    assert len(lines) == len(bad), lines
    assert all(len(line) < 200 and "\n" not in line for line in lines)
    at.run()  # a rerun with the corrected URL, as after any click
    assert not at.exception, [e.message for e in at.exception]


@pytest.mark.parametrize("page", list(PAGES))
def test_a_100_kb_value_is_refused_in_one_line_and_the_page_opens(page):
    """Four parameters of 100 kB each (the page's own ones last in the table): more than 512 KiB in all
    and Streamlit itself drops the whole query before any page sees it."""
    at, lines = open_page(page, {name: HUNDRED_KB for name in page_params(page)[-4:]})
    assert_safe_and_working(at, page)
    assert len(lines) == 1 and lines[0].startswith("the link is too big"), lines


@pytest.mark.parametrize(
    "page, query, line",
    [
        ("explore", {"source": "MNIST", "index": "1e400"}, "ignored index='1e400': not an integer"),
        ("lab", {"lab_a": "inf"}, "ignored lab_a='inf': not an integer"),
        ("compare", {"c_n": "1e400"}, "ignored c_n='1e400': not an integer"),
        ("compare", {"c_seed": "9" * 3000}, f"ignored c_seed='{'9' * 24}…': not an integer"),
        ("explore", {"thresh": "[Log in again](http://evil.example)"}, "ignored thresh='?Log in again??http???ev…': not a finite number"),
        ("explore", {"source": "MNIST", "index": "![x](http://host/t.png)"}, "ignored index='??x??http???host?t.png?': not an integer"),
    ],
)
def test_the_reported_attacks_get_one_line_and_the_default(page, query, line):
    at, lines = open_page(page, query)
    assert_safe_and_working(at, page)
    assert lines == [line]
    name = next(k for k in query if k != "source")
    assert at.query_params.get(name) != query[name]  # the address bar keeps the page's own value, not the bad one
    at.run()
    assert not at.exception


def test_the_lines_stay_until_another_page_and_the_next_page_has_its_own():
    at, lines = open_page("explore", {"thresh": "99", "view": "Nope"})
    assert lines == ["thresh 99 is outside 0.05–5; using 5", "ignored view='Nope': not one of its choices"]
    at.slider(key="sb_thresh").set_value(1.0).run()
    assert len(link_lines(at)) == 2  # still there after a click on the same page
    at.switch_page(SCRIPTS["lab"]).run()
    assert not at.exception and link_lines(at) == []


def test_a_multiselect_keeps_its_good_entries_and_says_which_it_dropped():
    at, lines = open_page("compare", {"c_view": "Sweep grid", "c_n": "8", "c_grid_thresh": ["0.5", "7", "1"], "c_grid_steps": ["2", "x"]})
    assert_safe_and_working(at, "compare")
    assert lines == ["ignored c_grid_thresh='7': not one of its choices", "ignored c_grid_steps='x': not one of its choices"]
    assert at.multiselect(key="c_grid_thresh").value == [0.5, 1.0] and at.multiselect(key="c_grid_steps").value == [2]
    assert at.query_params["c_grid_thresh"] == ["0.5", "1"] and at.query_params["c_grid_steps"] == "2"
