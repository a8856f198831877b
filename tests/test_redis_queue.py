"""Training through a real Redis and real ``sae worker`` processes (``SAE_REDIS_URL`` set).

Each test starts its own redis-server on a free port and, where it trains, its
own ``sae worker`` (tests/services.py).  The Train page runs under AppTest in
this process; the worker trains on its own MNIST, a few small batches.  A
second app process, sharing nothing with the first but the checkpoint folder,
opens the saved model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis

import explorer.resources as resources
import sae.io.checkpoints as checkpoints
import sae.runs.jobs as jobs
from sae.io import student_checkpoints
from sae.model import SAEConfig, SpikingAutoencoder
from sae.runs.jobs import ENDED, QUEUED, JobManager
from sae.runs.redis_queue import RedisRunner
from sae.training.loop import TrainConfig
from tests.browser.conftest import ROOT
from tests.services import QUEUE_KEY, redis_server, sae_worker, wait_for
from tests.test_app_train import TEST_X, TRAIN_X, batch_points, button, poll_until, session, start, texts


@pytest.fixture
def redis_service(tmp_path):
    with redis_server(tmp_path) as service:
        yield service


@pytest.fixture
def redis_url(redis_service):
    return redis_service.url


@pytest.fixture
def worker(redis_url, tmp_path):
    with sae_worker(redis_url, tmp_path / "worker.log") as worker:
        yield worker


@pytest.fixture
def app(monkeypatch, tmp_path, redis_url):
    """This process as an app replica with SAE_REDIS_URL set: the Train page's runs go to the queue."""
    import torch

    monkeypatch.setenv("SAE_REDIS_URL", redis_url)
    monkeypatch.setenv("SAE_QUEUE_KEY", QUEUE_KEY)
    monkeypatch.setattr(checkpoints, "USER_DIR", tmp_path)
    if not checkpoints.default_checkpoint_path().exists():
        checkpoints.save_checkpoint(tmp_path / "placeholder.pt", SpikingAutoencoder(SAEConfig()))
    # Only the app's own reads (the Save button's test MSE); the worker trains on its own MNIST.
    monkeypatch.setattr(resources, "train_set", lambda: (TRAIN_X, torch.zeros(len(TRAIN_X), dtype=torch.long)))
    monkeypatch.setattr(resources, "test_set", lambda: (TEST_X, torch.zeros(len(TEST_X), dtype=torch.long)))
    monkeypatch.setattr(jobs, "_DEFAULT", None)
    yield tmp_path
    manager = jobs._DEFAULT
    for job in list(manager._jobs.values()) if manager else ():
        job.stop()
        job.wait(30)


OPEN_IN_EXPLORE = """
import sys
from streamlit.testing.v1 import AppTest

at = AppTest.from_file("app.py", default_timeout=120)
at.query_params["ckpt"] = sys.argv[1]
at.run()
at.switch_page("pages/views/explore.py").run()
assert not at.exception, at.exception
box = next(s for s in at.get("selectbox") if s.label == "Checkpoint")
print("OPENED", box.value, "|", " ".join(str(e.value) for e in at.error))
"""


