"""sae.runs.jobs: background training runs, the shared queue and its bounds, and isolation between sessions.

Real training runs here are tiny (random 32x32 images, a few batches of 16), so
every test takes seconds even on a busy 2-core machine; they train in worker
processes, as the app's runs do (``sae.runs.local``).  The queue and lifetime
tests use a fake runner in the job's own thread that yields events on demand,
so their timing is exact.
"""

from __future__ import annotations

import csv
import io
import threading
import time

import numpy as np
import pytest
import torch

import sae.runs.jobs as jobs
from sae.analysis.inference import run_digit
from sae.io.tables import history_csv
from sae.model import SAEConfig, SpikingAutoencoder
from sae.runs.class_limits import RunRefused, TrainingLimits
from sae.runs.jobs import ENDED, FAILED, QUEUED, RUNNING, JobLimitError, JobManager
from sae.runs.local import LocalRunner
from sae.runs.worker import ProcessSettings
from sae.training.loop import BatchEnd, Finished, History, TrainConfig, train

NET = SAEConfig(latent_dim=8, num_steps=2)


def tiny(**changes) -> TrainConfig:
    values = dict(epochs=2, lr=1e-3, batch_size=16, train_subset=48, eval_images=16, sample_count=4, seed=3, eval_every_s=1000.0, device="cpu")
    return TrainConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(96, 1, 32, 32, generator=g), torch.rand(32, 1, 32, 32, generator=g)


# Waits on a real worker process end when their event comes; the bound only turns a hang into a failure,
# so it is far above what a busy 2-core machine needs (starting a worker process there takes seconds).
HANG_S = 120.0


