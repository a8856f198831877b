"""The Train page under AppTest: start, poll, stop, save, the queue and its limits, a failing run.

MNIST is replaced by a few random images and every run is a handful of small
batches, so each test takes seconds.  Each test gets its own job manager and its
own user checkpoint folder.  AppTest runs no timers: a test "polls" by running
the script again, as the page's fragment does once a second in a browser.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import explorer.resources as resources
import sae.io.checkpoints as checkpoints
import sae.runs.jobs as jobs
from sae.model import SAEConfig, SpikingAutoencoder
from sae.training.loop import evaluate
from sae.training.recipes import RECIPES

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TRAIN_PAGE = "pages/views/train.py"
HANG_S = 120.0  # a bound on waits for a run's events that only a hang reaches, even on a busy 2-core machine
G = torch.Generator().manual_seed(0)
TRAIN_X, TEST_X = torch.rand(64, 1, 32, 32, generator=G), torch.rand(24, 1, 32, 32, generator=G)


@pytest.fixture
def manager(monkeypatch, tmp_path):
    """A fresh process-wide job manager (one run at a time), tiny data and an empty user folder."""
    monkeypatch.setattr(checkpoints, "USER_DIR", tmp_path)
    if not checkpoints.default_checkpoint_path().exists():  # the sidebar needs some checkpoint to show
        checkpoints.save_checkpoint(tmp_path / "placeholder.pt", SpikingAutoencoder(SAEConfig()))
    monkeypatch.setattr(resources, "train_set", lambda: (TRAIN_X, torch.zeros(len(TRAIN_X), dtype=torch.long)))
    monkeypatch.setattr(resources, "test_set", lambda: (TEST_X, torch.zeros(len(TEST_X), dtype=torch.long)))
    manager = jobs.JobManager(runs_per_device=1, max_jobs=2)
    monkeypatch.setattr(jobs, "_DEFAULT", manager)
    yield manager
    for job in list(manager._jobs.values()):
        job.stop()
        job.wait(30)


def session(**settings):
    """A browser session on the Train page, with tiny settings."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(TRAIN_PAGE).run()
    values = {"tr_train_subset": 64, "tr_batch_size": 16, "tr_eval_images": 16, "tr_epochs": 2, "tr_time_budget": 0, **settings}
    for key, value in values.items():
        at.number_input(key=key).set_value(value)
    return at.run()


