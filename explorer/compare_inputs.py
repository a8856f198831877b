"""The Compare page's inputs: which digits to measure on, an A/B setting, the trained-for-the-setting models.

Every control is bound to the URL and kept across pages (``URL``), so a link
reproduces the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from explorer import state, visibility
from explorer.resources import shared_checkpoint, test_set
from sae import limits
from sae.analysis import trained_for_setting
from sae.data.mnist import pick_digits
from sae.io.checkpoints import CheckpointError
from sae.io.fingerprints import digit_fingerprint
from sae.model import NeuronSettings

URL = {"bind": "query-params", "persist_state": "session"}  # in the link, kept across pages
DIGIT_SOURCES = ("random", "by class", "from Explore")  # shown as they are, and so read in a link
DIGITS_COUNT, DIGITS_SEED = 256, 0  # the first view's digits (the warm-up computes them ahead)


def choose_digits():
    """The digits every view measures on: (images [N,1,32,32], description, content key)."""
    cols = st.columns([2, 1, 1, 1])
    source = visibility.draw(
        "c_digits",
        cols[0].segmented_control,
        "Digits",
        DIGIT_SOURCES,
        default="random",
        required=True,
        key="c_digits",
        fallback="random",
        **URL,
        help="Random MNIST test digits, random ones of one class, or the digit on the Explore page. The MSE and spike rates average over them.",
    )
    low, high = limits.SWEEP_DIGITS.low, limits.SWEEP_DIGITS.high
    help_n = "More digits: steadier numbers, slower sweeps (256 is plenty)."
    count = visibility.draw("c_n", cols[1].number_input, "How many", low, high, DIGITS_COUNT, key="c_n", fallback=DIGITS_COUNT, **URL, help=help_n)
    help_seed = "Which random digits: same seed, same digits."
    seed = visibility.draw("c_seed", cols[3].number_input, "Seed", 0, 10_000, DIGITS_SEED, key="c_seed", fallback=DIGITS_SEED, **URL, help=help_seed)
    digit_class = visibility.draw(
        "c_class", cols[2].selectbox, "Class", list(range(10)), key="c_class", fallback=0, disabled=source != "by class", **URL
    )
    if source == "from Explore":
        chosen = state.explore_digit()
        if chosen is not None:
            return chosen.image, f"the Explore page's digit ({chosen.label})", digit_fingerprint(chosen.image)
        st.info("No digit on the Explore page yet: pick or draw one there. Using random test digits meanwhile.")
        source = "random"
    return test_digits(source, int(count), int(seed), int(digit_class))


def test_digits(source: str = "random", count: int = DIGITS_COUNT, seed: int = DIGITS_SEED, digit_class: int = 0):
    """Test digits picked at random (``source`` "random") or of one class: (images, description, content key)."""
    images, labels = test_set()
    picked = pick_digits(labels, "class" if source == "by class" else "random", count, seed, digit_class)
    chosen = images[list(picked)]
    what = f"{len(picked)} random test digits" if source == "random" else f"{len(picked)} test digits of class {digit_class}"
    return chosen, f"{what} (seed {seed})", digit_fingerprint(chosen)


def grid_inputs() -> tuple[list, list, list]:
    """The sweep grid's values: thresh, num_steps and (optionally) beta, each from its choices."""
    cols = st.columns(3)
    g = lambda v: f"{v:g}"  # noqa: E731
    picked = []
    for col, key, label, choices, default, extra in (
        (cols[0], "c_grid_thresh", "thresh", limits.THRESH_CHOICES, [0.25, 0.5, 1.0, 1.5, 2.0, 3.0], {"format_func": g}),
        (cols[1], "c_grid_steps", "num_steps", limits.NUM_STEPS_CHOICES, [1, 2, 3, 5, 8, 10], {}),
        (cols[2], "c_grid_beta", "beta (optional)", limits.BETA_CHOICES, [], {"format_func": g, "help": "Empty: the sidebar's beta."}),
    ):
        picked.append(visibility.draw(key, col.multiselect, label, choices, default=default, key=key, fallback=default, **URL, **extra))
    return tuple(picked)


def setting_inputs(tag: str, defaults: NeuronSettings) -> NeuronSettings:
    """thresh, num_steps and beta for one side of the A/B view, in the model's own ranges."""
    st.markdown(f"**Setting {tag.upper()}**")
    cols = st.columns(3)
    values = {}
    for col, (name, short) in zip(cols, (("thresh", "thresh"), ("num_steps", "steps"), ("beta", "beta"))):
        rng, default = limits.LIMITS[name], getattr(defaults, name)
        values[name] = visibility.draw(
            f"c_{tag}_{short}", col.number_input, rng.name, rng.low, rng.high, default, rng.step, key=f"c_{tag}_{short}", fallback=default, **URL
        )
    return NeuronSettings(**values)


@dataclass
class TrainedModels:
    """One series of the shipped trained-for-the-setting models, as far as they load."""

    entries: list  # every entry of the series, loaded or not
    models: dict = field(default_factory=dict)  # filename -> model, the loadable ones
    cards: dict = field(default_factory=dict)  # filename -> the checkpoint's recorded metrics
    missing: list = field(default_factory=list)  # entries not shipped, not loadable or misnamed
    problems: list = field(default_factory=list)  # one line per file that is there but was left out


def load_trained(parameter: str, device: str) -> TrainedModels:
    """The entries of one series and the models that load and really are what their name says."""
    located = trained_for_setting.locate_trained(trained_for_setting.trained_series(parameter))
    found = TrainedModels(entries=[entry for entry, _ in located], missing=[entry for entry, path in located if path is None])
    for entry, path in located:
        if path is None:
            continue
        try:
            ckpt = shared_checkpoint(path, device)
        except (CheckpointError, OSError) as error:
            found.problems.append(f"Cannot load {entry.filename}: {error}")
            found.missing.append(entry)
            continue
        if not entry.matches(ckpt.config):
            found.problems.append(
                f"{entry.filename} was trained with num_steps {ckpt.config.num_steps}, thresh {ckpt.config.thresh:g}, not as its name says: left out."
            )
            found.missing.append(entry)
            continue
        found.models[entry.filename], found.cards[entry.filename] = ckpt.model, ckpt.metrics or {}
    return found


def trained_models(parameter: str, device: str) -> TrainedModels:
    """:func:`load_trained`, with a visible note for every file left out."""
    found = load_trained(parameter, device)
    for problem in found.problems:
        st.warning(problem)
    if found.missing:
        st.info(
            "Not shipped yet, so left out: "
            + ", ".join(f"`{e.filename}` ({e.setting_label})" for e in found.missing)
            + ". The model card in `checkpoints/` says how each is made."
        )
    return found
