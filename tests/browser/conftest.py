"""Real-browser test harness: the app under ``streamlit run`` on a free port, driven
by Playwright in Debian's headless Chromium (``playwright install`` cannot download here).

No Chromium: the tests fail under CI=true and are skipped, loudly, elsewhere.
Every test in this folder is marked ``browser`` (tests/conftest.py), so ``make test-fast`` leaves them out.
The server pattern follows Streamlit's own e2e_playwright/conftest.py: wait on
/_stcore/health, then for the app to be connected and not running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    for candidate in ((explicit,) if explicit else ()) + CHROMIUM_CANDIDATES:
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    chromium = find_chromium()
    if chromium is None:
        message = "no Chromium found (install Debian's 'chromium' package, or set CHROMIUM_PATH)"
        if os.environ.get("CI") == "true":
            pytest.fail("browser tests need Chromium under CI=true: " + message)
        sys.stderr.write(f"\n*** SKIPPING BROWSER TESTS: {message} ***\n")
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": chromium, "args": CHROMIUM_FLAGS, "headless": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("streamlit did not become healthy in time")


def ensure_a_checkpoint(user_dir: Path) -> None:
    """Until the shipped checkpoint exists, give the app an untrained one: the UI works the same."""
    from sae.io.checkpoints import default_checkpoint_path, save_checkpoint

    if default_checkpoint_path().exists():
        return
    import torch

    from sae.model import SpikingAutoencoder

    torch.manual_seed(0)
    save_checkpoint(user_dir / "untrained.pt", SpikingAutoencoder())


@contextlib.contextmanager
def running_app(user_dir: Path, log_path: Path):
    """``streamlit run app.py`` on a free port with ``user_dir`` as the user checkpoints; yields its URL."""
    port = free_port()
    env = {**os.environ, "SAE_USER_CHECKPOINTS": str(user_dir), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.fileWatcherType",
                "none",
                "--global.developmentMode",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(url, process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """A running app, shared by the browser tests of one session: its ``url`` and its ``user_dir``."""
    user_dir = tmp_path_factory.mktemp("user_checkpoints")
    ensure_a_checkpoint(user_dir)
    with running_app(user_dir, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield SimpleNamespace(url=url, user_dir=user_dir)


@pytest.fixture(scope="session")
def app_url(app_server):
    return app_server.url


def saved_file(user_dir: Path, name: str) -> Path:
    """Where the Train page saved checkpoint ``name``: its student's own folder (sae.io.student_checkpoints)."""
    (path,) = (Path(user_dir) / "owners").glob(f"*/{name}.pt")
    return path


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until the app is connected and its script has finished running."""
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=timeout)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout)


@pytest.fixture
def app_page(page, app_url):
    """A browser tab with the app's home page loaded."""
    page.set_default_timeout(60_000)
    page.goto(app_url)
    wait_for_app(page)
    return page
