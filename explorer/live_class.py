"""A live class in the Streamlit app: the store every session shares, and the student's side of it.

The rules (who may read or change what) are all in ``teaching.store``; this module only keeps each
session's key in ``st.session_state`` and turns page state into answers:

- a student's **seat** token is kept in their session and nowhere else (never in a link or a page);
- the teacher's desk (class id and key) likewise, in the teacher's session (explorer/class_desk.py);
- what a student shares: a guess, their Explore experiment (the view as a link and its MSE), or
  the Latent lab's code and its decoded picture.

A student's page never draws another student's answer before the teacher reveals the step: the seat
can only read its own answers and, after the reveal, the class's without names.
"""

from __future__ import annotations

import streamlit as st

from explorer import lab, state
from explorer.sidebar import current
from sae.analysis import latent
from sae.plots import classroom
from teaching.controls import controls_on
from teaching.links import LessonLink
from teaching.store import Answer, ClassError, ClassState, ClassStore, NotFound, Seat, open_store

_SEAT = "_class_seat"  # the seat token; one writer: this module
_MESSAGE = "_class_message"  # the last refusal, one plain line, shown once
POLL_S = 2.0  # how often a student's page looks for the teacher's next step or reveal


@st.cache_resource(show_spinner=False)
def class_store() -> ClassStore:
    """The server's class store (SQLite, or Redis with ``SAE_REDIS_URL``), one per process: thread-safe."""
    return open_store()


def say(line: str) -> None:
    """Keep one plain line to show on the next run (a refusal from the store, a missing digit)."""
    st.session_state[_MESSAGE] = line


def take_message() -> str | None:
    return st.session_state.pop(_MESSAGE, None)


def join(code: str, nickname: str) -> bool:
    """Join the class of ``code``; False (and the store's one line kept) when it is refused."""
    try:
        token, name = class_store().join(code, nickname)
    except ClassError as error:
        say(str(error))
        return False
    st.session_state[_SEAT] = token
    say(f"You joined the class as {name}.")
    return True


def seat() -> Seat | None:
    token = st.session_state.get(_SEAT)
    return Seat(class_store(), token) if token else None


def leave() -> None:
    st.session_state.pop(_SEAT, None)


def seat_state() -> ClassState | None:
    """The class this session sits in, or None (no seat, or the class has ended: the seat is dropped)."""
    current_seat = seat()
    if current_seat is None:
        return None
    try:
        return current_seat.state()
    except NotFound as gone:
        leave()
        say(str(gone))
    except ClassError as error:  # the store is busy or unreachable: keep the seat, say so
        say(str(error))
    return None


def send(step: int, answer_of) -> bool:
    """Send ``answer_of()`` (an Answer, or a line saying why there is none) for ``step``; a refusal is
    one line kept to show, and False."""
    current_seat = seat()
    if current_seat is None:
        return False
    try:
        answer = answer_of()
        if isinstance(answer, str):
            say(answer)
            return False
        current_seat.submit(step, answer)
    except ClassError as error:
        say(str(error))
        return False
    say("Sent to your teacher.")
    return True


def guess_answer(kind: str, guess) -> Answer:
    return Answer.number_guess(float(guess)) if kind == "number" else Answer.choice_guess(str(guess))


def experiment_answer() -> Answer | str:
    """The student's Explore view (its digit, tab and neuron settings) and the MSE it gave."""
    from explorer.cached import explore_result  # the forward process: only when a student shares

    chosen = state.explore_digit()
    if chosen is None:
        return "Open the Explore page and pick a digit first: then share your experiment."
    settings = current()
    neuron = settings.neuron
    values = {"thresh": neuron.thresh, "beta": neuron.beta, "steps": neuron.num_steps}
    for control in controls_on("explore"):
        if control.widget and control.has_value and control.name not in values and control.widget in st.session_state:
            values[control.name] = st.session_state[control.widget]
    view = LessonLink("explore", {k: v for k, v in values.items() if k not in ("ckpt", "device")})
    return Answer.experiment(view, explore_result(settings, chosen.image).mse)


def code_answer() -> Answer | str:
    """The Latent lab's code as the page last showed it, and the picture the decoder makes of it."""
    code = lab.shown_code()
    if code is None:
        return "Open the Latent lab first: then share your code."
    settings = current()
    picture = lab.decoded(settings, code).images[0]
    return Answer.latent_code(latent.code_to_text(code), picture)


def guesses_figure(question, answers):
    """The class's guesses to ``question`` (a ``teaching.lessons.Question``): a histogram of numbers or
    a bar per choice, the right answer marked when the lesson gives one."""
    if question.kind == "number":
        values = [a.number for a in answers if a.number is not None]
        return classroom.number_histogram(values, question.low, question.high, question.answer, question.unit)
    picked = [a.choice for a in answers if a.choice is not None]
    return classroom.choice_counts(question.choices, picked, question.answer)
