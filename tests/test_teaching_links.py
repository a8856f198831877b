"""Lesson links: the view a teacher hands out, to a short URL and back; corrections; QR codes.

Also checks the one table of controls (teaching/controls.py) against the pages it describes, read
from their source and their modules, so a renamed tab or a new bound widget fails here first.
"""

from __future__ import annotations

import ast
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from teaching import bounds
from teaching.controls import BY_NAME, CONTROLS, PAGES, Choice, Number, Several, controls_on, echo
from teaching.links import HIDDEN, LOCKED, SHOWN, LessonLink, LinkError, decode, decode_url, encode, link_problems
from teaching.qr import BORDER, QRError, qr_code, qr_png, qr_svg

ROOT = Path(__file__).resolve().parent.parent
GOOD = LessonLink(
    "explore",
    {"source": "MNIST", "index": 42, "thresh": 2.0, "beta": 0.75, "steps": 8, "view": "Inside a layer", "layer": "dec0"},
    locked=frozenset({"thresh", "index"}),
    hidden=frozenset({"device", "ckpt", "upload_checkpoint"}),
)
HOSTILE = "<script>**x**[y](javascript:z)$\\alpha$`c` #h|~" + "A" * 200


def test_a_link_round_trips_through_its_url():
    url = GOOD.url("https://school.example/sae/")
    assert url.startswith("https://school.example/sae/explore?")
    assert "lock=thresh,index" in url and "hide=ckpt,device,upload_checkpoint" in url
    decoded = decode_url(url)
    assert decoded == type(decoded)(GOOD, ())
    assert decode(GOOD.query(), "explore").link == GOOD
    assert decode("?" + GOOD.query(), "explore").link == GOOD


@pytest.mark.parametrize(
    "link",
    [
        LessonLink("home"),
        LessonLink("home", {"projector": True, "lesson": "1-threshold", "lesson_step": 3}),
        LessonLink("lab", {"lab_a": 3, "lab_b": 7, "lab_view": "Between two digits", "lab_code": "32x5-" + "f" * 40}, hidden={"lab_edit_buttons"}),
        LessonLink("compare", {"c_view": "A/B", "c_grid_beta": (0.5, 0.9), "c_grid_thresh": (), "c_class": 7, "c_b_thresh": 0.5}),
        LessonLink("train", {"thresh": 0.5}, locked={"train_preset"}, hidden={"train_device", "train_start"}),
        LessonLink("explore", {"join": "K3BUD2", "ckpt": "compare_T5_thr2"}),
    ],
)
def test_every_kind_of_value_round_trips(link):
    decoded = decode_url(link.url())
    assert decoded.corrections == ()
    assert decoded.link == link


def _page_values(draw, page):
    values = {}
    for control in controls_on(page):
        if not control.has_value or not draw(st.booleans()):
            continue
        kind = control.kind
        if isinstance(kind, Number):
            low, high = kind.range.low, kind.range.high
            value = draw(st.integers(int(low), int(high))) if kind.range.integer else round(draw(st.floats(low, high)), 3)
            values[control.name] = min(max(value, low), high)
        elif isinstance(kind, Choice):
            values[control.name] = draw(st.sampled_from(kind.options))
        elif isinstance(kind, Several):
            values[control.name] = tuple(draw(st.lists(st.sampled_from(kind.options), unique=True, max_size=4)))
    return values


@st.composite
def links(draw):
    page = draw(st.sampled_from(list(PAGES)))
    names = [c.name for c in controls_on(page)]
    hidden = draw(st.sets(st.sampled_from(names), max_size=4))
    locked = draw(st.sets(st.sampled_from(names), max_size=4)) - hidden
    return LessonLink(page, _page_values(draw, page), frozenset(locked), frozenset(hidden))


@settings(max_examples=150, deadline=None)
@given(links())
def test_any_link_decodes_to_itself(link):
    decoded = decode(encode(link), link.page)
    assert decoded.corrections == ()
    assert decoded.link == link
    for name in link.locked:
        assert decoded.link.visibility(name) == LOCKED
    for name in link.hidden:
        assert decoded.link.visibility(name) == HIDDEN


