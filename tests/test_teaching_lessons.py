"""Lesson files: the validator (one line per problem, naming file and step), the library, and the
shipped lessons, whose stated facts are measured on the shipped model and MNIST test digits.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sae.data.mnist import mnist_tensors
from sae.io.checkpoints import load_checkpoint
from teaching import bounds
from teaching.__main__ import main as teaching_cli
from teaching.facts import MEASURES, Bench, Check, Edit, verify
from teaching.lessons import SHIPPED_DIR, load_library, parse_lesson, read_lesson
from teaching.links import LessonLink, decode

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "checkpoints" / "sae_mnist.pt"
DOC = ROOT / "docs" / "lessons.md"
STEP = """
[[steps]]
title = "A step"
page = "explore"
do = "Look."
"""
GOOD = 'title = "A lesson"\n' + STEP


@pytest.fixture(scope="module")
def bench():
    torch.set_num_threads(1)
    images, labels = mnist_tensors(train=False)
    return Bench(load_checkpoint(SHIPPED_MODEL).model.eval(), images, labels)


def problems(text: str, name: str = "my-lesson") -> list[str]:
    lesson, found = parse_lesson(textwrap.dedent(text), name)
    assert (lesson is None) == bool(found)
    return found


# --- the shipped lessons ----------------------------------------------------------------------------


def test_the_shipped_lessons_load_and_follow_the_tutorial():
    library = load_library([SHIPPED_DIR])
    assert library.problems == ()
    assert list(library.lessons) == ["1-threshold", "2-time-steps", "3-latent-code"]
    pages = {name: {step.view.page for step in lesson.steps} for name, lesson in library.lessons.items()}
    assert "explore" in pages["1-threshold"] and pages["3-latent-code"] == {"lab"}
    said = {
        name: " ".join(f"{s.do} {s.notice} {s.question.ask if s.question else ''}" for s in lesson.steps) for name, lesson in library.lessons.items()
    }
    assert "thresh" in said["1-threshold"] and "beta" in said["1-threshold"]
    assert "num_steps" in said["2-time-steps"] and "energy" in said["2-time-steps"]
    assert "Silence" in said["3-latent-code"] and "Between two digits" in said["3-latent-code"]
    for lesson in library.lessons.values():
        kinds = {s.collect.kind for s in lesson.steps if s.collect}
        assert "prediction" in kinds and kinds & {"experiment", "code"}, lesson.name


def test_every_shipped_question_is_answered_by_a_checked_fact():
    for lesson in load_library([SHIPPED_DIR]).lessons.values():
        for number, step in enumerate(lesson.steps, 1):
            if step.question is None:
                continue
            assert step.checks, f"{lesson.name} step {number}: a question whose answer nothing checks"
            assert step.question.answer is not None
            # The guess comes first: what the reveal changes is locked while the question is open.
            assert set(step.question.reveal.values) - set(step.view.values) <= step.question.asking.locked | step.question.asking.hidden
            assert step.question.reveal != step.view or step.view.page == "lab"


def test_the_facts_of_the_shipped_lessons_hold_on_the_shipped_model(bench):
    for lesson in load_library([SHIPPED_DIR]).lessons.values():
        assert lesson.checkpoint == SHIPPED_MODEL.stem
        assert lesson.check_facts(bench) == [], lesson.name


@pytest.mark.parametrize(
    "lesson, step, change, says",
    [
        ("1-threshold", 3, {"low": 5.0, "high": 5.0}, r"latent_neurons_fired on test digit #0 at thresh 2 is 0, not in \[5, 5\]"),
        ("1-threshold", 6, {"factor": 100.0}, r"spikes on test digit #0 at beta 0.9 is .*, not more than 100 x .* \(at beta 0.5\)"),
        ("2-time-steps", 4, {"more_than": None, "less_than": {"steps": 5}, "factor": 0.5}, r"not less than 0.5 x"),
        ("3-latent-code", 3, {"edit": Edit(silence=(12,))}, r"looks_like on test digit #9 is [0-689]"),
        ("3-latent-code", 5, {"low": 6.0, "high": 6.0}, r"blend_switch_stage on test digit #0 is 2, not in \[6, 6\]"),
    ],
)
def test_a_false_fact_is_caught(bench, lesson, step, change, says):
    """Planted mistakes: the fact checker is not a check that cannot fail."""
    found = load_library([SHIPPED_DIR]).lessons[lesson].step(step)
    check = replace(found.checks[0], **change)
    lines = verify(check, found.view, bench)
    assert lines and re.search(says, lines[0]), lines


def test_a_measure_that_cannot_be_taken_is_one_line(bench):
    view = LessonLink("lab", {"lab_code": "4x2-00"})
    assert verify(Check("looks_like", low=0, high=9), view, bench) == [
        "looks_like on test digit #0: the link's lab_code does not fit: it is a 4 x 2 code and this model at these settings uses 32 x 5"
    ]
    assert "does not exist" in verify(Check("looks_like", edit=Edit(fire=(99,)), low=0), LessonLink("lab"), bench)[0]


def test_every_measure_is_documented_and_runs(bench):
    doc = DOC.read_text()
    for name, measure in MEASURES.items():
        assert f"| `{name}` | {measure.page} |" in doc, name
        check = Check(name, layer="dec0" if measure.needs_layer else None, low=-1e12)
        assert verify(check, LessonLink(measure.page), bench) == [], name


def test_a_lesson_link_opens_its_step():
    lesson = load_library([SHIPPED_DIR]).lessons["2-time-steps"]
    link = lesson.link(3)
    assert link.values["lesson"] == "2-time-steps" and link.values["lesson_step"] == 3
    assert decode(link.query(), link.page).link == link
    question = lesson.step(3).question
    assert question.is_right(3) and not question.is_right(4)
    choice = lesson.step(2).question
    assert choice.is_right("three times as high or more") and not choice.is_right("about the same")


# --- the format ----------------------------------------------------------------------------------


def test_the_example_in_the_docs_is_a_valid_lesson():
    example = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S).group(1)
    lesson, found = parse_lesson(example, "example")
    assert found == [] and len(lesson.steps) == 2 and lesson.steps[1].question.reveal.values["thresh"] == 2.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ('title = "A"\ncolour = "red"\n' + STEP, ["my-lesson.toml: unknown key 'colour'"]),
        ("summary = 'no title'\n" + STEP, ["my-lesson.toml: missing 'title'"]),
        ("title = 3\n" + STEP, ["my-lesson.toml: 'title' must be text"]),
        ('title = "   "\n' + STEP, ["my-lesson.toml: 'title' is empty"]),
        (f'title = "{"x" * 81}"\n' + STEP, ["my-lesson.toml: 'title' has 81 characters; at most 80"]),
        ('title = "A"\n', ["my-lesson.toml: missing 'steps'"]),
        ('title = "A"\nsteps = []\n', ["my-lesson.toml: has no steps"]),
        ('title = "A"\n' + STEP * 21, ["my-lesson.toml: has 21 steps; at most 20"]),
        ('format = 2\ntitle = "A"\n' + STEP, ["my-lesson.toml: format 2 is not one this app reads (it reads format 1)"]),
        ('title = "A"\nsteps = [1]\n', ["my-lesson.toml, step 1: must be a table ([[steps]])"]),
        (
            GOOD.replace('page = "explore"', 'page = "admin"'),
            ["my-lesson.toml, step 1: values: unknown page 'admin': one of home, explore, compare, lab, train, teach, join"],
        ),
        (GOOD.replace('do = "Look."', ""), ["my-lesson.toml, step 1: missing 'do'"]),
        (GOOD + 'notice = "' + "n" * 801 + '"\n', ["my-lesson.toml, step 1: 'notice' has 801 characters; at most 800"]),
        (GOOD + "size = 3\n", ["my-lesson.toml, step 1: unknown key 'size'"]),
        (GOOD + "values = { thresh = 9.0 }\n", ["my-lesson.toml, step 1: values: thresh: thresh must be a number in 0.05–5, got 9.0"]),
        (GOOD + "values = { thresh = inf }\n", ["my-lesson.toml, step 1: values: thresh: thresh must be a number in 0.05–5, got inf"]),
        (GOOD + "values = { lab_a = 3 }\n", ["my-lesson.toml, step 1: values: lab_a: not on the Explore page"]),
        (GOOD + "values = { warp = 9 }\n", ["my-lesson.toml, step 1: values: 'warp': no such control"]),
        (GOOD + "lock = ['lab_view']\n", ["my-lesson.toml, step 1: cannot keep lab_view locked: not on the Explore page"]),
        (GOOD + "hide = [3]\n", ["my-lesson.toml, step 1: 'hide' must be a list of control names"]),
        (GOOD + "values = 'thresh=2'\n", ["my-lesson.toml, step 1: 'values' must be a table"]),
        ("title = 'A'\n[[steps]\n", None),  # not TOML at all
    ],
)
def test_each_problem_is_one_line_naming_file_and_step(text, expected):
    found = problems(text)
    if expected is None:
        assert len(found) == 1 and found[0].startswith("my-lesson.toml: not valid TOML: ")
    else:
        assert found == expected


QUESTION = GOOD + "[steps.question]\nask = 'How many?'\n"


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("kind = 'essay'\n", "'kind' must be one of number, choice, not 'essay'"),
        ("kind = 'number'\n", "a number question needs 'low' and 'high'"),
        ("kind = 'number'\nlow = 5\nhigh = 1\n", "'low' (5) must be below 'high' (1)"),
        ("kind = 'number'\nlow = 0\nhigh = 1\nanswer = 2\n", "'answer' must be a number from 0 to 1"),
        ("kind = 'number'\nlow = 0\nhigh = 1\nanswer = 'one'\n", "'answer' must be a number from 0 to 1"),
        ("kind = 'number'\nlow = 0\nhigh = 1\ntolerance = -1\n", "'tolerance' must not be negative"),
        ("kind = 'number'\nlow = 0\nhigh = nan\n", "'high' must be a finite number"),
        ("kind = 'number'\nlow = 0\nhigh = 1\nchoices = ['a', 'b']\n", "'choices' is only for choice questions"),
        ("kind = 'choice'\nchoices = ['a']\n", "a choice question needs 2 to 6 'choices', each text of at most 80 characters"),
        ("kind = 'choice'\nchoices = ['a', 'b', 'c', 'd', 'e', 'f', 'g']\n", "'choices' has 7 entries; at most 6"),
        ("kind = 'choice'\nchoices = ['a', 'a']\n", "two 'choices' are the same"),
        ("kind = 'choice'\nchoices = ['a', 'b']\nanswer = 'c'\n", "'answer' must be the text of one of the 'choices'"),
        ("kind = 'choice'\nchoices = ['a', 'b']\nunit = 'x'\n", "'unit' is only for number questions"),
        ("kind = 'choice'\nchoices = ['a', 'b']\nreveal = { index = -4 }\n", "reveal: index: index must be an integer in 0–9,999, got -4"),
        ("kind = 'choice'\nchoices = ['a', 'b']\nhint = 'x'\n", "unknown key 'hint'"),
    ],
)
def test_each_question_problem_is_one_line(extra, expected):
    assert problems(QUESTION + extra) == [f"my-lesson.toml, step 1 question: {expected}"]


@pytest.mark.parametrize(
    "step, expected",
    [
        ("[steps.collect]\nkind = 'prediction'\n", "step 1 collect: a prediction is the answer to the step's question: add a question"),
        ("[steps.collect]\nkind = 'code'\n", "step 1 collect: an edited code is collected on the lab page only"),
        ("[steps.collect]\nkind = 'vote'\n", "step 1 collect: 'kind' must be one of prediction, experiment, code, not 'vote'"),
        ("[[steps.checks]]\nmeasure = 'happiness'\nmin = 0\n", "step 1 check 1: unknown measure 'happiness': one of " + ", ".join(MEASURES)),
        (
            "[[steps.checks]]\nmeasure = 'looks_like'\nmin = 0\n",
            "step 1 check 1: looks_like is a figure of the lab page; this step is on the explore page",
        ),
        (
            "[[steps.checks]]\nmeasure = 'mse'\n",
            "step 1 check 1: states nothing to check: give 'min', 'max', 'more_than', 'less_than' or 'answers_question'",
        ),
        ("[[steps.checks]]\nmeasure = 'layer_spikes'\nmax = 0\n", "step 1 check 1: layer_spikes needs 'layer'"),
        ("[[steps.checks]]\nmeasure = 'mse'\nlayer = 'dec0'\nmax = 0\n", "step 1 check 1: mse takes no 'layer'"),
        (
            "[[steps.checks]]\nmeasure = 'mse'\nmax = 0\nanswers_question = true\n",
            "step 1 check 1: 'answers_question' needs the step's question to be a number question with an 'answer'",
        ),
        ("[[steps.checks]]\nmeasure = 'mse'\nmax = 1\ndigits = [10000]\n", "step 1 check 1: 'digits' must be MNIST test indices, 0–9,999"),
        (
            "[[steps.checks]]\nmeasure = 'mse'\nmax = 1\nedit = { clear = true }\n",
            "step 1 check 1: 'edit' changes the Latent lab's code: only for lab measures",
        ),
        ("[[steps.checks]]\nmeasure = 'mse'\nmax = 1\nfactor = 0\n", "step 1 check 1: 'factor' must be above 0"),
        ("[[steps.checks]]\nmeasure = 'mse'\nmore_than = { beta = 2 }\n", "step 1 check 1: more_than: beta: beta must be a number in 0–1, got 2"),
        ("[[steps.checks]]\nmeasure = 'mse'\nmax = 1\n" * (bounds.MAX_CHECKS + 1), "step 1: 'checks' has 11 entries; at most 10"),
    ],
)
def test_each_collect_and_check_problem_is_one_line(step, expected):
    assert problems(GOOD + step) == [f"my-lesson.toml, {expected}"]


def test_every_problem_of_a_file_is_listed_at_once():
    text = 'title = 3\nwho = "me"\n' + STEP + STEP.replace('page = "explore"', 'page = "x"') + STEP.replace('do = "Look."', "")
    assert problems(text) == [
        "my-lesson.toml: unknown key 'who'",
        "my-lesson.toml: 'title' must be text",
        "my-lesson.toml, step 2: values: unknown page 'x': one of home, explore, compare, lab, train, teach, join",
        "my-lesson.toml, step 3: missing 'do'",
    ]


def test_a_bad_file_name_is_a_problem():
    assert problems(GOOD, name="My Lesson") == ["My Lesson.toml: the file name must be 1 to 40 lowercase letters, digits, - or _, ending in .toml"]


# --- files and the library -------------------------------------------------------------------------


def test_a_file_too_big_or_not_text_is_one_line(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text(GOOD + "#" * bounds.MAX_LESSON_BYTES)
    assert read_lesson(big) == (None, ["big.toml: larger than 64 KiB"])
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"title = '\xff\xfe'")
    assert read_lesson(binary) == (None, ["binary.toml: not UTF-8 text"])
    assert read_lesson(tmp_path / "gone.toml") == (None, ["gone.toml: cannot be read (No such file or directory)"])


def test_a_teachers_folder_adds_lessons_beside_the_shipped_ones(tmp_path, monkeypatch):
    (tmp_path / "my-lesson.toml").write_text(GOOD)
    (tmp_path / "broken.toml").write_text("title = ")
    (tmp_path / "1-threshold.toml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a lesson")
    monkeypatch.setenv("SAE_LESSONS_DIR", str(tmp_path))
    library = load_library()
    assert list(library.lessons) == ["1-threshold", "2-time-steps", "3-latent-code", "my-lesson"]
    assert library.lessons["1-threshold"].title == "One neuron and its threshold"  # the shipped one stays
    assert library.problems[0] == "1-threshold.toml: a lesson named '1-threshold' is already loaded; rename the file"
    assert library.problems[1].startswith("broken.toml: not valid TOML")
    assert len(library.problems) == 2
    monkeypatch.setenv("SAE_LESSONS_DIR", str(tmp_path / "nowhere"))
    assert load_library().problems == ("SAE_LESSONS_DIR names no folder",)


def test_a_folder_is_read_up_to_its_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_LESSON_FILES", 3)
    for n in range(5):
        (tmp_path / f"l{n}.toml").write_text(GOOD)
    library = load_library([tmp_path])
    assert list(library.lessons) == ["l0", "l1", "l2"]
    assert library.problems == (f"{tmp_path.name}: 5 lesson files; only the first 3 are read",)


def test_the_command_line_checks_files_and_facts(tmp_path, capsys):
    assert teaching_cli(["check", str(SHIPPED_DIR), "--facts", "--checkpoint", str(SHIPPED_MODEL)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "ok: 1-threshold.toml (One neuron and its threshold, 7 steps, facts hold)",
        "ok: 2-time-steps.toml (How many time steps a picture needs, 7 steps, facts hold)",
        "ok: 3-latent-code.toml (What the code means, 6 steps, facts hold)",
    ]
    wrong = tmp_path / "wrong.toml"
    wrong.write_text((SHIPPED_DIR / "1-threshold.toml").read_text().replace("answer = 0\n", "answer = 12\n"))
    assert teaching_cli(["check", str(wrong), "--facts", "--checkpoint", str(SHIPPED_MODEL)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "wrong.toml, step 3 check 1: latent_neurons_fired on test digit #0 at thresh 2 is 0, not in [12, 12]"
    ]
    (tmp_path / "bad.toml").write_text("title = 1\n")
    assert teaching_cli(["check", str(tmp_path / "bad.toml")]) == 1
