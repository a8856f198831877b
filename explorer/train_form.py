"""The Train page's form: widgets <-> (SAEConfig, TrainConfig), derived from the dataclasses.

Each widget is keyed ``tr_<field>`` after the dataclass field it sets, so the
mapping both ways is one loop (no field listed twice).  Ranges and choices come
from ``sae.limits``; preset values from ``sae.training.recipes``.  Widgets keep their
values across pages with ``persist_state="session"``, as on the Compare page.
"""

from __future__ import annotations

from dataclasses import fields, replace

import streamlit as st

from explorer import texts, visibility
from sae import limits
from sae.devices import available_devices
from sae.model import SAEConfig
from sae.runs.jobs import default_manager
from sae.training.loop import TrainConfig
from sae.training.recipes import RECIPES

PRESETS = {"One minute": RECIPES["fast"], "Tutorial": RECIPES["tutorial"], "Longer": RECIPES["longer"]}
NET_FIELDS = ("latent_dim", "beta", "thresh", "num_steps", "surrogate")
TRAIN_FIELDS = (
    "lr",
    "batch_size",
    "loss",
    "train_subset",
    "seed",
    "epochs",
    "time_budget",
    "device",
    "weight_decay",
    "schedule",
    "warmup_steps",
    "eval_images",
    "calibrate",
)
MAX_EVAL_EVERY_S = 15.0  # the held-out loss at least four times a minute
KEEP = {"persist_state": "session"}  # a widget keeps its value while another page shows


def key(name: str) -> str:
    return f"tr_{name}"


def _to_widget(name: str, value):
    """Dataclass value -> widget value (the widgets have no 'None')."""
    if name == "time_budget":
        return int(value or 0)  # 0: no limit
    if name == "train_subset":
        return value or limits.TRAIN_IMAGES  # all images
    return value


def _from_widget(name: str, value):
    if name == "time_budget":
        return float(value) or None
    if name == "train_subset":
        return None if int(value) >= limits.TRAIN_IMAGES else int(value)
    kind = {f.name: f.type for f in fields(TrainConfig) + fields(SAEConfig)}[name]
    return int(value) if kind == "int" else float(value) if kind == "float" else value


def preset_values(preset: str) -> dict:
    """Widget values for a preset: the tutorial's network and the recipe's training settings."""
    net, cfg = SAEConfig(), PRESETS[preset]
    values = {key(n): _to_widget(n, getattr(net, n)) for n in NET_FIELDS}
    values.update({key(n): _to_widget(n, getattr(cfg, n)) for n in TRAIN_FIELDS if n != "device"})
    return values


def apply_preset() -> None:
    st.session_state.update(preset_values(st.session_state[key("preset")]))


def first_visit_defaults(device: str) -> None:
    """The One minute preset's values, set once per session before the widgets draw."""
    st.session_state.setdefault(key("preset"), "One minute")
    for name, value in preset_values(st.session_state[key("preset")]).items():
        st.session_state.setdefault(name, value)
    devices = available_devices()
    if st.session_state.get(key("device")) not in devices:
        st.session_state[key("device")] = device if device in devices else devices[0]


def configs() -> tuple[SAEConfig, TrainConfig]:
    """The form's values as the configs to train with (ValueError with a clear message when out of range)."""
    s = st.session_state
    net = replace(SAEConfig(), **{n: _from_widget(n, s[key(n)]) for n in NET_FIELDS})
    recipe = PRESETS[s[key("preset")]]
    cfg = replace(recipe, **{n: _from_widget(n, s[key(n)]) for n in TRAIN_FIELDS}, eval_every_s=min(recipe.eval_every_s, MAX_EVAL_EVERY_S))
    return net, cfg


def _with_value(choices, value) -> list:
    return sorted(set(choices) | {value})


def _shown(name: str) -> bool:
    """Whether a lesson link leaves field ``name`` on the page (its control is ``train_<name>``)."""
    return visibility.shown(f"train_{name}")


def _locked(name: str, running: bool) -> bool:
    return running or visibility.locked(f"train_{name}")


def _slider(rng: limits.Range, label: str, locked: bool, **extra):
    if _shown(rng.name):
        st.slider(label, rng.low, rng.high, step=rng.step, key=key(rng.name), disabled=_locked(rng.name, locked), **KEEP, **extra)


def _number(rng: limits.Range, label: str, locked: bool, **extra):
    if _shown(rng.name):
        st.number_input(label, rng.low, rng.high, step=rng.step, key=key(rng.name), disabled=_locked(rng.name, locked), **KEEP, **extra)


