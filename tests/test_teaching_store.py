"""The live class store: one suite over both backends, SQLite (a file) and a real redis-server.

Every test runs twice (``backend`` is "sqlite" or "redis").  A test clock moves time to expire join
codes and classes; two stores on one file or one Redis stand for two replicas of the app.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from teaching import bounds
from teaching.links import LessonLink
from teaching.records import Unavailable
from teaching.store import Answer, ClassError, ClassStore, Desk, Forbidden, NotFound, Refused, open_store
from teaching.store_redis import RedisBackend
from teaching.store_sqlite import SqliteBackend
from tests.browser.conftest import free_port
from tests.services import redis_server

_PREFIXES = itertools.count()


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as redis:
        url = redis.url
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def backends(request, tmp_path):
    """Makes backends on one shared storage: each call is another replica."""
    made = []
    if request.param == "sqlite":
        make = lambda: SqliteBackend(tmp_path / "classes.sqlite3")  # noqa: E731
    else:
        url, prefix = request.getfixturevalue("redis_url"), f"test{next(_PREFIXES)}:"
        make = lambda: RedisBackend(url, prefix=prefix)  # noqa: E731

    def replica():
        made.append(make())
        return made[-1]

    yield replica
    for backend in made:
        backend.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(backends, clock):
    return ClassStore(backends(), clock)


def started(store, students=("Ada", "Bo", "Cy")):
    new = store.create_class("1-threshold", 7)
    seats = [store.seat(store.join(new.join_code, name)[0]) for name in students]
    return new, store.teacher(new.class_id, new.teacher_key), seats


# --- a class from start to end ------------------------------------------------------------------


def test_a_class_from_start_to_end(store):
    new, desk, (ada, bo, cy) = started(store)
    assert len(new.join_code) == bounds.JOIN_CODE_LENGTH and set(new.join_code) <= set(bounds.JOIN_CODE_ALPHABET)
    assert new.join_until == store.clock() + bounds.JOIN_TTL_S
    ada.submit(1, Answer.number_guess(0))
    bo.submit(1, Answer.number_guess(4))
    bo.submit(1, Answer.number_guess(3))  # sending again replaces
    view = desk.view()
    assert [nick for _, nick in view.students] == ["Ada", "Bo", "Cy"]
    assert view.state.students == 3 and view.answered == 2 and view.join_code == new.join_code
    assert [(a.nickname, a.answer.number) for a in desk.answers(1)] == [("Ada", 0), ("Bo", 3)]
    desk.reveal(1)
    assert [a.number for a in cy.revealed_answers(1)] == [0, 3]
    assert cy.state().revealed == {1}
    desk.set_step(2)
    cy.submit(2, Answer.experiment(LessonLink("explore", {"thresh": 1.5, "index": 3}), 0.021))
    assert cy.my_answers()[2].view() == LessonLink("explore", {"thresh": 1.5, "index": 3})
    desk.end()
    assert store.backend.snapshot() == {}
    for call in (ada.state, lambda: store.teacher(new.class_id, new.teacher_key), lambda: bo.submit(2, Answer.number_guess(1))):
        with pytest.raises(NotFound, match="This class has ended"):
            call()


def test_a_student_reads_only_their_own_answers_until_the_reveal(store):
    new, desk, seats = started(store)
    for number, seat in enumerate(seats):
        seat.submit(1, Answer.number_guess(number * 10))
    for number, seat in enumerate(seats):
        assert seat.my_answers() == {1: Answer.number_guess(number * 10)}
        with pytest.raises(Refused, match="^The teacher has not revealed step 1 yet.$"):
            seat.revealed_answers(1)
        assert seat.state().revealed == frozenset()
    desk.reveal(1)
    for seat in seats:
        assert [a.number for a in seat.revealed_answers(1)] == [0, 10, 20]
        assert seat.my_answers() == {1: seat.my_answers()[1]}  # still their own only
    with pytest.raises(Refused, match="Step 1 is revealed: answers to it are closed."):
        seats[0].submit(1, Answer.number_guess(5))
    desk.set_step(2)
    with pytest.raises(Refused, match="^The teacher has not revealed step 2 yet.$"):
        seats[0].revealed_answers(2)


def test_thirty_students_join_and_answer_at_once_on_two_replicas(backends, clock):
    """30 sessions, half on each of two replicas, join and answer together: every one counted, none lost."""
    replicas = [ClassStore(backends(), clock), ClassStore(backends(), clock)]
    new = replicas[0].create_class("2-time-steps", 7)
    start, errors, seats = threading.Barrier(30), [], {}

    def student(number: int):
        try:
            store = replicas[number % 2]
            start.wait(30)
            token, name = store.join(new.join_code, f"student {number}")
            seat = store.seat(token)
            seat.submit(1, Answer.number_guess(number))
            seats[name] = seat
        except Exception as error:  # noqa: BLE001 - reported below, with the student
            errors.append(f"student {number}: {error!r}")

    threads = [threading.Thread(target=student, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    desk = replicas[1].teacher(new.class_id, new.teacher_key)
    view = desk.view()
    assert view.state.students == 30 and len(view.students) == 30 and view.answered == 30
    assert sorted((a.nickname, a.answer.number) for a in desk.answers(1)) == sorted((f"student {n}", n) for n in range(30))
    for name, seat in seats.items():
        assert seat.my_answers() == {1: Answer.number_guess(int(name.split()[1]))}


def test_every_replica_sees_the_same_class(backends, clock):
    one, two = ClassStore(backends(), clock), ClassStore(backends(), clock)
    new = one.create_class("3-latent-code", 6)
    seat = two.seat(two.join(new.join_code, "Ada")[0])
    one.teacher(new.class_id, new.teacher_key).reveal(1)
    assert seat.state().revealed == {1}


# --- who may do what ---------------------------------------------------------------------------------


def test_a_forged_teacher_key_is_one_line_and_changes_nothing(store):
    new, desk, (ada, *_) = started(store)
    ada.submit(1, Answer.number_guess(2))
    before = store.backend.snapshot()
    with pytest.raises(Forbidden, match="^This teacher link is not valid for this class.$"):
        store.teacher(new.class_id, new.teacher_key[:-1] + ("x" if new.teacher_key[-1] != "x" else "y"))
    forged = Desk(store, new.class_id, "not the key")
    student = desk.view().students[0][0]
    for call in (
        forged.view,
        lambda: forged.answers(1),
        lambda: forged.set_step(2),
        lambda: forged.set_lesson("2-time-steps", 7),
        lambda: forged.reveal(1),
        lambda: forged.remove_answer(1, student),
        lambda: forged.remove_student(student),
        forged.new_join_code,
        forged.end,
    ):
        with pytest.raises(Forbidden):
            call()
    with pytest.raises(NotFound, match="This class has ended"):
        store.teacher("no-such-class", new.teacher_key)
    with pytest.raises(NotFound):
        store.teacher("../../etc", new.teacher_key)
    assert store.backend.snapshot() == before


def test_an_unknown_or_expired_join_code_is_one_line_and_changes_nothing(store, clock):
    new = store.create_class("1-threshold", 7)
    before = store.backend.snapshot()
    wrong = "".join(bounds.JOIN_CODE_ALPHABET[(bounds.JOIN_CODE_ALPHABET.index(c) + 1) % 31] for c in new.join_code)
    for code in (wrong, "", "<b>hi</b>", "A" * 500, new.join_code + "A"):
        with pytest.raises(NotFound, match="^No open class has this join code: check it with your teacher.$"):
            store.join(code, "Ada")
    assert store.backend.snapshot() == before
    store.join(" " + new.join_code.lower()[:3] + " " + new.join_code.lower()[3:], "Ada")  # as typed off a projector
    clock.now += bounds.JOIN_TTL_S
    before = store.backend.snapshot()
    with pytest.raises(NotFound, match="No open class has this join code"):
        store.join(new.join_code, "Bo")
    assert store.backend.snapshot() == before
    code, until = store.teacher(new.class_id, new.teacher_key).new_join_code()
    assert code != new.join_code and until == clock.now + bounds.JOIN_TTL_S
    store.join(code, "Bo")
    assert store.teacher(new.class_id, new.teacher_key).view().state.students == 2


def test_a_class_and_all_in_it_is_gone_after_a_day(store, clock):
    new, desk, (ada, *_) = started(store)
    ada.submit(1, Answer.number_guess(1))
    clock.now += bounds.CLASS_TTL_S - 1
    assert ada.state().step == 1
    clock.now += 1
    with pytest.raises(NotFound):
        ada.state()
    with pytest.raises(NotFound):
        store.teacher(new.class_id, new.teacher_key)
    other = store.create_class("2-time-steps", 7)  # a new class sweeps the old one out
    assert all(new.class_id not in collection and new.join_code not in collection for collection, _ in store.backend.snapshot())
    assert {collection for collection, _ in store.backend.snapshot()} == {"classes", f"class:{other.class_id}", f"code:{other.join_code}"}


def test_the_teacher_removes_an_answer_or_a_student(store):
    new, desk, (ada, bo, _) = started(store)
    ada.submit(1, Answer.number_guess(1))
    bo.submit(1, Answer.number_guess(2))
    ids = dict((nick, sid) for sid, nick in desk.view().students)
    desk.remove_answer(1, ids["Ada"])
    assert [a.nickname for a in desk.answers(1)] == ["Bo"] and ada.my_answers() == {}
    with pytest.raises(Refused, match="no such answer"):
        desk.remove_answer(1, ids["Ada"])
    desk.remove_student(ids["Bo"])
    assert desk.answers(1) == () and [nick for _, nick in desk.view().students] == ["Ada", "Cy"]
    assert desk.view().state.students == 2
    with pytest.raises(NotFound):
        bo.state()
    with pytest.raises(Refused, match="no such student"):
        desk.remove_student(ids["Bo"])


def test_the_teacher_moves_the_step_and_changes_the_lesson(store):
    new, desk, (ada, *_) = started(store)
    ada.submit(1, Answer.number_guess(1))
    desk.reveal(1)
    with pytest.raises(Refused, match="^This lesson has steps 1 to 7.$"):
        desk.set_step(8)
    with pytest.raises(Refused, match="The class is on step 1 now: your answer to step 2 was not sent."):
        ada.submit(2, Answer.number_guess(1))
    desk.set_lesson("3-latent-code", 6)
    state = ada.state()
    assert (state.lesson, state.step, state.steps, state.revealed) == ("3-latent-code", 1, 6, frozenset())
    assert ada.my_answers() == {} and desk.answers(1) == ()
    for lesson, steps in (("Bad Name", 3), ("ok", 0), ("ok", 21), ("ok", True)):
        with pytest.raises(Refused):
            desk.set_lesson(lesson, steps)


# --- limits ------------------------------------------------------------------------------------------


def test_a_full_class_and_a_full_server_say_so(store, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_STUDENTS", 2)
    monkeypatch.setattr(bounds, "MAX_CLASSES", 2)
    new, desk, _ = started(store, ("Ada", "Bo"))
    before = store.backend.snapshot()
    with pytest.raises(Refused, match="^This class is full \\(2 students\\).$"):
        store.join(new.join_code, "Cy")
    assert store.backend.snapshot() == before
    store.create_class("1-threshold", 7)
    with pytest.raises(Refused, match="^This server already runs 2 classes: end one, or try again later.$"):
        store.create_class("1-threshold", 7)
    desk.end()
    store.create_class("1-threshold", 7)


def test_a_student_who_floods_is_refused_until_the_window_passes(store, clock, monkeypatch):
    monkeypatch.setattr(bounds, "SUBMISSIONS_PER_WINDOW", 3)
    new, desk, (ada, bo, _) = started(store)
    clock.now = (clock.now // bounds.SUBMISSION_WINDOW_S + 1) * bounds.SUBMISSION_WINDOW_S  # the start of a window
    for guess in range(3):
        ada.submit(1, Answer.number_guess(guess))
    with pytest.raises(Refused, match="^Too many answers in a short time: wait a minute, then send again.$"):
        ada.submit(1, Answer.number_guess(99))
    assert ada.my_answers()[1].number == 2
    bo.submit(1, Answer.number_guess(7))  # one student's flood is theirs alone
    clock.now += bounds.SUBMISSION_WINDOW_S
    ada.submit(1, Answer.number_guess(4))
    assert ada.my_answers()[1].number == 4


@pytest.mark.parametrize("nickname", ["", "   ", "x" * 21, "<b>Ada</b>", "Ada*", "a\x00b", "a\u202eb", "[me](http://x)"])
def test_a_nickname_is_short_and_plain(store, nickname):
    new = store.create_class("1-threshold", 7)
    with pytest.raises(Refused, match="^A nickname is 1 to 20 letters, digits, spaces or - _ . '$"):
        store.join(new.join_code, nickname)


def test_two_students_cannot_share_a_nickname(store):
    new, _, _ = started(store, ("Zoë O'Neil",))
    assert store.seat(store.join(new.join_code, "  Ada   Lovelace ")[0]).nickname() == "Ada Lovelace"
    with pytest.raises(Refused, match="already has that nickname"):
        store.join(new.join_code, "zoë o'neil")


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda: Answer.number_guess(float("nan")), "the number must be a finite number"),
        (lambda: Answer.number_guess(1e300), "the number must be a finite number"),
        (lambda: Answer.number_guess("3"), "the number must be a finite number"),
        (lambda: Answer.choice_guess("x" * 81), "a choice is text of at most 80 characters"),
        (lambda: Answer.experiment(LessonLink("explore"), -1), "an MSE is never negative"),
        (lambda: Answer.experiment(LessonLink("explore"), "low"), "the MSE must be a number"),
        (lambda: Answer("experiment", link="/explore?thresh=99", mse=0.1), "the experiment's link is not valid"),
        (lambda: Answer("experiment", link="/explore?" + "a=1&" * 200, mse=0.1), "longer than 600 characters"),
        (lambda: Answer.latent_code("32x5-00", np.zeros((32, 32))), "needs 40 hex digits"),
        (lambda: Answer.latent_code("<script>", np.zeros((32, 32))), "the code is not a latent code"),
        (lambda: Answer.latent_code("2x2-f0", np.zeros((65, 32))), "a picture is at most 64 x 64 pixels"),
        (lambda: Answer.latent_code("2x2-f0", np.full((4, 4), np.nan)), "finite numbers"),
        (lambda: Answer("code", code="2x2-f0", image="AAAA", height=2, width=2), "the picture's size does not match"),
        (lambda: Answer("number", number=1, choice="a"), "a number answer holds exactly number"),
        (lambda: Answer("essay", number=1), "unknown kind of answer"),
    ],
)
def test_a_wrong_answer_is_refused_in_one_line(make, says):
    with pytest.raises(Refused) as refused:
        make()
    assert str(refused.value).startswith("That answer cannot be sent: ") and says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_an_answer_is_bounded_in_size(monkeypatch):
    code = "64x50-" + "0" * 800
    assert len(Answer.latent_code(code, np.ones((64, 64))).to_json()) < bounds.MAX_ANSWER_BYTES
    monkeypatch.setattr(bounds, "MAX_ANSWER_BYTES", 2000)
    with pytest.raises(Refused, match="larger than 1 KiB"):
        Answer.latent_code(code, np.ones((64, 64)))


def test_answers_survive_the_store_as_they_were_sent(store):
    new, desk, (ada, bo, cy) = started(store)
    desk.set_step(7)
    picture = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    sent = {
        ada: Answer.latent_code("32x5-" + "0f" * 20, picture, mse=0.031),
        bo: Answer.choice_guess("it gets several times higher (worse)"),
        cy: Answer.experiment(LessonLink("lab", {"lab_a": 3, "lab_view": "Between two digits"}), 0.5),
    }
    for seat, answer in sent.items():
        seat.submit(7, answer)
    got = {a.nickname: a.answer for a in desk.answers(7)}
    assert got == {"Ada": sent[ada], "Bo": sent[bo], "Cy": sent[cy]}
    assert np.abs(got["Ada"].picture() - picture).max() <= 0.5 / 255 + 1e-6


def test_a_store_out_of_reach_is_one_line(tmp_path):
    store = ClassStore(RedisBackend(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(Unavailable, match="^The class store cannot be reached: ConnectionError$"):
        store.create_class("1-threshold", 7)
    (tmp_path / "file").write_text("")
    with pytest.raises(ClassError, match="^The class store cannot be opened"):
        SqliteBackend(tmp_path / "file" / "classes.sqlite3")


# --- the backends' own promises (kept small) ---------------------------------------------------------


def test_redis_keys_expire_with_their_class(redis_url):
    backend = RedisBackend(redis_url, prefix="expiry:")
    new, _, _ = started(ClassStore(backend))
    keys = list(backend.redis.scan_iter(match="expiry:*"))
    assert {key.split(":")[1] for key in keys} == {"classes", "class", "seat", "code"}
    for key in keys:
        assert 0 < backend.redis.ttl(key) <= bounds.CLASS_TTL_S, key
    assert 0 < backend.redis.ttl(f"expiry:code:{new.join_code}") <= bounds.JOIN_TTL_S
    backend.close()


def test_sqlite_keeps_one_file_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("SAE_REDIS_URL", raising=False)
    monkeypatch.setenv("SAE_CLASS_DIR", str(tmp_path / "classes"))
    store = open_store()
    store.create_class("1-threshold", 7)
    assert isinstance(store.backend, SqliteBackend) and store.backend.path == tmp_path / "classes" / "classes.sqlite3"
    assert store.backend._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.backend.close()


def test_sae_redis_url_puts_every_class_in_redis(redis_url, monkeypatch):
    monkeypatch.setenv("SAE_REDIS_URL", redis_url)
    store = open_store()
    assert isinstance(store.backend, RedisBackend)
    store.backend.close()
