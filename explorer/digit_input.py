"""The three ways to give the Explore page a digit: draw it, pick it from MNIST, upload it.

Each source draws its own widgets and returns a :class:`DigitChoice`: the
normalised ``[1, 1, 32, 32]`` tensor the network will see (or ``None``) and, when
the input was unusable, a one-line message saying why.  Images are decoded and
normalised by ``sae.data.mnist``; this module only wires widgets to it.  The source, the MNIST
index and class live in the URL (``?source=MNIST&index=42&class=7``) through
``bind="query-params"``, so a shared link opens the same digit (app.py has the link's values
parsed and corrected before these widgets read them: ``explorer.links``).
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
from PIL import Image

from explorer import visibility
from explorer.canvas import CanvasDataError, digit_canvas, png_bytes
from explorer.resources import test_set
from sae.data.images import ImageInputError, load_image_bytes, prepare_digit
from sae.limits import TEST_INDEX

# The labels are also the URL values (a bound widget writes its label), so keep them plain.
SOURCES = ("Draw", "MNIST", "Upload")
CLASSES = ["any"] + [str(d) for d in range(10)]
EXAMPLE_INDEX = 0  # shown until the first stroke, so the page is never empty
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
MAX_UPLOAD_MB = 10  # load_image_bytes refuses more anyway


@dataclass(frozen=True)
class DigitChoice:
    """What the user chose: the tensor the model sees, a short label, or why there is none."""

    digit: torch.Tensor | None
    label: str = ""
    problem: str | None = None  # one line, shown as a warning; no digit
    note: str | None = None  # one line, shown as a notice beside a usable digit
    is_example: bool = False
    preview: object = None  # the decoded upload (a PIL image), to show beside the normalised one


def choose_source() -> str:
    if not visibility.shown("source"):
        return st.session_state.get("source") or SOURCES[0]
    return st.segmented_control(
        "Input", SOURCES, default="Draw", required=True, key="source", bind="query-params", disabled=visibility.locked("source"),
        help="Draw a digit, pick one of the 10,000 MNIST test images, or upload a picture.",
    )  # fmt: skip


def read_digit(source: str) -> DigitChoice:
    """Draw the chosen source's widgets and return its digit."""
    if source == "MNIST":
        return _mnist_digit()
    if source == "Upload":
        return _uploaded_digit()
    return _drawn_digit()


# --- draw -----------------------------------------------------------------------------


def _drawn_digit() -> DigitChoice:
    data_url = digit_canvas(key="explore_canvas")
    if data_url is None:
        example = _mnist_example()
        if example is None:
            return DigitChoice(None, problem="Draw a digit on the canvas.")
        return example
    return _prepared(("draw", hashlib.sha1(str(data_url).encode()).hexdigest()), lambda: png_bytes(data_url), "your drawing")


def _mnist_example() -> DigitChoice | None:
    try:
        images, labels = test_set()
    except (OSError, RuntimeError, ValueError):
        return None
    return DigitChoice(
        images[EXAMPLE_INDEX : EXAMPLE_INDEX + 1].clone(), f"example: MNIST test #{EXAMPLE_INDEX} (a {int(labels[EXAMPLE_INDEX])})", is_example=True
    )


# --- MNIST picker ---------------------------------------------------------------------


def _labels() -> np.ndarray:
    return test_set()[1].numpy()


def _jump_to_class():
    """A new class: go to the first image of it at or after the current index."""
    wanted = st.session_state.get("class", "any")
    if wanted == "any":
        return
    labels = _labels()
    start = int(st.session_state.get("index", 0))
    order = np.r_[np.arange(start, len(labels)), np.arange(0, start)]
    st.session_state["index"] = int(order[np.argmax(labels[order] == int(wanted))])


def _index_changed():
    """An index outside the chosen class drops the class filter, so the URL stays true."""
    wanted = st.session_state.get("class", "any")
    if wanted != "any" and int(_labels()[int(st.session_state["index"])]) != int(wanted):
        st.session_state["class"] = "any"


