"""The well-behaved students of the hostile-class benchmark, in a process of their own.

    python -m benchmarks.hostile_class --url http://127.0.0.1:8501 --explorers 10 [--train]

Explorers move ``thresh`` on /explore every 3 ± 1 s (a student who has tried every
value reloads the page); one student opens /compare at the defaults every few
seconds, each time as a new visit; with ``--train`` one student presses Start on
/train (the "One minute" preset) and follows the run.  Every page is watched for
what an attacker could change for them: a traceback, a line that was not there on
their first run, the sidebar's checkpoint list growing.

It prints ``ready`` once every student's first page has rendered, counts from the
moment a ``start`` line arrives on its standard input, runs until that input
closes (or ``--max-seconds``), then prints one JSON line: the move and visit
times since ``start``, the training steps, and what the students saw.  A process
of its own, so an attacker's work in the benchmark's process never delays a
student's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field

from benchmarks.page_reading import new_lines, quote
from benchmarks.streamlit_session import Run, Session
from benchmarks.students import Result, explorer, pause, steps_shown
from benchmarks.train_page import press_start, run_state, stop_run

MAX_SECONDS = 1800.0  # a class left running by a benchmark that died stops by itself
MAX_SIGHTINGS = 20
COMPARE_TIMEOUT_S = 300.0
GRACE_S = 60.0  # after the class is told to stop, a visit in flight may still finish this long
RELOAD_S = 2.0


@dataclass
class Watcher:
    """What the students saw that their own first page did not show."""

    sightings: list[str] = field(default_factory=list)
    first: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # student -> (alerts, checkpoints) first seen

    def note(self, line: str) -> None:
        if line not in self.sightings and len(self.sightings) < MAX_SIGHTINGS:
            self.sightings.append(line)

    def look(self, session: Session, student: str, lines: list[str]) -> None:
        """Compare the page ``student`` sees now with the first page they saw: ``lines`` (the alerts
        that do not depend on the student's own moves), the checkpoint list, tracebacks."""
        checkpoint = session.widget_by_key("sb_checkpoint")
        listed = list(checkpoint.options) if checkpoint is not None else []
        alerts, first_listed = self.first.setdefault(student, (list(lines), listed))
        for line in new_lines(alerts, lines):
            self.note(f"{session.page_name}: a new line: {quote(line)}")
        for name in sorted(set(listed) - set(first_listed)):
            self.note(f"{session.page_name}: the checkpoint list gained {name!r}")
        for error in session.exceptions:
            self.note(f"{session.page_name}: traceback {quote(error)}")


async def explorers(base_url: str, count: int, seed: int, result: Result, stop: asyncio.Event, watch: Watcher) -> None:
    """``count`` students on /explore; one who has tried every thresh value reloads the page."""

    async def student(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        while not stop.is_set():
            # The page's own warnings change with thresh (a silent decoder): the sidebar's lines do not.
            look = lambda session: watch.look(session, f"explorer {i}", session.sidebar_alerts)  # noqa: E731
            await explorer(base_url, i, time.perf_counter() + MAX_SECONDS, rng, result, (2.0, 4.0), stop=stop, watch=look)
            await pause(RELOAD_S, stop)  # a page that would not render is not reloaded in a tight loop

    await asyncio.gather(*(student(i) for i in range(count)))


async def stopped_a_while(stop: asyncio.Event) -> None:
    await stop.wait()
    await asyncio.sleep(GRACE_S)


async def comparer(base_url: str, every_s: float, visits: Result, stop: asyncio.Event, watch: Watcher) -> None:
    """One student who opens /compare at the defaults every ``every_s`` seconds, each time a new visit.
    A visit still waiting a while after the class stops is counted as cut off, not left out."""
    while not stop.is_set():
        async with Session(base_url, "compare") as s:
            sent = time.perf_counter()
            run, end = asyncio.create_task(s.rerun(timeout=COMPARE_TIMEOUT_S)), asyncio.create_task(stopped_a_while(stop))
            await asyncio.wait([run, end], return_when=asyncio.FIRST_COMPLETED)
            end.cancel()
            if run.done() and run.exception() is None:
                visits.moves.append(run.result())
            else:
                visits.moves.append(Run(sent=sent, status="cut off at the end" if not run.done() else "connection lost"))
                run.cancel()
            watch.look(s, "compare", s.alerts)
        await pause(every_s, stop)


async def trainer(base_url: str, training: dict, stop: asyncio.Event, watch: Watcher) -> None:
    """One student who presses Start on /train and follows the run until the class stops."""
    async with Session(base_url, "train") as s:
        await s.rerun(timeout=120)
        training["start"] = [quote(line) for line in await press_start(s)]
        while not stop.is_set():
            await pause(1.0, stop)
            steps = steps_shown(s.texts) or 0
            training.update(state=run_state(s.texts), steps=steps)
            training.setdefault("seen", []).append((time.perf_counter(), steps))
        for error in s.exceptions:
            watch.note(f"train: traceback {quote(error)}")
        await stop_run(s)  # the slot is free for whoever comes next


def seconds(result: Result, since: float) -> dict:
    """The times of the reruns sent since ``since`` that finished ok, and how the others ended."""
    counted = [r for r in result.moves if r.sent >= since]
    return {"ok_s": [r.seconds for r in counted if r.status == "ok"], "not_ok": [r.status for r in counted if r.status != "ok"]}


async def a_class(args, ready, stopped: asyncio.Event, since: list[float]) -> dict:
    """Run the class until ``stopped``; call ``ready()`` once every student has a first page.
    Times count from ``since[0]`` (set while the class runs)."""
    watch, moves, visits, training = Watcher(), Result(), Result(), {}
    tasks = [asyncio.create_task(explorers(args.url, args.explorers, args.seed, moves, stopped, watch))]
    tasks.append(asyncio.create_task(comparer(args.url, args.compare_every, visits, stopped, watch)))
    if args.train:
        tasks.append(asyncio.create_task(trainer(args.url, training, stopped, watch)))
    deadline = time.perf_counter() + 300
    while len(moves.first_runs) + len(moves.errors) < args.explorers or not visits.moves:
        if time.perf_counter() > deadline or all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.2)
    ready()
    await asyncio.gather(*tasks, return_exceptions=True)
    for error in moves.errors[:5]:  # a student whose page did not render (a full class, a traceback)
        watch.note(f"explore: {quote(error)}")
    seen = training.pop("seen", [])
    before = [steps for t, steps in seen if t < since[0]]
    training["steps_counted"] = training.get("steps", 0) - (before[-1] if before else 0)  # the steps made since "start"
    return {
        "seconds": time.perf_counter() - since[0],
        "explore": seconds(moves, since[0]),
        "compare": seconds(visits, since[0]),
        "training": training,
        "sightings": watch.sightings,
    }


async def main(args) -> None:
    stopped, since = asyncio.Event(), [time.perf_counter()]
    loop = asyncio.get_running_loop()

    def read_input() -> None:  # "start" marks the moment to count from; the end of input (or the benchmark's death) stops
        for line in sys.stdin:
            if line.strip() == "start":
                since[0] = time.perf_counter()
        loop.call_soon_threadsafe(stopped.set)

    loop.run_in_executor(None, read_input)
    loop.call_later(args.max_seconds, stopped.set)
    result = await a_class(args, lambda: print("ready", flush=True), stopped, since)
    print(json.dumps(result), flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the server (loopback only)")
    p.add_argument("--explorers", type=int, default=10)
    p.add_argument("--compare-every", type=float, default=5.0, help="seconds between two Compare visits")
    p.add_argument("--train", action="store_true", help="one student trains the 'One minute' preset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    args = p.parse_args(argv)
    args.explorers = max(0, min(args.explorers, 100))
    args.max_seconds = min(args.max_seconds, MAX_SECONDS)
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
