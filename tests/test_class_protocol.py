"""A live class at the protocol level: 30 students join and answer, the teacher's desk counts them
and draws their histogram, and no student's session receives another's answer before the reveal.

Each session speaks Streamlit's websocket protocol and keeps every message it was sent
(benchmarks/live_class.py), so "received" means the bytes that reached it, not what a page shows.
The same class runs on one server with the SQLite store, and on two replicas behind the project's
nginx with Redis, students on both.  No timing is asserted: ``python -m benchmarks.live_class``
prints the figures.
"""

from __future__ import annotations

import json
import secrets

import pytest

from benchmarks.live_class import close, guess_of, nickname_of, run_class, write_lesson
from benchmarks.load import ROOT, streamlit_server, wait_healthy
from teaching.store import open_store
from tests.conftest import run_async

STUDENTS = int(__import__("os").environ.get("CLASS_STUDENTS", "30"))


def check_class(run, students: int) -> None:
    teacher = run.teacher
    assert f"Answered: {students} of {students}" in [m for _, m in teacher.metrics]
    histogram = next(spec for spec in reversed(teacher.charts) if json.loads(spec)["data"] and json.loads(spec)["data"][0].get("type") == "histogram")
    shown = sorted(json.loads(histogram)["data"][0]["x"])
    assert shown == sorted(guess_of(i) for i in range(students))  # every guess, each once
    for i, s in enumerate(run.students):
        own, others = guess_of(i), [j for j in range(students) if j != i]
        assert s.saw(str(own)), f"student {i} never saw its own guess"
        leaked = [j for j in others if s.saw(str(guess_of(j)), before=run.revealed)]
        assert not leaked, f"student {i} received the answers of {leaked} before the reveal"
        assert not s.saw(run.teacher_key), f"student {i} received the teacher's key"
        names = [j for j in others if s.saw(nickname_of(j))]
        assert not names, f"student {i} received the nicknames of {names}"
        assert s.saw(str(guess_of((i + 1) % students))), "after the reveal the class's guesses reach every student"
        assert not s.exceptions, s.exceptions
    assert not teacher.exceptions, teacher.exceptions
    assert len(run.answer_to_desk()) == students and len(run.reveal_to_students()) == students


@pytest.mark.slow
def test_thirty_students_answer_and_only_the_teacher_sees_them_before_the_reveal(tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_CLASS_DIR", str(tmp_path / "classes"))
    monkeypatch.delenv("SAE_REDIS_URL", raising=False)
    env = {"SAE_LESSONS_DIR": str(write_lesson(tmp_path / "lessons")), "SAE_CLASS_DIR": str(tmp_path / "classes")}
    with streamlit_server(ROOT, env=env, log=tmp_path / "server.log") as (url, process):
        wait_healthy(url, process)

        async def go():
            run = await run_class(url, open_store(), STUDENTS)
            await close(run)
            return run

        run = run_async(go())
    check_class(run, STUDENTS)


@pytest.mark.services
def test_the_same_class_over_two_replicas_behind_nginx_with_redis(tmp_path, monkeypatch):
    from tests.services import nginx, redis_server

    students = 12
    with redis_server(tmp_path) as redis:
        redis_url = redis.url
        monkeypatch.setenv("SAE_REDIS_URL", redis_url)
        env = {
            "SAE_LESSONS_DIR": str(write_lesson(tmp_path / "lessons")),
            "SAE_REDIS_URL": redis_url,
            "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(16),
        }
        with (
            streamlit_server(ROOT, env=env, log=tmp_path / "a.log") as (a, process_a),
            streamlit_server(ROOT, env=env, log=tmp_path / "b.log") as (b, process_b),
        ):
            wait_healthy(a, process_a)
            wait_healthy(b, process_b)
            backends = [a.removeprefix("http://"), b.removeprefix("http://")]
            with nginx(tmp_path, backends) as (url, access_log):
                cookies = cookies_per_replica(url, access_log, backends)

                async def go():
                    run = await run_class(url, open_store(), students, cookies=[cookies[backends[0]], cookies[backends[1]]])
                    await close(run)
                    return run

                run = run_async(go())
                reached = {line.split(" ")[1] for line in access_log.read_text().splitlines() if "/_stcore/stream" in line}
    check_class(run, students)
    assert reached == set(backends), f"the class's websockets reached {sorted(reached)}"


def cookies_per_replica(url: str, access_log, backends) -> dict:
    """A replica cookie value that nginx's consistent hash sends to each replica."""
    from tests.browser.test_replicas_browser import replica_for

    class Replicas:
        pass

    replicas = Replicas()
    replicas.url, replicas.access_log, replicas.backends = url, access_log, backends
    found = {}
    for i in range(64):
        found.setdefault(replica_for(replicas, f"pupil{i}"), f"pupil{i}")
        if len(found) == len(backends):
            return found
    pytest.fail("64 cookies all went to one replica")
