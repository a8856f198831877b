"""The Train page's glue to ``sae.runs.jobs``: this session's run, its callbacks, saving its model.

The run itself lives in the process-wide job manager, never in the page; the
session only keeps a handle (``JOB``) and an owner token, so another session can
never see or stop it.
"""

from __future__ import annotations

import uuid

import streamlit as st

from explorer import owner as checkpoint_owner
from explorer import resources, state, train_form
from explorer.page_limits import page_limits
from sae.data.mnist import DataUnavailableError
from sae.devices import DeviceUnavailableError
from sae.io import student_checkpoints
from sae.io.checkpoints import CheckpointError, save_checkpoint
from sae.runs.jobs import ENDED, TrainingJob, default_manager

JOB, OWNER, SAVED, NOTICE, GOTO_EXPLORE = "train_job", "_train_owner", "_train_saved", "_train_notice", "_train_goto_explore"
STOP_WAIT_S = 1.0  # a stopped run ends within a layer or two: usually far sooner
MEASURE_WAIT_S = 30.0  # Save waits this long for the worker's test MSE of a run that has just ended


def owner() -> str:
    return st.session_state.setdefault(OWNER, uuid.uuid4().hex)


def current_job() -> TrainingJob | None:
    return st.session_state.get(JOB)


def session_alive_check():
    """A check the worker may call from its thread: is this browser session still connected?"""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None  # no server (tests): only polling keeps the run alive
    instance, session_id = runtime.get_instance(), ctx.session_id
    return lambda: instance.is_active_session(session_id)


def client_address() -> str | None:
    """The student's network address (behind trusted proxies: ``sae.runs.class_limits``)."""
    return default_manager().limits.client_address(st.context.ip_address, st.context.headers.get("X-Forwarded-For", ""))


def start_run() -> None:
    """Start button callback: runs before the script, so the settings render locked at once."""
    try:
        net, cfg = train_form.configs()
        data = resources.train_set()[0], resources.test_set()[0]
        job = default_manager().submit(owner(), net, cfg, *data, keepalive=session_alive_check(), address=client_address())
    except (ValueError, DeviceUnavailableError, DataUnavailableError) as error:  # RunRefused is a ValueError
        st.session_state[NOTICE] = str(error)
        return
    st.session_state[JOB] = job
    st.session_state[NOTICE] = None
    st.session_state.pop("tr_save_name", None)  # a fresh default name for the new run


def stop_run(job: TrainingJob) -> None:
    """Stop button callback: wait a moment for the run to end, so this very rerun can show the result."""
    job.stop()
    job.wait(STOP_WAIT_S)


def save_run(job: TrainingJob) -> None:
    """Save button callback: write the checkpoint, with the test MSE its worker measured, atomically.

    Nothing is measured here: the worker measures the whole test set right after the
    run ends (``sae.runs.worker.run``), in its own process, not in the server."""
    job.wait(MEASURE_WAIT_S)  # the worker measures right after the run ends: usually done by now
    metrics = job.result.metrics if job.result is not None else None
    if not metrics:
        measuring = not job.wait(0)
        problem = "the worker is still measuring its test MSE: press Save again in a moment" if measuring else "it has no test MSE"
        st.session_state[SAVED] = {"job": job.id, "error": f"this run cannot be saved yet: {problem}"}
        return
    try:
        limits = page_limits()  # the student's own folder, within the class's bounds (sae.io.student_checkpoints)
        name = st.session_state.get("tr_save_name", "")
        path = student_checkpoints.new_path(name, checkpoint_owner.owner(), per_owner=limits.checkpoints_per_student, total=limits.max_checkpoints)
        provenance = {
            "command": "Train page",
            "seed": job.train_config.seed,
            "train_config": job.train_config.to_dict(),
            "preset": st.session_state.get(train_form.key("preset")),
        }
        save_checkpoint(path, job.model, metrics=metrics, history=job.history(), provenance=provenance)
    except (CheckpointError, OSError) as error:
        st.session_state[SAVED] = {"job": job.id, "error": str(error)}
        return
    st.session_state[SAVED] = {
        "job": job.id,
        "name": path.stem,
        "path": path.name,  # not the folder: it is named by the owner id, which is not shown on a screen
        "test_mse": metrics["test_mse"],
        "test_images": metrics["test_images"],
    }


def saved(job: TrainingJob) -> dict:
    """What Save did for this run: {} before, else name/path/test_mse or error."""
    done = st.session_state.get(SAVED) or {}
    return done if done.get("job") == job.id else {}


def open_in_explore(name: str) -> None:
    state.request_checkpoint(name)
    st.session_state[GOTO_EXPLORE] = True


def take_goto_explore() -> bool:
    return st.session_state.pop(GOTO_EXPLORE, False)


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def queue_text(job: TrainingJob, snap) -> str:
    """Where a queued run stands, and why it waits."""
    manager = default_manager()
    counts, line = manager.counts(), "the class's shared queue" if manager.shared_queue else job.device
    room = (
        f"{counts['capacity']} run(s) train at once ({counts['running']} running, {counts['queued']} waiting); yours "
        "starts by itself when a place frees up."
        if counts["capacity"]
        else "No training worker is connected right now: yours starts when one is."
    )
    return f"Queued: your run is number **{snap.queue_position or '…'}** in line for {line}. {room} Keep this page open."


def progress_text(snap) -> str:
    """The progress bar's line: how far, how long, how fast."""
    if snap.status == ENDED:
        return f"{snap.progress:.0%} · {minutes(snap.elapsed)} of training · {snap.step} steps"
    rate = f"{snap.images_per_s:,.0f} images/s" if snap.images_per_s else "measuring speed…"
    return (
        f"{snap.progress:.0%} · {minutes(snap.elapsed)} elapsed · about {minutes(snap.eta)} left · {rate} · step {snap.step}, epoch {snap.epoch + 1}"
    )