def wait_until(condition, timeout: float = HANG_S, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(every)


def losses(history: dict) -> dict:
    """The history without its timings, which differ from run to run."""
    evals = {k: v for k, v in history["evals"].items() if k != "elapsed"}
    return {"batch": history["batch"]["loss"], "evals": evals, "epochs": history["epochs"]}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTrain:
    """Stands in for sae.training.loop.train: one BatchEnd per ``release()``, Finished when ``finish`` is set or on stop."""

    def __init__(self):
        self.tick = threading.Semaphore(0)
        self.finish = threading.Event()
        self.threads: list[threading.Thread] = []

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self.tick.release()

    def __call__(self, model_config, cfg, train_images, test_images, stop=None):
        self.threads.append(threading.current_thread())
        step, reason = 0, "completed"
        while not self.finish.is_set():
            if stop.is_set():
                reason = "stopped"
                break
            if self.tick.acquire(timeout=0.01):
                step += 1
                yield BatchEnd(step, 0, 0.1, cfg.lr, 100.0, step * 0.1, min(step / 100, 1.0))
        yield Finished(reason, SpikingAutoencoder(model_config), step, step * 0.1, step * cfg.batch_size)


@pytest.fixture
def fake(monkeypatch):
    fake = FakeTrain()
    monkeypatch.setattr(jobs, "default_runner", lambda: fake)
    yield fake
    fake.finish.set()
    for thread in fake.threads:  # leave no thread behind: building its model draws from torch's global RNG
        thread.join(10)


def connected() -> bool:
    """The keepalive of a session whose tab is still open.  A real run that nobody polls is stopped
    after ``orphan_after_s`` of wall time, which a busy machine can spend on a few tiny batches: the
    tests that wait for a real run say that its session is there.  The orphan rule has its own tests
    (on a fake clock), which pass ``keepalive=None``."""
    return True


def submit(manager, owner, images, cfg=None, **kwargs):
    kwargs.setdefault("keepalive", connected)
    return manager.submit(owner, NET, cfg or tiny(), images[0], images[1], **kwargs)


# ------------------------------------------------------------------ a real run


def test_a_job_trains_in_the_background_and_its_snapshot_mirrors_the_trainer(images):
    # The worker's thread count, not one core fewer (ProcessSettings' default): convolutions split their sums
    # by thread, so only the same count gives the same arithmetic on every machine.
    manager = JobManager(runs_per_device=1, runner=LocalRunner(ProcessSettings(threads=torch.get_num_threads())))
    job = submit(manager, "alice", images)
    assert job.wait(120) and job.status == ENDED
    snap = manager.poll("alice", job)
    assert snap.reason == "completed" and snap.progress == 1.0 and snap.step == 6 and snap.has_model
    direct = History()  # the same run, its events consumed here instead of by the job
    for event in train(NET, tiny(), images[0], images[1]):
        direct.record(event)
    assert {k: snap.history["batch"][k] for k in ("step", "loss")} == {k: direct.batch[k] for k in ("step", "loss")}
    assert snap.history["epochs"] == direct.epochs
    assert len(snap.history["epochs"]["epoch"]) == 2 and snap.latest.reconstructions.shape == (4, 1, 32, 32)
    assert job.model is not None and not job.model.training


def test_stop_ends_a_run_and_keeps_the_model(images):
    """A run far longer than the test: only the stop request can end it.  How soon a stop takes
    effect is a property of the trainer (it checks before every layer: the next test), not a
    figure a unit test should time on a shared machine."""
    manager = JobManager(runs_per_device=1, limits=TrainingLimits(max_epochs=1000, max_run_seconds=3600))  # a run longer than any class allows
    cfg = tiny(epochs=1000, batch_size=96, train_subset=None, eval_every_s=1000.0, time_budget=3600.0)
    job = submit(manager, "alice", images, cfg)
    wait_until(lambda: manager.poll("alice", job).step >= 1)
    job.stop()
    assert job.wait(HANG_S)
    snap = manager.poll("alice", job)
    assert snap.reason == "stopped" and snap.step < cfg.epochs and snap.has_model and job.model is not None


def test_stop_inside_a_batch_leaves_the_model_as_after_the_last_full_step(images):
    """The trainer checks the stop flag between layers; a cut batch must leave no trace (BatchNorm statistics)."""
    train_x, test_x = images
    stop = threading.Event()
    model = SpikingAutoencoder(NET)
    calls = {"n": 0}

    def stop_in_second_batch(module, args):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 2:  # the first layer of the second batch (the fast engine runs it once per batch)
                stop.set()

    model.encoder[0].register_forward_pre_hook(stop_in_second_batch)
    after_first_step, finished = None, None
    for event in train(NET, tiny(epochs=1, train_subset=32), train_x, test_x, stop=stop, model=model):
        if isinstance(event, BatchEnd):
            after_first_step = {k: v.clone() for k, v in model.state_dict().items()}
        finished = event
    assert finished.reason == "stopped" and finished.steps == 1 and calls["n"] == 2
    for name, value in finished.model.state_dict().items():
        assert torch.equal(value, after_first_step[name]), name


def failing_train(error):
    yield BatchEnd(1, 0, 0.1, 1e-3, 100.0, 0.1, 0.01)
    raise error


def out_of_memory(*args, **kwargs):
    return failing_train(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))


def device_lost(*args, **kwargs):
    return failing_train(RuntimeError("CUDA error: device-side assert triggered"))


def a_bug(*args, **kwargs):
    return failing_train(KeyError("oops"))


@pytest.mark.parametrize(
    "train_fn, expected", [(out_of_memory, "out of memory on cpu"), (device_lost, "the device cpu failed"), (a_bug, "training failed: KeyError")]
)
def test_failures_end_the_job_with_a_clear_message(monkeypatch, images, train_fn, expected):
    """Raised inside the worker process, reported in the app as one sentence."""
    monkeypatch.setattr(jobs, "default_runner", lambda: LocalRunner(train_fn=train_fn))
    manager = JobManager(runs_per_device=1)
    job = submit(manager, "alice", images)
    assert job.wait(HANG_S)  # a fresh worker process: seconds on a busy machine
    snap = manager.poll("alice", job)
    assert snap.status == FAILED and expected in snap.error and not snap.has_model
    assert manager.counts()["running"] == 0  # its place is free again


def test_a_nan_loss_fails_only_that_run(images):
    manager = JobManager(runs_per_device=2)
    poisoned = images[0].clone()
    poisoned[0, 0, 0, 0] = float("nan")
    bad = manager.submit("alice", NET, tiny(), poisoned, images[1], keepalive=connected)
    good = submit(manager, "bob", images)
    assert bad.wait(120) and good.wait(120)
    assert manager.poll("alice", bad).status == FAILED and "loss became nan" in manager.poll("alice", bad).error
    assert manager.poll("bob", good).reason == "completed"


