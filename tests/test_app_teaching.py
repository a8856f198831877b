"""AppTest of the teacher's tools: a lesson link's hidden and locked controls, the lesson player,
the projector switch, the Teach page's link builder, and a live class from start to reveal.

Hidden means absent from the element tree (Streamlit sends every drawn element to the browser);
locked means drawn with ``disabled``.  The lesson player's figures are checked against what the
reveal view shows: before a guess the answering figure (or the value that answers) is not on the
page, after it it is.  Where a test reads the server's figures (tabs, metrics), its session computes
on the server (``on_server``); what the in-page component is given is checked beside them.  The
class runs on a SQLite file in a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer.in_page as in_page
from teaching.controls import controls_on
from teaching.links import decode

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 120  # seconds per script run on a busy 2-core machine
EXPLORE, LAB, TEACH, JOIN = (f"pages/views/{name}.py" for name in ("explore", "latent_lab", "teach", "join"))


@pytest.fixture(autouse=True)
def class_folder(tmp_path, monkeypatch):
    """Every test's classes in its own SQLite file; the process-wide store is opened anew."""
    from explorer import live_class

    monkeypatch.setenv("SAE_CLASS_DIR", str(tmp_path / "classes"))
    monkeypatch.delenv("SAE_REDIS_URL", raising=False)
    live_class.class_store.clear()
    yield
    live_class.class_store.clear()


