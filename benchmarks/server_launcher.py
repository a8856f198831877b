"""Starting the app's server for a benchmark or a test, and finding a running one.

``streamlit_server`` starts ``streamlit run app.py`` (or the warm-up launcher,
``python -m explorer.warmup``, as ``make run`` does) headless on a free loopback
port and stops it on exit; ``started_servers`` starts several behind the
project's sticky nginx; ``wait_healthy`` waits for ``/_stcore/health``;
``server_pid`` finds who listens on a port, so a benchmark can read a server it
did not start.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
LAUNCHERS = ("streamlit", "warmup")
STOP_WAIT_S = 15.0


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


def server_command(port: int, launcher: str = "streamlit", options: dict | None = None) -> list[str]:
    """The command line of a headless server on 127.0.0.1:``port``; ``options`` are more ``--name value`` pairs."""
    start = ["-m", "explorer.warmup"] if launcher == "warmup" else ["-m", "streamlit", "run", "app.py"]
    settings = {"server.headless": "true", "server.address": "127.0.0.1", "server.port": str(port), "browser.gatherUsageStats": "false"}
    settings.update(options or {})
    return [sys.executable, *start, *(part for name, value in settings.items() for part in (f"--{name}", str(value)))]


def stop(process: subprocess.Popen, timeout: float = STOP_WAIT_S) -> None:
    """Terminate, and kill what does not end within ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def streamlit_server(
    app_dir: Path = ROOT,
    port: int | None = None,
    env: dict | None = None,
    log: Path | None = None,
    launcher: str = "streamlit",
    options: dict | None = None,
):
    """``streamlit run app.py`` on 127.0.0.1, headless, stopped on exit; yields (base_url, process).

    ``launcher="warmup"`` starts it the way ``make run`` does, ``python -m explorer.warmup`` (the warm-up
    begins before the first session).  The server's output goes to ``log`` (or nowhere): never to a
    pipe nobody reads, which would stall it."""
    port = port or free_port()
    cmd = server_command(port, launcher, options)
    with open(log, "w") if log else open(os.devnull, "w") as out:
        process = subprocess.Popen(cmd, cwd=app_dir, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}", process
        finally:
            stop(process)


@contextlib.contextmanager
def started_servers(app_dir: Path, launcher: str = "streamlit", replicas: int = 1, env: dict | None = None, log: Path | None = None):
    """``replicas`` servers, healthy; with more than one, the project's sticky nginx (deploy/nginx.conf)
    in front of them, as tests/services.py runs it.  Yields (base_url, the first replica's process)."""
    with contextlib.ExitStack() as stack:
        started = [stack.enter_context(streamlit_server(app_dir, env=env, log=log, launcher=launcher)) for _ in range(replicas)]
        for url, process in started:
            wait_healthy(url, process)
        base_url = started[0][0]
        if replicas > 1:
            from tests.services import nginx

            folder = stack.enter_context(tempfile.TemporaryDirectory())
            base_url, _ = stack.enter_context(nginx(Path(folder), [urlparse(url).netloc for url, _ in started]))
        yield base_url, started[0][1]


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