# ------------------------------------------------------------------ the queue and its bounds


def test_runs_beyond_the_limit_wait_in_line_and_start_in_order(fake, images):
    manager = JobManager(runs_per_device=1)
    first, second, third = (submit(manager, owner, images) for owner in ("a", "b", "c"))
    assert first.status == RUNNING
    assert [manager.poll(o, j).queue_position for o, j in (("b", second), ("c", third))] == [1, 2]
    assert manager.counts() == {"running": 1, "queued": 2, "kept": 3, "capacity": manager.capacity}
    first.stop()
    wait_until(lambda: second.status == RUNNING)
    assert third.status == QUEUED and manager.poll("c", third).queue_position == 1
    second.stop()
    wait_until(lambda: third.status == RUNNING)
    third.stop()
    assert third.wait(5)


def test_cancelling_a_queued_run_frees_its_place(fake, images):
    manager = JobManager(runs_per_device=1)
    first, second, third = (submit(manager, owner, images) for owner in ("a", "b", "c"))
    second.stop()
    assert manager.poll("c", third).queue_position == 1 and second.status == ENDED
    assert manager.poll("b", second).reason == "cancelled" and not manager.poll("b", second).has_model
    first.stop()
    wait_until(lambda: third.status == RUNNING)
    third.stop()


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(jobs.RUNS_ENV, "3")
    assert JobManager().runs_per_device == 3
    monkeypatch.setenv(jobs.RUNS_ENV, "none")
    assert JobManager().runs_per_device == 1
    monkeypatch.delenv(jobs.RUNS_ENV)
    assert JobManager().runs_per_device == 1


def test_one_run_at_a_time_per_session_and_a_hard_cap_on_jobs(fake, images):
    manager = JobManager(runs_per_device=1, max_jobs=2)
    first = submit(manager, "a", images)
    with pytest.raises(JobLimitError) as refused:
        submit(manager, "a", images)
    assert str(refused.value) == "you already have a run going, the most one session may have (1): stop one before starting another"
    submit(manager, "b", images)
    with pytest.raises(JobLimitError) as refused:
        submit(manager, "c", images)
    assert str(refused.value) == "the server already holds 2 training runs, its limit: try again in a few minutes"
    first.stop()
    assert first.wait(5)
    submit(manager, "c", images)  # the ended run makes room
    assert manager.counts()["kept"] == 2


def test_a_teacher_sets_the_runs_per_session_and_per_address(fake, images, monkeypatch):
    monkeypatch.setenv("SAE_RUNS_PER_SESSION", "2")
    monkeypatch.setenv("SAE_RUNS_PER_ADDRESS", "3")
    manager = JobManager(runs_per_device=1)
    assert (manager.limits.runs_per_session, manager.limits.runs_per_address) == (2, 3)
    school, home = "203.0.113.7", "198.51.100.2"
    runs = [submit(manager, "a", images, address=school), submit(manager, "a", images, address=school)]
    with pytest.raises(JobLimitError, match=r"you already have 2 runs going, the most one session may have \(2\)"):
        submit(manager, "a", images, address=school)
    runs.append(submit(manager, "b", images, address=school))
    with pytest.raises(JobLimitError) as refused:
        submit(manager, "c", images, address=school)  # another session, behind the same address
    assert str(refused.value) == (
        "your network address already has 3 runs waiting or training, the most one address may have (3): try again when one has ended"
    )
    runs.append(submit(manager, "d", images, address=home))  # another address is not held up
    runs[0].stop()
    assert runs[0].wait(5)
    runs.append(submit(manager, "c", images, address=school))  # one ended: the address has room again
    for job in runs:
        job.stop()


def test_the_defaults_let_a_class_of_30_behind_one_address_line_up(fake, images):
    manager = JobManager(runs_per_device=1)
    class_of_30 = [submit(manager, f"student{i}", images, address="203.0.113.7") for i in range(30)]
    assert [job.status for job in class_of_30].count(RUNNING) == 1 and manager.counts()["queued"] == 29
    with pytest.raises(JobLimitError, match=r"the most one address may have \(30\)"):
        submit(manager, "script", images, address="203.0.113.7")
    for job in class_of_30:
        job.stop()


