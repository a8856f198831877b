"""The live class: join codes, answers, the reveal.  No Streamlit; SQLite or Redis underneath.

Who may do what, by what they hold:

- anyone with an open **join code** may join with a nickname (no accounts) and gets a **seat**
  (a random token, kept by the student's session only);
- a **seat** (:class:`Seat`) may read the class's lesson and step, send an answer to the current
  step, read its own answers, and read the class's answers of a step only once the teacher has
  revealed it (without nicknames).  No seat call returns anyone else's answer before the reveal:
  the check and the read happen in one transaction;
- the **teacher** (:class:`Desk`: the class id and the teacher key, the key compared in constant
  time) may see every answer with its nickname, move the step, change the lesson, reveal a step,
  remove an answer or a student, open a new join code and end the class.

A join code admits students for ``JOIN_TTL_S``; a class and everything in it is deleted when it
ends, and ``CLASS_TTL_S`` after it started regardless.  Every failure is a :class:`ClassError`
whose message is one plain line for the page to show, and changes nothing.

Storage is a small keyed record store behind ``teaching.records.Backend``: ``teaching.store_sqlite`` (one
file, WAL, the default) or ``teaching.store_redis`` (``SAE_REDIS_URL``, so every replica sees the
same class).  All the rules live here, written once; a backend only stores records atomically.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from teaching import bounds
from teaching.controls import BY_NAME, JOIN_CODE, LESSON_NAME
from teaching.links import LessonLink, decode_url
from teaching.records import Backend, ClassError, Forbidden, NotFound, Records, Refused, Unavailable

# The errors a page catches, importable from here with the rest of the store's API.
__all__ = ["Answer", "ClassError", "ClassState", "ClassStore", "Desk", "Forbidden", "NewClass", "NotFound", "Refused", "Seat"]
__all__ += ["SharedAnswer", "TeacherView", "Unavailable", "clean_nickname", "open_store"]

REDIS_ENV = "SAE_REDIS_URL"
FOLDER_ENV = "SAE_CLASS_DIR"
DEFAULT_FOLDER = Path(".cache") / "classes"
ANSWER_KINDS = ("number", "choice", "experiment", "code")
MAX_NUMBER = 1e9
MAX_MSE = 100.0
_NICKNAME_SIGNS = " -_.'"


# --- answers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a student sends for a step.  Build one with :meth:`number_guess`, :meth:`choice_guess`,
    :meth:`experiment` or :meth:`latent_code`; construction checks everything (Refused, one line)."""

    kind: str
    number: float | None = None  # a number question's guess
    choice: str | None = None  # a choice question's guess: the choice's text
    link: str | None = None  # an experiment: the student's view as a link (path and query)
    mse: float | None = None  # an experiment's (or an edited code's) reconstruction MSE
    code: str | None = None  # an edited latent code, as the Latent lab writes it
    image: str | None = None  # its decoded picture: base64 of uint8 grey levels, row by row
    height: int | None = None
    width: int | None = None

    def __post_init__(self):
        problem = self._problem()
        if problem:
            raise Refused(f"That answer cannot be sent: {problem}.")
        if len(self.to_json()) > bounds.MAX_ANSWER_BYTES:
            raise Refused(f"That answer cannot be sent: it is larger than {bounds.MAX_ANSWER_BYTES // 1024} KiB.")

    def _problem(self) -> str | None:
        needs = {"number": {"number"}, "choice": {"choice"}, "experiment": {"link", "mse"}, "code": {"code", "image", "height", "width"}}
        if self.kind not in needs:
            return "unknown kind of answer"
        given = {k for k, v in asdict(self).items() if v is not None and k != "kind"}
        allowed = needs[self.kind] | ({"mse"} if self.kind == "code" else set())
        if not needs[self.kind] <= given or not given <= allowed:
            return f"a {self.kind} answer holds exactly {', '.join(sorted(needs[self.kind]))}"
        for name, most in (("number", MAX_NUMBER), ("mse", MAX_MSE)):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > most
            ):
                return f"the {name} must be a finite number of at most {most:g}"
        if self.mse is not None and self.mse < 0:
            return "an MSE is never negative"
        if self.choice is not None and not (isinstance(self.choice, str) and 0 < len(self.choice) <= bounds.CHOICE_CHARS):
            return f"a choice is text of at most {bounds.CHOICE_CHARS} characters"
        if self.link is not None:
            if not isinstance(self.link, str) or len(self.link) > bounds.MAX_LINK_IN_ANSWER:
                return f"the experiment's link is longer than {bounds.MAX_LINK_IN_ANSWER} characters"
            corrections = decode_url(self.link).corrections
            if corrections:
                return f"the experiment's link is not valid ({corrections[0]})"
        if self.code is not None and (problem := BY_NAME["lab_code"].kind.problem(self.code)):
            return f"the code is {problem}" if problem.startswith("not") else problem
        if self.image is not None:
            return self._image_problem()
        return None

    def _image_problem(self) -> str | None:
        sides = (self.height, self.width)
        if not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= bounds.MAX_IMAGE_SIDE for s in sides):
            return f"a picture is at most {bounds.MAX_IMAGE_SIDE} x {bounds.MAX_IMAGE_SIDE} pixels"
        try:
            size = len(base64.b64decode(self.image, validate=True))
        except (ValueError, TypeError):
            return "the picture is not base64"
        return None if size == self.height * self.width else "the picture's size does not match its sides"

    @classmethod
    def number_guess(cls, value: float) -> Answer:
        return cls("number", number=value)

    @classmethod
    def choice_guess(cls, text: str) -> Answer:
        return cls("choice", choice=text)

    @classmethod
    def experiment(cls, view: LessonLink, mse: float) -> Answer:
        """The student's view (its page and settings) and the MSE it gave."""
        return cls("experiment", link=view.url(), mse=_plain_float(mse))

    @classmethod
    def latent_code(cls, code: str, picture: np.ndarray, mse: float | None = None) -> Answer:
        """An edited code (``sae.analysis.latent.code_to_text``) and its decoded picture [H, W] (0 black, 1 white)."""
        picture = np.asarray(picture, dtype=np.float64)
        if picture.ndim != 2 or not np.isfinite(picture).all():
            raise Refused("That answer cannot be sent: the picture must be a 2-D array of finite numbers.")
        grey = np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)
        text = base64.b64encode(grey.tobytes()).decode("ascii")
        return cls("code", code=code, image=text, height=int(grey.shape[0]), width=int(grey.shape[1]), mse=None if mse is None else _plain_float(mse))

    def view(self) -> LessonLink | None:
        """An experiment's view, to open it on the projector (None for other kinds)."""
        return decode_url(self.link).link if self.link else None

    def picture(self) -> np.ndarray | None:
        """An edited code's picture as floats [H, W] in 0..1 (None for other kinds)."""
        if self.image is None:
            return None
        return np.frombuffer(base64.b64decode(self.image), np.uint8).reshape(self.height, self.width).astype(np.float32) / 255

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Answer:
        return cls(**json.loads(text))


