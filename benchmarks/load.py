"""A classroom against one server: N protocol-level sessions, timed server side.

Each session speaks Streamlit's own websocket protocol (``/_stcore/stream``,
protobuf ``BackMsg`` / ``ForwardMsg`` from ``streamlit.proto``) the way the
browser does: it sends ``rerun_script`` with the query string, the page and the
widget states, keeps the ForwardMsg cache (``cached_message_hashes`` in,
``ref_hash`` out, aged like the frontend's) and follows fragment ``auto_rerun``.
The time from sending a slider move to its ``script_finished`` is the server's
share of that move (the browser's drawing is not in it), so this measures what
the server does with a class, without 30 browsers on the same CPU.

    python -m benchmarks.load --sessions 30 --duration 75             # against a server on :8501
    python -m benchmarks.load --sessions 30 --train                   # a "One minute" run beside them
    python -m benchmarks.load --sessions 30 --train-alone --train     # the same run alone first, then beside
    python -m benchmarks.load --sessions 30 --pairs 3                 # without / with a run, alternating
    python -m benchmarks.load --sessions 30 --pairs 3 --beside cli    # the same, the run a separate `sae train`
    python -m benchmarks.load --first-visit                           # a fresh server: first Explore / Compare
    python -m benchmarks.load --first-visit --launcher warmup         # the same, started as `make run` does

Every explorer opens ``/explore`` and moves ``thresh`` every 3 ± 1 s, each time to a
value it has not used (so no session's own result cache answers).  It prints
p50/p95/p99/max of those moves, the same split by how many other moves were in
flight when it was sent (the sign of reruns queueing), the server's CPU and RSS,
and, with ``--train``, the training steps made beside the explorers (and alone).

Loopback only, bounded in time and messages, and it stops by itself.  Not a unit
test: tests/test_load_client.py checks the client itself against a real server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_CACHED_MESSAGE_AGE = 2  # Streamlit's global.maxCachedMessageAge: the frontend drops older entries
RUN_TIMEOUT_S = 60.0  # one rerun that takes longer than this is reported as a timeout
MAX_MESSAGES = 200_000  # per session: a runaway server cannot keep a client reading for ever
FINISHED = {
    ForwardMsg.FINISHED_SUCCESSFULLY: "ok",
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR: "compile error",
    ForwardMsg.FINISHED_EARLY_FOR_RERUN: "interrupted",
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY: "ok",
}


# --------------------------------------------------------------------------- one session


@dataclass
class Run:
    """One rerun this client asked for: when it was sent, when (and how) it finished."""

    sent: float
    fragment_id: str = ""
    in_flight: int = 0  # other sessions' reruns waiting for their script_finished when this one was sent
    finished: float | None = None
    status: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else self.finished - self.sent


class Session:
    """One browser tab, as the server sees it: a websocket, a page, widget states and a message cache."""

    in_flight = 0  # reruns sent and not finished, over every session of this process

    def __init__(self, base_url: str, page: str, query_string: str = ""):
        parsed = urlparse(base_url)
        if parsed.hostname not in LOOPBACK:
            raise ValueError(f"loopback servers only, not {parsed.hostname!r}")
        self.ws_url = f"ws://{parsed.netloc}{parsed.path.rstrip('/')}/_stcore/stream"
        self.page_name = page
        self.query_string = query_string
        self.page_script_hash = ""
        self.widget_states: dict[str, object] = {}  # widget id -> WidgetState (what this tab has set)
        self.widgets: dict[str, object] = {}  # widget id -> the element proto the server last drew
        self.texts: list[str] = []  # markdown, captions, progress texts of the runs, newest last (bounded)
        self.exceptions: list[str] = []
        self.cache: dict[str, int] = {}  # message hash -> run count when last sent or referenced
        self.run_count = 0
        self.auto_reruns: dict[str, asyncio.Task] = {}
        self.pending: Run | None = None
        self.ws = None
        self._reader: asyncio.Task | None = None
        self._messages = 0

    async def __aenter__(self):
        # No Origin header (a non-browser client): Streamlit accepts it and skips the XSRF cookie check.
        self.ws = await connect(self.ws_url, subprotocols=["streamlit"], max_size=None, compression=None, open_timeout=30, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        for task in self.auto_reruns.values():
            task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    # ---- sending

    def _back_msg(self, fragment_id: str = "", auto: bool = False) -> bytes:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_name = self.page_name if not self.page_script_hash else ""
        state.page_script_hash = self.page_script_hash
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        for widget in self.widget_states.values():
            state.widget_states.widgets.append(widget)
        state.cached_message_hashes.extend(self.cache)
        return msg.SerializeToString()

    async def rerun(self, fragment_id: str = "", auto: bool = False, timeout: float = RUN_TIMEOUT_S) -> Run:
        """Send one rerun_script and wait for its script_finished (or the timeout)."""
        run = Run(sent=time.perf_counter(), fragment_id=fragment_id, in_flight=Session.in_flight)
        if self.pending is not None and not self.pending.done.is_set():
            self._finish(self.pending, "interrupted")  # the server drops a run a newer request supersedes
        self.pending = run
        Session.in_flight += 1
        await self.ws.send(self._back_msg(fragment_id, auto))
        try:
            await asyncio.wait_for(run.done.wait(), timeout)
        except TimeoutError:
            self._finish(run, "timeout")
        return run

    def _finish(self, run: Run, status: str) -> None:
        if run.done.is_set():
            return
        run.finished, run.status = time.perf_counter(), status
        Session.in_flight -= 1
        run.done.set()

    def set_slider(self, widget_id: str, value: float) -> None:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        state = WidgetState(id=widget_id)
        state.double_array_value.data.append(float(value))
        self.widget_states[widget_id] = state

    def press(self, widget_id: str) -> None:
        """A button click: a trigger that is true for one run only (as the frontend sends it)."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        self.widget_states[widget_id] = WidgetState(id=widget_id, trigger_value=True)

    def release_triggers(self) -> None:
        for key, state in list(self.widget_states.items()):
            if state.WhichOneof("value") == "trigger_value":
                del self.widget_states[key]

    # ---- receiving

    async def _read(self) -> None:
        async for data in self.ws:
            self._messages += 1
            if self._messages > MAX_MESSAGES:
                break
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self._handle(msg)

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = self.run_count
        if kind == "ref_hash":
            self.cache[msg.ref_hash] = self.run_count
        elif kind == "new_session":
            if msg.new_session.page_script_hash:
                self.page_script_hash = msg.new_session.page_script_hash
            if not msg.metadata.run.fragment_ids:  # a full run starts: the frontend drops its fragment timers
                for task in self.auto_reruns.values():
                    task.cancel()
                self.auto_reruns.clear()
        elif kind == "navigation":
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element)
        elif kind == "auto_rerun":
            self._auto_rerun(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                task = self.auto_reruns.pop(fragment_id, None)
                if task is not None:
                    task.cancel()
        elif kind == "script_finished":
            status = FINISHED.get(msg.script_finished, str(msg.script_finished))
            if msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                self.run_count += 1
                self.cache = {h: n for h, n in self.cache.items() if self.run_count - n <= MAX_CACHED_MESSAGE_AGE}
            if self.pending is not None:
                self._finish(self.pending, status)

    def _element(self, element) -> None:
        kind = element.WhichOneof("type")
        if kind == "exception":
            self.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind in ("markdown", "progress", "metric", "alert"):
            text = {
                "markdown": lambda e: e.markdown.body,
                "progress": lambda e: e.progress.text,
                "alert": lambda e: e.alert.body,
                "metric": lambda e: f"{e.metric.label}: {e.metric.body}",
            }[kind](element)
            self.texts = (self.texts + [text])[-200:]
        else:
            proto = getattr(element, kind, None)
            widget_id = getattr(proto, "id", "") if proto is not None else ""
            if widget_id:
                self.widgets[widget_id] = proto

    def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        if fragment_id in self.auto_reruns or interval <= 0:
            return

        async def tick():
            while True:
                await asyncio.sleep(interval)
                if self.pending is None or self.pending.done.is_set():  # the frontend skips a tick while a run goes on
                    try:
                        await self.rerun(fragment_id=fragment_id, auto=True)
                    except ConnectionClosed:  # the session ended between two ticks
                        return

        self.auto_reruns[fragment_id] = asyncio.create_task(tick())

    # ---- reading the page

    def find_widget(self, kind: str, label_start: str):
        for proto in self.widgets.values():
            if type(proto).__name__.lower() == kind and proto.label.startswith(label_start):
                return proto
        return None


# --------------------------------------------------------------------------- the class


@dataclass
class Result:
    moves: list[Run] = field(default_factory=list)
    first_runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    train_steps: int | None = None
    train_seconds: float | None = None


async def explorer(base_url: str, index: int, deadline: float, rng: random.Random, result: Result, interval: tuple[float, float]) -> None:
    """One student on /explore: open it, then move thresh to a new value every 3 ± 1 s until the deadline."""
    async with Session(base_url, "explore") as s:
        first = await s.rerun()
        result.first_runs.append(first)
        slider = s.find_widget("slider", "thresh")
        if first.status != "ok" or slider is None:
            result.errors.append(f"session {index}: first run {first.status}, thresh slider {'found' if slider else 'missing'}; {s.exceptions[:1]}")
            return
        n = round((slider.max - slider.min) / slider.step)
        values = [round(slider.min + i * slider.step, 10) for i in range(n + 1)]
        unused = [v for v in values if abs(v - slider.value[0]) > 1e-9] if slider.value else values
        rng.shuffle(unused)
        next_move = time.perf_counter() + rng.uniform(0, interval[1])  # students do not move in step
        while unused and next_move < deadline:
            await asyncio.sleep(max(0.0, next_move - time.perf_counter()))
            s.set_slider(slider.id, unused.pop())
            run = await s.rerun()
            result.moves.append(run)
            next_move = run.sent + rng.uniform(*interval)
        result.errors.extend(f"session {index}: {e}" for e in s.exceptions)


STEPS_PATTERNS = (re.compile(r"of training · (\d[\d,]*) steps\b"), re.compile(r"^Steps: (\d[\d,]*)$"), re.compile(r"· step (\d[\d,]*), epoch"))


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


async def trainer(base_url: str, result: Result, limit_s: float, started: asyncio.Event | None = None) -> None:
    """One student on /train: press Start (the default "One minute" preset) and follow the live page to the end."""
    async with Session(base_url, "train") as s:
        first = await s.rerun()
        start = next((w for w in s.widgets.values() if type(w).__name__ == "Button" and w.id.endswith("tr_start")), None)
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


# --------------------------------------------------------------------------- the server, from outside


def server_pid(port: int) -> int | None:
    """The pid listening on 127.0.0.1:``port`` (Linux /proc), for its CPU time and RSS."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if int(parts[1].split(":")[1], 16) == port and parts[3] == "0A":  # LISTEN
                    inodes.add(parts[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
    return None


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (the forward child, training workers, a fork server)."""
    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/stat") as f:
            parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def process_figures(pid: int | None, with_children: bool = True) -> dict:
    """CPU seconds (user + system), RSS and thread count of ``pid`` now; the same summed over its children."""
    if pid is None:
        return {}
    if with_children:
        own = process_figures(pid, with_children=False)
        kids = [process_figures(child, with_children=False) for child in descendants(pid)]
        kids = [k for k in kids if k]
        if own:
            own["children_rss_mib"] = sum(k["rss_mib"] for k in kids)
            own["total_pss_mib"] = own["pss_mib"] + sum(k["pss_mib"] for k in kids)
            own["children_cpu_s"] = sum(k["cpu_s"] for k in kids)
            own["children"] = len(kids)
        return own
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        if "VmRSS" not in status:  # a process that has just exited (a zombie)
            return {}
    except OSError:
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "cpu_s": (int(fields[11]) + int(fields[12])) / ticks,
        "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
        "pss_mib": _pss_mib(pid),
        "threads": int(status["Threads"].strip()),
    }


