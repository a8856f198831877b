"""Attacks on the training side: the job table, the training slot, saved checkpoints.

Attacks of the hostile-class benchmark (``benchmarks.hostile``), each driving the
Train page over the protocol (``benchmarks.train_page``) as many students, or one
student with many tabs, would.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from benchmarks.hostile_common import Counts, Outcome, Target
from benchmarks.page_reading import minutes_left, quote
from benchmarks.streamlit_session import Session
from benchmarks.train_page import (
    ENDED,
    FAILED,
    QUEUED,
    RUNNING,
    press_start,
    run_state,
    said_since,
    save_as,
    saved_name,
    set_form,
    stop_run,
    train_tiny,
    wait_until,
)
from explorer.owner import COOKIE as OWNER_COOKIE
from sae.io.student_checkpoints import new_owner

SETTLE_S = 3.0  # the queue's lines reach each page with its next poll (once a second)


async def start_flood(target: Target, counts: Counts) -> Outcome:
    """``flood`` sessions each press Start once and stay connected; then one more student presses Start."""
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Session(target.base_url, "train")) for _ in range(counts.flood)]
        await asyncio.gather(*(s.rerun(timeout=120) for s in sessions))
        answers = await asyncio.gather(*(press_start(s) for s in sessions))
        await asyncio.sleep(SETTLE_S)
        states = [run_state(s.texts) for s in sessions]
        accepted = sum(state in (QUEUED, RUNNING, ENDED) for state in states)
        refusals = [lines[0] for lines, state in zip(answers, states) if state not in (QUEUED, RUNNING, ENDED) and lines]
        async with Session(target.base_url, "train") as bystander:
            await bystander.rerun(timeout=120)
            shown = len(bystander.alerts)
            await press_start(bystander)
            await asyncio.sleep(SETTLE_S)
            lines = said_since(bystander, shown)
            bystander_line = f"a student pressing Start then read: “{quote(lines[0])}”" if lines else "a student pressing Start read no new line"
            await stop_run(bystander)
        for s in sessions:  # the next attack starts with an empty queue
            await stop_run(s)
    got = f"{accepted} of {counts.flood} Starts accepted ({states.count(RUNNING)} running, {states.count(QUEUED)} queued)"
    if refusals:
        got += f"; the rest refused: “{quote(refusals[0])}”"
    return Outcome(got, [bystander_line])


async def endless_run(target: Target, counts: Counts) -> Outcome:
    """A run of 1000 epochs with no time limit: accepted, and for how long would it hold the slot?"""
    async with Session(target.base_url, "train") as s:
        await s.rerun(timeout=120)
        missing = set_form(s, {"tr_epochs": 1000, "tr_time_budget": 0})
        await s.rerun(timeout=120)
        lines = await press_start(s)
        state = await wait_until(s, (RUNNING, ENDED, FAILED), timeout=counts.training_s)
        left = None
        for _ in range(60):  # the estimate shows once the run has measured its speed
            left = minutes_left(s.texts)
            if left is not None or state != RUNNING:
                break
            await asyncio.sleep(1.0)
        await stop_run(s)
    if missing:
        return Outcome(f"the form has no {', '.join(sorted(missing))}")
    if left is not None:
        return Outcome(f"accepted; the page says about {left / 60:,.0f} hours left")
    return Outcome(f"{state}: “{quote(lines[0])}”" if lines else f"{state}, no line")


RUDE_NAME = "rude_word_for_teacher"


async def rude_checkpoint(target: Target, counts: Counts) -> Outcome:
    """A student saves a run under a rude name: does another student's sidebar list it?"""
    name = RUDE_NAME if target.user_dir is not None else f"{RUDE_NAME}_{secrets.token_hex(2)}"  # a shared server keeps files
    async with Session(target.base_url, "train") as s:
        state = await train_tiny(s, counts.training_s)
        if state != ENDED:
            return Outcome(f"the run did not end: {state}")
        lines = await save_as(s, name)
    saved = saved_name(lines)
    got = f"saved as {saved}" if saved else f"not saved: “{quote(lines[0])}”" if lines else "no line"
    async with Session(target.base_url, "explore") as other:
        await other.rerun(timeout=120)
        listed = other.widget_by_key("sb_checkpoint")
        seen = listed is not None and name in listed.options
    return Outcome(got, [f"another student's sidebar {'lists' if seen else 'does not list'} {name!r}"])


async def save_race(target: Target, counts: Counts) -> Outcome:
    """One student's ``racers`` tabs (one owner cookie), each with a finished run, save under one name
    at the same moment.  (Different students may each keep a run of one name: each has a folder.)"""
    name = f"class_model_{secrets.token_hex(2)}"
    cookie = f"{OWNER_COOKIE}={new_owner()}"
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Session(target.base_url, "train", cookie=cookie)) for _ in range(counts.racers)]
        states = await asyncio.gather(*(train_tiny(s, counts.training_s) for s in sessions))
        ready = [s for s, state in zip(sessions, states) if state == ENDED]
        if len(ready) < 2:
            return Outcome(f"only {len(ready)} of {counts.racers} runs ended: {states}")
        answers = await asyncio.gather(*(save_as(s, name) for s in ready))
    told = sum(saved_name(lines) == name for lines in answers)
    refused = [lines[0] for lines in answers if lines and saved_name(lines) != name]
    got = f"{told} of {len(ready)} told “saved” under one name"
    if target.user_dir is not None:
        files = len(list(target.user_dir.rglob(f"{name}.pt")))
        got += f"; the folder holds {files} file(s) of that name"
    if refused:
        got += f"; the others: “{quote(refused[0])}”"
    return Outcome(got)