def _plain_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Refused("That answer cannot be sent: the MSE must be a number.") from None


# --- what the calls return ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewClass:
    """A class just started.  ``teacher_key`` is shown once, in the teacher's link only; the store keeps its hash."""

    class_id: str
    teacher_key: str
    join_code: str
    join_until: float  # the store clock's time when the code stops admitting students


@dataclass(frozen=True)
class ClassState:
    """What every member of the class may know."""

    lesson: str
    step: int  # the step the teacher has the class on, from 1
    steps: int
    revealed: frozenset  # steps whose answers the teacher revealed
    students: int  # how many are in the class now


@dataclass(frozen=True)
class SharedAnswer:
    """An answer as the teacher sees it (students see revealed answers without ``student``/``nickname``)."""

    step: int
    student: str  # the student's id in this class (not their seat)
    nickname: str
    answer: Answer
    at: float  # the store clock's time it arrived


@dataclass(frozen=True)
class TeacherView:
    state: ClassState
    join_code: str
    join_until: float
    expires: float  # when the class and everything in it is deleted
    students: tuple  # (student id, nickname) in the order they joined
    answered: int  # answers to the current step


# --- the rules ------------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _class(cid: str) -> str:
    return f"class:{cid}"


def _answers(cid: str, step: int) -> str:
    return f"answers:{cid}:{step}"