def _choice(label: str, choices, name: str, locked: bool, **extra):
    if _shown(name):
        options = _with_value(choices, st.session_state[key(name)])
        st.select_slider(label, options, key=key(name), disabled=_locked(name, locked), **KEEP, **extra)


def _radio(label: str, choices, name: str, locked: bool, **extra):
    if _shown(name):
        st.radio(label, choices, key=key(name), horizontal=True, disabled=_locked(name, locked), **KEEP, **extra)


def preset_choice(locked: bool) -> None:
    if not _shown("preset"):
        return
    st.radio(
        "Preset",
        list(PRESETS),
        key=key("preset"),
        horizontal=True,
        on_change=apply_preset,
        disabled=_locked("preset", locked),
        captions=[texts.PRESET_HELP[name] for name in PRESETS],
        **KEEP,
        help="Sets every setting below; change any of them after.",
    )


def settings_form(locked: bool) -> None:
    """Four columns: the network, the training, how long and where, the fine print."""
    columns = st.columns(4)
    for column, inputs in zip(columns, (_network_inputs, _training_inputs, _run_inputs, _fine_print)):
        with column:
            inputs(locked)


def _network_inputs(locked: bool) -> None:
    st.markdown("**The network**")
    help_text = "How many spiking neurons carry the image from encoder to decoder."
    _choice("latent_dim (size of the code)", limits.LATENT_DIM_CHOICES, "latent_dim", locked, help=help_text)
    _slider(limits.BETA, "beta (membrane decay)", locked)
    _slider(limits.THRESH, "thresh (firing threshold)", locked)
    _slider(limits.NUM_STEPS, "num_steps (time steps)", locked, help="Each step costs a full pass: training time grows with it.")
    _radio(
        "Surrogate gradient", limits.SURROGATES, "surrogate", locked, help="The smooth stand-in for the spike's derivative used in the backward pass."
    )


def _training_inputs(locked: bool) -> None:
    st.markdown("**Training**")
    _choice(
        "Learning rate", limits.LR_CHOICES, "lr", locked, format_func=lambda v: f"{v:g}", help="AdamW's step size. Too high and the loss explodes."
    )
    _number(limits.BATCH_SIZE, "Batch size", locked)
    _radio(
        "Loss on",
        limits.LOSSES,
        "loss",
        locked,
        format_func={"last": "the last step", "every": "every step (mean)"}.get,
        help="MSE of the output at the last time step (the tutorial), or averaged over all steps.",
    )
    _number(limits.TRAIN_SUBSET, "Training images", locked, help=f"Use only the first N of MNIST's {limits.TRAIN_IMAGES:,} training images.")
    _number(limits.SEED, "Seed", locked, help="Same seed, same settings: same run.")


def _run_inputs(locked: bool) -> None:
    st.markdown("**How long, and where**")
    class_limits = default_manager().limits
    _number(limits.EPOCHS, "Epochs", locked, help=f"This server trains at most {class_limits.max_epochs} epochs per run.")
    if _shown("time_budget"):
        st.number_input(
            "Time limit (seconds, 0: none)",
            0,
            int(limits.TIME_BUDGET.high),
            step=10,
            key=key("time_budget"),
            disabled=_locked("time_budget", locked),
            **KEEP,
            help="The run stops at the time limit or after the epochs, whichever comes first. "
            f"This server stops every run after {class_limits.max_run_seconds} s at most (and with no limit set).",
        )
    if _shown("device"):
        st.selectbox(
            "Device", available_devices(), key=key("device"), disabled=_locked("device", locked), **KEEP, help="Only devices present here are listed."
        )


def _fine_print(locked: bool) -> None:
    st.markdown("**Fine print**")
    _choice("Weight decay", limits.WEIGHT_DECAY_CHOICES, "weight_decay", locked, format_func=lambda v: f"{v:g}")
    _radio(
        "Schedule",
        limits.SCHEDULES,
        "schedule",
        locked,
        help="cosine: after the warm-up, the learning rate decays to zero over the run (its epochs, or its time budget if that ends first).",
    )
    _number(limits.WARMUP_STEPS, "Warm-up steps", locked)
    _number(limits.EVAL_IMAGES, "Held-out test images", locked, help="The live test loss is measured on these (the first N test images).")
    if _shown("calibrate"):
        st.toggle("Calibrated start", key=key("calibrate"), disabled=_locked("calibrate", locked), **KEEP, help=texts.CALIBRATE_HELP)
