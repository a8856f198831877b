"""Train: pick a few settings, press Start and watch the network learn, live.

Widgets -> a ``sae.jobs`` training job running in a background thread -> snapshots
-> ``sae.plots.training`` figures.  The page never trains: it polls the job from a
fragment once a second, so a run survives reruns and page switches, and the
server decides (fairly, for everyone) when it may start.  When the run ends,
one full rerun swaps the live panel for the results: save, download.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import streamlit as st

from explorer.resources import test_set, train_set
from explorer.sidebar import current
from sae.checkpoints import USER_DIR, CheckpointError, list_checkpoints, safe_name, save_checkpoint
from sae.data import DataUnavailableError
from sae.devices import DeviceUnavailableError, available_devices
from sae.jobs import ENDED, FAILED, QUEUED, STOPPING, JobLimitError, TrainingJob, default_manager, history_csv
from sae.model import SAEConfig
from sae.plots import training as charts
from sae.recipes import RECIPES
from sae.train import TrainConfig, final_metrics

POLL_S = 1.0  # the progress bar and the loss chart
SLOW_POLL_S = 3.0  # reconstructions, spike rates, epoch losses: they change at evaluations only
STOP_WAIT_S = 1.0  # a stopped run ends within a layer or two: usually far sooner
MAX_EVAL_EVERY_S = 15.0  # the held-out loss at least four times a minute
TUTORIAL_LOSS = 0.05  # the tutorial's "around 0.05" after 10 epochs (design.md section 7)
PRESETS = {"One minute": RECIPES["fast"], "Tutorial": RECIPES["tutorial"], "Longer": RECIPES["longer"]}
PRESET_HELP = {
    "One minute": "this project's fast recipe, 60 seconds: aims at the tutorial's final loss (0.05)",
    "Tutorial": "the tutorial's exact recipe: AdamW lr 1e-4, 10 epochs (about 25 minutes on a laptop CPU)",
    "Longer": "the fast recipe with more time: a sharper model",
}
ALL_IMAGES = 60_000
LR_CHOICES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 6e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
DECAY_CHOICES = (0.0, 1e-4, 1e-3, 1e-2, 0.1)
JOB, OWNER, SAVED, NOTICE = "train_job", "_train_owner", "_train_saved", "_train_notice"
WIDGETS = ("tr_latent_dim", "tr_beta", "tr_thresh", "tr_num_steps", "tr_surrogate", "tr_lr", "tr_batch_size", "tr_loss",
           "tr_epochs", "tr_time_budget", "tr_subset", "tr_seed", "tr_weight_decay", "tr_schedule", "tr_warmup",
           "tr_eval_images", "tr_device")
REASONS = {
    "completed": "Finished: every planned epoch is done.",
    "time budget": "Finished: the time limit was reached.",
    "stopped": "Stopped. The model keeps everything it learned up to the last completed batch.",
    "abandoned": "This run was stopped because its browser tab was gone.",
    "cancelled": "Cancelled before it started.",
}


# ------------------------------------------------------------------ settings


def preset_values(name: str) -> dict:
    """Widget values for a preset: the tutorial's network and the recipe's training settings."""
    cfg, net = PRESETS[name], SAEConfig()
    return {"tr_latent_dim": net.latent_dim, "tr_beta": net.beta, "tr_thresh": net.thresh, "tr_num_steps": net.num_steps,
            "tr_surrogate": net.surrogate, "tr_lr": cfg.lr, "tr_batch_size": cfg.batch_size, "tr_loss": cfg.loss,
            "tr_epochs": cfg.epochs, "tr_time_budget": int(cfg.time_budget or 0), "tr_subset": cfg.train_subset or ALL_IMAGES,
            "tr_seed": cfg.seed, "tr_weight_decay": cfg.weight_decay, "tr_schedule": cfg.schedule,
            "tr_warmup": cfg.warmup_steps, "tr_eval_images": cfg.eval_images}


def apply_preset() -> None:
    st.session_state.update(preset_values(st.session_state["tr_preset"]))


def restore_settings() -> None:
    """Widget state is dropped while another page shows: put this session's settings back."""
    saved = st.session_state.setdefault("_tr_saved", {})
    st.session_state.setdefault("tr_preset", "One minute")
    defaults = {**preset_values(st.session_state["tr_preset"]), **saved}
    for key in WIDGETS:
        if key not in st.session_state and key in defaults:
            st.session_state[key] = defaults[key]


def remember_settings() -> None:
    st.session_state["_tr_saved"] = {key: st.session_state[key] for key in WIDGETS + ("tr_preset",) if key in st.session_state}


