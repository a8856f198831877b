"""The sidebar every page shares: device, checkpoint and the neuron settings.

``render_sidebar()`` runs in app.py before the page, so its widgets keep their
values across pages.  Pages read the result with ``current()``: a :class:`Settings`
holding the model to run and, as one :class:`~sae.model.NeuronSettings`, how to run
it.  The settings live in the URL (query parameters) so a shared link opens the
same view; the link's values arrive already parsed (``explorer.links``).

The checkpoint list holds the shipped checkpoints, the class's (the teacher's), the
student's own saved runs and the ones classmates chose to share
(``sae.io.student_checkpoints``); an owner can share or delete their own here.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explorer import links, owner, state, visibility
from explorer.resources import ready_for_inference, shared_checkpoint
from sae import limits
from sae.devices import device_status
from sae.io import student_checkpoints
from sae.io.checkpoints import Checkpoint, CheckpointError, default_checkpoint_path, list_checkpoints, load_checkpoint
from sae.io.fingerprints import served_model_fingerprint
from sae.model import NeuronSettings

UPLOAD_LABEL = "uploaded: "
# NeuronSettings field -> its slider's session-state key.
NEURON_KEYS = {"thresh": "sb_thresh", "beta": "sb_beta", "num_steps": "sb_steps"}
# Session-state key -> URL query parameter (links in the wild carry ?thresh=&beta=&steps=).
# (control, key, label, range, help) of the three sliders.
SLIDERS = (
    ("thresh", "sb_thresh", "thresh (firing threshold)", limits.THRESH, "A neuron spikes when its membrane passes this value. Higher: fewer spikes."),
    ("beta", "sb_beta", "beta (membrane decay)", limits.BETA, "How much membrane potential survives each step: 0 forgets at once, 1 never leaks."),
    ("steps", "sb_steps", "num_steps (time steps)", limits.NUM_STEPS, "How many times the image is presented; the output is read at the last step."),
)
URL_KEYS = {"sb_checkpoint": "ckpt", "sb_device": "device", "sb_thresh": "thresh", "sb_beta": "beta", "sb_steps": "steps"}


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose: the model to run, where, and its neuron settings."""

    checkpoint: Checkpoint
    checkpoint_name: str
    model_key: str  # the weights' fingerprint: what caches key a model by (a name or an id() can be reused)
    device: str
    neuron: NeuronSettings

    @property
    def model(self):
        return self.checkpoint.model


def current() -> Settings:
    """The settings app.py's sidebar chose in this run (every page calls this first)."""
    return st.session_state["settings"]


def render_sidebar() -> Settings:
    _read_url_once()
    sidebar = st.sidebar
    device = _device_picker(sidebar)
    name, ckpt = _checkpoint_picker(sidebar, device)
    trained = ckpt.config.neuron_settings()
    _start_from(name, trained)
    neuron = _neuron_sliders(sidebar, trained)
    _write_url()
    settings = Settings(ckpt, name, served_model_fingerprint(ckpt.model), device, neuron)
    st.session_state["settings"] = settings
    return settings


# --------------------------------------------------------------------------- the link


def _read_url_once():
    """On a session's first run, take the settings a shared link carries (parsed and corrected,
    each with its line, by ``explorer.links``).  The checkpoint and the device are checked when
    the lists are drawn: one not offered here is replaced, with a line."""
    if st.session_state.get("_sb_url_read"):
        return
    st.session_state["_sb_url_read"] = True
    for key, param in URL_KEYS.items():
        if links.given(param):
            st.session_state[key] = links.value(param)
    st.session_state["_sb_link_values"] = {param: links.value(param) for param in ("ckpt", "device") if links.given(param)}


def _replaced_from_link(param: str, what: str, used) -> None:
    """A line when the link named a ``param`` this list does not offer (the first run only).
    Both values already fit the table's shape for ``param`` (``teaching.controls``), so they are shown as they are."""
    wanted = st.session_state.get("_sb_link_values", {}).pop(param, None)
    if wanted is not None and wanted != used:
        links.say(f"{what} '{wanted}' from the link is not offered here; using '{used}'")