def test_only_what_differs_from_the_page_is_written():
    same = LessonLink("explore", {"source": "Draw", "index": 0, "view": "Latent code", "thresh": None})
    assert same == LessonLink("explore") and encode(same) == ""
    assert LessonLink("explore").url() == "/explore"
    assert LessonLink("home").url("http://h/app") == "http://h/app/"
    assert encode(LessonLink("explore", {"thresh": 0.35})) == "thresh=0.35"
    assert LessonLink("explore", {"thresh": 2}).values["thresh"] == 2.0  # one form for one value
    assert GOOD.value("class") == "any" and GOOD.value("index") == 42
    assert GOOD.visibility("beta") == SHOWN


@pytest.mark.parametrize(
    "bad, line, changed",
    [
        ("thresh=9", r"^thresh 9 is outside 0\.05–5; using 5$", {"thresh": 5.0}),
        ("steps=-3", r"^steps -3 is outside 1–50; using 1$", {"steps": 1}),
        ("index=123456789", r"^index 123456789 is outside 0–9,999; using 9999$", {"index": 9999}),
        ("beta=nan", r"^ignored beta='nan': not a finite number$", {}),
        ("beta=inf", r"^ignored beta='inf': not a finite number$", {}),
        ("beta=1e999", r"^ignored beta='1e999': not a finite number$", {}),
        ("steps=2.5", r"^ignored steps='2.5': not an integer$", {}),
        ("index=seven", r"^ignored index='seven': not an integer$", {}),
        ("view=Secrets", r"^ignored view='Secrets': not one of its choices$", {}),
        ("device=tpu", r"^ignored device='tpu': not one of its choices$", {}),
        ("colour=red", r"^ignored 'colour': no such control$", {}),
        ("lab_a=3", r"^ignored lab_a: not on the Explore page$", {}),
        ("c_grid_beta=0.5", r"^ignored c_grid_beta: not on the Explore page$", {}),
        ("random_digit=1", r"^ignored random_digit: it has no value to set \(only to lock or hide\)$", {}),
        ("ckpt=" + "a" * 300, r"^ignored ckpt: 300 characters, more than 79$", {}),
        ("ckpt=../../etc/passwd", r"^ignored ckpt='\.\.\?\.\.\?etc\?passwd': not a checkpoint name$", {}),
        ("projector=maybe", r"^ignored projector='maybe': not on or off \(1 or 0\)$", {}),
        ("join=ABC", r"^ignored join='ABC': not a join code$", {}),
        ("lesson=Bad%20Name", r"^ignored lesson='Bad Name': not a lesson name$", {}),
        ("lock=warp", r"^ignored 'warp' in lock: no such control$", {}),
        ("hide=lab_view", r"^ignored lab_view in hide: not on the Explore page$", {}),
        ("beta=0.1&beta=0.2", r"^beta is given 2 times; using the first$", {"beta": 0.1}),
    ],
)
def test_each_correction_is_one_line_and_nothing_else_changes(bad, line, changed):
    key = bad.partition("=")[0]
    base = GOOD.with_values({key: None}) if key in GOOD.values else GOOD
    decoded = decode(bad + "&" + base.query(), "explore")
    assert len(decoded.corrections) == 1, decoded.corrections
    assert re.match(line, decoded.corrections[0]), decoded.corrections[0]
    assert dict(decoded.link.values) == dict(base.values) | changed
    assert (decoded.link.locked, decoded.link.hidden) == (base.locked, base.hidden)


def test_a_locked_and_hidden_control_is_hidden_and_said_once():
    decoded = decode("lock=thresh,beta&hide=thresh", "explore")
    assert decoded.corrections == ("thresh is both locked and hidden; hiding it",)
    assert decoded.link.visibility("thresh") == HIDDEN and decoded.link.visibility("beta") == LOCKED


def test_a_multiselect_drops_unknown_entries_one_line_each():
    decoded = decode("c_grid_thresh=0.5&c_grid_thresh=7&c_grid_thresh=0.5&c_grid_thresh=x&c_grid_steps=", "compare")
    assert decoded.link.values["c_grid_thresh"] == (0.5,)
    assert decoded.link.values["c_grid_steps"] == ()  # key= alone: none picked, unlike the default
    assert decoded.corrections == ("ignored c_grid_thresh='7': not one of its choices", "ignored c_grid_thresh='x': not one of its choices")


