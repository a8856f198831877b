"""The lesson player: step n of m, back and next, predict then see; a panel above every page.

A lesson is open when the address says ``lesson=<name>&lesson_step=<n>`` (a link to step n), or when
the session sits in a live class, whose teacher moves the step.  Each step is a lesson link
(``teaching.lessons.Step.view``): the player opens its page with those values, locked and hidden
controls and all.  A step with a question opens ``Question.asking`` first (the step's view with
every control that would show the answer locked) and ``Question.reveal`` only once the learner has
committed a guess (in a live class: once the teacher reveals).

app.py calls :func:`open_step` after ``st.navigation`` and before anything is drawn (the only
moment widget values may be set: it switches page or sets them), and :func:`panel` after the sidebar.  State, per session:

- ``_lesson``: (name, step) the address last asked for, kept when the visitor opens another page;
- ``_lesson_shown``: the view last opened, so each view is opened once and then left to the learner;
- ``_lesson_pending``: a view to open on its own page, after ``st.switch_page`` gets there;
- ``_lesson_guesses``: {(name, step): guess}.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

import streamlit as st

from explorer import lab, live_class, projector
from explorer.lesson_library import library, plain
from teaching.controls import BY_NAME, controls_on
from teaching.lessons import Lesson
from teaching.links import LessonLink

PAGE_FILES = {
    "home": "pages/views/home.py",
    "explore": "pages/views/explore.py",
    "compare": "pages/views/compare.py",
    "lab": "pages/views/latent_lab.py",
    "train": "pages/views/train.py",
    "teach": "pages/views/teach.py",
    "join": "pages/views/join.py",
}
ADDRESS_KEYS = ("lesson", "lesson_step", "lock", "hide", "projector", "lab_code")  # the keys no widget is bound to
NEURON = {"thresh": "thresh", "beta": "beta", "steps": "num_steps"}  # control -> NeuronSettings field
_AT, _SHOWN, _PENDING, _GUESSES = "_lesson", "_lesson_shown", "_lesson_pending", "_lesson_guesses"


@dataclass(frozen=True)
class Position:
    """Where the learner is: a lesson, a step (from 1), and whether the step's answer is shown."""

    lesson: Lesson
    number: int
    revealed: bool
    in_class: bool

    @property
    def step(self):
        return self.lesson.step(self.number)

    @property
    def key(self) -> tuple:
        return (self.lesson.name, self.number)

    def view(self) -> LessonLink:
        """The view to open: the step's, the question's asking view, or its revealed one."""
        question = self.step.question
        view = self.step.view if question is None else question.reveal if self.revealed else question.asking
        return view.with_values({"lesson": self.lesson.name, "lesson_step": self.number})


def _read_address() -> tuple[str, int] | None:
    """``lesson`` and ``lesson_step`` of the address, checked by their rows of the table; None when absent or wrong."""
    if "lesson" not in st.query_params:
        return None
    try:
        name, _ = BY_NAME["lesson"].kind.parse("lesson", st.query_params["lesson"])
        number, _ = BY_NAME["lesson_step"].kind.parse("lesson_step", st.query_params.get("lesson_step", "1"))
    except ValueError:
        return None
    return name, int(number)


def position() -> Position | None:
    """The live class's step when this session sits in one, else the lesson the address (or the session) opened."""
    lessons = library().lessons
    in_class = live_class.seat_state()
    if in_class is not None:
        lesson = lessons.get(in_class.lesson)
        if lesson is None:
            live_class.say("Your teacher's lesson is not on this server.")
            return None
        number = min(in_class.step, len(lesson.steps))
        return Position(lesson, number, number in in_class.revealed, True)
    asked = _read_address()
    if asked is not None:
        st.session_state[_AT] = asked
    name, number = st.session_state.get(_AT) or (None, 0)
    lesson = lessons.get(name)
    if lesson is None:
        if asked is not None:
            live_class.say(f"There is no lesson named {name}.")
        st.session_state.pop(_AT, None)
        return None
    number = max(1, min(number, len(lesson.steps)))
    return Position(lesson, number, (name, number) in st.session_state.get(_GUESSES, {}), False)


# --- opening a step's view ------------------------------------------------------------------------


def open_step(page: str) -> None:
    """Open the current step's view on ``page`` (a name of ``teaching.controls.PAGES``) when it changed:
    set its values, or switch to its page first.  Called before any widget is drawn."""
    here = position()
    if here is None:
        return
    target = here.view()
    if st.session_state.get(_PENDING) == target and page == target.page:
        _apply(target)  # arrived on the step's page
    elif st.session_state.get(_SHOWN) != target:  # once: the learner may then move on, and the panel offers the way back
        if page != target.page:
            st.session_state[_PENDING] = target
            st.switch_page(PAGE_FILES[target.page], query_params=_query(target))
        _apply(target)


def _query(link: LessonLink) -> dict:
    """The address of ``link`` as st.query_params takes it, with the projector view kept on."""
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(link.query(), keep_blank_values=True):
        query.setdefault(key, []).append(value)
    if projector.is_on():
        query["projector"] = ["1"]
    return query


