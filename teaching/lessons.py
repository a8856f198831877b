"""Guided lessons: small TOML files of steps, their validator, and the library a lesson player reads.

A lesson is one ``<name>.toml`` file (docs/lessons.md has the format and an example).  Each step
names a page and its view (the same values, ``lock`` and ``hide`` as a lesson link), says what to
do and what to notice, and may ask a question first, whose answering view is opened only after the
learner commits a guess (predict, then see), and may ask the class for something in a live class
(a prediction, their experiment, or an edited latent code).  A step may state facts as checks
(``teaching.facts``) that are measured against a model, so a lesson cannot claim what is false.

Reading a file never raises: :func:`read_lesson` returns the lesson or one line per problem, each
naming the file and the step (unknown keys, wrong types, values out of range, missing fields, too
many steps, too long texts, unknown pages).  The library holds the shipped ``lessons/`` folder
and, when ``SAE_LESSONS_DIR`` names one, a teacher's own folder, each bounded in files and bytes.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sae import limits
from sae.model import SPIKING_LAYERS
from teaching import bounds
from teaching.controls import LESSON_NAME, echo
from teaching.facts import MEASURES, Bench, Check, Edit, verify
from teaching.links import LessonLink, link_problems

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS_ENV = "SAE_LESSONS_DIR"
FORMAT = 1  # the format version this code reads; a file may say ``format = 1``
QUESTION_KINDS = ("number", "choice")
COLLECT_KINDS = ("prediction", "experiment", "code")


@dataclass(frozen=True)
class Question:
    """Asked before the step's figure is shown; ``reveal`` is the view that answers it, opened once the
    learner has committed a guess (the step's view with the question's ``reveal`` values)."""

    ask: str
    kind: str  # "number" or "choice"
    asking: LessonLink  # the view while the question is open: the step's, with every control ``reveal`` sets locked
    reveal: LessonLink
    low: float | None = None  # a number question's range (its input's limits)
    high: float | None = None
    unit: str = ""
    choices: tuple[str, ...] = ()
    answer: float | str | None = None  # the number or the text of the right choice, when the file gives one
    tolerance: float = 0.0
    explain: str = ""  # shown after the reveal

    def is_right(self, guess) -> bool | None:
        """Whether ``guess`` (a number, or a choice's text) is right; None when the file gives no answer."""
        if self.answer is None:
            return None
        if self.kind == "choice":
            return guess == self.answer
        return abs(float(guess) - float(self.answer)) <= self.tolerance


@dataclass(frozen=True)
class Collect:
    """What a live class sends the teacher at this step: ``"prediction"`` (the question's guess),
    ``"experiment"`` (their view's link and its MSE) or ``"code"`` (an edited latent code and its picture)."""

    kind: str
    prompt: str = ""


@dataclass(frozen=True)
class Step:
    title: str
    view: LessonLink  # the page, its values, what is locked or hidden
    do: str  # what to do
    notice: str = ""  # what to notice
    question: Question | None = None
    collect: Collect | None = None
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Lesson:
    name: str  # the file's name without .toml: what ``?lesson=`` says
    title: str
    steps: tuple[Step, ...]
    summary: str = ""
    checkpoint: str = "sae_mnist"  # the model its facts are stated for
    file: str = ""  # the file's name, for messages

    def step(self, number: int) -> Step:
        """Step ``number``, counted from 1 as the player shows it."""
        return self.steps[number - 1]

    def link(self, number: int) -> LessonLink:
        """Step ``number``'s view with ``lesson`` and ``lesson_step`` set: the link a player opens."""
        return self.step(number).view.with_values({"lesson": self.name, "lesson_step": number})

    def check_facts(self, bench: Bench) -> list[str]:
        """Every check of every step measured on ``bench``: one line per failure (empty: all hold)."""
        lines = []
        for number, step in enumerate(self.steps, 1):
            for index, check in enumerate(step.checks, 1):
                lines += [f"{self.file}, step {number} check {index}: {line}" for line in verify(check, step.view, bench)]
        return lines


# --- reading a file ---------------------------------------------------------------------------

_WORDS = {"text": "text", "number": "a number", "integer": "a whole number", "list": "a list", "table": "a table", "bool": "true or false"}


def _is(value, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"text": str, "list": list, "table": dict, "bool": bool}[kind])