def _pss_mib(pid: int) -> float:
    """Proportional set size: RSS with shared pages (torch's libraries, mapped by the server and its
    children alike) split between the processes that map them, so the sum over processes is the real total."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs from /proc/stat: how loaded the whole machine is, not only the server."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


async def sample(pid: int | None, peaks: dict, stop: asyncio.Event) -> None:
    """The server's peak RSS and thread count, once a second while the load runs, and the CPU time of
    every child process seen (a training worker that ends before the load does takes its own with it)."""
    seen = peaks.setdefault("child_cpu", {})
    while not stop.is_set():
        for child in descendants(pid) if pid else []:
            figures = process_figures(child, with_children=False)
            if figures:
                seen[child] = figures["cpu_s"]
        now = process_figures(pid)
        for key in ("rss_mib", "threads", "children_rss_mib", "total_pss_mib"):
            if key in now:
                peaks[key] = max(peaks.get(key, 0), now[key])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base_url: str, process: subprocess.Popen | None = None, timeout: float = 120) -> float:
    """Seconds until /_stcore/health answers 200."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base_url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{base_url} was not healthy after {timeout:.0f} s")


@contextlib.contextmanager
def streamlit_server(app_dir: Path = ROOT, port: int | None = None, env: dict | None = None, log: Path | None = None, launcher: str = "streamlit"):
    """``streamlit run app.py`` on 127.0.0.1, headless, stopped on exit; yields (base_url, process).

    ``launcher="warmup"`` starts it the way ``make run`` does, ``python -m explorer.warmup`` (the warm-up
    begins before the first session).  The server's output goes to ``log`` (or nowhere): never to a
    pipe nobody reads, which would stall it."""
    port = port or free_port()
    start = ["-m", "explorer.warmup"] if launcher == "warmup" else ["-m", "streamlit", "run", "app.py"]
    cmd = [
        sys.executable,
        *start,
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "w") if log else open(os.devnull, "w") as out:
        process = subprocess.Popen(cmd, cwd=app_dir, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}", process
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured move)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(seconds: list[float]) -> str:
    if not seconds:
        return "no moves"
    ms = [s * 1000 for s in seconds]
    return f"n {len(ms):4d}  p50 {percentile(ms, 50):6.0f}  p95 {percentile(ms, 95):6.0f}  p99 {percentile(ms, 99):6.0f}  max {max(ms):6.0f} ms"