def button(at, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def start(at):
    button(at, "Start training").click().run()
    assert not at.exception, at.exception
    return at.session_state["train_job"]


def poll_until(at, condition, timeout: float = HANG_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
        at.run()
        assert not at.exception, at.exception
    return at.run()


def chart(at, key: str) -> dict:
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if element.proto.id.endswith(key) or key in element.proto.id:
            return spec
    raise AssertionError(f"no chart {key}")


def values(data) -> list:
    """A trace's values; numpy arrays travel as base64 typed arrays."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).tolist()
    return list(data)


def batch_points(at) -> int:
    spec = chart(at, "train_loss_chart")
    trace = next(t for t in spec["data"] if t.get("name") == "batch loss")
    return len(values(trace.get("x", [])))


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_defaults_are_the_one_minute_preset_and_presets_read_the_recipes(manager):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(TRAIN_PAGE).run()
    assert not at.exception
    assert at.radio(key="tr_preset").value == "One minute"
    assert at.number_input(key="tr_time_budget").value == 60
    assert at.select_slider(key="tr_lr").value == RECIPES["fast"].lr
    at.radio(key="tr_preset").set_value("Tutorial").run()
    assert at.select_slider(key="tr_lr").value == RECIPES["tutorial"].lr
    assert at.number_input(key="tr_epochs").value == RECIPES["tutorial"].epochs
    assert at.number_input(key="tr_time_budget").value == 0
    at.radio(key="tr_preset").set_value("Longer").run()
    assert at.number_input(key="tr_time_budget").value == RECIPES["longer"].time_budget


@pytest.mark.slow
def test_the_calibrated_start_switch_is_off_by_default_and_reaches_the_run(manager):
    at = session(tr_epochs=1)
    assert at.toggle(key="tr_calibrate").value is False
    at.toggle(key="tr_calibrate").set_value(True).run()
    job = start(at)
    assert job.train_config.calibrate is True
    job.stop()
    job.wait(30)


def test_the_live_chart_grows_with_each_poll(manager, monkeypatch):
    """A run that the test paces (one batch per release, in the job's thread): each poll draws the
    batches that arrived since the last one, however fast or slow the machine."""
    from tests.test_jobs import FakeTrain

    fake = FakeTrain()
    monkeypatch.setattr(jobs, "_DEFAULT", jobs.JobManager(runs_per_device=1, max_jobs=2, runner=fake))
    at = session()
    job = start(at)
    try:
        for steps in (1, 2, 5):
            fake.release(steps - job.snapshot().step)
            poll_until(at, lambda steps=steps: job.snapshot().step == steps)
            assert job.active and batch_points(at) == steps
            assert "elapsed" in at.get("progress")[0].proto.text
    finally:
        fake.finish.set()
        for thread in fake.threads:
            thread.join(30)


@pytest.mark.slow
def test_start_poll_save_and_open_in_explore(manager, tmp_path):
    at = session(tr_batch_size=8)  # 8 steps an epoch, 16 in all
    job = start(at)
    poll_until(at, lambda: not job.active)
    assert "every planned epoch is done" in texts(at.success)
    assert batch_points(at) == 16
    assert at.get("download_button"), "the history CSV download is missing"

    next(t for t in at.text_input if t.label == "Name").set_value("my run")
    button(at, "Save checkpoint").click().run()
    assert not at.error, texts(at.error)
    path = tmp_path / "owners" / at.session_state["_owner"] / "my_run.pt"  # this student's own (sae.io.student_checkpoints)
    saved = checkpoints.load_checkpoint(path)
    expected_mse, _ = evaluate(job.model, TEST_X)
    assert saved.metrics["test_mse"] == pytest.approx(expected_mse, rel=1e-6) and saved.metrics["test_images"] == len(TEST_X)
    assert saved.provenance["train_config"]["batch_size"] == 8 and saved.history["batch"]["loss"] == job.history()["batch"]["loss"]
    assert "my_run" in texts(at.success)
    checkpoint_box = next(s for s in at.get("selectbox") if s.label == "Checkpoint")
    assert "my_run" in checkpoint_box.options  # the sidebar lists it

    button(at, "Open it in Explore").click().run()
    assert not at.exception, at.exception
    assert at.session_state["sb_checkpoint"] == "my_run" and "Explore" in texts(at.title)


@pytest.mark.slow
def test_saving_refuses_a_name_in_use(manager, tmp_path):
    at = session()
    job = start(at)
    poll_until(at, lambda: not job.active)
    taken = tmp_path / "owners" / at.session_state["_owner"] / "taken.pt"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"an earlier run")
    next(t for t in at.text_input if t.label == "Name").set_value("taken")
    button(at, "Save checkpoint").click().run()
    assert "exists already" in texts(at.error)
    assert taken.read_bytes() == b"an earlier run"


@pytest.mark.slow
def test_stop_ends_the_run_and_keeps_the_model(manager):
    at = session(tr_epochs=100)
    job = start(at)
    poll_until(at, lambda: job.snapshot().step >= 1)
    assert button(at, "Start training").disabled and at.slider(key="tr_beta").disabled  # one run at a time, settings locked
    at.button(key="tr_stop").click().run()
    assert job.wait(HANG_S)  # 100 epochs: only the stop can end it (how soon: tests/test_jobs.py)
    assert job.snapshot().reason == "stopped"
    at.run()
    assert "Stopped" in texts(at.success)
    assert any(b.label.startswith("Save") for b in at.button), "a stopped run can be saved"
    assert not button(at, "Start training").disabled


@pytest.mark.slow
def test_over_the_limit_a_session_waits_in_line_and_others_see_nothing_of_it(manager):
    alice, bob, carol = session(tr_epochs=100), session(), session()
    alice_job = start(alice)
    bob_job = start(bob)
    assert bob_job.status == jobs.QUEUED
    bob.run()
    assert "number **1** in line" in texts(bob.info)
    assert not bob.get("plotly_chart")  # bob sees his place, not alice's run
    button(carol, "Start training").click().run()  # max_jobs=2: the server is full
    assert "try again in a few minutes" in texts(carol.error)
    assert "train_job" not in carol.session_state

    alice.button(key="tr_stop").click().run()
    poll_until(bob, lambda: bob_job.snapshot().step >= 1)
    assert alice_job.status == jobs.ENDED and bob_job.status == jobs.RUNNING
    bob_job.stop()
    assert bob_job.wait(HANG_S)
    bob.run()
    assert batch_points(bob) == len(bob_job.snapshot().history["batch"]["step"])  # his own run, now on his page


@pytest.mark.slow
def test_a_failing_run_reports_in_its_own_session_only(manager, monkeypatch):
    poisoned = TRAIN_X.clone()
    poisoned[:, :, 0, 0] = float("nan")
    monkeypatch.setattr(resources, "train_set", lambda: (poisoned, torch.zeros(len(poisoned), dtype=torch.long)))
    at = session()
    job = start(at)
    poll_until(at, lambda: not job.active)
    assert "Training failed: the loss became nan" in texts(at.error)
    assert not any(b.label.startswith("Save") for b in at.button)
    assert not button(at, "Start training").disabled
    bystander = session()
    assert not bystander.error and "Nothing trained yet" in texts(bystander.info)


@pytest.mark.slow
def test_settings_and_the_run_survive_a_visit_to_another_page(manager):
    at = session(tr_epochs=100)
    at.select_slider(key="tr_lr").set_value(3e-4).run()
    job = start(at)
    at.switch_page("pages/views/home.py").run()
    assert not at.exception
    poll_until(at, lambda: job.snapshot().step >= 1)  # training goes on while the user reads another page
    at.switch_page(TRAIN_PAGE).run()
    assert at.select_slider(key="tr_lr").value == 3e-4 and at.number_input(key="tr_epochs").value == 100
    assert at.session_state["train_job"] is job and job.active
    at.button(key="tr_stop").click().run()
