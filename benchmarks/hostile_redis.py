"""Attacks on the training queue: Redis restarted under a worker, a job enqueued from outside.

The set-up is the documented multi-machine one (docs/classroom.md): a
``redis-server`` (with ``--redis-password``, one that asks for it), ``sae worker``
on it, and the app with ``SAE_REDIS_URL``.  :func:`queue_setup` starts the three
on loopback; the attacks then do what anyone who reaches Redis, or a Redis that
restarts, does to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.hostile_common import Counts, Outcome, Target
from benchmarks.page_reading import quote
from benchmarks.server_launcher import ROOT, free_port, stop
from benchmarks.streamlit_session import Session
from benchmarks.train_page import FAILED, RUNNING, press_start, run_state, said_since, wait_for_steps
from sae.runs.redis_queue import QUEUE, WORKER_PREFIX

REDIS_BINARY = "redis-server"
START_WAIT_S = 20.0
WORKER_WAIT_S = 180.0  # a worker imports torch and loads MNIST before it listens
RESTART_WATCH_S = 60.0  # a worker may only notice when the run it trains ends
NEXT_RUN_WAIT_S = 150.0  # the class's own run may hold the worker first
PAYLOAD_WAIT_S = 150.0  # the enqueued call waits behind a run the worker is training


class RedisService:
    """A private ``redis-server`` on a loopback port (nothing on disk), which can be restarted on that port."""

    def __init__(self, folder: Path, password: str | None = None):
        self.folder, self.password, self.port = folder, password, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def plain_url(self) -> str:
        """The URL without the password: what someone who only reaches the port has."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0" if self.password else self.plain_url

    def start(self) -> None:
        command = [REDIS_BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        if self.password:
            command += ["--requirepass", self.password]
        with open(self.folder / "redis.log", "a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_WAIT_S
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port} (see {self.folder / 'redis.log'})")
            time.sleep(0.1)

    def _answers(self) -> bool:
        import redis

        with contextlib.suppress(redis.RedisError), redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
            return bool(client.ping())
        return False

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()


# The app's and the worker's shared signing key (SAE_QUEUE_KEY): a benchmark's own, as compose makes one.
QUEUE_KEY = secrets.token_hex(32)


def redis_available() -> bool:
    return shutil.which(REDIS_BINARY) is not None


def worker_listening(url: str) -> bool:
    import redis

    with contextlib.suppress(redis.RedisError), redis.Redis.from_url(url, socket_connect_timeout=1) as client:
        return any(True for _ in client.scan_iter(WORKER_PREFIX + "*"))
    return False


@contextlib.contextmanager
def queue_setup(folder: Path, password: str | None = None, app_dir: Path = ROOT):
    """Redis and one ``sae worker`` (of the checkout ``app_dir``) on it, as docs/classroom.md sets
    them up, the queue's signing key included; yields (service, worker, worker log)."""
    service = RedisService(folder, password)
    service.start()
    log_path = folder / "worker.log"
    try:
        with open(log_path, "w") as log:
            command = [sys.executable, "-m", "sae", "worker", "--redis-url", service.url, "--device", "cpu"]
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "SAE_QUEUE_KEY": QUEUE_KEY}
            worker = subprocess.Popen(command, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + WORKER_WAIT_S
            while not worker_listening(service.url):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError(f"sae worker did not start listening (see {log_path})")
                time.sleep(0.5)
            yield service, worker, log_path
        finally:
            stop(worker)
    finally:
        service.stop()


def last_line(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


async def worker_fate(target: Target) -> str:
    """Whether the worker outlives the restart: its exit and last log line, or that it still runs."""
    began = time.perf_counter()
    while time.perf_counter() - began < RESTART_WATCH_S and target.worker.poll() is None:
        await asyncio.sleep(0.5)
    if target.worker.poll() is None:
        return f"the worker still runs {RESTART_WATCH_S:.0f} s after the restart"
    after = time.perf_counter() - began
    return f"the worker exited (code {target.worker.returncode}) {after:.0f} s after the restart: “{quote(last_line(target.worker_log))}”"


async def next_run(target: Target) -> str:
    """Another student presses Start after the restart: does a worker take the run?"""
    async with Session(target.base_url, "train") as s:
        await s.rerun(timeout=120)
        began = time.perf_counter()
        await press_start(s)
        if await wait_for_steps(s, NEXT_RUN_WAIT_S):
            return f"a next run was training {time.perf_counter() - began:.0f} s after Start"
        state, lines = run_state(s.texts), said_since(s, 0)[-1:]
        how = state if state == FAILED else f"still {state} after {NEXT_RUN_WAIT_S:.0f} s"
        return f"a next run {how}" + (f": “{quote(lines[0])}”" if lines else "")


async def redis_restart(target: Target, counts: Counts) -> Outcome:
    """Redis restarts (nothing kept) while the worker trains a student's run."""
    async with Session(target.base_url, "train") as s:
        await s.rerun(timeout=120)
        await press_start(s)
        if not await wait_for_steps(s, counts.training_s) or run_state(s.texts) != RUNNING:  # the worker is training
            return Outcome(f"the run never trained ({run_state(s.texts)}): nothing to restart under")
        shown = len(s.alerts)
        await asyncio.to_thread(target.redis.restart)
        fate = await worker_fate(target)
        await asyncio.sleep(5.0)  # the page's next polls
        lines = said_since(s, shown)
        page = f"the student's page: “{quote(lines[0])}”" if lines else f"the student's page: no line ({run_state(s.texts)})"
    return Outcome(f"{fate}; {page}", [await next_run(target)])


def enqueue_system(url: str, payload: Path) -> tuple[object, str]:
    """``Queue(QUEUE).enqueue("os.system", "touch <payload>")`` as an outsider would: the job, or why not."""
    import redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    try:
        connection = redis.Redis.from_url(url, socket_connect_timeout=5)
        return Queue(QUEUE, connection=connection, serializer=JSONSerializer).enqueue("os.system", f"touch {payload}"), ""
    except redis.RedisError as error:
        return None, f"{type(error).__name__}: {error}"


async def payload_fate(job, payload: Path) -> str:
    """Whether the worker ran the enqueued call: the payload file, else how the job ended."""
    began = time.perf_counter()
    status = None
    while time.perf_counter() - began < PAYLOAD_WAIT_S and not payload.exists():
        with contextlib.suppress(Exception):
            status = await asyncio.to_thread(job.get_status, True)
        if str(status) in ("JobStatus.FINISHED", "JobStatus.FAILED", "finished", "failed"):
            break
        await asyncio.sleep(0.5)
    if payload.exists():
        return "the worker ran it (the payload file appeared)"
    return f"the payload did not run (job {getattr(status, 'value', status) or 'unknown'})"


async def redis_enqueue(target: Target, counts: Counts) -> Outcome:
    """``enqueue("os.system", ...)`` from outside, without the password and (if there is one) with it."""
    cells = []
    tries = [("without a password", target.redis.plain_url)]
    if target.redis.password:
        tries.append(("with the password", target.redis.url))
    for label, url in tries:
        payload = target.workdir / f"payload_{len(cells)}.txt"
        job, refused = await asyncio.to_thread(enqueue_system, url, payload)
        cells.append(f"{label}: " + (f"Redis refused: “{quote(refused)}”" if job is None else f"enqueued; {await payload_fate(job, payload)}"))
    return Outcome("; ".join(cells))
