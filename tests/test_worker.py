"""The embedded runner: each run trains in a worker process of its own, at a lower priority.

What a run does (stop, queue, failures) is tested in test_jobs, whose real runs go
through this same runner; here: that it really is another process, that it
gives the in-process trainer's results, and that either side dying is handled
(a killed worker fails its run in one line; a dead app takes its workers along).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from benchmarks.load import Session, streamlit_server, wait_healthy
from sae.runs.jobs import ENDED, FAILED, JobManager
from sae.runs.local import LocalRunner
from sae.runs.messages import Measured
from sae.runs.worker import ProcessSettings
from sae.runs.worker import run as run_in_this_process
from sae.training.loop import BatchEnd, Evaluation, Finished, evaluate, train
from tests.browser.conftest import ROOT
from tests.conftest import run_async
from tests.test_jobs import HANG_S, NET, connected, tiny, wait_until


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(96, 1, 32, 32, generator=g), torch.rand(32, 1, 32, 32, generator=g)


def training_processes(parent: int | None = None) -> list[int]:
    """The live training children (``python -m sae.runs.local``) of ``parent`` (default: this process)."""
    found = []
    for children in Path(f"/proc/{parent or os.getpid()}/task").glob("*/children"):
        for pid in map(int, children.read_text().split()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"sae.runs.local" in cmdline and running(pid):
                found.append(pid)
    return found


def nice_of(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_run_trains_in_its_own_process_at_lower_priority_with_the_in_process_results(images):
    runner = LocalRunner(ProcessSettings(threads=torch.get_num_threads()))  # same threads: same arithmetic
    events = runner(NET, tiny(), *images, threading.Event())
    first = next(events)
    (child,) = training_processes()
    assert child != os.getpid() and running(child)
    assert nice_of(child) == min(nice_of(0) + ProcessSettings.nice, 19)
    got, expected = [first, *events], list(train(NET, tiny(), *images))
    *got, measured = got  # after Finished, the worker's measurement of the trained model
    assert [type(e) for e in got] == [type(e) for e in expected]
    for a, b in zip(got, expected):
        if isinstance(a, BatchEnd):
            assert (a.step, a.loss, a.lr) == (b.step, b.loss, b.lr)
        elif isinstance(a, Evaluation):
            assert (a.test_loss, a.spike_rates) == (b.test_loss, b.spike_rates)
            assert torch.equal(a.inputs, b.inputs) and torch.equal(a.reconstructions, b.reconstructions)
    finished, reference = got[-1], expected[-1]
    assert isinstance(finished, Finished) and finished.steps == reference.steps == 6
    for key, value in reference.model.state_dict().items():
        assert torch.equal(finished.model.state_dict()[key], value), key
    # The test MSE that Save records was measured in the worker, on every test image it was given.
    assert isinstance(measured, Measured) and measured.metrics["test_images"] == len(images[1])
    assert measured.metrics["test_mse"] == pytest.approx(evaluate(reference.model, images[1])[0], rel=1e-6)
    wait_until(lambda: not running(child), timeout=HANG_S)


def test_the_worker_measures_the_whole_test_set_after_finished_even_when_stopped(images):
    """A Stop ends the run at once; its measurement follows in full (Save needs it), unless nobody will read it."""
    test_images = torch.rand(1200, 1, 32, 32)
    stop, sent = threading.Event(), []
    stop.set()  # stopped before the first step
    run_in_this_process(NET, tiny(), images[0], test_images, sent.append, stop)
    assert [m["type"] for m in sent][-2:] == ["finished", "measured"] and sent[-2]["reason"] == "stopped"
    assert sent[-1]["metrics"]["test_images"] == 1200
    gone, sent = threading.Event(), []
    gone.set()  # the app is gone: one batch, then the worker is free
    run_in_this_process(NET, tiny(), images[0], test_images, sent.append, stop, gone=gone)
    assert sent[-1]["type"] == "measured" and sent[-1]["metrics"]["test_images"] == 500


@pytest.mark.slow
def test_a_killed_worker_process_fails_its_run_in_one_line_and_the_next_run_trains(images):
    manager = JobManager(runs_per_device=1, runner=LocalRunner())
    job = manager.submit("alice", NET, tiny(epochs=100), *images)
    wait_until(lambda: job.snapshot().step >= 1)
    (child,) = training_processes()
    os.kill(child, signal.SIGKILL)
    assert job.wait(HANG_S)
    snap = manager.poll("alice", job)
    assert snap.status == FAILED and "stopped unexpectedly (killed by SIGKILL)" in snap.error, snap.error
    assert "\n" not in snap.error and manager.counts()["running"] == 0
    again = manager.submit("alice", NET, tiny(), *images, keepalive=connected)
    assert again.wait(120) and manager.poll("alice", again).status == ENDED


APP = """
import sys, threading, time
import torch
from sae.runs.local import LocalRunner
from sae.runs.messages import Measured
from sae.model import SAEConfig
from sae.training.loop import TrainConfig
from tests.test_worker import training_processes