def test_a_run_goes_through_redis_to_a_worker_streams_to_the_page_stops_and_opens_in_another_app(app, redis_url, worker):
    at = session(tr_epochs=100)
    job = start(at)
    assert isinstance(jobs.default_manager().runner, RedisRunner)
    poll_until(at, lambda: job.snapshot().step >= 3, timeout=120)
    assert batch_points(at) >= 1, "the loss chart shows nothing"
    # It trains in the worker process, and its events came through Redis.
    r = redis.Redis.from_url(redis_url)
    (stream,) = list(r.scan_iter("sae:run:*:events"))
    run_id = stream.decode().split(":")[2]
    (present,) = [json.loads(v) for v in r.mget(list(r.scan_iter("sae:worker:*")))]
    assert present["run"] == run_id and r.xlen(stream) >= 4  # started, the first evaluation, three batches

    at.button(key="tr_stop").click().run()
    wait_for(lambda: job.status == ENDED, 10, "the stop to reach the page")
    at.run()
    assert "Stopped" in texts(at.success) and batch_points(at) == job.snapshot().step
    assert job.wait(300), "the worker did not measure the test MSE"  # all 10,000 of its MNIST test images
    next(t for t in at.text_input if t.label == "Name").set_value("via redis")
    button(at, "Save checkpoint").click().run()
    assert not at.error, texts(at.error)
    (path,) = (app / student_checkpoints.OWNERS).glob("*/via_redis.pt")  # the student's own folder
    saved = checkpoints.load_checkpoint(path).metrics
    assert saved["steps"] == job.snapshot().step and saved["test_images"] == 10_000 and saved["test_mse"] == job.result.metrics["test_mse"]
    assert f"run {run_id}: training" in worker.log()

    env = {**os.environ, "SAE_USER_CHECKPOINTS": str(app), "PYTHONPATH": str(ROOT)}
    env.pop("SAE_REDIS_URL", None)
    student_checkpoints.set_shared(path, path.parent.name, True)  # the student shares it: another app (student) may open it
    other = subprocess.run(
        [sys.executable, "-c", OPEN_IN_EXPLORE, "via_redis (shared)"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert other.returncode == 0, other.stderr[-3000:]
    assert "OPENED via_redis (shared) |" in other.stdout and other.stdout.strip().endswith("|"), other.stdout


def test_a_worker_killed_mid_run_is_one_line_in_that_session_and_the_app_lives_on(app, worker):
    at = session(tr_epochs=100)
    job = start(at)
    poll_until(at, lambda: job.snapshot().step >= 1, timeout=120)
    worker.kill()
    poll_until(at, lambda: not job.active, timeout=30)
    (error,) = [e.value for e in at.error]
    assert "stopped unexpectedly" in error and "no heartbeat" in error and "\n" not in error, error
    assert not button(at, "Start training").disabled  # this session may start again
    bystander = session()
    assert not bystander.error and not bystander.exception


def test_runs_wait_in_the_shared_line_in_order_and_a_cancelled_one_never_trains(redis_url):
    """No worker yet: both runs wait in Redis, see their places, and one leaves the line."""
    manager = JobManager(runner=RedisRunner(redis_url, key=QUEUE_KEY.encode()))
    tiny = TrainConfig(epochs=1, batch_size=16, train_subset=64, eval_images=16, device="cpu")
    first = manager.submit("a", SAEConfig(), tiny, TRAIN_X, TEST_X)
    wait_for(lambda: manager.poll("a", first).queue_position == 1, 20, "the first place in line")
    second = manager.submit("b", SAEConfig(), tiny, TRAIN_X, TEST_X)
    wait_for(lambda: manager.poll("b", second).queue_position == 2, 20, "the second place in line")
    assert manager.poll("a", first).status == QUEUED and manager.poll("a", first).queue_position == 1
    assert manager.counts() == {"running": 0, "queued": 2, "capacity": 0, "kept": 2}
    first.stop()
    assert first.wait(10)
    assert manager.poll("a", first).status == ENDED and manager.poll("a", first).reason == "cancelled"
    wait_for(lambda: manager.poll("b", second).queue_position == 1, 20, "the second run to move up")
    assert manager.counts()["queued"] == 1
    second.stop()
    assert second.wait(10) and not manager.poll("b", second).has_model


def test_a_worker_outlives_redis_its_lost_run_is_one_line_and_it_trains_the_next_runs(redis_service, worker):
    """Redis goes away under a run and comes back empty (nothing is saved), twice: once while the
    worker trains, once while it waits.  The same worker process trains the runs after each."""
    manager = JobManager(runner=RedisRunner(redis_service.url, key=QUEUE_KEY.encode()))
    net = SAEConfig(latent_dim=8, num_steps=2)
    long_run = TrainConfig(epochs=100, batch_size=16, eval_images=16, time_budget=240.0, device="cpu")
    short_run = TrainConfig(epochs=1, batch_size=16, train_subset=64, eval_images=16, time_budget=60.0, device="cpu")
    job = manager.submit("alice", net, long_run, TRAIN_X, TEST_X)
    wait_for(lambda: manager.poll("alice", job).step >= 2, 180, "the run to train")

    redis_service.stop()
    assert job.wait(120), "the session was not told"
    snap = manager.poll("alice", job)
    assert snap.status == jobs.FAILED and "\n" not in snap.error, snap.error
    assert snap.error.startswith(f"the training queue at redis://127.0.0.1:{redis_service.port}/0 cannot be reached"), snap.error
    wait_for(lambda: "reconnecting" in worker.log(), 120, "the worker to notice")
    redis_service.start()
    wait_for(lambda: "is back: serving the queue again" in worker.log(), 60, "the worker to reconnect")
    again = manager.submit("alice", net, short_run, TRAIN_X, TEST_X)
    assert again.wait(240) and manager.poll("alice", again).reason == "completed"

    redis_service.restart()  # the worker waits for a run meanwhile
    third = manager.submit("alice", net, short_run, TRAIN_X, TEST_X)
    assert third.wait(240) and manager.poll("alice", third).reason == "completed"
    assert worker.process.poll() is None and "Traceback" not in worker.log(), worker.log()[-3000:]