def report(
    label: str,
    result: Result,
    before: dict,
    after: dict,
    wall: float,
    peaks: dict | None = None,
    machine: tuple | None = None,
    client_s: float | None = None,
) -> None:
    ok = [m.seconds for m in result.moves if m.status == "ok"]
    bad = [m for m in result.moves if m.status != "ok"]
    print(f"\n== {label}")
    if result.moves:
        print(f"slider moves (send -> script_finished): {summary(ok)}")
    if bad:
        counts = statistics.multimode([m.status for m in bad])
        print(f"  not finished ok: {len(bad)} ({', '.join(counts)})")
    buckets = {"0": (0, 0), "1-2": (1, 2), "3-5": (3, 5), "6+": (6, 10**6)}
    for name, (lo, hi) in buckets.items():
        part = [m.seconds for m in result.moves if m.status == "ok" and lo <= m.in_flight <= hi]
        if part:
            print(f"  with {name:>3} other moves in flight: {summary(part)}")
    if result.first_runs:
        print(f"first page load per session: {summary([r.seconds for r in result.first_runs if r.seconds])}")
    if before and after:
        print(
            f"server: {(after['cpu_s'] - before['cpu_s']) / wall:.2f} cores on average over {wall:.0f} s, "
            f"RSS {before['rss_mib']:.0f} -> {after['rss_mib']:.0f} MiB"
            + (f" (peak {peaks['rss_mib']:.0f} MiB, peak threads {peaks['threads']})" if peaks else "")
            + (
                f"; its child processes: peak {peaks.get('children_rss_mib', 0):.0f} MiB RSS; "
                f"server and children together: peak {peaks.get('total_pss_mib', 0):.0f} MiB PSS"
                if peaks
                else ""
            )
        )
    if machine is not None:
        (busy0, total0), (busy1, total1) = machine
        cores = os.cpu_count() or 1
        busy = cores * (busy1 - busy0) / max(1, total1 - total0)
        server = (after.get("cpu_s", 0) - before.get("cpu_s", 0)) / wall if before and after else 0.0
        # Every child seen while the load ran (sampled once a second), a training worker that ended included.
        seen, at_start = (peaks or {}).get("child_cpu", {}), (peaks or {}).get("child_cpu_before", {})
        kids = sum(cpu - at_start.get(child, 0.0) for child, cpu in seen.items()) / wall
        others = busy - server - kids - client_s / wall
        print(
            f"whole machine: {busy:.2f} of {cores} cores busy; the server's child processes {kids:.2f}, "
            f"this load client {client_s / wall:.2f}, everything else {max(0.0, others):.2f} cores"
        )
    if result.train_steps is not None or result.train_seconds is not None:
        print(f"training{' beside them' if result.moves else ''}: {result.train_steps} steps in {result.train_seconds:.0f} s")
    for error in result.errors[:10]:
        print(f"  ERROR {error}")


