"""The training queue is not a door: a real redis-server with a password, a real ``sae worker``, and an attacker.

The attacker reaches Redis (knows its password, say, from a shared machine) but not
the queue key (``SAE_QUEUE_KEY``), and tries what the RQ documentation invites:
enqueue ``os.system``, a hand-made run, a run with RQ callbacks that would run
code, a replay of a real run, and events forged into another student's run.
Each must be refused with one line and change nothing, and the worker must go on
training the class's real runs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import torch
from rq import Callback, Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from sae.model import SAEConfig
from sae.runs import messages
from sae.runs.class_limits import TrainingLimits
from sae.runs.jobs import ENDED, FAILED, JobManager
from sae.runs.queue_worker import rq_classes
from sae.runs.redis_queue import JOB_FUNCTION, QUEUE, RedisRunner
from sae.runs.signing import sign
from sae.runs.spec import spec_of
from sae.training.loop import TrainConfig
from tests.browser.conftest import ROOT
from tests.services import QUEUE_KEY, redis_server, sae_worker, wait_for

NET = SAEConfig(latent_dim=8, num_steps=2)
TINY = TrainConfig(epochs=1, batch_size=16, train_subset=64, eval_images=16, time_budget=60.0, device="cpu")
IMAGES = torch.rand(64, 1, 32, 32), torch.rand(16, 1, 32, 32)  # the app's; a worker trains on its own MNIST


def leave_a_mark(job, *args) -> None:
    """An RQ callback an attacker might name: it writes the file the job's description names."""
    Path(job.description).write_text("the callback ran")


@pytest.fixture
def service(tmp_path):
    with redis_server(tmp_path) as service:
        yield service


@pytest.fixture
def worker(service, tmp_path):
    with sae_worker(service.url, tmp_path / "worker.log") as worker:
        yield worker


@pytest.fixture
def manager(service):
    return JobManager(runner=RedisRunner(service.url, key=QUEUE_KEY.encode()))


def attacker_queue(service, serializer=JSONSerializer) -> Queue:
    return Queue(QUEUE, connection=redis.Redis.from_url(service.url), serializer=serializer)


def refusals(worker) -> list[str]:
    return [line for line in worker.log().splitlines() if "refused job" in line]


def train_one(manager, owner: str, cfg: TrainConfig = TINY):
    """A real run from the app's side, to its end."""
    job = manager.submit(owner, NET, cfg, *IMAGES)
    assert job.wait(240), "the run did not end"
    return manager.poll(owner, job)


def test_redis_refuses_a_client_without_the_password(service):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=service.port).ping()


def test_foreign_and_forged_jobs_are_refused_never_run_and_the_worker_trains_the_next_real_run(service, worker, manager, tmp_path):
    pwned = tmp_path / "pwned.txt"
    genuine = spec_of(NET, TINY)
    forged = {"spec": genuine, "issued": int(time.time()), "mac": "0" * 64}
    attacks = [
        attacker_queue(service, serializer=None).enqueue("os.system", f"id > {pwned}"),  # RQ's default (pickle) serializer
        attacker_queue(service).enqueue("os.system", f"id > {pwned}"),
        attacker_queue(service).enqueue("builtins.exec", f"open({str(pwned)!r}, 'w').write('pwned')"),
        attacker_queue(service).enqueue(JOB_FUNCTION, forged),  # the training job, not signed with the key
        attacker_queue(service).enqueue(JOB_FUNCTION, genuine),  # the old, unsigned shape of a run
        # RQ runs a failure callback by name when a job fails: this one would write the file.
        attacker_queue(service).enqueue(JOB_FUNCTION, forged, description=str(pwned), on_failure=Callback("tests.test_queue_security.leave_a_mark")),
    ]
    wait_for(lambda: len(refusals(worker)) >= len(attacks), 60, "the worker to refuse every attack")
    lines = refusals(worker)
    assert len(lines) == len(attacks), lines
    assert "it calls 'os.system', not the training job" in lines[1] and "it calls 'builtins.exec'" in lines[2]
    assert "cannot be read" in lines[0]  # a pickled job: not even unpickled
    assert "not signed with this queue's key" in lines[3] and "not signed with this queue's key" in lines[5]
    assert "its arguments are not a training run's" in lines[4]
    for job in attacks:
        assert Job.fetch(job.id, connection=redis.Redis.from_url(service.url)).get_status() == JobStatus.FAILED
    assert not pwned.exists(), "an attacker's job ran on the worker"

    snap = train_one(manager, "alice")  # the worker still serves, and trains a real run
    assert snap.status == ENDED and snap.reason == "completed" and snap.step == 4
    assert worker.process.poll() is None and not pwned.exists()


