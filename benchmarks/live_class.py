"""A live class over Streamlit's own protocol: a teacher's desk and N students who join, guess and see the reveal.

Every session speaks the websocket protocol as a browser does (``benchmarks.load.Session``) and
keeps every message the server sent it, so a test can read exactly what each student received.
The class is started in the class store (as the Teach page's Start button does); the teacher
opens the desk with the teacher link, the students join on the Join page with the code and a
nickname, each answers the lesson's number question with a guess of its own, and the teacher
reveals.  Figures: the time from an answer being stored (the store's own timestamp) to the
teacher's desk showing it, and from the reveal to each student's page showing the answer.

    python -m benchmarks.live_class --students 30      # its own server and class store, one lesson file

Loopback only, bounded in time and messages.  tests/test_class_protocol.py runs the same class
(one server with SQLite, and two replicas behind nginx with Redis) and asserts what each session saw.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from benchmarks.load import ROOT, Session, streamlit_server, wait_healthy

LESSON = "class-check"
LESSON_TOML = """title = "A class check"
[[steps]]
title = "Guess a number"
page = "home"
do = "Guess."
[steps.question]
ask = "Which number?"
kind = "number"
low = 0
high = 1000000
answer = 123456
explain = "It was 123456."
[steps.collect]
kind = "prediction"
"""
MAX_RECEIVED = 20_000  # messages one session keeps: bounded
WAIT_S = 120.0  # for any one thing the class waits on
PRESS_TRIES, PRESS_WAIT_S = 4, 15.0


def guess_of(index: int) -> int:
    """Student ``index``'s guess: six digits no other student and no page text share."""
    return 700_001 + 7919 * index


def nickname_of(index: int) -> str:
    return f"pupil{index:02d}x"


