"""The sidebar every page shares: device, checkpoint and the inference settings.

``render_sidebar()`` runs in app.py before the page, so its widgets keep their
values across pages.  Pages read the result with ``current()``.  The settings
live in the URL (query parameters) so a shared link opens the same view.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explorer import state
from explorer.resources import ready_for_inference, shared_checkpoint
from sae import limits
from sae.devices import device_status
from sae.io.checkpoints import Checkpoint, CheckpointError, default_checkpoint_path, list_checkpoints, load_checkpoint
from sae.model import check_neuron_settings

UPLOAD_LABEL = "uploaded: "
NEURON_RANGES = {"sb_thresh": limits.THRESH, "sb_beta": limits.BETA, "sb_steps": limits.NUM_STEPS}
# Session-state key -> URL query parameter.
URL_KEYS = {"sb_checkpoint": "ckpt", "sb_device": "device", "sb_thresh": "thresh", "sb_beta": "beta", "sb_steps": "steps"}


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose: the model to run and how to run it."""

    checkpoint: Checkpoint
    checkpoint_name: str
    device: str
    thresh: float
    beta: float
    num_steps: int

    @property
    def model(self):
        return self.checkpoint.model

    def overrides(self) -> dict:
        return {"thresh": self.thresh, "beta": self.beta, "num_steps": self.num_steps}


def current() -> Settings:
    """The settings app.py's sidebar chose in this run (every page calls this first)."""
    return st.session_state["settings"]


def _trained_values(ckpt: Checkpoint) -> dict:
    c = ckpt.config
    return {"sb_thresh": float(c.thresh), "sb_beta": float(c.beta), "sb_steps": int(c.num_steps)}


def _reset_to_checkpoint():
    st.session_state.update(st.session_state["_sb_trained_values"])


def _read_url_once():
    """On a session's first run, take the settings a shared link carries.

    A value out of range is corrected to the nearest allowed one, and a value that
    is no number at all is ignored; either way the sidebar says so in one line."""
    if st.session_state.get("_sb_url_read"):
        return
    st.session_state["_sb_url_read"] = True
    params = st.query_params
    messages = []
    for key, param in URL_KEYS.items():
        if param not in params:
            continue
        raw = params[param]
        rng = NEURON_RANGES.get(key)
        if rng is None:
            st.session_state[key] = raw
            continue
        try:
            value = rng.parse(raw)
        except ValueError:
            messages.append(f"ignored {param}={raw!r} from the link: not a number")
            continue
        if rng.problem(value):
            fixed = rng.clamp(value)
            messages.append(f"{param} {raw} from the link is outside {rng.describe()}; using {fixed:g}")
            value = fixed
        st.session_state[key] = value
    st.session_state["_sb_url_messages"] = messages


def _checkpoint_choices() -> dict[str, object]:
    """Label -> path (or an uploaded Checkpoint).  Shipped ones come first and keep
    their plain names; a user file with a shipped file's name gets a suffix."""
    choices = {}
    for info in list_checkpoints():
        label = info.name if info.name not in choices else f"{info.name} (trained here)"
        choices[label] = info.path
    uploaded = st.session_state.get("_sb_uploaded")
    if uploaded is not None:
        choices[UPLOAD_LABEL + uploaded[0]] = uploaded[1]
    return choices


def _on_upload():
    file = st.session_state.get("sb_upload")
    if file is None:
        return
    try:
        ckpt = load_checkpoint(file.getvalue())
    except CheckpointError as error:
        st.session_state["_sb_upload_error"] = f"{file.name}: {error}"
        return
    st.session_state["_sb_upload_error"] = None
    st.session_state["_sb_uploaded"] = (file.name, ckpt)
    st.session_state["sb_checkpoint"] = UPLOAD_LABEL + file.name