def _seat(token_hash: str) -> str:
    return f"seat:{token_hash}"


def _code(code: str) -> str:
    return f"code:{code}"


GONE = "This class has ended, or the link is no longer valid."


class ClassStore:
    """The live classes of one server (or of every replica sharing one Redis).

    ``create_class`` and ``join`` are open to anyone; everything else goes through a :class:`Desk`
    (``teacher(class_id, key)``) or a :class:`Seat` (``seat(token)``).  ``clock`` is the time in
    seconds (tests move it to expire codes and classes)."""

    def __init__(self, backend: Backend, clock=time.time):
        self.backend = backend
        self.clock = clock

    # anyone

    def create_class(self, lesson: str, steps: int) -> NewClass:
        """A new class on ``lesson`` (a lesson name) of ``steps`` steps, at step 1."""
        _check_lesson(lesson, steps)
        now = self.clock()
        with self.backend.transaction("server", write=True) as tx:
            live = self._prune(tx, now)
            if live >= bounds.MAX_CLASSES:
                raise Refused(f"This server already runs {bounds.MAX_CLASSES} classes: end one, or try again later.")
            cid, key = secrets.token_urlsafe(9), secrets.token_urlsafe(24)
            code = _new_code(tx)
            expires = now + bounds.CLASS_TTL_S
            meta = {"lesson": lesson, "steps": steps, "step": 1, "revealed": [], "teacher": _hash(key), "expires": expires}
            meta |= {"code": code, "code_until": now + bounds.JOIN_TTL_S, "students": 0, "joined": 0}
            tx.put(_class(cid), "meta", json.dumps(meta), bounds.CLASS_TTL_S)
            tx.put("classes", cid, json.dumps({"expires": expires}), bounds.CLASS_TTL_S)
            tx.put(_code(code), "class", json.dumps({"class": cid, "until": meta["code_until"]}), bounds.JOIN_TTL_S)
        return NewClass(cid, key, code, meta["code_until"])

    def join(self, join_code: str, nickname: str) -> tuple[str, str]:
        """Join with an open code: returns (seat token, the nickname as kept).  The token is the
        student's only key to their seat: keep it in their session, never in a link."""
        name = clean_nickname(nickname)
        code = "".join(str(join_code).split()).upper()[: bounds.JOIN_CODE_LENGTH + 1]
        now = self.clock()
        unknown = NotFound("No open class has this join code: check it with your teacher.")
        if not re.fullmatch(JOIN_CODE, code):
            raise unknown
        with self.backend.transaction("server", write=False) as tx:
            found = tx.get(_code(code), "class")
        if found is None or json.loads(found)["until"] <= now:
            raise unknown
        cid = json.loads(found)["class"]
        with self.backend.transaction(cid, write=True) as tx:
            meta = self._meta(tx, cid, now)
            if meta is None or meta["code"] != code or meta["code_until"] <= now:
                raise unknown
            students = {k: json.loads(v) for k, v in tx.items(_class(cid)).items() if k.startswith("s:")}
            if len(students) >= bounds.MAX_STUDENTS:
                raise Refused(f"This class is full ({bounds.MAX_STUDENTS} students).")
            if any(s["nickname"].casefold() == name.casefold() for s in students.values()):
                raise Refused("Someone in this class already has that nickname: pick another.")
            token, sid = secrets.token_urlsafe(18), secrets.token_urlsafe(6)
            ttl = meta["expires"] - now
            meta["students"] += 1
            meta["joined"] += 1
            tx.put(_class(cid), f"s:{sid}", json.dumps({"nickname": name, "seat": _hash(token), "n": meta["joined"]}), ttl)
            tx.put(_class(cid), "meta", json.dumps(meta), ttl)
            tx.put(_seat(_hash(token)), "seat", json.dumps({"class": cid, "student": sid}), ttl)
        return token, name

    def teacher(self, class_id: str, teacher_key: str) -> Desk:
        """The teacher's side of a class; Forbidden for a wrong key, NotFound for a class that is gone."""
        desk = Desk(self, str(class_id), str(teacher_key))
        desk.view()
        return desk

    def seat(self, token: str) -> Seat:
        """A student's side of their class; NotFound when the seat or its class is gone."""
        seat = Seat(self, str(token))
        seat.state()
        return seat

    # shared by the desk and the seat

    def _meta(self, tx: Records, cid: str, now: float) -> dict | None:
        """The class's record, or None when there is none or it has expired."""
        text = tx.get(_class(cid), "meta") if re.fullmatch(r"[\w-]{1,20}", cid) else None
        meta = json.loads(text) if text else None
        return meta if meta is not None and meta["expires"] > now else None

    def _delete_class(self, tx: Records, cid: str) -> None:
        records = tx.items(_class(cid))
        meta = json.loads(records.get("meta", "{}"))
        for item, value in records.items():
            if item.startswith("s:"):
                tx.drop(_seat(json.loads(value)["seat"]))
        if "code" in meta:
            tx.drop(_code(meta["code"]))
        for step in range(1, bounds.MAX_STEPS + 1):
            tx.drop(_answers(cid, step))
        tx.drop(_class(cid))
        tx.delete("classes", cid)

    def _prune(self, tx: Records, now: float) -> int:
        """Delete the classes past their time; return how many are left."""
        live = 0
        for cid, text in tx.items("classes").items():
            if json.loads(text)["expires"] <= now:
                self._delete_class(tx, cid)
            else:
                live += 1
        return live

    @staticmethod
    def _state(meta: dict) -> ClassState:
        return ClassState(meta["lesson"], meta["step"], meta["steps"], frozenset(meta["revealed"]), meta["students"])