class _Reader:
    """Reads one lesson file's tables, collecting one line per problem, named by file and place."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{self.file}{', ' + where if where else ''}: {text}")

    def fields(self, table: dict, spec: dict, where: str) -> dict:
        """The entries of ``table`` that match ``spec`` (key -> (kind, required, max characters));
        a line for each unknown key, missing field, wrong type, non-finite number, empty or too long text."""
        for key in table:
            if key not in spec:
                self.problem(where, f"unknown key {echo(key)}")
        out = {}
        for key, (kind, required, most) in spec.items():
            if key not in table:
                if required:
                    self.problem(where, f"missing '{key}'")
                continue
            value = table[key]
            if not _is(value, kind):
                self.problem(where, f"'{key}' must be {_WORDS[kind]}")
            elif kind == "number" and not math.isfinite(value):
                self.problem(where, f"'{key}' must be a finite number")
            elif kind == "text" and not value.strip():
                self.problem(where, f"'{key}' is empty")
            elif kind == "text" and len(value) > most:
                self.problem(where, f"'{key}' has {len(value):,} characters; at most {most}")
            elif kind == "list" and len(value) > most:
                self.problem(where, f"'{key}' has {len(value)} entries; at most {most}")
            else:
                out[key] = value.strip() if kind == "text" else value
        return out

    def link_values(self, page: str, table: dict, where: str, what: str) -> dict | None:
        """A table of control values for ``page``; None (and a line per problem) when one is wrong."""
        problems = link_problems(page, table)
        for problem in problems:
            self.problem(where, f"{what}: {problem}")
        return None if problems else table

    def names(self, value: list, where: str, key: str) -> list | None:
        if not all(isinstance(name, str) for name in value):
            self.problem(where, f"'{key}' must be a list of control names")
            return None
        return value


LESSON_SPEC = {
    "format": ("integer", False, None),
    "title": ("text", True, bounds.TITLE_CHARS),
    "summary": ("text", False, bounds.SHORT_TEXT_CHARS),
    "checkpoint": ("text", False, bounds.TITLE_CHARS),
    "steps": ("list", True, 10**6),  # counted against MAX_STEPS with its own message
}
STEP_SPEC = {
    "title": ("text", True, bounds.TITLE_CHARS),
    "page": ("text", True, bounds.MAX_VALUE_CHARS),
    "values": ("table", False, None),
    "lock": ("list", False, 200),
    "hide": ("list", False, 200),
    "do": ("text", True, bounds.LONG_TEXT_CHARS),
    "notice": ("text", False, bounds.LONG_TEXT_CHARS),
    "question": ("table", False, None),
    "collect": ("table", False, None),
    "checks": ("list", False, bounds.MAX_CHECKS),
}
QUESTION_SPEC = {
    "ask": ("text", True, bounds.SHORT_TEXT_CHARS),
    "kind": ("text", True, bounds.MAX_VALUE_CHARS),
    "low": ("number", False, None),
    "high": ("number", False, None),
    "unit": ("text", False, bounds.UNIT_CHARS),
    "choices": ("list", False, bounds.MAX_CHOICES),
    "tolerance": ("number", False, None),
    "reveal": ("table", False, None),
    "explain": ("text", False, bounds.LONG_TEXT_CHARS),
    "answer": ("any", False, None),  # a number or a choice's text: checked against the kind
}
ONLY_FOR = {"low": "number", "high": "number", "unit": "number", "tolerance": "number", "choices": "choice"}
COLLECT_SPEC = {"kind": ("text", True, bounds.MAX_VALUE_CHARS), "prompt": ("text", False, bounds.SHORT_TEXT_CHARS)}
CHECK_SPEC = {
    "measure": ("text", True, bounds.MAX_VALUE_CHARS),
    "layer": ("text", False, bounds.MAX_VALUE_CHARS),
    "at": ("table", False, None),
    "edit": ("table", False, None),
    "digits": ("list", False, bounds.MAX_CHECK_DIGITS),
    "min": ("number", False, None),
    "max": ("number", False, None),
    "more_than": ("table", False, None),
    "less_than": ("table", False, None),
    "factor": ("number", False, None),
    "answers_question": ("bool", False, None),
}
EDIT_SPEC = {"clear": ("bool", False, None), "silence": ("list", False, 4096), "fire": ("list", False, 4096)}


def parse_lesson(text: str, name: str, file: str = "") -> tuple[Lesson | None, list[str]]:
    """A lesson from TOML ``text``; (None, one line per problem) when anything is wrong."""
    reader = _Reader(file or f"{name}.toml")
    if not re.fullmatch(LESSON_NAME, name):
        reader.problem("", "the file name must be 1 to 40 lowercase letters, digits, - or _, ending in .toml")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reader.problem("", f"not valid TOML: {str(error).splitlines()[0][:120]}")
        return None, reader.problems
    top = reader.fields(table, LESSON_SPEC, "")
    if top.get("format", FORMAT) != FORMAT:
        reader.problem("", f"format {top['format']} is not one this app reads (it reads format {FORMAT})")
    raw_steps = top.get("steps", [])
    if "steps" in top and not raw_steps:
        reader.problem("", "has no steps")
    if len(raw_steps) > bounds.MAX_STEPS:
        reader.problem("", f"has {len(raw_steps)} steps; at most {bounds.MAX_STEPS}")
        raw_steps = raw_steps[: bounds.MAX_STEPS]
    steps = []
    for number, raw in enumerate(raw_steps, 1):
        if not isinstance(raw, dict):
            reader.problem(f"step {number}", "must be a table ([[steps]])")
            continue
        steps.append(_step(reader, raw, f"step {number}"))
    if reader.problems:
        return None, reader.problems
    lesson = Lesson(name, top["title"], tuple(steps), top.get("summary", ""), top.get("checkpoint", "sae_mnist"), reader.file)
    return lesson, []


def _step(reader: _Reader, raw: dict, where: str) -> Step | None:
    got = reader.fields(raw, STEP_SPEC, where)
    page = got.get("page", "explore")
    values = reader.link_values(page, got.get("values", {}), where, "values") if "page" in got else None
    locked = reader.names(got.get("lock", []), where, "lock")
    hidden = reader.names(got.get("hide", []), where, "hide")
    view = None
    if values is not None and locked is not None and hidden is not None:
        problems = link_problems(page, {}, locked, hidden)
        for problem in problems:
            reader.problem(where, problem)
        view = None if problems else LessonLink(page, values, frozenset(locked), frozenset(hidden))
    question = _question(reader, got["question"], view, where + " question") if "question" in got and view else None
    collect = _collect(reader, got["collect"], page, "question" in got, where + " collect") if "collect" in got else None
    checks = []
    for index, check in enumerate(got.get("checks", []), 1):
        if not isinstance(check, dict):
            reader.problem(f"{where} check {index}", "must be a table ([[steps.checks]])")
        elif view is not None:
            checks.append(_check(reader, check, view, question, f"{where} check {index}"))
    if view is None or "title" not in got or "do" not in got:
        return None
    return Step(got["title"], view, got["do"], got.get("notice", ""), question, collect, tuple(checks))


def _question(reader: _Reader, raw: dict, view: LessonLink, where: str) -> Question | None:
    before = len(reader.problems)
    got = reader.fields(raw, QUESTION_SPEC, where)
    kind = got.get("kind")
    if kind is not None and kind not in QUESTION_KINDS:
        reader.problem(where, f"'kind' must be one of {', '.join(QUESTION_KINDS)}, not {echo(kind)}")
        return None
    for key, only in ONLY_FOR.items():
        if key in raw and kind and only != kind:
            reader.problem(where, f"'{key}' is only for {only} questions")
    reveal = reader.link_values(view.page, got.get("reveal", {}), where, "reveal")
    answer = got.get("answer")
    if kind == "number":
        low, high = got.get("low"), got.get("high")
        if "low" not in raw or "high" not in raw:
            reader.problem(where, "a number question needs 'low' and 'high'")
        elif low is None or high is None:
            pass  # said above: not a finite number
        elif low >= high:
            reader.problem(where, f"'low' ({low:g}) must be below 'high' ({high:g})")
        elif answer is not None and not (_is(answer, "number") and math.isfinite(answer) and low <= answer <= high):
            reader.problem(where, f"'answer' must be a number from {low:g} to {high:g}")
        if got.get("tolerance", 0) < 0:
            reader.problem(where, "'tolerance' must not be negative")
    elif kind == "choice":
        choices = got.get("choices", [])
        if "choices" in raw and "choices" not in got:
            pass  # said above: not a list, or too long
        elif len(choices) < 2 or not all(isinstance(c, str) and c.strip() and len(c) <= bounds.CHOICE_CHARS for c in choices):
            reader.problem(
                where, f"a choice question needs 2 to {bounds.MAX_CHOICES} 'choices', each text of at most {bounds.CHOICE_CHARS} characters"
            )
        elif len(set(choices)) != len(choices):
            reader.problem(where, "two 'choices' are the same")
        elif answer is not None and answer not in choices:
            reader.problem(where, "'answer' must be the text of one of the 'choices'")
    if kind is None or len(reader.problems) > before:
        return None
    kept = frozenset(reveal) - view.hidden
    return Question(
        got["ask"],
        kind,
        LessonLink(view.page, view.values, view.locked | kept, view.hidden),
        view.with_values(reveal),
        got.get("low"),
        got.get("high"),
        got.get("unit", ""),
        tuple(got.get("choices", ())),
        answer,
        float(got.get("tolerance", 0)),
        got.get("explain", ""),
    )


def _collect(reader: _Reader, raw: dict, page: str, has_question: bool, where: str) -> Collect | None:
    got = reader.fields(raw, COLLECT_SPEC, where)
    kind = got.get("kind")
    if kind is None:
        return None
    if kind not in COLLECT_KINDS:
        reader.problem(where, f"'kind' must be one of {', '.join(COLLECT_KINDS)}, not {echo(kind)}")
    elif kind == "prediction" and not has_question:
        reader.problem(where, "a prediction is the answer to the step's question: add a question")
    elif kind == "code" and page != "lab":
        reader.problem(where, "an edited code is collected on the lab page only")
    else:
        return Collect(kind, got.get("prompt", ""))
    return None


def _check(reader: _Reader, raw: dict, view: LessonLink, question: Question | None, where: str) -> Check | None:
    got = reader.fields(raw, CHECK_SPEC, where)
    before = len(reader.problems)
    measure = MEASURES.get(got.get("measure", ""))
    if "measure" in got and measure is None:
        reader.problem(where, f"unknown measure {echo(got['measure'])}: one of {', '.join(MEASURES)}")
    elif measure is not None and measure.page != view.page:
        reader.problem(where, f"{measure.name} is a figure of the {measure.page} page; this step is on the {view.page} page")
    if measure is not None and measure.needs_layer != ("layer" in got):
        reader.problem(where, f"{measure.name} {'needs' if measure.needs_layer else 'takes no'} 'layer'")
    if "layer" in got and got["layer"] not in SPIKING_LAYERS:
        reader.problem(where, f"'layer' must be one of {', '.join(SPIKING_LAYERS)}")
    tables = {key: reader.link_values(view.page, got[key], where, key) for key in ("at", "more_than", "less_than") if key in got}
    digits = got.get("digits", [])
    if not all(_is(d, "integer") and not limits.TEST_INDEX.problem(d) for d in digits):
        reader.problem(where, f"'digits' must be MNIST test indices, {limits.TEST_INDEX.describe()}")
    edit = _edit(reader, got.get("edit"), where) if "edit" in got else Edit()
    if "edit" in got and measure is not None and measure.page != "lab":
        reader.problem(where, "'edit' changes the Latent lab's code: only for lab measures")
    low, high = got.get("min"), got.get("max")
    if got.get("answers_question"):
        if question is None or question.kind != "number" or question.answer is None:
            reader.problem(where, "'answers_question' needs the step's question to be a number question with an 'answer'")
        elif low is not None or high is not None:
            reader.problem(where, "'answers_question' stands for 'min' and 'max': give one or the other")
        else:
            low, high = question.answer - question.tolerance, question.answer + question.tolerance
    if low is None and high is None and "more_than" not in got and "less_than" not in got:
        reader.problem(where, "states nothing to check: give 'min', 'max', 'more_than', 'less_than' or 'answers_question'")
    if got.get("factor", 1) <= 0:
        reader.problem(where, "'factor' must be above 0")
    if len(reader.problems) > before:
        return None
    return Check(
        got["measure"],
        tables.get("at") or {},
        got.get("layer"),
        edit,
        tuple(digits),
        low,
        high,
        tables.get("more_than"),
        tables.get("less_than"),
        float(got.get("factor", 1)),
    )


def _edit(reader: _Reader, raw: dict, where: str) -> Edit:
    got = reader.fields(raw, EDIT_SPEC, where + " edit")
    neurons = {}
    for key in ("silence", "fire"):
        values = got.get(key, [])
        if not all(_is(n, "integer") and 0 <= n < limits.LATENT_DIM.high for n in values):
            reader.problem(where + " edit", f"'{key}' must list latent neuron numbers (0, 1, 2, ...)")
        neurons[key] = tuple(values)
    return Edit(bool(got.get("clear", False)), neurons["silence"], neurons["fire"])


# --- files and the library --------------------------------------------------------------------


def read_lesson(path: Path) -> tuple[Lesson | None, list[str]]:
    """The lesson in ``path``; (None, one line per problem) when it is too big, unreadable or wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(bounds.MAX_LESSON_BYTES + 1)
    except OSError as error:
        return None, [f"{path.name}: cannot be read ({error.strerror or 'error'})"]
    if len(data) > bounds.MAX_LESSON_BYTES:
        return None, [f"{path.name}: larger than {bounds.MAX_LESSON_BYTES // 1024} KiB"]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, [f"{path.name}: not UTF-8 text"]
    return parse_lesson(text, path.stem, path.name)