def opened(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    if page:  # AppTest finds a page by its script only once the app has run (url_path "lab" is not "latent_lab")
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def labels(elements) -> list[str]:
    return [element.label for element in elements]


def widget(at: AppTest, kind: str, label: str):
    found = [w for w in getattr(at, kind) if w.label == label]
    assert len(found) == 1, f"{kind} {label!r}: {labels(getattr(at, kind))}"
    return found[0]


def button(at: AppTest, label: str):
    return widget(at, "button", label)


def chart_keys(at: AppTest) -> list[str]:
    return [chart.key for chart in at.get("plotly_chart")]


@pytest.fixture
def on_server(monkeypatch):
    """Explore computes on the server (as without ``make vendor``): its tabs and metrics are the server's."""
    monkeypatch.setattr(in_page, "vendored", lambda: False)


def in_page_data(at: AppTest) -> dict:
    (view,) = [c for c in at.get("bidi_component") if c.proto.component_name == "sae_in_page_explore"]
    return json.loads(view.proto.json)


# --- lesson links: hidden and locked -------------------------------------------------------------


def test_a_link_hides_and_locks_what_it_names_and_nothing_else():
    at = opened(EXPLORE, {"source": "MNIST", "index": "3", "lock": "index,thresh", "hide": "device,ckpt,random_digit,layer"})
    assert "Device" not in labels(at.sidebar.selectbox) and "Checkpoint" not in labels(at.sidebar.selectbox)
    assert "Random" not in labels(at.button)
    assert widget(at.sidebar, "slider", "thresh (firing threshold)").disabled
    assert not widget(at.sidebar, "slider", "beta (membrane decay)").disabled
    index = widget(at, "number_input", "Test image #")
    assert index.disabled and index.value == 3
    assert not widget(at, "selectbox", "Class").disabled
    assert not at.text  # nothing to correct


def test_hidden_controls_are_absent_from_everything_the_session_is_sent():
    """Not drawn at all: no element, in the sidebar or the page, carries the hidden control's label."""
    at = opened(EXPLORE, {"source": "MNIST", "hide": "thresh,beta,steps,upload_checkpoint,reset_settings,source"})
    drawn = [getattr(node, "label", "") for node in at.sidebar] + [getattr(node, "label", "") for node in at.main]
    for gone in ("thresh (firing threshold)", "beta (membrane decay)", "num_steps (time steps)", "Upload a checkpoint (.pt)", "Input"):
        assert gone not in drawn
    assert "Reset to the checkpoint's values" not in labels(at.button)
    assert "Test image #" in labels(at.number_input)  # the hidden source still says MNIST


def test_a_locked_tab_shows_its_view_alone_and_a_hidden_one_no_bar(on_server):
    at = opened(EXPLORE, {"source": "MNIST", "view": "Spikes per layer", "lock": "view"})
    assert [tab.label for tab in at.tabs] == ["Spikes per layer"] and "explore_activity" in chart_keys(at)
    at = opened(EXPLORE, {"source": "MNIST", "view": "Spikes per layer", "hide": "view"})
    assert not at.tabs and "explore_activity" in chart_keys(at)


def test_every_control_of_the_table_can_be_hidden_on_its_page():
    """The table's promise, page by page: a link hiding every control leaves none of their widgets."""
    for page, script in (("explore", EXPLORE), ("lab", LAB)):
        names = [c.name for c in controls_on(page) if c.widget or not c.has_value]
        at = opened(script, {"hide": ",".join(names)})
        assert not at.text, [t.value for t in at.text]
        keys = {getattr(node, "key", None) for node in list(at.main) + list(at.sidebar)}
        widgets = {c.widget for c in controls_on(page) if c.widget}
        assert not keys & widgets, keys & widgets


def test_an_outdated_link_is_corrected_in_one_plain_line_each():
    at = opened(EXPLORE, {"source": "MNIST", "lock": "index,c_seed", "hide": "<b>x</b>"})
    lines = [t.value for t in at.text]
    assert lines == ["Link: ignored c_seed in lock: not on the Explore page", "Link: ignored '?b?x??b?' in hide: no such control"]
    assert widget(at, "number_input", "Test image #").disabled  # what was right still holds


def test_the_train_form_and_its_start_button_lock_and_hide():
    at = opened("pages/views/train.py", {"lock": "train_start,train_lr", "hide": "train_seed,train_device"})
    assert button(at, "Start training").disabled
    assert widget(at, "select_slider", "Learning rate").disabled
    assert "Seed" not in labels(at.number_input) and "Device" not in labels(at.main.selectbox)


# --- the lesson player ------------------------------------------------------------------------------


def step_in_address(at: AppTest) -> tuple[str, str]:
    return at.query_params["lesson"], at.query_params["lesson_step"]


def test_the_player_opens_each_step_in_its_view_and_keeps_the_step_in_the_address():
    at = opened(None, {"lesson": "2-time-steps", "lesson_step": "1"})
    assert step_in_address(at) == ("2-time-steps", "1")
    assert widget(at, "number_input", "Test image #").disabled  # the step's view: MNIST #0, index locked
    assert "Device" not in labels(at.sidebar.selectbox)  # and the device hidden
    assert button(at, "Back").disabled
    button(at, "Next").click().run()
    assert step_in_address(at) == ("2-time-steps", "2")
    button(at, "Back").click().run()
    assert step_in_address(at) == ("2-time-steps", "1") and button(at, "Back").disabled
    button(at, "Leave the lesson").click().run()
    assert "lesson" not in at.query_params and not widget(at, "number_input", "Test image #").disabled


def test_predict_then_see_on_explore_the_answering_setting_comes_only_after_the_guess(on_server):
    at = opened(None, {"lesson": "2-time-steps", "lesson_step": "2"})  # "num_steps 1: the MSE will be..."
    steps = widget(at.sidebar, "slider", "num_steps (time steps)")
    assert steps.value == 5 and steps.disabled  # asking: the control that would answer is locked
    mse_asked = {m.label: m.value for m in at.metric}["Reconstruction MSE"]
    assert button(at, "Commit my guess").disabled  # nothing chosen yet
    at.radio[0].set_value("about the same").run()
    button(at, "Commit my guess").click().run()
    assert widget(at.sidebar, "slider", "num_steps (time steps)").value == 1  # the revealed view
    mse_revealed = {m.label: m.value for m in at.metric}["Reconstruction MSE"]
    assert float(mse_revealed) > 3 * float(mse_asked)  # what the lesson's answer says, on the page
    said = " ".join(m.value for m in at.markdown)
    assert "Not quite" in said and "three times as high or more" in said


def test_predict_then_see_in_the_page_the_component_gets_the_locked_slider_then_the_revealed_setting():
    at = opened(None, {"lesson": "2-time-steps", "lesson_step": "2"})
    data = in_page_data(at)
    assert data["settings"]["steps"] == 5 and data["controls"]["steps"] == "locked"
    at.radio[0].set_value("about the same").run()
    button(at, "Commit my guess").click().run()
    assert in_page_data(at)["settings"]["steps"] == 1


def test_predict_then_see_in_the_lab_the_answering_figure_is_absent_until_the_guess():
    at = opened(None, {"lesson": "3-latent-code", "lesson_step": "5"})  # "at which stage does it look like the 2?"
    assert "lab_blend" not in chart_keys(at) and [tab.label for tab in at.tabs] == ["Edit the code"]
    at.number_input[0].set_value(2).run()
    button(at, "Commit my guess").click().run()
    assert "lab_blend" in chart_keys(at)
    assert "Right!" in " ".join(m.value for m in at.markdown)


def test_a_teachers_own_lesson_folder_is_offered_and_a_broken_file_is_one_line(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my-lesson.toml").write_text(
        'title = "Mine"\n[[steps]]\ntitle = "Look"\npage = "explore"\nvalues = { source = "MNIST", index = 7 }\nlock = ["index"]\ndo = "Look."\n'
    )
    (folder / "broken.toml").write_text('title = "Broken"\n[[steps]]\npage = "nowhere"\n')
    monkeypatch.setenv("SAE_LESSONS_DIR", str(folder))
    at = opened(TEACH)
    at.session_state["teach_view"] = "Lessons"
    at.run()
    lines = [t.value for t in at.text]
    assert lines and all(line.startswith("Left out: broken.toml, step 1: ") for line in lines), lines  # one line per problem
    assert "my-lesson" in " ".join(m.value for m in at.markdown)  # the good file is offered
    at = opened(None, {"lesson": "my-lesson", "lesson_step": "1"})
    index = widget(at, "number_input", "Test image #")
    assert index.value == 7 and index.disabled


# --- the projector switch and the Teach page ---------------------------------------------------------


def test_the_projector_flag_turns_the_switches_on_and_the_switch_off():
    at = opened(EXPLORE, {"projector": "1", "source": "MNIST"})
    assert widget(at.sidebar, "toggle", "Projector view").value
    styled = lambda: any("<style>" in node.proto.body for node in at.get("html"))  # noqa: E731
    assert styled()
    widget(at.sidebar, "toggle", "Projector view").set_value(False).run()
    assert "projector" not in at.query_params and not styled()


def test_the_link_builder_makes_a_short_link_that_opens_its_view():
    at = opened(TEACH)
    at.selectbox(key="tl_page").set_value("explore").run()
    at.number_input(key="tl_explore_index").set_value(42).run()
    at.selectbox(key="tl_explore_source").set_value("MNIST").run()
    at.segmented_control(key="tl_explore_index_seen").set_value("locked").run()
    at.segmented_control(key="tl_explore_device_seen").set_value("hidden").run()
    at.segmented_control(key="tl_explore_ckpt_seen").set_value("hidden").run()
    url = at.code[0].value
    assert url.startswith("http://localhost:8501/explore?") and len(url) < 120
    link = decode(url.split("?", 1)[1], "explore").link
    assert dict(link.values) == {"source": "MNIST", "index": 42} and link.locked == {"index"} and link.hidden == {"device", "ckpt"}
    assert at.get("image"), "no QR code"


# --- a live class -----------------------------------------------------------------------------------


def start_class(lesson: str) -> tuple[AppTest, str]:
    teacher = opened(TEACH)
    teacher.session_state["teach_view"] = "Live class"
    teacher.run()
    teacher.selectbox(key="teach_class_lesson").set_value(lesson).run()
    button(teacher, "Start a class").click().run()
    return teacher, {m.label: m.value for m in teacher.metric}["Join code"]


def join(code: str, nickname: str, page: str = EXPLORE) -> AppTest:
    student = opened(JOIN, {"join": code})
    student.text_input(key="join_nickname").input(nickname).run()
    button(student, "Join").click().run()
    assert f"You joined the class as {nickname}." in [t.value for t in student.text]
    return student.switch_page(page).run()  # where the player took it (AppTest stays on the script it ran)


def test_a_class_from_start_to_reveal_and_end():
    teacher, code = start_class("2-time-steps")
    students = [join(code, name) for name in ("ada", "bo")]
    button(teacher, "Next step").click().run()
    for student, guess in zip(students, ("about the same", "three times as high or more")):
        student.run()
        student.radio[0].set_value(guess).run()
        button(student, "Send my guess").click().run()
        assert "Sent to your teacher." in [t.value for t in student.text]
    teacher.run()
    metrics = {m.label: m.value for m in teacher.metric}
    assert metrics["Joined"] == "2" and metrics["Answered"] == "2 of 2"
    assert "class_guesses_desk" in chart_keys(teacher)
    assert "class_guesses" not in chart_keys(students[0].run())  # no class answers before the reveal
    teacher.session_state["desk_answer_of"] = teacher_answers(teacher)[0].student  # the teacher picks ada's answer
    teacher.run()
    button(teacher, "Remove this answer").click().run()
    assert {m.label: m.value for m in teacher.metric}["Answered"] == "1 of 2"
    assert [a.nickname for a in teacher_answers(teacher)] == ["bo"]
    button(teacher, "Reveal the answer").click().run()
    revealed = students[1].run()
    assert "class_guesses" in chart_keys(revealed) and "Right!" in " ".join(m.value for m in revealed.markdown)
    assert widget(revealed.sidebar, "slider", "num_steps (time steps)").value == 1
    teacher.checkbox(key="desk_end_sure").check().run()
    button(teacher, "End the class").click().run()
    assert "Join code" not in [m.label for m in teacher.metric]
    gone = students[0].run()
    assert "This class has ended, or the link is no longer valid." in [t.value for t in gone.text]


def test_a_forged_teacher_link_and_an_unknown_code_each_get_one_line():
    teacher, code = start_class("1-threshold")
    class_id, key = teacher.session_state["_class_desk"]
    for desk, line in (
        (f"{class_id}.{'x' * len(key)}", "This teacher link is not valid for this class."),
        (f"nosuchclass1.{key}", "This class has ended, or the link is no longer valid."),
    ):
        forged = opened(TEACH, {"desk": desk})
        assert [t.value for t in forged.text] == [line]
        assert "Join code" not in [m.label for m in forged.metric] and "desk" not in forged.query_params
    mine = opened(TEACH, {"desk": f"{class_id}.{key}"})  # the real link opens the desk, and leaves the address
    assert {m.label: m.value for m in mine.metric}["Join code"] == code and "desk" not in mine.query_params
    student = opened(JOIN)
    student.text_input(key="join_code").input("ZZZZZZ").run()
    student.text_input(key="join_nickname").input("eve").run()
    button(student, "Join").click().run()
    assert [t.value for t in student.text] == ["No open class has this join code: check it with your teacher."]


def test_a_shared_experiment_reaches_the_desk_and_a_flood_gets_one_line():
    teacher, code = start_class("1-threshold")
    for _ in range(6):  # to the last step: "share your experiment"
        button(teacher, "Next step").click().run()
    student = join(code, "cy")
    shared = []
    for _ in range(11):  # the store takes 10 answers a minute from one student
        button(student, "Share my experiment").click().run()
        shared.append([t.value for t in student.text])
    assert shared[0] == ["Sent to your teacher."] and shared[9] == ["Sent to your teacher."]
    assert shared[10] == ["Too many answers in a short time: wait a minute, then send again."]
    teacher.run()
    rows = teacher.dataframe[0].value
    assert len(rows) == 1 and rows.iloc[0]["index"] == 0 and rows.iloc[0]["MSE"] > 0  # one experiment: sending again replaces it


def test_a_shared_latent_code_reaches_the_desks_gallery():
    teacher, code = start_class("3-latent-code")
    for _ in range(5):  # to the last step: "share your code and its picture"
        button(teacher, "Next step").click().run()
    student = join(code, "di", page=LAB)
    button(student, "Clear all").click().run()  # an edited code: all silent
    button(student, "Share my code and its picture").click().run()
    assert [t.value for t in student.text] == ["Sent to your teacher."]
    teacher.run()
    assert "class_gallery" in chart_keys(teacher)
    answers = teacher_answers(teacher)
    assert len(answers) == 1 and answers[0].answer.code.endswith("0" * 40) and answers[0].answer.picture().max() < 0.2


def teacher_answers(teacher: AppTest):
    """What the store holds for the class's current step, read with the teacher's own key."""
    from explorer import live_class

    class_id, key = teacher.session_state["_class_desk"]
    desk = live_class.class_store().teacher(class_id, key)
    return desk.answers(desk.view().state.step)


def test_the_teacher_removes_a_checkpoint_a_student_shared(tmp_path, monkeypatch):
    import shutil

    import sae.io.checkpoints as checkpoints
    from sae.io import student_checkpoints

    monkeypatch.setattr(checkpoints, "USER_DIR", tmp_path / "user_checkpoints")
    someone = student_checkpoints.new_owner()
    path = student_checkpoints.new_path("my_run", someone, per_owner=5, total=50)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(checkpoints.default_checkpoint_path(), path)
    student_checkpoints.set_shared(path, someone, True)
    teacher, _ = start_class("1-threshold")
    button(teacher, "Remove the shared checkpoint my\\_run").click().run()
    assert not path.exists() and not student_checkpoints.saved()
    assert "Remove the shared checkpoint my\\_run" not in labels(teacher.button)
