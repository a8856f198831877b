"""What every attack of the hostile-class benchmark gets and gives, and the visits they share.

An attack (``benchmarks.hostile_pages``, ``hostile_training``, ``hostile_redis``)
is an async function of a :class:`Target` (the server under attack) and the
:class:`Counts` it may use, returning an :class:`Outcome`: what the attacker got,
in one table cell, and what bystanders it watched saw.  ``benchmarks.hostile``
runs them, with a class of well-behaved students beside each.
"""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from benchmarks.page_reading import mentioning, new_lines, quote
from benchmarks.streamlit_session import Session

PAGE_TIMEOUT_S = 120.0


@dataclass
class Target:
    """The server under attack, and what this benchmark knows of it."""

    base_url: str
    pid: int | None
    user_dir: Path | None = None  # where it saves checkpoints (known when this benchmark started it)
    workdir: Path | None = None  # a scratch folder for this attack
    redis: object = None  # a benchmarks.hostile_redis.RedisService, for the attacks that need one
    worker: subprocess.Popen | None = None
    worker_log: Path | None = None


@dataclass(frozen=True)
class Counts:
    """How much each attack does: bounded, and small with ``--quick``."""

    flood: int = 64  # sessions pressing Start
    compare_digits: int = 1000
    compare_steps: int = 50
    churn: int = 100  # Explore sessions that come and go
    churn_at_once: int = 10
    churn_wait_s: float = 130.0  # Streamlit keeps a closed session's state for 120 s
    upload_mb: int = 150
    upload_wait_s: float = 30.0
    racers: int = 4  # sessions saving one name at once
    seed_digits: int = 100_000
    explorers: int = 10  # the well-behaved class
    baseline_s: float = 30.0
    min_window_s: float = 20.0  # the class is measured at least this long per attack (after a quick one: its aftermath)
    training_s: float = 300.0  # the longest a tiny run may take to end (it queues behind others)


QUICK = Counts(
    flood=6,
    compare_digits=64,
    compare_steps=10,
    churn=4,
    churn_at_once=2,
    churn_wait_s=10.0,
    upload_mb=25,
    upload_wait_s=5.0,
    racers=2,
    seed_digits=1_000,
    explorers=2,
    baseline_s=10.0,
    min_window_s=8.0,
)


@dataclass
class Outcome:
    attacker: str  # what the attacker got, one cell
    others: list[str] = field(default_factory=list)  # what bystanders this attack watched saw
    later: str = ""  # a figure taken after the attack ended (memory some time later)


@dataclass(frozen=True)
class Attack:
    name: str
    what: str  # one line: the attack, as the table names it
    run: Callable[[Target, Counts], Awaitable[Outcome]]
    needs: str = ""  # "redis": a server this benchmark starts, with --redis and a redis-server binary
    fresh: bool = True  # a server of its own; False: it changes nothing another attack measures, so it may share one


@dataclass
class Visit:
    """One page as one student saw it after one or more reruns."""

    page: str
    statuses: list[str]
    seconds: list[float | None]  # of each rerun, send to script_finished (None: it did not finish)
    exceptions: list[str]
    alerts: list[str]
    texts: list[str]
    query_string: str
    widgets: dict


def query(params: dict) -> str:
    """A link's query string; a list value repeats its parameter (how Streamlit binds a multiselect)."""
    return urlencode(params, doseq=True)


async def visit(base_url: str, page: str, params: dict | None = None, reruns: int = 1, timeout: float = PAGE_TIMEOUT_S) -> Visit:
    """Open ``page`` with ``params`` as a new student, rerun ``reruns`` times (a reload-like second run shows
    whether a bad value breaks every run), and keep what the page showed."""
    async with Session(base_url, page, query(params or {})) as s:
        runs = [await s.rerun(timeout=timeout) for _ in range(reruns)]
        statuses, seconds = [r.status for r in runs], [r.seconds for r in runs]
        return Visit(page, statuses, seconds, list(s.exceptions), list(s.alerts), list(s.texts), s.query_string, dict(s.widgets))


def traceback_line(exceptions: list[str]) -> str:
    """``"traceback OverflowError: ..."`` for the first exception shown, "" when none."""
    return f"traceback {quote(exceptions[0], 90)}" if exceptions else ""


def what_it_said(seen: Visit, reference: Visit | None = None, *about: str) -> str:
    """One cell: a traceback, else the first new one-line message (about ``about`` when given), else
    (when ``about`` is given) a new caption or text about it, else ""."""
    if seen.exceptions:
        return traceback_line(seen.exceptions)
    before = reference or Visit(seen.page, [], [], [], [], [], "", {})
    fresh = new_lines(before.alerts, seen.alerts)
    lines = mentioning(fresh, *about) if about else fresh
    if lines:
        return f"one line: “{quote(lines[0])}”"
    lines = mentioning(new_lines(before.texts, seen.texts), *about) if about else []
    return f"a line: “{quote(lines[0])}”" if lines else ""