async def one_load(
    base_url: str, pid: int | None, sessions: int, duration: float, seed: int, train: bool | str, interval: tuple[float, float], label: str
) -> Result:
    result = Result()
    rng = random.Random(seed)
    before, t0, m0, c0 = process_figures(pid), time.perf_counter(), machine_busy(), time.process_time()
    peaks, stop = {}, asyncio.Event()
    peaks["child_cpu_before"] = {c: process_figures(c, with_children=False).get("cpu_s", 0.0) for c in descendants(pid or 0)}
    sampler = asyncio.create_task(sample(pid, peaks, stop))
    tasks, outside = [], None
    if train == "cli":
        outside = outside_training(duration)
    elif train:
        started = asyncio.Event()
        tasks.append(asyncio.create_task(trainer(base_url, result, limit_s=150, started=started)))
        await asyncio.wait_for(started.wait(), 60)
    deadline = time.perf_counter() + duration
    for i in range(sessions):
        tasks.append(asyncio.create_task(explorer(base_url, i, deadline, random.Random(rng.random()), result, interval)))
        await asyncio.sleep(0.1)  # arrivals 0.1 s apart, like a class opening a link
    await asyncio.gather(*tasks)
    stop.set()
    await sampler
    if outside is not None:
        outside.kill()
        outside.wait()
    wall = time.perf_counter() - t0
    report(label, result, before, process_figures(pid), wall, peaks, (m0, machine_busy()), time.process_time() - c0)
    return result


