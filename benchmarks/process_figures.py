"""What a server process costs, read from Linux's /proc: CPU time, RSS and PSS, threads, its children.

A server of this app has children (the forward process, training workers, a
fork server): ``process_figures`` reads one process and sums its live children;
``sample`` follows the peaks once a second while a load runs; ``machine_busy``
reads the whole machine, so a benchmark can say how much of the load was not
the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os


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
        "pss_mib": pss_mib(pid),
        "threads": int(status["Threads"].strip()),
    }


def pss_mib(pid: int) -> float:
    """Proportional set size: RSS with shared pages (torch's libraries, mapped by the server and its
    children alike) split between the processes that map them, so the sum over processes is the real total."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int | None) -> float | None:
    """The process's own resident memory now, in MiB (None when it is gone or unknown)."""
    return process_figures(pid, with_children=False).get("rss_mib") if pid else None


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