def test_a_signed_run_outside_the_schema_or_the_class_limits_is_refused_with_one_line_in_its_session(service, worker):
    """Defence in depth: even with the key, a worker reads a run's settings strictly.  This app's
    own limits are lax (a mistake, or an app of another version); the worker's are the class's."""
    lax = JobManager(runner=RedisRunner(service.url, key=QUEUE_KEY.encode()), limits=TrainingLimits(max_epochs=1000, max_run_seconds=100_000))
    snap = train_one(lax, "mallory", replace(TINY, epochs=900))
    assert snap.status == FAILED and "\n" not in snap.error
    assert snap.error == "the worker refused this run: its settings are refused: a run here may have at most 250 epochs (asked: 900)"
    snap = train_one(lax, "mallory", replace(TINY, time_budget=50_000.0))
    assert snap.status == FAILED and "a run here may last at most 300 s" in snap.error
    assert len(refusals(worker)) == 2


def test_a_replayed_run_is_refused(service, worker, manager):
    """A copy of a real, signed run under its own id: the worker has trained that run already."""
    snap = train_one(manager, "alice")
    assert snap.status == ENDED
    r = redis.Redis.from_url(service.url)
    (run_id,) = {key.decode().split(":")[2] for key in r.scan_iter("sae:run:*:claimed")}
    original = Job.fetch(run_id, connection=r, serializer=JSONSerializer)
    attacker_queue(service).enqueue(JOB_FUNCTION, *original.args, job_id=run_id)
    wait_for(lambda: refusals(worker), 60, "the replay's refusal")
    assert "this run was taken by a worker already" in refusals(worker)[0]


def test_rq_callbacks_and_webhooks_named_in_redis_are_never_used_by_the_worker(service, tmp_path):
    """RQ calls a job's failure callback even from its clean-up of abandoned jobs; the worker's
    job class has none, whatever the record says."""
    from rq.callbacks import execute_failure_callback
    from rq.timeouts import UnixSignalDeathPenalty

    pwned = tmp_path / "pwned.txt"
    planted = attacker_queue(service).enqueue("os.getcwd", description=str(pwned), on_failure=Callback("tests.test_queue_security.leave_a_mark"))
    job_class, _ = rq_classes()
    seen = job_class.fetch(planted.id, connection=redis.Redis.from_url(service.url), serializer=JSONSerializer)
    execute_failure_callback(seen, UnixSignalDeathPenalty, RuntimeError, RuntimeError("abandoned"), None)
    assert not pwned.exists() and seen.failure_callback is None and seen.webhooks == []
    plain = Job.fetch(planted.id, connection=redis.Redis.from_url(service.url), serializer=JSONSerializer)
    execute_failure_callback(plain, UnixSignalDeathPenalty, RuntimeError, RuntimeError("abandoned"), None)
    assert pwned.exists(), "the check above could not fail: RQ's own Job runs the callback"


def test_events_forged_into_a_real_run_are_dropped(service, worker, manager, caplog):
    caplog.set_level(logging.WARNING, logger="sae.runs.redis_queue")
    job = manager.submit("alice", NET, replace(TINY, epochs=100, train_subset=None), *IMAGES)
    wait_for(lambda: manager.poll("alice", job).step >= 2, 180, "the run to train")
    r = redis.Redis.from_url(service.url)
    (stream,) = list(r.scan_iter("sae:run:*:events"))
    run_id = stream.decode().split(":")[2]
    real = r.xrange(stream, count=1)[0][1]
    batch = json.dumps({"type": "batch", "step": 10**6, "epoch": 0, "loss": 123.0, "lr": 1.0, "images_per_s": 1.0, "elapsed": 1.0, "progress": 1.0})
    forgeries = [
        {"e": json.dumps(messages.failed("your account is suspended: log in at http://evil.example")), "n": "999", "s": "0" * 64},
        {"e": batch},  # unsigned
        {"e": batch, "n": "5", "s": sign(b"not the queue's key, but long", "event", run_id, "5", batch)},
        real,  # a real signed event again: a replay, out of its place
    ]
    for fields in forgeries:
        r.xadd(stream, fields)
    wait_for(lambda: manager.poll("alice", job).step >= 6, 180, "the run to go on training after the forgeries")
    job.stop()
    assert job.wait(300)  # stopped, then measured on the worker's 10,000 test images
    snap = manager.poll("alice", job)
    assert snap.status == ENDED and snap.reason == "stopped" and snap.error is None
    assert 123.0 not in snap.history["batch"]["loss"] and max(snap.history["batch"]["step"]) < 10**6
    assert [record.getMessage() for record in caplog.records if "dropped an event" in record.getMessage()] == [
        f"run {run_id}: dropped an event that its worker did not sign (forged, or replayed)"
    ]