def outside_training(seconds: float) -> subprocess.Popen:
    """A `sae train` of the One-minute recipe outside the app, at the niceness and thread count of the
    app's own training worker (sae.runs.worker): what the machine costs the explorers, without the app's part
    (the Train page polling, events coming back).  Killed when the load ends, so it counts no steps."""
    from sae.runs.worker import ProcessSettings

    settings = ProcessSettings.from_env()
    out = Path(tempfile.gettempdir()) / f"sae_load_outside_{os.getpid()}.pt"  # never written: killed before its end
    command = ["nice", "-n", str(settings.nice), sys.executable, "-m", "sae", "train", "--time-budget", f"{seconds + 30:.0f}", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(settings.torch_threads())}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)  # past its imports, data and compile (from the disk cache): training when the explorers arrive
    return process


def tail(result: Result) -> tuple[float, float]:
    """p95 and p99 of the moves that finished ok, in ms."""
    ms = [m.seconds * 1000 for m in result.moves if m.status == "ok"]
    return (percentile(ms, 95), percentile(ms, 99)) if ms else (float("nan"), float("nan"))


async def paired(base_url: str, pid: int | None, args, interval: tuple[float, float]) -> None:
    """``--pairs N``: N loads without and N with a training run beside them, in the order
    A B B A A B ..., on one server.  The machine's speed drifts by tens of percent within
    minutes, so one load against another says little; alternating puts the drift on both."""
    tails: dict[bool, list] = {False: [], True: []}
    steps = []
    beside = " + `sae train` outside the app" if args.beside == "cli" else " + one training run"
    for i in range(args.pairs):
        for k, train in enumerate((False, True) if i % 2 == 0 else (True, False)):
            label = f"pair {i + 1}: {args.sessions} sessions" + (beside if train else "")
            run = args.beside if train else False  # one_load: "app" is the Train page's run, "cli" one outside
            result = await one_load(base_url, pid, args.sessions, args.duration, args.seed + 2 * i + k, run, interval, label)
            tails[train].append(tail(result))
            if train and args.beside == "app":
                steps.append(result.train_steps)
    print(f"\n== {args.pairs} pairs, {args.sessions} sessions, without and with a training run beside them")
    for i, (a, b) in enumerate(zip(tails[False], tails[True])):
        print(f"  pair {i + 1}: p95 {a[0]:4.0f} / {b[0]:4.0f} ms, p99 {a[1]:4.0f} / {b[1]:4.0f} ms (without / with); ratio p95 {b[0] / a[0]:.2f}")
    for q, name in ((0, "p95"), (1, "p99")):
        without, with_ = statistics.median(t[q] for t in tails[False]), statistics.median(t[q] for t in tails[True])
        print(f"  median {name}: {without:.0f} ms without, {with_:.0f} ms with a run: ratio {with_ / without:.2f}")
    if steps:
        print(f"  training steps beside the explorers: {', '.join(str(s) for s in steps)}")


async def first_visit(args) -> None:
    """A fresh server: health, then the first Explore and the first Compare, then a second of each."""
    with streamlit_server(Path(args.app_dir), launcher=args.launcher) as (base_url, process):
        health = wait_healthy(base_url, process)
        print(f"fresh server ({args.launcher} launcher): /_stcore/health after {health:.2f} s")
        if args.wait_after_health:
            await asyncio.sleep(args.wait_after_health)
            print(f"first visitor arrives {args.wait_after_health:g} s after the health check")
        for label, page in (("first Explore", "explore"), ("first Compare", "compare"), ("second Explore", "explore"), ("second Compare", "compare")):
            async with Session(base_url, page) as s:
                run = await s.rerun(timeout=120)
                shown = f"{run.seconds:.2f} s" if run.seconds is not None else "-"
                print(f"{label:15s} {shown} ({run.status}){'  EXCEPTION ' + s.exceptions[0] if s.exceptions else ''}")
        print(f"server RSS {process_figures(process.pid).get('rss_mib', 0):.0f} MiB")