def test_a_waiting_run_holds_its_place_only_while_its_session_is_connected(fake, images):
    """Scripted sessions that press Start and disconnect leave nothing behind: their runs leave the line at once."""
    manager = JobManager(runs_per_device=1, max_jobs=4)
    connected = {}

    def session(name):
        connected[name] = True
        return lambda: connected[name]

    running = submit(manager, "teacher", images, keepalive=session("teacher"))
    scripted = [submit(manager, f"bot{i}", images, keepalive=session(f"bot{i}"), address="192.0.2.1") for i in range(3)]
    with pytest.raises(JobLimitError, match="already holds 4"):
        submit(manager, "student", images, keepalive=session("student"))
    for i in range(3):
        connected[f"bot{i}"] = False  # the script closes its sockets
    student = submit(manager, "student", images, keepalive=session("student"))
    assert all(job.status == ENDED and job.snapshot().reason == "abandoned" for job in scripted)
    assert manager.poll("student", student).queue_position == 1  # first in line, behind the run already training
    running.stop()
    wait_until(lambda: student.status == RUNNING)
    student.stop()


@pytest.mark.parametrize(
    "changes, refusal",
    [
        ({"epochs": 1000}, "a run here may have at most 250 epochs (asked: 1000)"),
        ({"epochs": 10, "time_budget": 3600.0}, "a run here may last at most 300 s: set a time limit of 300 s or less"),
    ],
)
def test_the_longest_run_is_the_classs_and_a_longer_one_is_refused_in_one_line(fake, images, changes, refusal):
    manager = JobManager(runs_per_device=1)
    with pytest.raises(RunRefused) as refused:
        submit(manager, "a", images, tiny(**changes))
    assert str(refused.value) == refusal
    assert manager.counts()["kept"] == 0


def test_a_run_without_a_time_limit_gets_the_classs(fake, images, monkeypatch):
    monkeypatch.setenv("SAE_MAX_RUN_SECONDS", "120")
    job = submit(JobManager(runs_per_device=1), "a", images, tiny(epochs=250, time_budget=None))
    assert job.train_config.time_budget == 120.0 and job.train_config.epochs == 250
    job.stop()


@pytest.mark.parametrize(
    "proxies, forwarded, address",
    [
        (0, "10.9.9.9", "198.51.100.2"),  # no proxy trusted: the header is anyone's text
        (1, "10.9.9.9, 203.0.113.7", "203.0.113.7"),  # what our proxy saw; the first entry came from the browser
        (2, "10.9.9.9, 203.0.113.7, 172.16.0.5", "203.0.113.7"),
        (1, "", "198.51.100.2"),  # a proxy that did not say: the connection's own address
        (3, "203.0.113.7, 172.16.0.5", "198.51.100.2"),
    ],
)
def test_the_client_address_believes_only_the_trusted_proxies(proxies, forwarded, address):
    assert TrainingLimits(trusted_proxies=proxies).client_address("198.51.100.2", forwarded) == address


@pytest.mark.parametrize("raw", ["0", "-3", "many", "1.5"])
def test_a_limit_that_is_not_a_positive_integer_keeps_its_default(monkeypatch, raw, caplog):
    monkeypatch.setenv("SAE_RUNS_PER_ADDRESS", raw)
    assert TrainingLimits.from_env().runs_per_address == TrainingLimits.runs_per_address
    assert f"SAE_RUNS_PER_ADDRESS={raw!r} is not a whole number of at least 1: using 30" in caplog.text


def test_a_run_nobody_watches_is_stopped_and_ended_runs_are_forgotten(fake, images):
    clock = FakeClock()
    manager = JobManager(runs_per_device=1, orphan_after_s=30, keep_ended_s=600, clock=clock)
    job = submit(manager, "a", images, keepalive=None)
    fake.release(3)
    wait_until(lambda: job.snapshot().step == 3)
    clock.now += 31  # the tab was closed: no polls for 31 s
    fake.release()
    assert job.wait(5) and job.snapshot().reason == "abandoned" and job.model is not None
    clock.now += 599
    other = submit(manager, "b", images)  # submitting sweeps
    assert manager.counts()["kept"] == 2  # a's run ended 599 s ago: still kept, beside b's
    clock.now += 2
    manager.poll("b", other)  # polling sweeps too
    assert manager.counts()["kept"] == 1  # a's is forgotten
    other.stop()