def test_the_worker_and_the_app_refuse_to_run_without_the_queue_key(service, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "SAE_QUEUE_KEY"} | {"SAE_REDIS_URL": service.url}
    done = subprocess.run([sys.executable, "-m", "sae", "worker", "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith("error: SAE_QUEUE_KEY is not set"), done.stderr
    assert "\n" not in done.stderr.strip()

    monkeypatch.delenv("SAE_QUEUE_KEY", raising=False)
    snap = train_one(JobManager(runner=RedisRunner(service.url)), "alice")
    assert snap.status == FAILED and snap.error.startswith("the training queue is not set up: SAE_QUEUE_KEY is not set")
    assert not list(redis.Redis.from_url(service.url).scan_iter("rq:job:*"))  # nothing was enqueued


def test_the_queue_works_over_tls(tmp_path, monkeypatch):
    """rediss://, the server's certificate checked against its CA (given in the URL's query)."""
    with redis_server(tmp_path, tls=True) as service, sae_worker(service.url, tmp_path / "worker.log"):
        snap = train_one(JobManager(runner=RedisRunner(service.url, key=QUEUE_KEY.encode())), "alice")
        assert snap.status == ENDED and snap.reason == "completed"
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(service.url.split("?")[0]).ping()  # without the CA, the certificate is not trusted


def changed(part: str, **values) -> dict:
    spec = spec_of(NET, TINY)
    spec[part] = {**spec[part], **values}
    return spec


@pytest.mark.parametrize(
    "spec, says",
    [
        ([], "exactly two parts"),
        ({**spec_of(NET, TINY), "code": "os.system"}, "exactly two parts"),
        (changed("model_config", input_size=256), "input_size must be 32"),
        (changed("model_config", surprise=1), "model_config has unknown keys ['surprise']"),
        ({"model_config": {"latent_dim": 8}, "train_config": spec_of(NET, TINY)["train_config"]}, "model_config lacks"),
        (changed("model_config", thresh=float("inf")), "model_config.thresh must be float"),
        (changed("model_config", num_steps=True), "model_config.num_steps must be int"),
        (changed("model_config", num_steps=10**9), "num_steps must be an integer in 1–50"),
        (changed("model_config", surrogate="x" * 10_000), "model_config.surrogate must be str"),
        (changed("train_config", epochs=10**9), "epochs must be an integer in 1–1,000"),
        (changed("train_config", epochs=900), "a run here may have at most 250 epochs"),
        (changed("train_config", time_budget=None), "a run on the queue has a time limit"),
        (changed("train_config", time_budget=301.0), "a run here may last at most 300 s"),
        (changed("train_config", sample_count=10**6), "sample_count must be an integer in 1–64"),
        (changed("train_config", eval_every_s=0.0), "eval_every_s must be a number in 0.1–3600"),
        (changed("train_config", device="cuda:7; rm -rf /"), "unknown device"),
        (changed("train_config", loss=["last"]), "train_config.loss must be str"),
    ],
)
def test_the_worker_reads_a_spec_strictly(spec, says):
    from sae.runs.spec import SpecError, read_spec

    with pytest.raises(SpecError) as refused:
        read_spec(spec, TrainingLimits())
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_a_spec_the_app_makes_reads_back_as_the_same_configs():
    from sae.runs.spec import read_spec

    assert read_spec(json.loads(json.dumps(spec_of(NET, TINY))), TrainingLimits()) == (NET, TINY)