def _check_lesson(lesson: str, steps: int) -> None:
    if not isinstance(lesson, str) or not re.fullmatch(LESSON_NAME, lesson):
        raise Refused("A lesson name is 1 to 40 lowercase letters, digits, - or _.")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= bounds.MAX_STEPS:
        raise Refused(f"A lesson has 1 to {bounds.MAX_STEPS} steps.")


def _new_code(tx: Records) -> str:
    while True:
        code = "".join(secrets.choice(bounds.JOIN_CODE_ALPHABET) for _ in range(bounds.JOIN_CODE_LENGTH))
        if tx.get(_code(code), "class") is None:
            return code


def clean_nickname(nickname) -> str:
    """The nickname as kept: spaces collapsed; Refused unless 1 to NICKNAME_CHARS letters, digits, spaces or ``- _ . '``."""
    name = " ".join(str(nickname).split())[: bounds.NICKNAME_CHARS + 1]
    if not 0 < len(name) <= bounds.NICKNAME_CHARS or not all(c.isalnum() or c in _NICKNAME_SIGNS for c in name):
        raise Refused(f"A nickname is 1 to {bounds.NICKNAME_CHARS} letters, digits, spaces or - _ . '")
    return name


class Desk:
    """The teacher's side of one class.  Every call checks the key again (in constant time)."""

    def __init__(self, store: ClassStore, class_id: str, key: str):
        self._store, self.class_id, self._key_hash = store, class_id, _hash(key)

    def _open(self, tx: Records, now: float) -> dict:
        meta = self._store._meta(tx, self.class_id, now)
        if meta is None:
            raise NotFound(GONE)
        if not hmac.compare_digest(meta["teacher"], self._key_hash):
            raise Forbidden("This teacher link is not valid for this class.")
        return meta

    def _change(self, change) -> object:
        """Run ``change(tx, meta, now)`` in a write transaction; a changed ``meta`` is saved."""
        now = self._store.clock()
        with self._store.backend.transaction(self.class_id, write=True) as tx:
            meta = self._open(tx, now)
            before = json.dumps(meta, sort_keys=True)
            result = change(tx, meta, now)
            if json.dumps(meta, sort_keys=True) != before:
                tx.put(_class(self.class_id), "meta", json.dumps(meta), meta["expires"] - now)
        return result

    def view(self) -> TeacherView:
        """The class as the teacher's screen shows it."""
        now = self._store.clock()
        with self._store.backend.transaction(self.class_id, write=False) as tx:
            meta = self._open(tx, now)
            records = tx.items(_class(self.class_id))
            answered = len(tx.items(_answers(self.class_id, meta["step"])))
        students = sorted((json.loads(v)["n"], k[2:], json.loads(v)["nickname"]) for k, v in records.items() if k.startswith("s:"))
        return TeacherView(
            self._store._state(meta), meta["code"], meta["code_until"], meta["expires"], tuple((sid, nick) for _, sid, nick in students), answered
        )

    def answers(self, step: int) -> tuple[SharedAnswer, ...]:
        """Every answer to ``step``, with nicknames, oldest first."""
        now = self._store.clock()
        with self._store.backend.transaction(self.class_id, write=False) as tx:
            meta = self._open(tx, now)
            _check_step(step, meta)
            records = tx.items(_class(self.class_id))
            found = tx.items(_answers(self.class_id, step))
        names = {k[2:]: json.loads(v)["nickname"] for k, v in records.items() if k.startswith("s:")}
        records = sorted((json.loads(text)["n"], sid, text) for sid, text in found.items())
        return tuple(_shared(step, sid, names.get(sid, "?"), text) for _, sid, text in records)

    def set_step(self, step: int) -> None:
        """Move the class to ``step`` (answers then go to it)."""

        def change(tx, meta, now):
            _check_step(step, meta)
            meta["step"] = step

        self._change(change)

    def set_lesson(self, lesson: str, steps: int) -> None:
        """Another lesson: back to step 1, every answer and reveal of the old one deleted."""
        _check_lesson(lesson, steps)

        def change(tx, meta, now):
            for step in range(1, bounds.MAX_STEPS + 1):
                tx.drop(_answers(self.class_id, step))
            meta.update(lesson=lesson, steps=steps, step=1, revealed=[])

        self._change(change)

    def reveal(self, step: int) -> None:
        """Show ``step``'s answer and the class's answers to every student; answers to it close."""

        def change(tx, meta, now):
            _check_step(step, meta)
            meta["revealed"] = sorted(set(meta["revealed"]) | {step})

        self._change(change)

    def remove_answer(self, step: int, student: str) -> None:
        """Delete one student's answer to ``step``."""

        def change(tx, meta, now):
            _check_step(step, meta)
            if tx.get(_answers(self.class_id, step), str(student)) is None:
                raise Refused("There is no such answer (it may have been removed already).")
            tx.delete(_answers(self.class_id, step), str(student))

        self._change(change)

    def remove_student(self, student: str) -> None:
        """Remove a student: their seat stops working and all their answers are deleted."""

        def change(tx, meta, now):
            text = tx.get(_class(self.class_id), f"s:{student}")
            if text is None:
                raise Refused("There is no such student in this class.")
            tx.drop(_seat(json.loads(text)["seat"]))
            for item in (f"s:{student}", f"r:{student}"):
                tx.delete(_class(self.class_id), item)
            for step in range(1, meta["steps"] + 1):
                tx.delete(_answers(self.class_id, step), str(student))
            meta["students"] -= 1

        self._change(change)

    def new_join_code(self) -> tuple[str, float]:
        """A fresh join code and the time it closes, open for ``JOIN_TTL_S``; the old code stops admitting at once."""

        def change(tx, meta, now):
            tx.drop(_code(meta["code"]))
            meta["code"], meta["code_until"] = _new_code(tx), now + bounds.JOIN_TTL_S
            tx.put(_code(meta["code"]), "class", json.dumps({"class": self.class_id, "until": meta["code_until"]}), bounds.JOIN_TTL_S)
            return meta["code"], meta["code_until"]

        return self._change(change)

    def end(self) -> None:
        """End the class: everything in it is deleted now."""
        self._change(lambda tx, meta, now: self._store._delete_class(tx, self.class_id))