def _apply(link: LessonLink) -> None:
    """Set every control of the link's page to the link's value (or the page's default), then its address."""
    from explorer.sidebar import current

    trained = current().checkpoint.config.neuron_settings() if "settings" in st.session_state else None
    for control in controls_on(link.page):
        if not (control.has_value and control.widget):
            continue
        value = link.values.get(control.name)
        if value is None and control.name in NEURON and trained is not None:
            value = getattr(trained, NEURON[control.name])  # not in the step: the checkpoint's own
        elif value is None:
            value = control.default
        if value is not None:
            st.session_state[control.widget] = list(value) if isinstance(value, tuple) else value
    if link.page == "lab":
        lab.follow_link("lab_code" in link.values)
    query = _query(link)
    for key in ADDRESS_KEYS:  # a widget bound to the address writes its own key
        if key in query:
            st.query_params[key] = query[key]
        else:
            st.query_params.pop(key, None)
    st.session_state[_SHOWN] = link
    st.session_state.pop(_PENDING, None)


# --- the panel ------------------------------------------------------------------------------------


def _go(number: int) -> None:
    st.query_params["lesson_step"] = str(number)
    st.session_state[_AT] = (st.session_state[_AT][0], number)


def _leave() -> None:
    for key in ("lesson", "lesson_step", "lock", "hide"):
        st.query_params.pop(key, None)
    for key in (_AT, _SHOWN, _PENDING):
        st.session_state.pop(key, None)


def _back_to_step() -> None:
    st.session_state.pop(_SHOWN, None)  # opened again on the next run


def _commit(here: Position, key: str) -> None:
    guess = st.session_state.get(key)
    if guess is None:
        return
    if here.in_class and not live_class.send(here.number, lambda: live_class.guess_answer(here.step.question.kind, guess)):
        return  # refused (a flood, a step moved on): the line says why, and the guess can be sent again
    st.session_state.setdefault(_GUESSES, {})[here.key] = guess


def panel(page: str) -> None:
    """The lesson's panel above the page: the step, what to do, the question, back and next."""
    if message := live_class.take_message():
        st.text(message)
    here = position()
    if here is None:
        return
    from explorer.class_student import class_bar, share_buttons

    with st.container(border=True, key=projector.KEEP):
        step, total = here.step, len(here.lesson.steps)
        projecting = projector.is_on()  # the projector shows the figure: the prose is for the learners' own screens
        title = f"**{plain(here.lesson.title)}** · step {here.number} of {total}: **{plain(step.title)}**"
        if projecting and not here.in_class:
            _navigation(here, total, title)
        else:
            st.markdown(title)
        if page != step.view.page:
            st.button("Back to this step", on_click=_back_to_step, icon=":material/undo:")
            return
        if not projecting:
            st.markdown(plain(step.do))
        question = step.question
        if question is not None:
            _question(here, question)
        if step.notice and (question is None or here.revealed) and not projecting:
            st.markdown("**Notice:** " + plain(step.notice))
        if here.in_class:
            share_buttons(here)
            class_bar(here)
        elif not projecting:
            _navigation(here, total)


def _navigation(here: Position, total: int, title: str | None = None) -> None:
    """Back, next and leave; on the projector, one row with the title and no leave."""
    if title is None:
        back, forward, leave, _ = st.columns([1, 1, 1.6, 2.4])
        leave.button("Leave the lesson", on_click=_leave, width="stretch")
    else:
        heading, back, forward = st.columns([6, 1, 1], vertical_alignment="center")
        heading.markdown(title)
    back.button("Back", on_click=_go, args=(here.number - 1,), disabled=here.number <= 1, icon=":material/arrow_back:", width="stretch")
    forward.button("Next", on_click=_go, args=(here.number + 1,), disabled=here.number >= total, icon=":material/arrow_forward:", width="stretch")


def _question(here: Position, question) -> None:
    st.markdown("**Predict:** " + plain(question.ask))
    guess = st.session_state.get(_GUESSES, {}).get(here.key)
    if guess is None and not here.revealed:
        key = f"lesson_guess_{here.lesson.name}_{here.number}"
        if question.kind == "number":
            whole = all(float(x).is_integer() for x in (question.low, question.high))
            kind = int if whole else float
            label = f"Your guess ({question.unit})" if question.unit else "Your guess"
            st.number_input(label, kind(question.low), kind(question.high), value=None, step=kind(1) if whole else None, key=key)
        else:
            st.radio("Your guess", question.choices, index=None, key=key, horizontal=projector.is_on())
        sending = "Send my guess" if here.in_class else "Commit my guess"
        st.button(sending, on_click=_commit, args=(here, key), type="primary", disabled=st.session_state.get(key) is None, key=f"{key}_commit")
        return
    if not here.revealed:
        st.markdown(f"Your guess: **{plain(_shown(guess))}**. Waiting for your teacher to show the answer.")
        return
    right = None if guess is None else question.is_right(guess)
    verdict = "" if right is None else " Right!" if right else " Not quite."
    answer = "" if question.answer is None else f" The answer: **{plain(_shown(question.answer))}**."
    mine = "You sent no guess." if guess is None else f"Your guess: **{plain(_shown(guess))}**."
    st.markdown(f"{mine}{verdict}{answer}")
    if question.explain:
        st.markdown(plain(question.explain))


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)