def render_sidebar() -> Settings:
    _read_url_once()
    sidebar = st.sidebar
    for message in st.session_state.get("_sb_url_messages", []):
        sidebar.warning(message)

    status = device_status()
    devices = [name for name, why in status.items() if why is None]
    if st.session_state.get("sb_device") not in devices:
        st.session_state["sb_device"] = devices[0]
    device = sidebar.selectbox("Device", devices, key="sb_device", help="Where the network runs. Only devices present here are listed.")
    missing = [f"{name}: {why}" for name, why in status.items() if why]
    if missing:
        sidebar.caption("Not available here — " + "; ".join(missing))

    choices = _checkpoint_choices()
    requested = state.take_checkpoint_request()
    if requested in choices:
        st.session_state["sb_checkpoint"] = requested
    default_name = default_checkpoint_path().stem
    if st.session_state.get("sb_checkpoint") not in choices:
        st.session_state["sb_checkpoint"] = default_name if default_name in choices else next(iter(choices), None)
    if not choices:
        sidebar.error("No checkpoint found: the shipped checkpoints/ folder is empty.")
        st.stop()
    name = sidebar.selectbox("Checkpoint", list(choices), key="sb_checkpoint", help="Shipped weights, ones trained in this app, or an upload.")
    sidebar.file_uploader(
        "Upload a checkpoint (.pt)",
        type=["pt", "pth"],
        key="sb_upload",
        on_change=_on_upload,
        max_upload_size=20,
        help="Checked before use: weights only, at most 20 MB, shapes must match.",
    )
    if st.session_state.get("_sb_upload_error"):
        sidebar.error(st.session_state["_sb_upload_error"])

    source = choices[name]
    try:
        # An upload is this session's own copy; files are loaded once per process.
        ckpt = ready_for_inference(source, device) if isinstance(source, Checkpoint) else shared_checkpoint(source, device)
    except (CheckpointError, OSError) as error:
        sidebar.error(f"Cannot load {name}: {error}")
        st.stop()

    trained = _trained_values(ckpt)
    if st.session_state.get("_sb_trained_for") != name:
        # A new checkpoint starts from its own values, unless a shared link set them.
        if (
            st.session_state.get("_sb_trained_for") is not None
            or not st.session_state.get("_sb_url_messages")
            and not any(URL_KEYS[k] in st.query_params for k in trained)
        ):
            st.session_state.update(trained)
        st.session_state["_sb_trained_for"] = name
        st.session_state["_sb_trained_values"] = trained
    for key, value in trained.items():
        st.session_state.setdefault(key, value)

    sidebar.subheader("Neuron settings")
    thresh = sidebar.slider(
        "thresh (firing threshold)",
        limits.THRESH.low,
        limits.THRESH.high,
        key="sb_thresh",
        step=limits.THRESH.step,
        help="A neuron spikes when its membrane passes this value. Higher: fewer spikes.",
    )
    beta = sidebar.slider(
        "beta (membrane decay)",
        limits.BETA.low,
        limits.BETA.high,
        key="sb_beta",
        step=limits.BETA.step,
        help="How much membrane potential survives each step: 0 forgets at once, 1 never leaks.",
    )
    steps = sidebar.slider(
        "num_steps (time steps)",
        limits.NUM_STEPS.low,
        limits.NUM_STEPS.high,
        key="sb_steps",
        help="How many times the image is presented; the output is read at the last step.",
    )
    sidebar.button("Reset to the checkpoint's values", on_click=_reset_to_checkpoint, width="stretch")
    sidebar.caption(f"Trained with thresh {trained['sb_thresh']:g}, beta {trained['sb_beta']:g}, num_steps {trained['sb_steps']}.")
    check_neuron_settings(thresh, beta, steps)

    for key, param in URL_KEYS.items():
        value = st.session_state.get(key)
        text = f"{value:g}" if isinstance(value, float) else str(value)  # 0.35, not 0.35000000000000003
        if value is not None and st.query_params.get(param) != text:
            st.query_params[param] = text
    settings = Settings(ckpt, name, device, float(thresh), float(beta), int(steps))
    st.session_state["settings"] = settings
    return settings
