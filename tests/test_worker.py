"""The embedded runner: each run trains in a worker process of its own, at a lower priority.

What a run does (stop, queue, failures) is tested in test_jobs, whose real runs go
through this same runner; here: that it really is another process, that it
gives the in-process trainer's results, and that either side dying is handled
(a killed worker fails its run in one line; a dead app takes its workers along).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from sae.runs.jobs import ENDED, FAILED, JobManager
from sae.runs.local import LocalRunner
from sae.runs.worker import ProcessSettings
from sae.training.loop import BatchEnd, Evaluation, Finished, train
from tests.browser.conftest import ROOT
from tests.test_jobs import HANG_S, NET, connected, tiny, wait_until


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(96, 1, 32, 32, generator=g), torch.rand(32, 1, 32, 32, generator=g)


def training_processes() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "sae-train"]


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
    assert child.pid != os.getpid() and running(child.pid)
    assert nice_of(child.pid) == min(nice_of(0) + ProcessSettings.nice, 19)
    got, expected = [first, *events], list(train(NET, tiny(), *images))
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
    child.join(HANG_S)
    assert not running(child.pid)


def test_a_killed_worker_process_fails_its_run_in_one_line_and_the_next_run_trains(images):
    manager = JobManager(runs_per_device=1, runner=LocalRunner())
    job = manager.submit("alice", NET, tiny(epochs=100), *images)
    wait_until(lambda: job.snapshot().step >= 1)
    (child,) = training_processes()
    os.kill(child.pid, signal.SIGKILL)
    assert job.wait(HANG_S)
    snap = manager.poll("alice", job)
    assert snap.status == FAILED and "stopped unexpectedly (killed by SIGKILL)" in snap.error, snap.error
    assert "\n" not in snap.error and manager.counts()["running"] == 0
    again = manager.submit("alice", NET, tiny(), *images, keepalive=connected)
    assert again.wait(120) and manager.poll("alice", again).status == ENDED


APP = """
import multiprocessing, sys, threading, time
import torch
from sae.runs.local import LocalRunner
from sae.model import SAEConfig
from sae.training.loop import TrainConfig

if __name__ == "__main__":
    cfg = TrainConfig(epochs=1000, batch_size=16, eval_images=16, device="cpu")
    events = LocalRunner()(SAEConfig(latent_dim=8, num_steps=2), cfg, torch.rand(48, 1, 32, 32), torch.rand(16, 1, 32, 32),
                           threading.Event())
    next(events)
    (child,) = [p for p in multiprocessing.active_children() if p.name == "sae-train"]
    print(child.pid, flush=True)
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
