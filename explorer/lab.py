"""Streamlit glue of the Latent lab: which digits, the edited code and its place in the URL,
the click handlers, and the caches.

State, all per session (``st.session_state``):
- ``lab_a`` / ``lab_b``: the MNIST test indices of digit A (the one edited) and B
  (the blend's other end), number inputs bound to the URL;
- ``_lab_from_explore``: A is Explore's digit (a drawing or upload, which no link can carry);
- ``_lab_edit``: ``(experiment, code)``, the edited code of one experiment (digit,
  latent size, steps); another digit or another num_steps starts from its own code;
- ``_lab_context``: what the page last showed, read by the click callbacks, which
  run before the next script run;
- ``_lab_clicks``: a counter in the editor chart's key, so every click arrives on a
  fresh chart with no old selection and flips exactly one cell once.

The URL carries ``lab_code`` (the edited code, :func:`sae.analysis.latent.code_to_text`) only
while the code differs from the digit's own.  Shared caches are read-only: the map
of codes (per checkpoint, also on disk), the test set's class means, and the codes,
decodings and blends (``explorer.cached.kept``, bounded for the whole server).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from explorer import cached, lab_texts, links, state, visibility
from explorer.resources import test_set
from sae.analysis import latent
from sae.io.fingerprints import digit_fingerprint

URL_CODE = "lab_code"
KEY_A, KEY_B = "lab_a", "lab_b"
MAP_KEY = "lab_map"
DEFAULT_B = 1  # test image #1, a 2 (#0 is a 7)
MAP_FOLDER = Path(__file__).resolve().parent.parent / ".cache" / "latent_maps"


@dataclass(frozen=True)
class LabDigit:
    image: torch.Tensor  # [1, 1, 32, 32]
    label: str
    index: int | None  # its MNIST test index; None for a drawing or an upload


# --- digits ---------------------------------------------------------------------------


def choose_digits() -> tuple[LabDigit, LabDigit, list[str]]:
    """Digit A and B pickers (A defaults to Explore's digit); returns them and notes to show."""
    images, labels = test_set()
    notes = []
    if not st.session_state.get("_lab_started"):
        st.session_state["_lab_started"] = True
        if KEY_A not in st.query_params:
            _take_explore_digit()
    left, middle, right = st.columns([1, 1.2, 1], vertical_alignment="bottom")
    if visibility.shown(KEY_A):
        left.number_input(
            "Digit A: MNIST test image #",
            0,
            len(labels) - 1,
            step=1,
            key=KEY_A,
            bind="query-params",
            on_change=_leave_explore_digit,
            disabled=visibility.locked(KEY_A),
            help="The digit whose code you edit.",
        )
    st.session_state.setdefault(KEY_A, 0)  # hidden from the start: never drawn, so never set
    chosen = state.explore_digit()
    from_explore = st.session_state.get("_lab_from_explore") and chosen is not None
    if chosen is not None and not from_explore and _test_index(chosen.image) != st.session_state.get(KEY_A) and visibility.state(KEY_A) == "shown":
        middle.button(f"Use Explore's digit ({chosen.label})", on_click=_take_explore_digit, width="stretch")
    if visibility.shown(KEY_B):
        right.number_input(
            "Digit B (for the blend): test image #",
            0,
            len(labels) - 1,
            DEFAULT_B,
            step=1,
            key=KEY_B,
            bind="query-params",
            disabled=visibility.locked(KEY_B),
            help="The other end of 'Between two digits'.",
        )
    st.session_state.setdefault(KEY_B, DEFAULT_B)
    if from_explore:
        a = LabDigit(chosen.image, chosen.label, None)
        notes.append(
            f"Digit A is Explore's digit ({chosen.label}). A link cannot carry a drawing: a shared link "
            f"opens test image #{st.session_state[KEY_A]} instead."
        )
    else:
        a = _mnist(images, labels, int(st.session_state[KEY_A]))
    return a, _mnist(images, labels, int(st.session_state[KEY_B])), notes


def _mnist(images, labels, index: int) -> LabDigit:
    return LabDigit(images[index : index + 1], f"test image #{index} (a {int(labels[index])})", index)


def _test_index(image: torch.Tensor) -> int | None:
    """The test-set index of an image that is exactly one of them (Explore's MNIST pick), else None."""
    key = digit_fingerprint(image)
    found = st.session_state.get("_lab_index_of")
    if found is None or found[0] != key:
        images = test_set()[0]
        match = torch.nonzero((images.flatten(1) == image.reshape(1, -1)).all(1)).flatten()
        found = (key, int(match[0]) if len(match) else None)
        st.session_state["_lab_index_of"] = found
    return found[1]


def _take_explore_digit() -> None:
    chosen = state.explore_digit()
    if chosen is None:
        return
    index = _test_index(chosen.image)
    if index is None:
        st.session_state["_lab_from_explore"] = True
    else:
        st.session_state[KEY_A] = index
        st.session_state["_lab_from_explore"] = False


def _leave_explore_digit() -> None:
    st.session_state["_lab_from_explore"] = False


# --- cached results -------------------------------------------------------------------


def _settings_key(settings) -> tuple:
    return (settings.model_key, settings.device, settings.neuron)


def _kept(name: str, key: tuple, compute):
    """``compute()``, or the result kept for ``key`` (``explorer.cached.kept``: bounded for the server,
    none of it held by the session)."""
    return cached.kept((name, *key), compute)


def own_code(settings, digit: LabDigit) -> latent.EncodedDigit:
    key = (digit_fingerprint(digit.image), *_settings_key(settings))
    return _kept("_lab_own", key, lambda: latent.encode_digit(settings.model, digit.image, settings.neuron))


def decoded(settings, code: np.ndarray) -> latent.Decoded:
    key = (code.tobytes(), code.shape, *_settings_key(settings))
    return _kept("_lab_decoded", key, lambda: latent.decode_codes(settings.model, code, settings.neuron))


def atlas(settings, digit: LabDigit, own: latent.EncodedDigit) -> latent.NeuronAtlas:
    key = (digit_fingerprint(digit.image), *_settings_key(settings))
    return _kept("_lab_atlas", key, lambda: latent.neuron_atlas(settings.model, own, settings.neuron))


def blend(settings, a: LabDigit, b: LabDigit):
    """The 8 blend codes from A's own code to B's, and what the decoder makes of each."""
    key = (digit_fingerprint(a.image), digit_fingerprint(b.image), *_settings_key(settings))

    def compute():
        codes = latent.blend(own_code(settings, a).code, own_code(settings, b).code)
        return codes, latent.decode_codes(settings.model, codes, settings.neuron).images

    return _kept("_lab_blend", key, compute)


@st.cache_resource(max_entries=4, show_spinner="Encoding the 10,000 test images once for this checkpoint…")
def _shared_map(model_key: str, device: str, _model) -> latent.CodeMap:
    """Read-only, shared by every session; at the checkpoint's own settings."""
    images, labels = test_set()
    return latent.cached_code_map(_model, images, labels, MAP_FOLDER)


def code_map(settings) -> latent.CodeMap:
    return _shared_map(settings.model_key, settings.device, settings.model)


@st.cache_resource
def class_means() -> np.ndarray:
    """The test set's class means (``sae.analysis.latent.class_means``), computed once per process."""
    return latent.class_means(*test_set())


# --- the edited code --------------------------------------------------------------------


def experiment(digit: LabDigit, own: latent.EncodedDigit) -> tuple:
    """What an edit belongs to: the digit and the code's shape (thresh and beta may change under it)."""
    return (digit_fingerprint(digit.image), *own.code.shape)


def current_code(digit: LabDigit, own: latent.EncodedDigit) -> tuple[np.ndarray, str | None]:
    """The code to decode (edited or the digit's own) and a note when a link's code was refused.

    Also records the context the click callbacks need and mirrors the code into the URL.
    """
    exp = experiment(digit, own)
    note = None
    if not st.session_state.get("_lab_code_read"):
        st.session_state["_lab_code_read"] = True
        raw = links.value(URL_CODE)  # already checked for its own shape (explorer.links); here against the model's
        if raw:
            try:
                _store(exp, own.code, latent.code_from_text(raw, *own.code.shape))
            except ValueError as error:
                note = f"The edited code in the link was not used ({error}); showing the digit's own code."
    st.session_state["_lab_context"] = (exp, own.code)
    edit = st.session_state.get("_lab_edit")
    code = edit[1] if edit is not None and edit[0] == exp else own.code
    text = latent.code_to_text(code) if edit is not None and edit[0] == exp else None
    if text is None and URL_CODE in st.query_params:
        del st.query_params[URL_CODE]
    elif text is not None and st.query_params.get(URL_CODE) != text:
        st.query_params[URL_CODE] = text
    return code, note


def _store(exp: tuple, own: np.ndarray, code: np.ndarray) -> None:
    st.session_state["_lab_edit"] = None if np.array_equal(code, own) else (exp, code)


def shown_code() -> np.ndarray | None:
    """The code the page last showed, edited or the digit's own (None before the lab opened):
    what the click handlers change, and what a student shares with a live class."""
    context = st.session_state.get("_lab_context")
    if context is None:
        return None
    exp, own = context
    edit = st.session_state.get("_lab_edit")
    return edit[1] if edit is not None and edit[0] == exp else own


def _edit(change) -> None:
    """Apply ``change(code) -> code`` to the code the user was looking at."""
    code = shown_code()
    if code is not None:
        exp, own = st.session_state["_lab_context"]
        _store(exp, own, change(code))


def follow_link(code_in_link: bool) -> None:
    """A lesson step opens the lab as its link says: digit A from the link (not Explore's digit), and
    the link's ``lab_code`` read again on the next run (when ``code_in_link``) or the digit's own code."""
    st.session_state["_lab_started"] = True
    st.session_state["_lab_from_explore"] = False
    st.session_state["_lab_edit"] = None
    st.session_state["_lab_code_read"] = not code_in_link


def set_code(code: np.ndarray) -> None:
    """Replace the code the user was looking at by ``code`` of the same shape (the in-page editor's edits)."""
    _edit(lambda old: code if code.shape == old.shape else old)


def editor_key() -> str:
    return f"lab_editor_{st.session_state.get('_lab_clicks', 0)}"


def on_cell_click() -> None:
    """The editor chart's on_select callback: flip the clicked cell, once."""
    event = st.session_state.get(editor_key())
    points = [p for p in (event.selection.points if event is not None else []) if p.get("curve_number") == 1]
    st.session_state["_lab_clicks"] = st.session_state.get("_lab_clicks", 0) + 1  # a fresh chart next run
    context = st.session_state.get("_lab_context")
    if not points or context is None:
        return
    # Point i of the cell layer is (neuron i // T, step i % T); see sae.plots.latent.code_editor.
    neuron, step = divmod(int(points[0]["point_index"]), context[1].shape[1])
    _edit(lambda code: latent.flip(code, neuron, step))


def on_button(action: str) -> None:
    """Silence / fire / clear / restore, on the neuron chosen in ``lab_neuron``."""
    neuron = int(st.session_state.get("lab_neuron", 0))
    if action == "restore":
        st.session_state["_lab_edit"] = None
    elif action == "clear":
        _edit(np.zeros_like)
    else:
        _edit(lambda code: latent.set_neuron(code, neuron, firing=action == "fire"))


def on_map_select() -> None:
    """The map's on_select callback: the clicked test image becomes digit A, opened in the editor."""
    event = st.session_state.get(MAP_KEY)
    points = [p for p in (event.selection.points if event is not None else []) if "customdata" in p]
    if points:
        st.session_state[KEY_A] = int(points[0]["customdata"])
        st.session_state["_lab_from_explore"] = False
        st.session_state["lab_view"] = lab_texts.VIEWS[0]