def with_value(choices, value) -> list:
    return sorted(set(choices) | {value})


def preset_choice(locked: bool) -> None:
    st.radio("Preset", list(PRESETS), key="tr_preset", horizontal=True, on_change=apply_preset, disabled=locked,
             captions=[PRESET_HELP[name] for name in PRESETS], help="Sets every setting below; change any of them after.")


def settings_form(locked: bool) -> None:
    net_col, train_col, run_col, more_col = st.columns(4)
    with net_col:
        st.markdown("**The network**")
        st.select_slider("latent_dim (size of the code)", [4, 8, 16, 32, 64, 128], key="tr_latent_dim", disabled=locked,
                         help="How many spiking neurons carry the image from encoder to decoder.")
        st.slider("beta (membrane decay)", 0.0, 1.0, step=0.05, key="tr_beta", disabled=locked)
        st.slider("thresh (firing threshold)", 0.1, 5.0, step=0.1, key="tr_thresh", disabled=locked)
        st.slider("num_steps (time steps)", 1, 20, key="tr_num_steps", disabled=locked,
                  help="Each step costs a full pass: training time grows with it.")
        st.radio("Surrogate gradient", ["atan", "fast_sigmoid"], key="tr_surrogate", horizontal=True, disabled=locked,
                 help="The smooth stand-in for the spike's derivative used in the backward pass.")
    with train_col:
        st.markdown("**Training**")
        st.select_slider("Learning rate", with_value(LR_CHOICES, st.session_state["tr_lr"]), key="tr_lr",
                         format_func=lambda v: f"{v:g}", disabled=locked, help="AdamW's step size. Too high and the loss explodes.")
        st.number_input("Batch size", 1, 1024, key="tr_batch_size", disabled=locked)
        st.radio("Loss on", ["last", "every"], key="tr_loss", horizontal=True, disabled=locked,
                 format_func={"last": "the last step", "every": "every step (mean)"}.get,
                 help="MSE of the output at the last time step (the tutorial), or averaged over all steps.")
        st.number_input("Training images", 10, ALL_IMAGES, step=1000, key="tr_subset", disabled=locked,
                        help=f"Use only the first N of MNIST's {ALL_IMAGES:,} training images.")
        st.number_input("Seed", 0, 2**31 - 1, key="tr_seed", disabled=locked, help="Same seed, same settings: same run.")
    with run_col:
        st.markdown("**How long, and where**")
        st.number_input("Epochs", 1, 100, key="tr_epochs", disabled=locked)
        st.number_input("Time limit (seconds, 0: none)", 0, 7200, step=10, key="tr_time_budget", disabled=locked,
                        help="The run stops at the time limit or after the epochs, whichever comes first.")
        devices = available_devices()
        if st.session_state.get("tr_device") not in devices:
            st.session_state["tr_device"] = current().device if current().device in devices else devices[0]
        st.selectbox("Device", devices, key="tr_device", disabled=locked, help="Only devices present here are listed.")
    with more_col:
        st.markdown("**Fine print**")
        st.select_slider("Weight decay", with_value(DECAY_CHOICES, st.session_state["tr_weight_decay"]),
                         key="tr_weight_decay", format_func=lambda v: f"{v:g}", disabled=locked)
        st.radio("Schedule", ["constant", "cosine"], key="tr_schedule", horizontal=True, disabled=locked,
                 help="cosine: the learning rate decays to zero over the run.")
        st.number_input("Warm-up steps", 0, 10_000, key="tr_warmup", disabled=locked)
        st.number_input("Held-out test images", 10, 10_000, step=100, key="tr_eval_images", disabled=locked,
                        help="The live test loss is measured on these (the first N test images).")
    remember_settings()


def configs_from_widgets() -> tuple[SAEConfig, TrainConfig]:
    s = st.session_state
    net = SAEConfig(latent_dim=int(s.tr_latent_dim), beta=float(s.tr_beta), thresh=float(s.tr_thresh),
                    num_steps=int(s.tr_num_steps), surrogate=s.tr_surrogate)
    recipe = PRESETS[s.tr_preset]
    subset = int(s.tr_subset)
    cfg = replace(recipe, lr=float(s.tr_lr), batch_size=int(s.tr_batch_size), loss=s.tr_loss, epochs=int(s.tr_epochs),
                  time_budget=float(s.tr_time_budget) or None, train_subset=None if subset >= ALL_IMAGES else subset,
                  seed=int(s.tr_seed), weight_decay=float(s.tr_weight_decay), schedule=s.tr_schedule,
                  warmup_steps=int(s.tr_warmup), eval_images=int(s.tr_eval_images), device=s.tr_device,
                  eval_every_s=min(recipe.eval_every_s, MAX_EVAL_EVERY_S))
    return net, cfg


