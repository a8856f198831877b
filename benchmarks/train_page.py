"""The Train page driven over the protocol: its form, Start, the state of the run, Save.

What a student does with their hands on /train, for a benchmark session
(``benchmarks.streamlit_session.Session``): set form fields by their widget key
(``tr_epochs``, ``tr_num_steps``...), press Start, read where the run stands from
the page's own lines (queued, running, ended, or a refusal), save it under a name.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

from benchmarks.page_reading import new_lines
from benchmarks.streamlit_session import Session
from benchmarks.students import steps_shown

QUEUED, RUNNING, ENDED, FAILED, NOT_STARTED = "queued", "running", "ended", "failed", "not started"
# A run so small it trains in seconds and its Save measures quickly: one batch of ten images, one time step.
TINY_RUN = {"tr_epochs": 1, "tr_train_subset": 10, "tr_batch_size": 10, "tr_eval_images": 10, "tr_time_budget": 0, "tr_num_steps": 1}
SAVED = re.compile(r"^Saved as \*\*(.+?)\*\*")
POLL_S = 0.5


def set_form(session: Session, values: dict) -> list[str]:
    """Set Train form fields by widget key (sliders and number inputs); the keys not on the page, returned."""
    missing = []
    for key, value in values.items():
        widget = session.widget_by_key(key)
        kind = type(widget).__name__
        if kind == "Slider":
            session.set_slider(widget.id, value)
        elif kind == "NumberInput":
            session.set_number(widget.id, int(value) if widget.data_type == widget.INT else float(value))
        else:
            missing.append(key)
    return missing


def said_since(session: Session, shown: int) -> list[str]:
    """The one-line messages the page showed after its first ``shown`` that it had not shown before."""
    return new_lines(session.alerts[:shown], session.alerts[shown:])


def run_state(texts: list[str]) -> str:
    """Where this session's run stands, from the page's latest lines."""
    for text in reversed(texts[-30:]):
        if text.startswith("Training failed"):  # shown below the progress bar, so read first
            return FAILED
        if "of training ·" in text:
            return ENDED
        if " left · " in text or "elapsed ·" in text:
            return RUNNING
        if text.startswith("Queued:"):
            return QUEUED
    return NOT_STARTED


async def press_start(session: Session) -> list[str]:
    """Press Start; the lines the page showed afterwards that it did not show before (a refusal, the queue)."""
    shown = len(session.alerts)
    button = session.widget_by_key("tr_start")
    if button is None:
        return ["no Start button on the page"]
    session.press(button.id)
    await session.rerun(timeout=120)
    session.release_triggers()
    return said_since(session, shown)


async def wait_until(session: Session, states: tuple[str, ...], timeout: float) -> str:
    """Follow the page (its fragments poll the run) until the run is in one of ``states``; the last state seen."""
    deadline = time.perf_counter() + timeout
    while (state := run_state(session.texts)) not in states and time.perf_counter() < deadline:
        await asyncio.sleep(POLL_S)
    return state


async def wait_for_steps(session: Session, timeout: float) -> int:
    """Follow the page until the run has made a step (not only "running": a run on a shared queue shows
    that while it waits for a worker), or has ended or failed; the steps shown (0: none)."""
    deadline = time.perf_counter() + timeout
    while not steps_shown(session.texts) and run_state(session.texts) not in (ENDED, FAILED) and time.perf_counter() < deadline:
        await asyncio.sleep(POLL_S)
    return steps_shown(session.texts) or 0


async def press(session: Session, key: str, timeout: float = 120) -> bool:
    """Click the button with widget key ``key`` if the page shows one."""
    button = session.widget_by_key(key)
    if button is None:
        return False
    session.press(button.id)
    await session.rerun(timeout=timeout)
    session.release_triggers()
    return True


async def stop_run(session: Session) -> None:
    """Cancel this session's queued run or stop its running one (the next student finds the slot free)."""
    with contextlib.suppress(Exception):
        await press(session, "tr_cancel") or await press(session, "tr_stop")


async def train_tiny(session: Session, timeout: float) -> str:
    """Open /train, start a tiny run and follow it to its end; the state it reached."""
    await session.rerun(timeout=120)
    set_form(session, TINY_RUN)
    await session.rerun(timeout=120)  # the form as the server now sees it
    refused = await press_start(session)
    state = await wait_until(session, (ENDED, FAILED), timeout)
    if state != ENDED:
        return f"{state}: {refused[-1] if refused else 'no line'}"
    await session.rerun(timeout=120)  # the page swaps the live panel for the results and the Save form
    return state


async def save_as(session: Session, name: str, timeout: float = 300) -> list[str]:
    """Type ``name`` into the Save form and submit it; the lines the page showed afterwards."""
    field, submit = session.widget_by_key("tr_save_name"), session.widget_by_key("tr_save")
    if field is None or submit is None:
        return ["no Save form on the page"]
    shown = len(session.alerts)
    session.set_text(field.id, name)
    session.press(submit.id)
    await session.rerun(timeout=timeout)
    session.release_triggers()
    return said_since(session, shown)


def saved_name(lines: list[str]) -> str | None:
    """The name the page says it saved under ("Saved as **name** ..."), if it says so."""
    for line in lines:
        found = SAVED.match(line)
        if found:
            return found.group(1)
    return None