def test_an_oversized_link_is_refused_whole_in_one_line():
    for query in ("thresh=2&" + "x=1&" * bounds.MAX_LINK_PARAMS, "thresh=2&ckpt=" + "a" * bounds.MAX_LINK_CHARS):
        decoded = decode(query, "explore")
        assert decoded.link == LessonLink("explore")
        assert len(decoded.corrections) == 1 and decoded.corrections[0].startswith("the link is too big")
    huge = {"index": ["1"] * (bounds.MAX_LINK_PARAMS + 1)}
    assert decode(huge, "explore").corrections[0].startswith("the link is too big")


def test_an_unknown_page_opens_home_with_one_line():
    assert decode_url("http://h/app/admin?thresh=2").corrections == ("unknown page 'admin'; opening Home",)
    assert decode_url("http://h/app/admin?thresh=2").link == LessonLink("home", {"thresh": 2.0})
    assert decode("", "nowhere").corrections == ("unknown page 'nowhere'; opening Home",)


def test_a_mapping_reads_like_the_query_string():
    query = {"thresh": "2", "lock": ["thresh,index"], "c_grid_thresh": ["0.5", "1"], "index": ["42"]}
    assert decode(query, "compare") == decode("thresh=2&lock=thresh,index&c_grid_thresh=0.5&c_grid_thresh=1&index=42", "compare")


def test_a_hostile_value_is_never_echoed_raw_or_long():
    for query in (f"view={HOSTILE}", f"{HOSTILE}=1", f"lock={HOSTILE}", f"thresh={HOSTILE}", f"ckpt={HOSTILE[:60]}"):
        from urllib.parse import quote

        key, _, value = query.partition("=")
        lines = decode(f"{quote(key)}={quote(value)}", "explore").corrections
        assert len(lines) == 1
        assert not set(lines[0]) & set("<>*[]()$\\`#|~"), lines[0]
        assert len(lines[0]) < 100, lines[0]
    assert echo("a" * 100) == "'" + "a" * bounds.ECHO_CHARS + "…'"
    assert echo("x\ny\u202ez") == "'x?y?z'"


def test_building_a_wrong_link_says_every_problem():
    with pytest.raises(LinkError, match="thresh: thresh must be a number in 0.05–5"):
        LessonLink("explore", {"thresh": 9})
    with pytest.raises(LinkError, match="unknown page"):
        LessonLink("settings")
    problems = link_problems("explore", {"lab_a": 1, "view": "Nope", "warp": 9, "random_digit": 1}, locked=["lab_b"], hidden=["zz"])
    assert problems == [
        "lab_a: not on the Explore page",
        "view: 'Nope' is not one of Latent code, Inside a layer, Spikes per layer, Input vs output",
        "'warp': no such control",
        "random_digit: it has no value to set (only to lock or hide)",
        "cannot keep lab_b locked: not on the Explore page",
        "cannot keep 'zz' hidden: no such control",
    ]
    assert link_problems("explore", {"thresh": float("nan")}) and link_problems("explore", {"index": True})


def test_links_are_values():
    assert GOOD == decode(GOOD.query(), "explore").link and hash(GOOD) == hash(decode(GOOD.query(), "explore").link)
    assert GOOD.with_values({"thresh": None, "index": 7}).values == {**{k: v for k, v in GOOD.values.items() if k != "thresh"}, "index": 7}
    with pytest.raises(TypeError):
        GOOD.values["thresh"] = 1.0


# --- the table against the pages -----------------------------------------------------------------