def test_a_connected_session_keeps_its_run_alive_without_polling(fake, images):
    clock = FakeClock()
    manager = JobManager(runs_per_device=1, orphan_after_s=30, clock=clock)
    connected = {"a": True}
    job = submit(manager, "a", images, keepalive=lambda: connected["a"])
    for _ in range(3):  # the user is on another page for 90 s: no polls, session still connected
        clock.now += 30
        fake.release()
    wait_until(lambda: job.snapshot().step == 3)
    assert job.status == RUNNING
    connected["a"] = False
    clock.now += 31
    fake.release()
    assert job.wait(5) and job.snapshot().reason == "abandoned"


def test_a_queued_run_whose_session_is_gone_never_starts(fake, images):
    clock = FakeClock()
    manager = JobManager(runs_per_device=1, orphan_after_s=30, clock=clock)
    first = submit(manager, "a", images, keepalive=None)
    queued = submit(manager, "b", images, keepalive=None)
    clock.now += 31
    manager.poll("a", first)  # a sweeps the queue
    assert queued.status == ENDED and queued.snapshot().reason == "abandoned"
    first.stop()


def test_a_session_sees_only_its_own_runs(fake, images):
    manager = JobManager(runs_per_device=1)
    job = submit(manager, "alice", images)
    assert manager.poll("alice", job).job_id == job.id
    with pytest.raises(PermissionError):
        manager.poll("bob", job)
    job.stop()


# ------------------------------------------------------------------ sessions do not disturb each other


@pytest.mark.slow
def test_two_runs_at_once_give_the_same_results_as_one_alone(images):
    alone = JobManager(runs_per_device=1)
    solo = submit(alone, "a", images)
    assert solo.wait(120)
    together = JobManager(runs_per_device=2)
    pair = [submit(together, owner, images) for owner in ("b", "c")]
    assert all(job.status in (RUNNING, ENDED) for job in pair)  # both admitted at once
    assert all(job.wait(240) for job in pair)
    expected = losses(solo.history())
    assert len(expected["batch"]) == 6
    for job in pair:
        assert losses(job.history()) == expected
        for a, b in zip(job.model.state_dict().values(), solo.model.state_dict().values()):
            assert torch.equal(a, b)


def test_exploring_the_shared_model_during_training_is_bit_identical(images):
    torch.manual_seed(1)
    shared = SpikingAutoencoder(SAEConfig(latent_dim=16)).eval()
    for p in shared.parameters():
        p.requires_grad_(False)
    before_weights = {k: v.clone() for k, v in shared.state_dict().items()}
    digit = images[1][:1]
    quiet = run_digit(shared, digit)
    manager = JobManager(runs_per_device=1)
    job = submit(manager, "a", images, tiny(epochs=50))
    wait_until(lambda: job.snapshot().step >= 1)
    busy = [run_digit(shared, digit) for _ in range(3)]
    job.stop()
    assert job.wait(HANG_S)
    for result in busy:
        assert np.array_equal(result.recon_steps, quiet.recon_steps)
        for layer, spikes in quiet.spikes.items():
            assert np.array_equal(result.spikes[layer], spikes), layer
    for key, value in shared.state_dict().items():
        assert torch.equal(value, before_weights[key]), key  # training used its own copy


# ------------------------------------------------------------------ export


def test_history_csv_has_a_row_per_batch_evaluation_and_epoch(images):
    manager = JobManager(runs_per_device=1)
    job = submit(manager, "a", images)
    assert job.wait(120)
    history = manager.poll("a", job).history
    rows = list(csv.DictReader(io.StringIO(history_csv(history))))
    kinds = [row["kind"] for row in rows]
    assert kinds.count("batch") == 6 and kinds.count("eval") == len(history["evals"]["step"]) and kinds.count("epoch") == 2
    assert float(rows[0]["batch_loss"]) == history["batch"]["loss"][0]
    evals = [row for row in rows if row["kind"] == "eval"]
    assert float(evals[-1]["rate_latent"]) == history["evals"]["rate_latent"][-1]