# ------------------------------------------------------------------ the run


def owner() -> str:
    return st.session_state.setdefault(OWNER, uuid.uuid4().hex)


def session_alive_check():
    """A check the worker may call from its thread: is this browser session still connected?"""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None  # no server (tests): only polling keeps the run alive
    instance, session_id = runtime.get_instance(), ctx.session_id
    return lambda: instance.is_active_session(session_id)


def start_run() -> None:
    """Start button callback: runs before the script, so the settings render locked at once."""
    try:
        net, cfg = configs_from_widgets()
        train_images, test_images = train_set()[0], test_set()[0]
        job = default_manager().submit(owner(), net, cfg, train_images, test_images, keepalive=session_alive_check())
    except (ValueError, JobLimitError, DeviceUnavailableError, DataUnavailableError) as error:
        st.session_state[NOTICE] = str(error)
        return
    st.session_state[JOB] = job
    st.session_state[NOTICE] = None
    st.session_state.pop("tr_save_name", None)  # a fresh default name for the new run


def stop_run(job: TrainingJob) -> None:
    """Stop button callback: wait a moment for the run to end, so this very rerun can show the result."""
    job.stop()
    job.wait(STOP_WAIT_S)


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def show_status(job: TrainingJob, snap) -> None:
    if snap.status == QUEUED:
        counts = default_manager().counts()
        st.info(f"Queued: your run is number **{snap.queue_position}** in line for {job.device}. This server trains "
                f"{counts['capacity']} run(s) at once ({counts['running']} running, {counts['queued']} waiting); yours starts "
                "by itself when a place frees up. Keep this page open.", icon=":material/hourglass_top:")
        st.button("Cancel", on_click=job.stop, key="tr_cancel", icon=":material/cancel:")
        return
    rate = f"{snap.images_per_s:,.0f} images/s" if snap.images_per_s else "measuring speed…"
    text = (f"{snap.progress:.0%} · {minutes(snap.elapsed)} elapsed · about {minutes(snap.eta)} left · {rate} · "
            f"step {snap.step}, epoch {snap.epoch + 1}")
    if snap.status == ENDED:
        text = f"{snap.progress:.0%} · {minutes(snap.elapsed)} of training · {snap.step} steps"
    st.progress(snap.progress, text=text)
    if snap.status == FAILED:
        st.error(f"Training failed: {snap.error}")
    elif snap.status == ENDED:
        st.success(REASONS.get(snap.reason, snap.reason))
    elif snap.status == STOPPING:
        st.warning("Stopping…")
    else:
        st.button("Stop", on_click=stop_run, args=(job,), key="tr_stop", icon=":material/stop:",
                  help="Ends the run within a second; the model is kept.")


def show_loss(snap) -> None:
    """What changes every batch: the loss numbers and the loss chart."""
    history = snap.history
    tests = history["evals"]["test_loss"]
    cols = st.columns(4)
    cols[0].metric("Held-out test loss", f"{tests[-1]:.4f}" if tests else "…",
                   delta=f"{tests[-1] - tests[-2]:+.4f}" if len(tests) > 1 else None, delta_color="inverse",
                   help="MSE per pixel on the fixed held-out test digits, measured several times a minute.")
    cols[1].metric("Best so far", f"{min(tests):.4f}" if tests else "…")
    cols[2].metric("Steps", f"{snap.step:,}")
    cols[3].metric("Tutorial after 10 epochs", f"{TUTORIAL_LOSS:.2f}", help="The loss the tutorial reports, for scale.")
    st.plotly_chart(charts.loss_figure(history, {"tutorial after 10 epochs": TUTORIAL_LOSS}), key="train_loss_chart")


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
    job = st.session_state[JOB]
    snap = default_manager().poll(owner(), job)
    show_status(job, snap)
    if snap.status != QUEUED:
        show_loss(snap)
    if not snap.active:
        st.rerun(scope="app")


@st.fragment(run_every=SLOW_POLL_S)
def evaluation_panel() -> None:
    """The charts that change a few times a minute, redrawn less often: on a small CPU
    every redraw (in the server and in the browser) is time taken from training."""
    job = st.session_state[JOB]
    snap = default_manager().poll(owner(), job)
    if snap.status != QUEUED:
        show_evaluations(snap)


# ------------------------------------------------------------------ the result