def _write_url() -> None:
    """Mirror the sidebar's values into the address bar, so the link reproduces the view.
    An upload is not written: no link can carry it."""
    for key, param in URL_KEYS.items():
        value = st.session_state.get(key)
        text = f"{value:g}" if isinstance(value, float) else str(value)  # 0.35, not 0.35000000000000003
        if value is None or text.startswith(UPLOAD_LABEL):
            if param in st.query_params:
                del st.query_params[param]
        elif st.query_params.get(param) != text:
            st.query_params[param] = text


# --------------------------------------------------------------------------- device and checkpoint


def _device_picker(sidebar) -> str:
    status = device_status()
    devices = [name for name, why in status.items() if why is None]
    if st.session_state.get("sb_device") not in devices:
        st.session_state["sb_device"] = devices[0]
    _replaced_from_link("device", "device", st.session_state["sb_device"])
    if not visibility.shown("device"):
        return st.session_state["sb_device"]
    device = sidebar.selectbox(
        "Device", devices, key="sb_device", disabled=visibility.locked("device"), help="Where the network runs. Only devices present here are listed."
    )
    missing = [f"{name}: {why}" for name, why in status.items() if why]
    if missing:
        sidebar.caption("Not available here — " + "; ".join(missing))
    return device


def _checkpoint_choices() -> tuple[dict[str, object], dict[str, student_checkpoints.Saved]]:
    """Label -> path (or an uploaded Checkpoint), and label -> Saved for this student's own.

    Shipped ones come first and keep their plain names, then the class's (the teacher's),
    this student's own, and those classmates share.  A name met twice gets a suffix that
    says whose it is (the labels fit the link's ``ckpt``: ``teaching.controls``)."""
    choices, own = {}, {}

    def add(name: str, suffix: str, source, plain: bool = True) -> str:
        label, count = name if plain and name not in choices else f"{name} ({suffix})", 1
        while label in choices:
            count += 1
            label = f"{name} ({suffix} {count})"
        choices[label] = source
        return label

    for info in list_checkpoints():
        add(info.name, "trained here", info.path)
    me = owner.owner()
    visible = student_checkpoints.visible_to(me)
    for saved in (s for s in visible if s.owner == me):
        own[add(saved.name, "yours", saved.path)] = saved
    for saved in (s for s in visible if s.owner != me):
        add(saved.name, "shared", saved.path, plain=False)
    uploaded = st.session_state.get("_sb_uploaded")
    if uploaded is not None:
        choices[UPLOAD_LABEL + uploaded[0]] = uploaded[1]
    return choices, own


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


def _checkpoint_picker(sidebar, device: str) -> tuple[str, Checkpoint]:
    """The checkpoint chooser and the upload; the chosen checkpoint loaded on ``device``."""
    choices, own = _checkpoint_choices()
    requested = state.take_checkpoint_request()
    requested = next((label for label, saved in own.items() if saved.name == requested), requested)
    if requested in choices:
        st.session_state["sb_checkpoint"] = requested
    default_name = default_checkpoint_path().stem
    if st.session_state.get("sb_checkpoint") not in choices:
        st.session_state["sb_checkpoint"] = default_name if default_name in choices else next(iter(choices), None)
    if not choices:
        sidebar.error("No checkpoint found: the shipped checkpoints/ folder is empty.")
        st.stop()
    _replaced_from_link("ckpt", "checkpoint", st.session_state["sb_checkpoint"])
    name = st.session_state["sb_checkpoint"]
    if visibility.shown("ckpt"):
        name = sidebar.selectbox(
            "Checkpoint",
            list(choices),
            key="sb_checkpoint",
            disabled=visibility.locked("ckpt"),
            help="Shipped weights, your own saved runs, those classmates share, or an upload.",
        )
    if name in own and visibility.state("ckpt") == "shown":  # not while a link keeps the checkpoint: deleting it would change it
        _own_checkpoint(sidebar, own[name])
    if visibility.shown("upload_checkpoint"):
        sidebar.file_uploader(
            "Upload a checkpoint (.pt)",
            type=["pt", "pth"],
            key="sb_upload",
            on_change=_on_upload,
            max_upload_size=20,
            disabled=visibility.locked("upload_checkpoint"),
            help="Checked before use: weights only, at most 20 MB, shapes must match.",
        )
    if st.session_state.get("_sb_upload_error"):
        sidebar.error(links.plain(st.session_state["_sb_upload_error"]))  # the file's name is the uploader's text
    source = choices[name]
    try:
        # An upload is this session's own copy; files are loaded once per process.
        ckpt = ready_for_inference(source, device) if isinstance(source, Checkpoint) else shared_checkpoint(source, device)
    except (CheckpointError, OSError) as error:
        # Without its folder: a student's is named by the owner id, which no other screen may show.
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        if not isinstance(source, Checkpoint):
            reason = reason.replace(str(source), source.name)
        sidebar.error(links.plain(f"Cannot load {name}: {reason}"))
        st.stop()
    owner.keep_in_browser(sidebar)
    return name, ckpt


