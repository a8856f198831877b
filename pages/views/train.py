"""Train: pick a few settings, press Start and watch the network learn, live.

Widgets (``explorer.train_form``) -> a ``sae.runs.jobs`` training job that runs
outside the page -> snapshots -> ``sae.plots.training`` figures.  The page never
trains: it polls the job from a fragment once a second, so a run survives reruns
and page switches, and the server decides (fairly, for everyone) when it may
start.  When the run ends, one full rerun swaps the live panel for the results.
"""

from __future__ import annotations

import time

import streamlit as st

from explorer import texts, train_form, training, visibility
from explorer.sidebar import current
from sae.io.tables import history_csv
from sae.plots import training as charts
from sae.runs.jobs import ENDED, FAILED, QUEUED, STOPPING, TrainingJob, default_manager

POLL_S = 1.0  # the progress bar and the loss chart
SLOW_POLL_S = 3.0  # reconstructions, spike rates, epoch losses: they change at evaluations only


def show_status(job: TrainingJob, snap) -> None:
    if snap.status == QUEUED:
        st.info(training.queue_text(job, snap), icon=":material/hourglass_top:")
        st.button("Cancel", on_click=job.stop, key="tr_cancel", icon=":material/cancel:")
        return
    st.progress(snap.progress, text=training.progress_text(snap))
    if snap.status == FAILED:
        st.error(f"Training failed: {snap.error}")
    elif snap.status == ENDED:
        st.success(texts.REASONS.get(snap.reason, snap.reason))
    elif snap.status == STOPPING:
        st.warning("Stopping…")
    else:
        st.button(
            "Stop",
            on_click=training.stop_run,
            args=(job,),
            key="tr_stop",
            icon=":material/stop:",
            help="Ends the run within a second; the model is kept.",
        )


def show_loss(snap) -> None:
    """What changes every batch: the loss numbers and the loss chart."""
    history = snap.history
    tests = history["evals"]["test_loss"]
    cols = st.columns(4)
    cols[0].metric(
        "Held-out test loss",
        f"{tests[-1]:.4f}" if tests else "…",
        delta=f"{tests[-1] - tests[-2]:+.4f}" if len(tests) > 1 else None,
        delta_color="inverse",
        help="MSE per pixel on the fixed held-out test digits, measured several times a minute.",
    )
    cols[1].metric("Best so far", f"{min(tests):.4f}" if tests else "…")
    cols[2].metric("Steps", f"{snap.step:,}")
    cols[3].metric("Tutorial after 10 epochs", f"{texts.TUTORIAL_LOSS:.2f}", help="The loss the tutorial reports, for scale.")
    st.plotly_chart(charts.loss_figure(history, {"tutorial after 10 epochs": texts.TUTORIAL_LOSS}), key="train_loss_chart")


def show_evaluations(snap) -> None:
    """What changes only at an evaluation or an epoch's end: reconstructions, epoch losses, spike rates."""
    history, latest = snap.history, snap.latest
    left, right = st.columns([3, 2])
    with left:
        if latest is not None:
            caption = f"Held-out digits, reconstructed at step {latest.step}"
            st.plotly_chart(charts.reconstruction_grid(latest.inputs, latest.reconstructions, caption), key="train_recon_chart")
        else:
            st.caption("The reconstructions of fixed test digits appear here after the first evaluation.")
    with right:
        if history["epochs"]["epoch"]:
            st.plotly_chart(charts.epoch_figure(history), key="train_epoch_chart")
        else:
            st.caption("Train and test loss per epoch appear here at the end of each epoch.")
    st.plotly_chart(charts.spike_rate_figure(history), key="train_rates_chart")


@st.fragment(run_every=POLL_S)
def live_panel() -> None:
    """Polls the job once a second; when it has ended, one full rerun shows the results."""
    job = training.current_job()
    snap = default_manager().poll(training.owner(), job)
    show_status(job, snap)
    if snap.status != QUEUED:
        show_loss(snap)
    if not snap.active:
        st.rerun(scope="app")


@st.fragment(run_every=SLOW_POLL_S)
def evaluation_panel() -> None:
    """The charts that change a few times a minute, redrawn less often: on a small CPU
    every redraw (in the server and in the browser) is time taken from training."""
    job = training.current_job()
    snap = default_manager().poll(training.owner(), job)
    if snap.status != QUEUED:
        show_evaluations(snap)


def show_result(job: TrainingJob, snap) -> None:
    """Save the model (once it has learned something) and download the history."""
    if snap.has_model:
        st.subheader("Keep this model")
        show_save(job)
    if snap.history["batch"]["step"]:
        st.download_button(
            "Training history (.csv)",
            lambda: history_csv(snap.history),
            file_name=f"training_{job.id}.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
            help="Every batch loss, held-out evaluation and epoch.",
        )


def show_save(job: TrainingJob) -> None:
    saved = training.saved(job)
    if saved.get("name"):
        st.success(
            f"Saved as **{saved['name']}** (test MSE {saved['test_mse']:.4f} on all {saved['test_images']:,} "
            f"test images) in `{saved['path']}`. It is in the sidebar's checkpoint list now."
        )
        st.button(
            "Open it in Explore",
            key="tr_open_explore",
            on_click=training.open_in_explore,
            args=(saved["name"],),
            type="primary",
            icon=":material/biotech:",
        )
        return
    if saved.get("error"):
        st.error(f"Not saved: {saved['error']}")
    with st.form("tr_save_form", border=False):
        st.session_state.setdefault("tr_save_name", f"my_sae_{time.strftime('%H%M')}")
        st.text_input(
            "Name", key="tr_save_name", max_chars=64, help="Letters, digits, - _ and . only. Saved with its settings, history and test MSE."
        )
        st.form_submit_button("Save checkpoint", key="tr_save", icon=":material/save:", on_click=training.save_run, args=(job,))
    st.caption("Starting a new run replaces this one: save it first to keep it.")


# ------------------------------------------------------------------ the page

if training.take_goto_explore():
    st.switch_page("pages/views/explore.py")

st.title(":material/model_training: Train a spiking autoencoder")
st.caption(texts.TRAIN_INTRO)
train_form.first_visit_defaults(current().device)
job: TrainingJob | None = training.current_job()
running = job is not None and job.active
train_form.preset_choice(locked=running)
with st.expander("Settings: the network, the training, how long, where", expanded=job is None):
    train_form.settings_form(locked=running)
counts = default_manager().counts()
if visibility.shown("train_start"):
    st.button(
        "Start training",
        key="tr_start",
        type="primary",
        on_click=training.start_run,
        disabled=running or visibility.locked("train_start"),
        icon=":material/play_arrow:",
        help=f"This server trains {counts['capacity']} run(s) at once; more wait in line.",
    )
if st.session_state.get(training.NOTICE):
    st.error(st.session_state[training.NOTICE])
if job is None:
    st.info(texts.NOTHING_TRAINED)
elif running:
    live_panel()
    evaluation_panel()
else:
    snap = default_manager().poll(training.owner(), job)
    show_status(job, snap)
    show_result(job, snap)
    show_loss(snap)
    show_evaluations(snap)