def measured_metrics(job: TrainingJob) -> dict:
    """Test MSE and spike rates on the whole test set, as ``python -m sae train`` records them."""
    test_images = test_set()[0]
    with st.spinner(f"Measuring the test MSE on all {len(test_images):,} test images…"):
        return final_metrics(job.model, test_images, job.result)


def save_run(job: TrainingJob) -> None:
    """Save button callback: measure, then write the checkpoint atomically into the user folder."""
    name = st.session_state.get("tr_save_name", "")
    try:
        stem = safe_name(name)
        if stem in {info.name for info in list_checkpoints() if info.shipped}:
            raise CheckpointError(f"{stem!r} is the name of a shipped checkpoint: choose another")
        if (USER_DIR / f"{stem}.pt").exists():
            raise CheckpointError(f"a checkpoint named {stem!r} exists already: choose another name")
        metrics = measured_metrics(job)
        provenance = {"command": "Train page", "seed": job.train_config.seed, "train_config": job.train_config.to_dict(),
                      "preset": st.session_state.get("tr_preset")}
        path = save_checkpoint(USER_DIR / f"{stem}.pt", job.model, metrics=metrics, history=job.result.history,
                               provenance=provenance)
    except (CheckpointError, OSError) as error:
        st.session_state[SAVED] = {"job": job.id, "error": str(error)}
        return
    st.session_state[SAVED] = {"job": job.id, "name": stem, "path": str(path), "test_mse": metrics["test_mse"],
                               "test_images": metrics["test_images"]}


def open_in_explore(name: str) -> None:
    st.session_state["sb_checkpoint"] = name  # the sidebar's checkpoint choice
    st.session_state["_train_goto_explore"] = True


def show_result(job: TrainingJob, snap) -> None:
    """Save the model (once it has learned something) and download the history."""
    if snap.has_model:
        st.subheader("Keep this model")
        show_save(job)
    if snap.history["batch"]["step"]:
        st.download_button("Training history (.csv)", lambda: history_csv(snap.history), file_name=f"training_{job.id}.csv",
                           mime="text/csv", on_click="ignore", icon=":material/download:",
                           help="Every batch loss, held-out evaluation and epoch.")


def show_save(job: TrainingJob) -> None:
    saved = st.session_state.get(SAVED) or {}
    saved = saved if saved.get("job") == job.id else {}
    if saved.get("name"):
        st.success(f"Saved as **{saved['name']}** (test MSE {saved['test_mse']:.4f} on all {saved['test_images']:,} "
                   f"test images) in `{saved['path']}`. It is in the sidebar's checkpoint list now.")
        st.button("Open it in Explore", key="tr_open_explore", on_click=open_in_explore, args=(saved["name"],),
                  type="primary", icon=":material/biotech:")
        return
    if saved.get("error"):
        st.error(f"Not saved: {saved['error']}")
    with st.form("tr_save_form", border=False):
        st.session_state.setdefault("tr_save_name", f"my_sae_{time.strftime('%H%M')}")
        st.text_input("Name", key="tr_save_name", max_chars=64,
                      help="Letters, digits, - _ and . only. Saved with its settings, history and test MSE.")
        st.form_submit_button("Save checkpoint", key="tr_save", icon=":material/save:", on_click=save_run, args=(job,))
    st.caption("Starting a new run replaces this one: save it first to keep it.")


# ------------------------------------------------------------------ the page

current()
if st.session_state.pop("_train_goto_explore", False):
    st.switch_page("pages/views/explore.py")

st.title(":material/model_training: Train a spiking autoencoder")
st.caption("Pick a preset (or your own settings), press Start and watch the loss fall and the reconstructions "
           "sharpen. The run goes on while you look at other pages; it is yours alone, and it never changes the "
           "model other people are exploring.")
restore_settings()
job: TrainingJob | None = st.session_state.get(JOB)
running = job is not None and job.active
preset_choice(locked=running)
with st.expander("Settings: the network, the training, how long, where", expanded=job is None):
    settings_form(locked=running)
counts = default_manager().counts()
st.button("Start training", key="tr_start", type="primary", on_click=start_run, disabled=running, icon=":material/play_arrow:",
          help=f"This server trains {counts['capacity']} run(s) at once; more wait in line.")
if st.session_state.get(NOTICE):
    st.error(st.session_state[NOTICE])
if job is None:
    st.info("Nothing trained yet in this session. The 'One minute' preset reaches the tutorial's final loss in about a minute.")
elif running:
    live_panel()
    evaluation_panel()
else:
    snap = default_manager().poll(owner(), job)
    show_status(job, snap)
    show_result(job, snap)
    show_loss(snap)
    show_evaluations(snap)
