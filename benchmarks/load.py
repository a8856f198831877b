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

The parts: ``benchmarks.streamlit_session`` (the protocol client),
``benchmarks.server_launcher`` (starting servers, replicas behind nginx),
``benchmarks.process_figures`` (CPU and memory from /proc) and
``benchmarks.students`` (the explorer and the trainer); this module holds the
scenarios and the command line.  Loopback only, bounded in time and messages, and
it stops by itself.  Not a unit test: tests/test_load_client.py checks the client
itself against a real server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.latency import percentile, summary
from benchmarks.process_figures import descendants, machine_busy, process_figures, sample
from benchmarks.server_launcher import LAUNCHERS, ROOT, server_pid, started_servers, streamlit_server, wait_healthy
from benchmarks.streamlit_session import Session
from benchmarks.students import Result, explorer, trainer

# --------------------------------------------------------------------------- report


def moves_lines(result: Result) -> list[str]:
    """The slider moves: all of them, and split by how many other moves were in flight when each was sent."""
    ok = [m.seconds for m in result.moves if m.status == "ok"]
    bad = [m for m in result.moves if m.status != "ok"]
    lines = [f"slider moves (send -> script_finished): {summary(ok)}"] if result.moves else []
    if bad:
        counts = statistics.multimode([m.status for m in bad])
        lines.append(f"  not finished ok: {len(bad)} ({', '.join(counts)})")
    buckets = {"0": (0, 0), "1-2": (1, 2), "3-5": (3, 5), "6+": (6, 10**6)}
    for name, (lo, hi) in buckets.items():
        part = [m.seconds for m in result.moves if m.status == "ok" and lo <= m.in_flight <= hi]
        if part:
            lines.append(f"  with {name:>3} other moves in flight: {summary(part)}")
    if result.first_runs:
        lines.append(f"first page load per session: {summary([r.seconds for r in result.first_runs if r.seconds])}")
    return lines


def server_line(before: dict, after: dict, wall: float, peaks: dict | None) -> str:
    line = (
        f"server: {(after['cpu_s'] - before['cpu_s']) / wall:.2f} cores on average over {wall:.0f} s, "
        f"RSS {before['rss_mib']:.0f} -> {after['rss_mib']:.0f} MiB"
    )
    if peaks:
        line += (
            f" (peak {peaks['rss_mib']:.0f} MiB, peak threads {peaks['threads']}); its child processes: peak "
            f"{peaks.get('children_rss_mib', 0):.0f} MiB RSS; server and children together: peak {peaks.get('total_pss_mib', 0):.0f} MiB PSS"
        )
    return line


def machine_line(before: dict, after: dict, wall: float, peaks: dict | None, machine: tuple, client_s: float) -> str:
    """How busy the whole machine was, and whose that was: the server, its children, this client, the rest."""
    (busy0, total0), (busy1, total1) = machine
    cores = os.cpu_count() or 1
    busy = cores * (busy1 - busy0) / max(1, total1 - total0)
    server = (after.get("cpu_s", 0) - before.get("cpu_s", 0)) / wall if before and after else 0.0
    # Every child seen while the load ran (sampled once a second), a training worker that ended included.
    seen, at_start = (peaks or {}).get("child_cpu", {}), (peaks or {}).get("child_cpu_before", {})
    kids = sum(cpu - at_start.get(child, 0.0) for child, cpu in seen.items()) / wall
    others = busy - server - kids - client_s / wall
    return (
        f"whole machine: {busy:.2f} of {cores} cores busy; the server's child processes {kids:.2f}, "
        f"this load client {client_s / wall:.2f}, everything else {max(0.0, others):.2f} cores"
    )


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
    print(f"\n== {label}")
    for line in moves_lines(result):
        print(line)
    if before and after:
        print(server_line(before, after, wall, peaks))
    if machine is not None:
        print(machine_line(before, after, wall, peaks, machine, client_s))
    if result.train_steps is not None or result.train_seconds is not None:
        print(f"training{' beside them' if result.moves else ''}: {result.train_steps} steps in {result.train_seconds:.0f} s")
    for error in result.errors[:10]:
        print(f"  ERROR {error}")


# --------------------------------------------------------------------------- scenarios


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


async def warm_up(base_url: str) -> None:
    """One visit of each page first, so a cold start does not count in the figures."""
    for page in ("explore", "compare"):
        async with Session(base_url, page) as s:
            await s.rerun(timeout=120)


async def training_alone_then_beside(base_url: str, pid: int | None, args, interval: tuple[float, float]) -> None:
    """The default scenario: (with ``--train-alone``) the run alone first, then the class (with ``--train``, the run beside it)."""
    alone = Result()
    if args.train_alone:
        t0, before = time.perf_counter(), process_figures(pid)
        await trainer(base_url, alone, limit_s=150)
        report("training alone", alone, before, process_figures(pid), time.perf_counter() - t0)
    label = f"{args.sessions} sessions" + (" + one training run" if args.train else "")
    result = await one_load(base_url, pid, args.sessions, args.duration, args.seed, args.train, interval, label)
    if args.train_alone and args.train and alone.train_steps and result.train_steps is not None:
        print(
            f"training steps beside the explorers vs alone: {result.train_steps} / {alone.train_steps} = {result.train_steps / alone.train_steps:.0%}"
        )


async def main(args) -> None:
    if args.first_visit:
        await first_visit(args)
        return
    interval = (args.interval - args.jitter, args.interval + args.jitter)
    with contextlib.ExitStack() as server:
        if args.start:
            base_url, process = server.enter_context(started_servers(Path(args.app_dir), args.launcher, args.replicas))
            pid = process.pid  # the figures below are the first replica's
            if args.replicas > 1:
                print(f"{args.replicas} replicas behind nginx at {base_url}; server figures are the first replica's")
        else:
            base_url = args.url
            pid = args.pid or server_pid(urlparse(base_url).port or 80)
        wait_healthy(base_url)
        if args.warm:
            await warm_up(base_url)
        print(
            f"server {base_url} pid {pid}; {args.sessions} sessions for {args.duration:.0f} s, thresh moves every "
            f"{args.interval:g} ± {args.jitter:g} s, each to a new value"
        )
        if args.pairs:
            await paired(base_url, pid, args, interval)
        else:
            await training_alone_then_beside(base_url, pid, args, interval)


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
        choices=LAUNCHERS,
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
