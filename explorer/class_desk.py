"""The teacher's desk of a live class, meant for the projector: who joined and answered, the class's
guesses, pictures and experiments as they arrive, the reveal, the step for the whole class, removals
(an answer, a student, a checkpoint a student shared).

The desk is the class id and the teacher key, kept in the teacher's session only: from the Start
button, or from a teacher link (``/teach?desk=<id>.<key>``), which is read once and then taken out
of the address bar, so no address the teacher copies later carries it.  It is drawn only in that
session, so no student's page ever receives the answers, names or key it shows.  Every call the
desk makes is checked again by the store (``teaching.store.Desk``); a refusal is one plain line.
"""

from __future__ import annotations

import streamlit as st

from explorer import live_class, projector
from explorer.charts import chart
from explorer.lesson_library import library, plain
from sae.io import student_checkpoints
from sae.io.checkpoints import CheckpointError
from sae.plots import classroom
from teaching.controls import BY_NAME
from teaching.qr import QRError, qr_png
from teaching.store import ClassError, Desk, NotFound

_DESK = "_class_desk"  # (class id, teacher key); one writer: this module
POLL_S = 1.0  # the desk shows a new answer within about this long


def take_teacher_link() -> None:
    """A teacher link's ``desk=``: checked by the store, kept in this session, dropped from the address."""
    raw = st.query_params.get("desk")
    if raw is None:
        return
    del st.query_params["desk"]
    try:
        text, _ = BY_NAME["desk"].kind.parse("desk", raw)
        class_id, key = text.split(".", 1)
        live_class.class_store().teacher(class_id, key)
    except ValueError:
        live_class.say("That teacher link is not valid: open the one the Start button gave you.")
        return
    except ClassError as error:
        live_class.say(str(error))
        return
    st.session_state[_DESK] = (class_id, key)


def desk() -> Desk | None:
    held = st.session_state.get(_DESK)
    return Desk(live_class.class_store(), *held) if held else None


def start(lesson) -> None:
    """Start a class on ``lesson`` (a teaching.lessons.Lesson), this session at its desk."""
    try:
        new = live_class.class_store().create_class(lesson.name, len(lesson.steps))
    except ClassError as error:
        live_class.say(str(error))
        return
    st.session_state[_DESK] = (new.class_id, new.teacher_key)


def _act(call, *args) -> None:
    """A desk button's callback: one store call; a refusal is kept as one line."""
    try:
        call(*args)
    except ClassError as error:
        live_class.say(str(error))


def _end(held: Desk) -> None:
    _act(held.end)
    st.session_state.pop(_DESK, None)


@st.fragment(run_every=POLL_S)
def show(address: str) -> None:
    """The desk, redrawn every ``POLL_S`` seconds while the class runs."""
    held = desk()
    if held is None:
        return
    try:
        view = held.view()
        lesson = library().lessons.get(view.state.lesson)
        answers = held.answers(view.state.step)
    except ClassError as error:
        if isinstance(error, NotFound):
            st.session_state.pop(_DESK, None)
        live_class.say(str(error))
        st.rerun(scope="app")
    state = view.state
    if lesson is None:
        st.text(f"The class's lesson {state.lesson} is not on this server any more; end the class.")
        st.button("End the class", on_click=_end, args=(held,))
        return
    step = lesson.step(state.step)
    with st.container(key=projector.KEEP):
        _header(lesson, state, view, address)
        _answers(step, answers, state.step in state.revealed)
        _controls(held, lesson, state, answers, address)


def _header(lesson, state, view, address: str) -> None:
    st.subheader(f"{plain(lesson.title)}: step {state.step} of {state.steps}, {plain(lesson.step(state.step).title)}")
    join = f"{address}/join?join={view.join_code}"
    code, joined, answered, qr = st.columns([1.3, 1, 1, 1])
    code.metric("Join code", view.join_code, help=f"Students open {address}/join and type it, or scan the code.")
    joined.metric("Joined", f"{len(view.students)}")
    answered.metric("Answered", f"{view.answered} of {len(view.students)}")
    try:
        qr.image(qr_png(join, scale=4), caption="Scan to join", width=150)
    except QRError as error:
        qr.text(str(error))


