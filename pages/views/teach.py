"""Teach: a lesson link to hand out, the lessons, and a live class with its desk for the projector.

Widgets -> ``explorer.link_builder`` (a view as a short link and a QR code), the lesson library
(``explorer.lesson_library``), and the class (``explorer.class_desk``: the desk is this teacher's
session only; students join on the Join page).  docs/lessons.md explains the formats.
"""

import streamlit as st

from explorer import class_desk, link_builder, live_class, projector
from explorer.lesson_library import app_address, library, plain, valid_address
from teaching.qr import QRError, qr_png

VIEWS = ("Lesson link", "Lessons", "Live class")


def lessons_view(address: str) -> None:
    found = library()
    for problem in found.problems:  # a file with a problem is left out; the others work
        st.text(f"Left out: {problem}")
    for lesson in found.lessons.values():
        with st.container(border=True):
            st.markdown(f"**{plain(lesson.title)}** ({len(lesson.steps)} steps, `{lesson.name}`)")
            if lesson.summary:
                st.caption(plain(lesson.summary))
            first = lesson.link(1).url(address)
            left, middle, right = st.columns([1, 1, 2])
            left.link_button("Open step 1", first, icon=":material/play_arrow:", width="stretch")
            middle.link_button("In the projector view", lesson.link(1).with_values({"projector": True}).url(address), width="stretch")
            if right.toggle("QR code", key=f"teach_qr_{lesson.name}"):
                try:
                    st.image(qr_png(first, scale=5), caption=first, width=260)
                except QRError as error:
                    st.text(str(error))


def class_view() -> None:
    if class_desk.desk() is not None:
        st.caption("Your class is open above. End it there to start another.")
        return
    lessons = library().lessons
    if not lessons:
        st.text("No lesson can be opened: see the Lessons tab.")
        return
    st.markdown("Start a class on a lesson: you get a join code for your students and a desk that shows their answers as they arrive.")
    name = st.selectbox("Lesson", list(lessons), format_func=lambda n: lessons[n].title, key="teach_class_lesson")
    st.button("Start a class", on_click=class_desk.start, args=(lessons[name],), type="primary", icon=":material/groups:")


st.title(":material/school: Teach")
projector.switch(key="teach_projector")
class_desk.take_teacher_link()
if line := live_class.take_message():  # a teacher link refused: said here, on the run that read it
    st.text(line)
address = app_address()
if not projector.is_on():
    typed = st.text_input("The app's address for students", value=address, key="teach_address", help="Links and QR codes start with it.")
    if problem := valid_address(typed):
        st.text(f"{problem}; using {address}")
    else:
        address = typed.rstrip("/")
if class_desk.desk() is not None:
    class_desk.show(address)
if not (projector.is_on() and class_desk.desk() is not None):  # on the projector, the desk alone
    tabs = st.tabs(VIEWS, key="teach_view", on_change="rerun", default=VIEWS[2] if class_desk.desk() else VIEWS[0])
    for tab, view in zip(tabs, (lambda: link_builder.show(address), lambda: lessons_view(address), class_view)):
        with tab:
            if tab.open:
                view()