@dataclass(frozen=True)
class Library:
    """The lessons that can be opened, by name (shipped ones first), and a line for each file left out."""

    lessons: Mapping[str, Lesson] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def lesson_folders() -> list[Path]:
    """The shipped ``lessons/`` folder, then the teacher's (``SAE_LESSONS_DIR``) when it is set."""
    folders = [SHIPPED_DIR]
    own = os.environ.get(LESSONS_ENV, "").strip()
    if own:
        folders.append(Path(own))
    return folders


def load_library(folders=None) -> Library:
    """Every lesson in ``folders`` (default :func:`lesson_folders`), read now.  At most
    ``MAX_LESSON_FILES`` files a folder; a name already taken by an earlier folder is left out."""
    lessons, problems = {}, []
    for folder in lesson_folders() if folders is None else [Path(f) for f in folders]:
        if not folder.is_dir():
            problems.append(f"the lesson folder {folder.name!r} does not exist" if folder == SHIPPED_DIR else f"{LESSONS_ENV} names no folder")
            continue
        files = sorted(p for p in folder.glob("*.toml") if p.is_file())
        if len(files) > bounds.MAX_LESSON_FILES:
            problems.append(f"{folder.name}: {len(files)} lesson files; only the first {bounds.MAX_LESSON_FILES} are read")
            files = files[: bounds.MAX_LESSON_FILES]
        for path in files:
            lesson, found = read_lesson(path)
            if lesson is not None and lesson.name in lessons:
                found = [f"{path.name}: a lesson named {lesson.name!r} is already loaded; rename the file"]
            if found:
                problems += found
            else:
                lessons[lesson.name] = lesson
    return Library(lessons, tuple(problems))