def _answers(step, answers, revealed: bool) -> None:
    question = step.question
    if question is not None:
        st.markdown("**Asked:** " + plain(question.ask))
        chart(live_class.guesses_figure(question, [a.answer for a in answers]), "class_guesses_desk")
    names = st.toggle("Show names", key="desk_names", help="Off: the projector shows answers without names.")
    label = (lambda i, a: a.nickname) if names else (lambda i, a: f"#{i}")
    pictures = [(label(i, a), a.answer.picture()) for i, a in enumerate(answers, 1) if a.answer.kind == "code"]
    if pictures:
        chart(classroom.picture_gallery([p for _, p in pictures], [t for t, _ in pictures]), "class_gallery")
    experiments = [(label(i, a), a.answer) for i, a in enumerate(answers, 1) if a.answer.kind == "experiment"]
    if experiments:
        rows = [{"student": who, **_settings(answer), "MSE": round(answer.mse, 5)} for who, answer in experiments]
        st.dataframe(rows, hide_index=True)
    if revealed:
        st.caption("Revealed: every student sees the answer and the class's guesses now.")


def _settings(answer) -> dict:
    """The experiment's settings and digit, the page's default where the link leaves one out."""
    view = answer.view()
    return {name: view.value(name) for name in ("thresh", "beta", "steps", "index")}


def _controls(held: Desk, lesson, state, answers, address: str) -> None:
    back, forward, reveal, open_step = st.columns(4)
    back.button("Previous step", on_click=_act, args=(held.set_step, state.step - 1), disabled=state.step <= 1, width="stretch")
    forward.button("Next step", on_click=_act, args=(held.set_step, state.step + 1), disabled=state.step >= state.steps, width="stretch")
    reveal.button(
        "Reveal the answer", on_click=_act, args=(held.reveal, state.step), type="primary", disabled=state.step in state.revealed, width="stretch"
    )
    open_step.link_button("Open this step", lesson.link(state.step).with_values({"projector": True}).url(address), width="stretch")
    with st.expander("Remove an answer or a student, end the class"):
        _removals(held, state, answers)
        st.button("Open a new join code", on_click=_act, args=(held.new_join_code,), help="The old code stops admitting at once.")
        for i, saved in enumerate(shared_checkpoints()):
            st.button(f"Remove the shared checkpoint {plain(saved.name)}", key=f"desk_unshare_{i}", on_click=remove_shared_checkpoint, args=(saved,))
        if st.checkbox("I want to end the class (everything in it is deleted)", key="desk_end_sure"):
            st.button("End the class", on_click=_end, args=(held,), type="primary")
    if not projector.is_on() and st.toggle(
        "Show my teacher link", key="desk_show_link", help="Opens this desk in another browser. Keep it to yourself."
    ):
        st.code(f"{address}/teach?desk={held.class_id}.{st.session_state[_DESK][1]}", language=None)


def _removals(held: Desk, state, answers) -> None:
    left, right = st.columns(2)
    by_id = {a.student: a.nickname for a in answers}
    who = left.selectbox("Answer of", list(by_id), format_func=by_id.get, key="desk_answer_of", index=None)
    left.button("Remove this answer", on_click=_act, args=(held.remove_answer, state.step, who), disabled=who is None)
    students = dict(held.view().students)
    student = right.selectbox("Student", list(students), format_func=students.get, key="desk_student", index=None)
    right.button("Remove this student", on_click=_act, args=(held.remove_student, student), disabled=student is None)


# --- shared checkpoints ---------------------------------------------------------------------------
# A checkpoint a student shares is offered to everyone on this server (``sae.io.student_checkpoints``);
# the teacher may remove any of them.  The owner id is never shown: the name only.


def shared_checkpoints() -> list[student_checkpoints.Saved]:
    """The checkpoints students share with the class, by name."""
    return sorted((s for s in student_checkpoints.saved() if s.shared), key=lambda s: s.name)


def remove_shared_checkpoint(saved: student_checkpoints.Saved) -> None:
    """The removal button's callback: the file and its mark go, whoever owns it; a failure is one line."""
    try:
        student_checkpoints.remove_shared(saved.path)
    except (CheckpointError, OSError) as error:
        live_class.say(f"Not removed: {error}")
