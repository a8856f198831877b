"""The Compare page's inputs: which digits to measure on, an A/B setting, the trained-for-the-setting models.

Every control is bound to the URL and kept across pages (``URL``), so a link
reproduces the comparison.
"""

from __future__ import annotations

import streamlit as st

from explorer import state
from explorer.resources import shared_checkpoint, test_set
from sae import limits
from sae.analysis import trained_for_setting
from sae.analysis.sweep import Setting
from sae.data.mnist import pick_digits
from sae.io.checkpoints import CheckpointError
from sae.io.fingerprints import digit_fingerprint

URL = {"bind": "query-params", "persist_state": "session"}  # in the link, kept across pages
DIGIT_SOURCES = ("random", "by class", "from Explore")  # shown as they are, and so read in a link


def choose_digits():
    """The digits every view measures on: (images [N,1,32,32], description, content key)."""
    cols = st.columns([2, 1, 1, 1])
    source = cols[0].segmented_control(
        "Digits",
        DIGIT_SOURCES,
        default="random",
        required=True,
        key="c_digits",
        **URL,
        help="Random MNIST test digits, random ones of one class, or the digit on the Explore page. The MSE and spike rates average over them.",
    )
    count = cols[1].number_input(
        "How many",
        limits.SWEEP_DIGITS.low,
        limits.SWEEP_DIGITS.high,
        256,
        key="c_n",
        **URL,
        help="More digits: steadier numbers, slower sweeps (256 is plenty).",
    )
    seed = cols[3].number_input("Seed", 0, 10_000, 0, key="c_seed", **URL, help="Which random digits: same seed, same digits.")
    digit_class = cols[2].selectbox("Class", list(range(10)), key="c_class", disabled=source != "by class", **URL)
    if source == "from Explore":
        chosen = state.explore_digit()
        if chosen is not None:
            return chosen.image, f"the Explore page's digit ({chosen.label})", digit_fingerprint(chosen.image)
        st.info("No digit on the Explore page yet: pick or draw one there. Using random test digits meanwhile.")
        source = "random"
    images, labels = test_set()
    picked = pick_digits(labels, "class" if source == "by class" else "random", int(count), int(seed), int(digit_class))
    chosen = images[list(picked)]
    what = f"{len(picked)} random test digits" if source == "random" else f"{len(picked)} test digits of class {digit_class}"
    return chosen, f"{what} (seed {seed})", digit_fingerprint(chosen)


def grid_inputs() -> tuple[list, list, list]:
    """The sweep grid's values: thresh, num_steps and (optionally) beta, each from its choices."""
    cols = st.columns(3)
    g = lambda v: f"{v:g}"  # noqa: E731
    thresholds = cols[0].multiselect(
        "thresh", limits.THRESH_CHOICES, default=[0.25, 0.5, 1.0, 1.5, 2.0, 3.0], key="c_grid_thresh", **URL, format_func=g
    )
    steps = cols[1].multiselect("num_steps", limits.NUM_STEPS_CHOICES, default=[1, 2, 3, 5, 8, 10], key="c_grid_steps", **URL)
    betas = cols[2].multiselect(
        "beta (optional)", limits.BETA_CHOICES, default=[], key="c_grid_beta", **URL, format_func=g, help="Empty: the sidebar's beta."
    )
    return thresholds, steps, betas


def setting_inputs(tag: str, defaults: tuple[float, int, float]) -> Setting:
    """thresh, num_steps and beta for one side of the A/B view, in the model's own ranges."""
    st.markdown(f"**Setting {tag.upper()}**")
    cols = st.columns(3)
    values = []
    for col, rng, default, short in zip(cols, (limits.THRESH, limits.NUM_STEPS, limits.BETA), defaults, ("thresh", "steps", "beta")):
        values.append(col.number_input(rng.name, rng.low, rng.high, default, rng.step, key=f"c_{tag}_{short}", **URL))
    return Setting(float(values[0]), int(values[1]), float(values[2]))


def trained_models(parameter: str, device: str) -> tuple[list, dict, dict]:
    """The entries of one series, and the loadable ones' models and model cards (by filename).

    Files that are missing, unreadable, or trained with another setting than their
    name says are left out with a visible note."""
    located = trained_for_setting.locate_trained(trained_for_setting.trained_series(parameter))
    missing = [entry for entry, path in located if path is None]
    models, cards = {}, {}
    for entry, path in located:
        if path is None:
            continue
        try:
            ckpt = shared_checkpoint(path, device)
        except (CheckpointError, OSError) as error:
            st.warning(f"Cannot load {entry.filename}: {error}")
            missing.append(entry)
            continue
        if not entry.matches(ckpt.config):
            st.warning(
                f"{entry.filename} was trained with num_steps {ckpt.config.num_steps}, thresh {ckpt.config.thresh:g}, not as its name says: left out."
            )
            missing.append(entry)
            continue
        models[entry.filename], cards[entry.filename] = ckpt.model, ckpt.metrics or {}
    if missing:
        st.info(
            "Not shipped yet, so left out: "
            + ", ".join(f"`{e.filename}` ({e.setting_label})" for e in missing)
            + ". The model card in `checkpoints/` says how each is made."
        )
    return [entry for entry, _ in located], models, cards