def write_lesson(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{LESSON}.toml").write_text(LESSON_TOML)
    return folder


class Recorded(Session):
    """A session that keeps every message it received, with the time it arrived (time.time())."""

    def __init__(self, base_url: str, page: str, query_string: str = "", cookie: str | None = None):
        # ``cookie``: the replica cookie nginx's sticky hash reads (deploy/nginx.conf), as a browser would send it.
        super().__init__(base_url, page, query_string, cookie=f"sae_replica={cookie}" if cookie else None)
        self.received: list[tuple[float, bytes]] = []
        self.metrics: list[tuple[float, str]] = []  # "label: value" as they arrive
        self.charts: list[str] = []  # Plotly specs (JSON) as they arrive
        self.pressed = 0.0  # when press_until last pressed

    async def _read(self) -> None:
        async for data in self.ws:
            if len(self.received) >= MAX_RECEIVED:
                break
            now = time.time()
            self.received.append((now, data))
            msg = ForwardMsg()
            msg.ParseFromString(data)
            if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if element.WhichOneof("type") == "metric":
                    self.metrics.append((now, f"{element.metric.label}: {element.metric.body}"))
                elif element.WhichOneof("type") == "plotly_chart":
                    self.charts.append(element.plotly_chart.spec)
                elif element.WhichOneof("type") == "text":
                    self.texts = (self.texts + [element.text.body])[-200:]
            self._handle(msg)

    def set_value(self, widget_id: str, **value) -> None:
        self.widget_states[widget_id] = WidgetState(id=widget_id, **value)

    def widget(self, kind: str, label: str):
        """The newest widget of that kind and label: a widget drawn anew (enabled, say) gets a new id."""
        found = [w for w in self.widgets.values() if type(w).__name__.lower() == kind and w.label.startswith(label)]
        return found[-1] if found else None

    def saw(self, text: str, before: float | None = None) -> bool:
        data = text.encode()
        return any(data in raw for at, raw in self.received if before is None or at < before)

    async def press_until(self, label: str, condition, what: str, tries: int = PRESS_TRIES):
        """Press button ``label`` until ``condition()`` holds.  A page that polls (a fragment's timer) can
        send its next run just as the press goes out; the server then runs that one and the press is
        lost, as a hurried click would be: a student, or this client, presses again."""
        for _ in range(tries):
            self.press((await self.until(lambda: self.widget("button", label), f"the {label!r} button")).id)
            self.pressed = time.time()
            await self.rerun()
            self.release_triggers()
            try:
                return await self.until(condition, what, PRESS_WAIT_S)
            except TimeoutError:
                continue
        raise TimeoutError(f"{what}: not after {tries} presses of {label!r}")

    async def until(self, condition, what: str, timeout: float = WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{what}: not within {timeout:.0f} s")


@dataclass
class ClassRun:
    teacher: Recorded
    students: list[Recorded]
    teacher_key: str = ""
    stored: dict[str, float] = field(default_factory=dict)  # nickname -> when the store kept the answer
    shown_at: dict[int, float] = field(default_factory=dict)  # answers counted -> when the desk first showed it
    revealed: float = 0.0  # when the teacher's reveal was sent
    verdict_at: list[float] = field(default_factory=list)  # when each student's page showed the answer

    def answer_to_desk(self) -> list[float]:
        """For the k-th answer stored: from then to the desk first showing k or more answers."""
        order = sorted(self.stored.values())
        return [min(at for count, at in self.shown_at.items() if count >= k) - t for k, t in enumerate(order, 1)]

    def reveal_to_students(self) -> list[float]:
        return [t - self.revealed for t in self.verdict_at]


async def student(url: str, code: str, index: int, cookie: str | None = None) -> Recorded:
    """Join with the code and a nickname; wait for the question; send the guess."""
    s = Recorded(url, "join", f"join={code}", cookie)
    await s.__aenter__()
    await s.rerun()
    name = await s.until(lambda: s.widget("textinput", "Nickname"), "the Join page")
    s.set_value(name.id, string_value=nickname_of(index))
    s.press((await s.until(lambda: s.widget("button", "Join"), "the Join button")).id)
    await s.rerun()
    s.release_triggers()
    box = await s.until(lambda: s.widget("numberinput", "Your guess"), "the question")
    s.set_value(box.id, int_value=guess_of(index))
    await s.rerun()  # the guess typed: the send button is enabled on this run
    # The page's own state, not the one-time "Sent" line (a rerun the next poll interrupts may drop it).
    sent = f"Your guess: **{guess_of(index)}**. Waiting for your teacher"
    await s.press_until("Send my guess", lambda: any(t.startswith(sent) for t in s.texts), "the answer to be sent")
    return s


async def run_class(url: str, store, students: int, cookies=None) -> ClassRun:
    """The whole class against the server at ``url`` whose class store is ``store`` (the same file or Redis)."""
    new = store.create_class(LESSON, 1)
    teacher = Recorded(url, "teach", f"desk={new.class_id}.{new.teacher_key}", cookies[0] if cookies else None)
    await teacher.__aenter__()
    await teacher.rerun()
    await teacher.until(lambda: any(m.startswith("Join code: ") for _, m in teacher.metrics), "the teacher's desk")
    run = ClassRun(teacher, [], new.teacher_key)
    watch = asyncio.create_task(_watch_desk(run, students))
    picked = [cookies[i % len(cookies)] for i in range(students)] if cookies else [None] * students
    run.students = list(await asyncio.gather(*(student(url, new.join_code, i, picked[i]) for i in range(students))))
    desk = store.teacher(new.class_id, new.teacher_key)
    run.stored = {a.nickname: a.at for a in desk.answers(1)}
    await asyncio.wait_for(watch, WAIT_S)
    revealed = "Revealed: every student sees the answer"
    await teacher.press_until("Reveal the answer", lambda: any(t.startswith(revealed) for t in teacher.texts), "the reveal on the desk")
    run.revealed = teacher.pressed  # the press that worked
    for s in run.students:
        await s.until(lambda s=s: re.search(r"Your guess: \*\*\d+\*\*\. (Right!|Not quite\.)", " ".join(s.texts)), "the reveal")
        run.verdict_at.append(next(t for t, raw in s.received if b"Not quite" in raw or b"Right!" in raw))
        # The class's guesses are drawn after the verdict in the same run: the run is not over until they came.
        await s.until(lambda s=s: s.saw("guesses, without names."), "the class's guesses after the reveal")
    return run


async def _watch_desk(run: ClassRun, students: int) -> None:
    """Note when the desk first shows each count of answers, until it shows them all."""
    while True:
        for at, text in run.teacher.metrics:
            found = re.fullmatch(r"Answered: (\d+) of \d+", text)
            if found:
                run.shown_at.setdefault(int(found[1]), at)
        if students in run.shown_at:
            return
        await asyncio.sleep(0.05)


async def close(run: ClassRun) -> None:
    for s in [run.teacher, *run.students]:
        await s.__aexit__(None, None, None)


def summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s over {len(ordered)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    args = parser.parse_args()
    from teaching.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        env = {"SAE_LESSONS_DIR": str(write_lesson(Path(tmp) / "lessons")), "SAE_CLASS_DIR": str(Path(tmp) / "classes")}
        import os

        os.environ.update(env)
        with streamlit_server(ROOT, env=env, log=Path(tmp) / "server.log") as (url, process):
            wait_healthy(url, process)

            async def go():
                run = await run_class(url, open_store(), args.students)
                await close(run)
                return run

            run = asyncio.run(go())
    print(f"{args.students} students, one server, SQLite class store")
    print(f"answer stored -> teacher's desk shows it: {summary(run.answer_to_desk())}")
    print(f"teacher reveals -> a student's page shows the answer: {summary(run.reveal_to_students())}")


if __name__ == "__main__":
    main()