async def main(args) -> None:
    if args.first_visit:
        await first_visit(args)
        return
    interval = (args.interval - args.jitter, args.interval + args.jitter)
    server = contextlib.ExitStack()
    if args.start:
        started = [server.enter_context(streamlit_server(Path(args.app_dir), launcher=args.launcher)) for _ in range(args.replicas)]
        urls, pid = [url for url, _ in started], started[0][1].pid  # the figures below are the first replica's
        for url in urls:
            wait_healthy(url)
        base_url = urls[0]
        if args.replicas > 1:  # the project's sticky nginx (deploy/nginx.conf) in front, as tests/services.py runs it
            from tests.services import nginx

            folder = server.enter_context(tempfile.TemporaryDirectory())
            base_url, _ = server.enter_context(nginx(Path(folder), [urlparse(u).netloc for u in urls]))
            print(f"{args.replicas} replicas behind nginx at {base_url}; server figures are the first replica's")
    else:
        base_url = args.url
        pid = args.pid or server_pid(urlparse(base_url).port or 80)
    try:
        wait_healthy(base_url)
        if args.warm:  # one visit of each page first, so a cold start does not count in the figures
            for page in ("explore", "compare"):
                async with Session(base_url, page) as s:
                    await s.rerun(timeout=120)
        print(
            f"server {base_url} pid {pid}; {args.sessions} sessions for {args.duration:.0f} s, thresh moves every "
            f"{args.interval:g} ± {args.jitter:g} s, each to a new value"
        )
        if args.pairs:
            await paired(base_url, pid, args, interval)
            return
        if args.train_alone:
            alone = Result()
            t0, before = time.perf_counter(), process_figures(pid)
            await trainer(base_url, alone, limit_s=150)
            report("training alone", alone, before, process_figures(pid), time.perf_counter() - t0)
        label = f"{args.sessions} sessions" + (" + one training run" if args.train else "")
        result = await one_load(base_url, pid, args.sessions, args.duration, args.seed, args.train, interval, label)
        if args.train_alone and args.train and alone.train_steps and result.train_steps is not None:
            print(
                f"training steps beside the explorers vs alone: {result.train_steps} / {alone.train_steps} "
                f"= {result.train_steps / alone.train_steps:.0%}"
            )
    finally:
        server.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8501", help="a running server (loopback only)")
    p.add_argument("--pid", type=int, help="the server's pid (default: whoever listens on the port)")
    p.add_argument("--start", action="store_true", help="start a server of --app-dir on a free port instead")
    p.add_argument("--app-dir", default=str(ROOT), help="where app.py is, for --start and --first-visit")
    p.add_argument("--replicas", type=int, default=1, help="with --start: this many servers behind the project's sticky nginx")
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--duration", type=float, default=75.0, help="seconds of slider moves (bounded: at most 600)")
    p.add_argument("--interval", type=float, default=3.0)
    p.add_argument("--jitter", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", action="store_true", help="one 'One minute' training run beside the explorers")
    p.add_argument("--pairs", type=int, default=0, help="N loads without and N with a training run, alternating A B B A (at most 10)")
    p.add_argument(
        "--beside",
        choices=("app", "cli"),
        default="app",
        help="with --pairs: the run is the Train page's (app) or a separate `sae train` at the worker's priority (cli)",
    )
    p.add_argument("--train-alone", action="store_true", help="first the same training run with no explorers")
    p.add_argument("--no-warm", dest="warm", action="store_false", help="do not visit Explore and Compare first")
    p.add_argument("--first-visit", action="store_true", help="start a fresh server and time its first page loads")
    p.add_argument("--wait-after-health", type=float, default=0.0, help="with --first-visit: seconds to wait first")
    p.add_argument(
        "--launcher",
        choices=("streamlit", "warmup"),
        default="streamlit",
        help="how --start and --first-visit start the server: streamlit run app.py, or python -m explorer.warmup",
    )
    args = p.parse_args(argv)
    args.duration = min(args.duration, 600.0)
    args.sessions = max(0, min(args.sessions, 200))
    args.pairs = max(0, min(args.pairs, 10))
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
