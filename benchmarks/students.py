"""Well-behaved students, each one protocol-level session (benchmarks.streamlit_session).

An ``explorer`` opens /explore and moves ``thresh`` every few seconds, each time
to a value it has not used (so no session's own result cache answers); a
``trainer`` presses Start on /train (the default "One minute" preset) and
follows the live page to the end.  What they measured goes into a ``Result``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.streamlit_session import Run, Session

STEPS_PATTERNS = (re.compile(r"of training · (\d[\d,]*) steps\b"), re.compile(r"^Steps: (\d[\d,]*)$"), re.compile(r"· step (\d[\d,]*), epoch"))


@dataclass
class Result:
    moves: list[Run] = field(default_factory=list)
    first_runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    train_steps: int | None = None
    train_seconds: float | None = None


def slider_values(slider) -> list[float]:
    """Every value a slider's steps reach, the one it shows now left out."""
    n = round((slider.max - slider.min) / slider.step)
    values = [round(slider.min + i * slider.step, 10) for i in range(n + 1)]
    return [v for v in values if abs(v - slider.value[0]) > 1e-9] if slider.value else values


async def pause(seconds: float, stop: asyncio.Event | None = None) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(max(0.0, seconds))
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))


async def explorer(
    base_url: str,
    index: int,
    deadline: float,
    rng: random.Random,
    result: Result,
    interval: tuple[float, float],
    query_string: str = "",
    stop: asyncio.Event | None = None,
    watch: Callable[[Session], None] | None = None,
) -> None:
    """One student on /explore: open it, then move thresh to a new value every 3 ± 1 s until the
    deadline (or ``stop``), ``watch`` looking at the page after the first run and after every move."""
    async with Session(base_url, "explore", query_string) as s:
        first = await s.rerun()
        result.first_runs.append(first)
        slider = s.find_widget("slider", "thresh")
        if first.status != "ok" or slider is None:
            result.errors.append(f"session {index}: first run {first.status}, thresh slider {'found' if slider else 'missing'}; {s.exceptions[:1]}")
            return
        if watch is not None:
            watch(s)
        unused = slider_values(slider)
        rng.shuffle(unused)
        next_move = time.perf_counter() + rng.uniform(0, interval[1])  # students do not move in step
        while unused and next_move < deadline and not (stop is not None and stop.is_set()):
            await pause(next_move - time.perf_counter(), stop)
            if stop is not None and stop.is_set():
                break
            s.set_slider(slider.id, unused.pop())
            run = await s.rerun()
            result.moves.append(run)
            if watch is not None:
                watch(s)
            next_move = run.sent + rng.uniform(*interval)
        result.errors.extend(f"session {index}: {e}" for e in s.exceptions)


def steps_shown(texts: list[str]) -> int | None:
    """The training step count the Train page shows last: the final progress text, else the Steps metric."""
    for pattern in STEPS_PATTERNS:
        for text in reversed(texts):
            found = pattern.search(text)
            if found:
                return int(found.group(1).replace(",", ""))
    return None


def ended(texts: list[str]) -> bool:
    return any(re.search(r"of training · \d[\d,]* steps", t) for t in texts[-20:])


def start_button(session: Session):
    """The Train page's Start button, as the server last drew it."""
    return next((w for w in session.widgets.values() if type(w).__name__ == "Button" and w.id.endswith("tr_start")), None)


async def trainer(base_url: str, result: Result, limit_s: float, started: asyncio.Event | None = None) -> None:
    """One student on /train: press Start (the default "One minute" preset) and follow the live page to the end."""
    async with Session(base_url, "train") as s:
        first = await s.rerun()
        start = start_button(s)
        if first.status != "ok" or start is None:
            result.errors.append(f"trainer: first run {first.status}, Start button {'found' if start else 'missing'}; {s.exceptions[:1]}")
            return
        s.press(start.id)
        begin = time.perf_counter()
        await s.rerun()
        s.release_triggers()
        if started is not None:
            started.set()
        while time.perf_counter() - begin < limit_s and not ended(s.texts):
            await asyncio.sleep(0.5)  # the page's own fragments poll the run (auto_rerun)
        result.train_seconds = time.perf_counter() - begin
        result.train_steps = steps_shown(s.texts)
        if not ended(s.texts):
            result.errors.append(f"trainer: the run had not ended after {limit_s:.0f} s")
        result.errors.extend(f"trainer: {e}" for e in s.exceptions)
