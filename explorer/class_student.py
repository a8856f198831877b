"""A student's part of the lesson panel in a live class: share, watch for the teacher, see the class after the reveal.

The page looks for the teacher's next step or reveal every ``live_class.POLL_S`` seconds in a small
fragment that reads the class's state only (no answers); when something changed it reruns the page,
and the lesson player opens the new view.  The fragment stops with the class: when the seat is gone
the panel is no longer drawn.  The class's answers are read only after the reveal, without names.
"""

from __future__ import annotations

import streamlit as st

from explorer import live_class
from explorer.charts import chart
from explorer.lesson_library import plain
from teaching.store import ClassError

_SEEN = "_class_seen"  # what the page last showed of the class: (lesson, step, revealed)


def _marker(state) -> tuple:
    return (state.lesson, state.step, state.step in state.revealed)


@st.fragment(run_every=live_class.POLL_S)
def _watch() -> None:
    """Rerun the page when the teacher moves the class or reveals; else nothing."""
    state = live_class.seat_state()
    if state is None or _marker(state) != st.session_state.get(_SEEN):
        st.rerun(scope="app")


def class_bar(here) -> None:
    """Keeps the page with the class, and shows the class's answers once the step is revealed."""
    state = live_class.seat_state()
    if state is None:
        return
    st.session_state[_SEEN] = _marker(state)
    st.caption(f"Live class: {state.students} in the class. Your teacher moves the steps.")
    if here.revealed and here.step.collect is not None:
        _class_answers(here)
    _watch()


def _class_answers(here) -> None:
    try:
        answers = live_class.seat().revealed_answers(here.number)
    except ClassError as error:
        st.text(str(error))
        return
    question = here.step.question
    if question is not None:
        chart(live_class.guesses_figure(question, answers), "class_guesses")
        st.caption(f"The class's {len(answers)} guesses, without names.")


def share_buttons(here) -> None:
    """The step's "share" button in a live class: the student's experiment or edited code."""
    collect = here.step.collect
    if collect is None or collect.kind == "prediction" or here.revealed:
        return
    if collect.prompt:
        st.markdown(plain(collect.prompt))
    answer_of = live_class.experiment_answer if collect.kind == "experiment" else live_class.code_answer
    label = "Share my experiment" if collect.kind == "experiment" else "Share my code and its picture"
    st.button(label, on_click=live_class.send, args=(here.number, answer_of), type="primary", icon=":material/send:")