# --------------------------------------------------------------------------- the student's own checkpoints


def _own_checkpoint(sidebar, saved: student_checkpoints.Saved) -> None:
    """Share a checkpoint of one's own with the class (or stop), or delete it."""
    st.session_state["sb_share"] = saved.shared  # the file's state, whichever checkpoint is chosen
    sidebar.checkbox(
        "Share it with the class",
        key="sb_share",
        on_change=_on_share,
        args=(saved,),
        help="Only you see the checkpoints you save, until you share one: then everyone on this server can open it.",
    )
    with sidebar.popover("Delete it", icon=":material/delete:"):
        st.caption(f"Delete {saved.name} for good?")
        st.button("Delete", key="sb_delete", on_click=_on_delete, args=(saved,), type="primary")
    if st.session_state.get("_sb_own_error"):
        sidebar.error(st.session_state.pop("_sb_own_error"))


def _on_share(saved: student_checkpoints.Saved) -> None:
    try:
        student_checkpoints.set_shared(saved.path, owner.owner(), bool(st.session_state.get("sb_share")))
    except (CheckpointError, OSError) as error:
        st.session_state["_sb_own_error"] = f"Not changed: {error}"


def _on_delete(saved: student_checkpoints.Saved) -> None:
    try:
        student_checkpoints.delete(saved.path, owner.owner())
    except (CheckpointError, OSError) as error:
        st.session_state["_sb_own_error"] = f"Not deleted: {error}"
        return
    st.session_state.pop("sb_checkpoint", None)  # the default checkpoint next


# --------------------------------------------------------------------------- neuron settings


def _slider_values(settings: NeuronSettings) -> dict:
    return {key: getattr(settings, field) for field, key in NEURON_KEYS.items()}


def _start_from(name: str, trained: NeuronSettings) -> None:
    """A newly chosen checkpoint starts from its own values, unless a shared link set them."""
    values = _slider_values(trained)
    if st.session_state.get("_sb_trained_for") != name:
        first_run_with_link = st.session_state.get("_sb_trained_for") is None and any(links.given(URL_KEYS[k]) for k in values)
        if not first_run_with_link:
            st.session_state.update(values)
        st.session_state["_sb_trained_for"] = name
        st.session_state["_sb_trained_values"] = values
    for key, value in values.items():
        st.session_state.setdefault(key, value)


def _reset_to_checkpoint():
    st.session_state.update(st.session_state["_sb_trained_values"])


def _neuron_sliders(sidebar, trained: NeuronSettings) -> NeuronSettings:
    sidebar.subheader("Neuron settings")
    thresh, beta, num_steps = (
        visibility.draw(name, sidebar.slider, label, rng.low, rng.high, key=key, step=rng.step, help=text) for name, key, label, rng, text in SLIDERS
    )
    if visibility.shown("reset_settings"):  # disabled too while a slider is locked: a reset would move it
        sidebar.button(
            "Reset to the checkpoint's values",
            on_click=_reset_to_checkpoint,
            width="stretch",
            disabled=visibility.locked("reset_settings") or any(visibility.locked(n) for n in ("thresh", "beta", "steps")),
        )
    sidebar.caption(f"Trained with thresh {trained.thresh:g}, beta {trained.beta:g}, num_steps {trained.num_steps}.")
    return NeuronSettings(thresh, beta, num_steps)