def _bound_keys() -> tuple[set[str], list[str]]:
    """Keys of widgets bound to the URL in explorer/ and pages/: literal ones, and f-string patterns."""
    literal, patterns = set(), []
    for path in [*ROOT.glob("explorer/*.py"), *ROOT.glob("pages/views/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            keywords = {kw.arg: kw.value for kw in node.keywords}
            bound = isinstance(keywords.get("bind"), ast.Constant) and keywords["bind"].value == "query-params"
            bound |= any(kw.arg is None and isinstance(kw.value, ast.Name) and kw.value.id == "URL" for kw in node.keywords)
            key = keywords.get("key")
            if not bound or key is None:
                continue
            if isinstance(key, ast.Constant):
                literal.add(key.value)
            elif isinstance(key, ast.JoinedStr):
                patterns.append("".join(re.escape(p.value) if isinstance(p, ast.Constant) else r"\w+" for p in key.values))
            elif isinstance(key, ast.Name) and key.id.startswith("KEY_"):
                literal.add({"KEY_A": "lab_a", "KEY_B": "lab_b"}[key.id])
    return literal, patterns


def test_every_key_a_page_binds_to_the_url_is_in_the_table():
    literal, patterns = _bound_keys()
    assert literal, "no bound widget found: the scan no longer reads the pages"
    for key in literal:
        assert key in BY_NAME and BY_NAME[key].has_value, key
    for pattern in patterns:
        assert any(re.fullmatch(pattern, c.name) for c in CONTROLS if c.has_value), pattern


def test_the_sidebar_keys_and_the_page_choices_match_the_table():
    from explorer import compare_inputs, digit_input, lab, lab_texts, sidebar, texts, train_form

    for widget, url in sidebar.URL_KEYS.items():
        assert BY_NAME[url].widget == widget
    assert BY_NAME["source"].kind.options == digit_input.SOURCES
    assert BY_NAME["class"].kind.options == tuple(digit_input.CLASSES)
    assert BY_NAME["lab_view"].kind.options == lab_texts.VIEWS
    assert BY_NAME["lab_code"].name == lab.URL_CODE and BY_NAME["lab_b"].default == lab.DEFAULT_B
    assert BY_NAME["c_digits"].kind.options == compare_inputs.DIGIT_SOURCES
    assert BY_NAME["c_thresh_values"].default == texts.QUESTIONS["thresh"]["default"]
    assert BY_NAME["c_num_steps_values"].default == texts.QUESTIONS["num_steps"]["default"]
    assert {c.widget for c in CONTROLS if c.name.startswith("train_") and c.widget} == {
        train_form.key(f) for f in ("preset", *train_form.NET_FIELDS, *train_form.TRAIN_FIELDS)
    }
    for script, name in (("explore.py", "view"), ("compare.py", "c_view")):
        tree = ast.parse((ROOT / "pages" / "views" / script).read_text())
        views = next(n.value for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "VIEWS")
        assert tuple(ast.literal_eval(views)) == BY_NAME[name].kind.options, script


def test_the_table_is_one_namespace():
    names = [c.name for c in CONTROLS]
    assert len(names) == len(set(names))
    assert not {"lock", "hide"} & set(names)
    assert all(page in PAGES for c in CONTROLS for page in c.pages)
    for control in CONTROLS:  # every default is a value its own kind accepts
        if control.has_value and control.default is not None:
            assert control.kind.problem(control.default) is None, control.name


# --- QR codes -------------------------------------------------------------------------------------


def test_the_png_shows_exactly_the_code_of_the_link():
    url = GOOD.url("https://school.example/sae")
    scale = 6
    image = np.array(Image.open(io.BytesIO(qr_png(url, scale=scale))).convert("L"))
    matrix = np.array(segno.make(url, error="m", micro=False).matrix, dtype=bool)
    side = matrix.shape[0] + 2 * BORDER
    assert image.shape == (side * scale, side * scale)
    centres = image[scale // 2 :: scale, scale // 2 :: scale] < 128  # dark modules
    assert np.array_equal(centres[BORDER:-BORDER, BORDER:-BORDER], matrix)
    assert not centres[:BORDER].any() and not centres[:, :BORDER].any()  # the quiet zone is white
    assert qr_code(url).error in ("M", "Q", "H")


def test_the_svg_is_a_picture_and_carries_no_text_of_the_link():
    url = "https://school.example/sae/explore?ckpt=%3Cscript%3E"
    svg = qr_svg(url)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and int(root.get("width")) == (qr_code(url).symbol_size(border=BORDER)[0]) * 8
    assert "script" not in svg and "school" not in svg


def test_a_link_too_long_or_empty_for_a_qr_code_is_one_line():
    with pytest.raises(QRError, match="too many for a QR code"):
        qr_svg("https://h/" + "a" * bounds.MAX_QR_CHARS)
    with pytest.raises(QRError, match="empty"):
        qr_png("")