def _random_index():
    labels = _labels()
    wanted = st.session_state.get("class", "any")
    pool = np.flatnonzero(labels == int(wanted)) if wanted != "any" else np.arange(len(labels))
    current = int(st.session_state.get("index", 0))
    choices = pool[pool != current] if len(pool) > 1 else pool
    st.session_state["index"] = int(random.choice(choices))


def _mnist_digit() -> DigitChoice:
    try:
        images, labels = test_set()
    except (OSError, RuntimeError, ValueError) as error:
        return DigitChoice(None, problem=f"The MNIST test set is not available here: {error}")
    left, middle, right = st.columns([1, 1.3, 0.9], vertical_alignment="bottom")
    if visibility.shown("class"):
        left.selectbox(
            "Class",
            CLASSES,
            key="class",
            bind="query-params",
            on_change=_jump_to_class,
            disabled=visibility.locked("class"),
            help="Pick a digit class; Random then stays within it.",
        )
    index = st.session_state.get("index", TEST_INDEX.low)
    if visibility.shown("index"):
        index = middle.number_input(
            "Test image #",
            min_value=TEST_INDEX.low,
            max_value=TEST_INDEX.high,
            step=1,
            key="index",
            bind="query-params",
            on_change=_index_changed,
            disabled=visibility.locked("index"),
            help="Index into the 10,000 MNIST test images.",
        )
    if visibility.shown("random_digit"):  # disabled too while the index is locked: it would move it
        right.button(
            "Random",
            icon=":material/casino:",
            on_click=_random_index,
            width="stretch",
            disabled=visibility.locked("random_digit") or visibility.locked("index"),
        )
    index = int(index)
    label = int(labels[index])
    st.caption(f"MNIST test image #{index}: a **{label}** (28x28, resized to 32x32 like the training images).")
    return DigitChoice(images[index : index + 1].clone(), f"MNIST test #{index} (a {label})")


# --- upload ---------------------------------------------------------------------------


def _uploaded_digit() -> DigitChoice:
    file = st.file_uploader(
        "Upload a picture of one digit",
        type=UPLOAD_TYPES,
        key="explore_upload",
        max_upload_size=MAX_UPLOAD_MB,
        help="Any size, colour or polarity: it is cropped, centred and scaled like MNIST.",
    )
    if file is None:
        return DigitChoice(None, problem="Upload a picture of a digit (PNG, JPEG, GIF, …).")
    choice = _prepared(("upload", file.file_id), file.getvalue, f"upload {file.name}")
    if choice.preview is not None:
        st.image(choice.preview, caption=f"{file.name}, as uploaded", width=200)
    return choice


def _prepared(cache_key: tuple, read_bytes, label: str) -> DigitChoice:
    """Decode and normalise an image once per distinct input (a one-slot cache in the session)."""
    cached = st.session_state.get("_explore_prepared")
    if cached is not None and cached[0] == cache_key:
        return cached[1]
    try:
        data = read_bytes()
        image = load_image_bytes(data)
        digit = prepare_digit(image)
        preview = image.copy()
        preview.thumbnail((280, 280))
        note = "An animated image: only its first frame is used." if _is_animated(data) else None
        choice = DigitChoice(digit, label, note=note, preview=preview)
    except (ImageInputError, CanvasDataError) as error:
        choice = DigitChoice(None, problem=_one_line(str(error)))
    st.session_state["_explore_prepared"] = (cache_key, choice)
    return choice


def _is_animated(data: bytes) -> bool:
    """Whether an (already validated) image file holds more than one frame."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return bool(getattr(image, "is_animated", False))
    except Exception:  # noqa: BLE001 - load_image_bytes accepted it; a second opinion must not break the page
        return False


def _one_line(message: str) -> str:
    line = " ".join(message.split())
    return line[:200] + ("…" if len(line) > 200 else "")