class Seat:
    """A student's side of their class: their own answers, and the class's once revealed."""

    def __init__(self, store: ClassStore, token: str):
        self._store, self._hash = store, _hash(token)

    def _open(self, tx: Records, now: float) -> tuple[str, str, dict]:
        text = tx.get(_seat(self._hash), "seat")
        if text is None:
            raise NotFound(GONE)
        seat = json.loads(text)
        meta = self._store._meta(tx, seat["class"], now)
        if meta is None or tx.get(_class(seat["class"]), f"s:{seat['student']}") is None:
            raise NotFound(GONE)
        return seat["class"], seat["student"], meta

    def _read(self, read):
        now = self._store.clock()
        with self._store.backend.transaction("", write=False) as tx:
            return read(tx, *self._open(tx, now))

    def state(self) -> ClassState:
        return self._read(lambda tx, cid, sid, meta: self._store._state(meta))

    def nickname(self) -> str:
        return self._read(lambda tx, cid, sid, meta: json.loads(tx.get(_class(cid), f"s:{sid}"))["nickname"])

    def submit(self, step: int, answer: Answer) -> None:
        """Send (or replace) this student's answer to ``step``, the class's current step, before its reveal."""
        if not isinstance(answer, Answer):
            raise Refused("That answer cannot be sent.")
        now = self._store.clock()
        with self._store.backend.transaction("", write=False) as tx:
            cid = self._open(tx, now)[0]
        with self._store.backend.transaction(cid, write=True) as tx:
            cid, sid, meta = self._open(tx, now)
            if step != meta["step"]:
                raise Refused(f"The class is on step {meta['step']} now: your answer to step {step} was not sent.")
            if step in meta["revealed"]:
                raise Refused(f"Step {step} is revealed: answers to it are closed.")
            window = int(now // bounds.SUBMISSION_WINDOW_S)
            rate = json.loads(tx.get(_class(cid), f"r:{sid}") or '{"window": -1, "count": 0}')
            count = rate["count"] + 1 if rate["window"] == window else 1
            if count > bounds.SUBMISSIONS_PER_WINDOW:
                raise Refused("Too many answers in a short time: wait a minute, then send again.")
            ttl = meta["expires"] - now
            meta["sent"] = meta.get("sent", 0) + 1  # the order answers arrived in, whatever the clocks say
            tx.put(_class(cid), "meta", json.dumps(meta), ttl)
            tx.put(_class(cid), f"r:{sid}", json.dumps({"window": window, "count": count}), ttl)
            tx.put(_answers(cid, step), sid, json.dumps({"answer": answer.to_json(), "at": now, "n": meta["sent"]}), ttl)

    def my_answers(self) -> dict[int, Answer]:
        """This student's own answers, by step."""

        def read(tx, cid, sid, meta):
            texts = {step: tx.get(_answers(cid, step), sid) for step in range(1, meta["steps"] + 1)}
            return {step: Answer.from_json(json.loads(text)["answer"]) for step, text in texts.items() if text}

        return self._read(read)

    def revealed_answers(self, step: int) -> tuple[Answer, ...]:
        """The class's answers to ``step``, oldest first, without names; Refused until the teacher reveals it."""

        def read(tx, cid, sid, meta):
            _check_step(step, meta)
            if step not in meta["revealed"]:
                raise Refused(f"The teacher has not revealed step {step} yet.")
            found = [json.loads(text) for text in tx.items(_answers(cid, step)).values()]
            return tuple(Answer.from_json(a["answer"]) for a in sorted(found, key=lambda a: a["n"]))

        return self._read(read)


def _check_step(step, meta: dict) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= meta["steps"]:
        raise Refused(f"This lesson has steps 1 to {meta['steps']}.")


def _shared(step: int, student: str, nickname: str, text: str) -> SharedAnswer:
    record = json.loads(text)
    return SharedAnswer(step, student, nickname, Answer.from_json(record["answer"]), record["at"])


def open_store(clock=time.time) -> ClassStore:
    """The server's class store: Redis when ``SAE_REDIS_URL`` is set (every replica sees the same
    classes), else one SQLite file in ``SAE_CLASS_DIR`` (default ``.cache/classes``)."""
    url = os.environ.get(REDIS_ENV, "").strip()
    if url:
        from teaching.store_redis import RedisBackend

        return ClassStore(RedisBackend(url), clock)
    from teaching.store_sqlite import SqliteBackend

    folder = Path(os.environ.get(FOLDER_ENV, "").strip() or DEFAULT_FOLDER)
    return ClassStore(SqliteBackend(folder / "classes.sqlite3"), clock)
