"""What the hostile-class benchmark reads from a page, checked without a server.

benchmarks/hostile.py reports whether a value a link carried came back as a live
link or image, which line a page added, where a training run stands: these are
the functions it decides with (benchmarks/page_reading.py, benchmarks/train_page.py,
benchmarks/hostile_common.py).
The Markdown cases are rendered the way Streamlit's frontend (CommonMark with
GitHub's extensions) renders them: a bare address becomes a link even without a
dot, a backslash or a code span keeps markup as text.
"""

import pytest

from benchmarks.hostile_common import Visit, what_it_said
from benchmarks.page_reading import (
    Link,
    cache_bytes,
    cpu_model,
    link_value,
    links_to,
    live_links,
    markdown_table,
    mentioning,
    minutes_left,
    new_lines,
    quote,
)
from benchmarks.train_page import ENDED, FAILED, NOT_STARTED, QUEUED, RUNNING, run_state, saved_name


@pytest.mark.parametrize(
    "markdown, expected",
    [
        ("ignored thresh='[Log in again](http://x)' from the link", [Link("link", "Log in again", "http://x")]),
        ("index '![x](http://host/t.png)' is not a number", [Link("image", "x", "http://host/t.png")]),
        (
            "see <https://a.b/c> and www.example.com.",
            [Link("autolink", "https://a.b/c", "https://a.b/c"), Link("bare URL", "www.example.com", "www.example.com")],
        ),
        ("bare http://x here", [Link("bare URL", "http://x", "http://x")]),
        ("nested [a [b] c](http://q(1)) ok", [Link("link", "a [b] c", "http://q(1)")]),
        (r"escaped \[Log in again\]\(http://x\)", [Link("bare URL", "http://x", "http://x")]),  # the address alone stays live
        ("ignored thresh=`[Log in again](http://x)` from the link", []),
        ("``code ` http://in.code`` text", []),
        ("plain [brackets] and (parentheses), a.b", []),
        ("a [link]() with no target", [Link("link", "link", "")]),
        ("see [the docs](https://docs.streamlit.io) or x", [Link("link", "the docs", "https://docs.streamlit.io")]),
    ],
)
def test_live_links_are_what_the_markdown_renders(markdown, expected):
    assert live_links(markdown) == expected


def test_escaping_markup_leaves_an_address_live_but_no_image():
    links = live_links(r"\<https://a.b\> and \!\[x\]\(y\)")
    assert [link.kind for link in links] == ["bare URL"] and links[0].target.startswith("https://a.b")
    assert live_links("wordhttp://x.org and word www.x.org") == [Link("bare URL", "www.x.org", "www.x.org")]


def test_links_to_picks_the_injected_target_only():
    line = "see [the docs](https://docs.streamlit.io) or [Log in again](http://x)"
    assert links_to(line, "http://x") == [Link("link", "Log in again", "http://x")]
    assert links_to("value 'http' only", "http://x") == []
    assert str(Link("image", "x", "http://host/t.png")) == "image [x](http://host/t.png)"


def test_new_lines_and_whole_word_mentions():
    assert new_lines(["a", "b"], ["b", "c", "c", "a", "d"]) == ["c", "d"]
    lines = ["an overview of the page", "view 'Nope' is not a tab: showing Latent code", "c_n=1e400 replaced by 256"]
    assert mentioning(lines, "view") == [lines[1]]
    assert mentioning(lines, "c_n", "1e400") == [lines[2]]
    assert mentioning(lines, "") == []


def test_quote_is_one_short_line():
    assert quote("one\n  two   three") == "one two three"
    cut = quote("x" * 500, limit=20)
    assert len(cut) == 20 and cut.endswith("…")


def test_link_value_reads_the_last_value_of_a_parameter():
    assert link_value("ckpt=sae_mnist&device=cpu", "ckpt") == "sae_mnist"
    assert link_value("ckpt=uploaded%3A+in8.pt", "ckpt") == "uploaded: in8.pt"
    assert link_value("a=1&a=2", "a") == "2"
    assert link_value("index=", "index") == ""
    assert link_value("device=cpu", "view") is None


def test_minutes_left_reads_the_latest_estimate():
    texts = ["12% · 0:05 elapsed · about 19719:36 left · 512 images/s · step 40, epoch 1", "Steps: 40"]
    assert minutes_left(texts) == pytest.approx(19719.6)
    assert minutes_left(["measuring speed…"]) is None


def test_the_run_state_comes_from_the_page_lines():
    assert run_state([]) == NOT_STARTED
    assert run_state(["Queued: your run is number **3** in line for cpu."]) == QUEUED
    assert run_state(["Queued: ...", "4% · 0:03 elapsed · about 1:10 left · measuring speed… · step 5, epoch 1"]) == RUNNING
    assert run_state(["4% · 0:03 elapsed · ...", "100% · 0:05 of training · 12 steps"]) == ENDED
    assert run_state(["4% · 0:03 elapsed · about 1:10 left", "Training failed: the training queue cannot be reached"]) == FAILED


def test_saved_name_reads_the_success_line_only():
    assert saved_name(["Finished.", "Saved as **class_model** (test MSE 0.1) in `/x/class_model.pt`."]) == "class_model"
    assert saved_name(["Not saved: /x/class_model.pt already exists; choose another name"]) is None


def test_cache_bytes_reads_streamlits_metrics():
    text = (
        "# TYPE cache_memory_bytes gauge\n"
        'cache_memory_bytes{cache_type="UploadedFileManager",cache=""} 62914560\n'
        'cache_memory_bytes{cache_type="st_session_state",cache=""} 21\n'
    )
    assert cache_bytes(text, "UploadedFileManager") == 62914560
    assert cache_bytes(text, "st_cache_data") is None


def test_cpu_model_and_the_markdown_table():
    assert cpu_model("Architecture: x86_64\nModel name:   AMD EPYC 7B13\nThread(s) per core: 2") == "AMD EPYC 7B13"
    assert cpu_model("") == "unknown CPU"
    table = markdown_table(["attack", "got"], [["a|b", "line one\nline two"]])
    assert table.splitlines() == ["| attack | got |", "|---|---|", "| a\\|b | line one line two |"]


def test_what_an_attacker_got_is_a_traceback_else_a_new_line_about_the_value():
    def seen(alerts=(), texts=(), exceptions=()):
        return Visit("explore", ["ok"], [0.1], list(exceptions), list(alerts), list(alerts) + list(texts), "", {})

    reference = seen(alerts=["Showing an example"], texts=["Trained with thresh 1"])
    assert what_it_said(seen(exceptions=["OverflowError: cannot convert float infinity to integer"])).startswith("traceback OverflowError")
    corrected = seen(alerts=["Showing an example", "index 1e400 is outside 0–9,999; showing #9999"])
    assert what_it_said(corrected, reference, "index") == "one line: “index 1e400 is outside 0–9,999; showing #9999”"
    assert what_it_said(seen(texts=["Trained with thresh 1", "index replaced by 0"]), reference, "index") == "a line: “index replaced by 0”"
    assert what_it_said(seen(alerts=["Showing an example"], texts=["Trained with thresh 1"]), reference, "thresh") == ""  # nothing new