if __name__ == "__main__":
    cfg = TrainConfig(epochs=1000, batch_size=16, eval_images=16, device="cpu")
    events = LocalRunner()(SAEConfig(latent_dim=8, num_steps=2), cfg, torch.rand(48, 1, 32, 32), torch.rand(16, 1, 32, 32),
                           threading.Event())
    next(events)
    (child,) = training_processes()
    print(child, flush=True)
    time.sleep(600)
"""


@pytest.mark.slow  # a second app process that imports torch
def test_a_worker_process_ends_when_the_app_dies(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(APP)
    app = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        child = int(app.stdout.readline())
        assert running(child)
        app.kill()  # no clean-up code runs: the worker learns it from its pipe
        app.wait(10)
        deadline = time.monotonic() + HANG_S  # the worker hears of it at once (its pipe closes): the bound is for a hang
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(child), "the worker process outlived the app"
    finally:
        app.kill()
        app.stdout.close()


PAGE = """
import os, threading
import streamlit as st
import torch

with open(os.environ["SAE_TEST_MARKER"], "a") as marker:
    marker.write(f"{os.getpid()}\\n")  # every process that runs this script says so
from sae.model import SAEConfig
from sae.runs.local import LocalRunner
from sae.runs.messages import Measured
from sae.training.loop import TrainConfig

if "outcome" not in st.session_state:
    cfg = TrainConfig(epochs=1, batch_size=16, train_subset=32, eval_images=16, device="cpu")
    events = LocalRunner()(SAEConfig(latent_dim=8, num_steps=2), cfg, torch.rand(32, 1, 32, 32), torch.rand(16, 1, 32, 32), threading.Event())
    st.session_state.outcome = " ".join(type(e).__name__ for e in events if type(e).__name__ in ("Finished", "Measured"))
st.markdown(f"outcome: {st.session_state.outcome}")
"""


@pytest.mark.slow
def test_a_run_started_from_a_streamlit_server_does_not_run_the_app_script_in_its_child(tmp_path):
    """Under Streamlit, ``__main__`` is the app's script: a child prepared from it (multiprocessing's
    way) ran the whole app first.  This app script notes every process that runs it."""
    (tmp_path / "app.py").write_text(PAGE)
    marker = tmp_path / "ran.txt"
    env = {"SAE_TEST_MARKER": str(marker), "PYTHONPATH": str(ROOT)}
    with streamlit_server(tmp_path, env=env, log=tmp_path / "streamlit.log") as (url, server):
        wait_healthy(url, server)

        async def visit():
            async with Session(url, "") as session:
                return session, await session.rerun(timeout=240)

        session, run = run_async(visit())
        log = (tmp_path / "streamlit.log").read_text()
        assert run.status == "ok" and "outcome: Finished Measured" in session.texts, (session.texts, session.exceptions, log[-3000:])
    assert marker.read_text().split() == [str(server.pid)], "the app script ran in another process too"
    assert "missing ScriptRunContext" not in log, log[-3000:]
