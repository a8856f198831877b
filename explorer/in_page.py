"""The network in the learner's browser: Explore's live view and the Latent lab's editor.

Both are ``st.components.v2`` components whose code lives in ``static/in_page/`` (ES modules,
served by Streamlit with the rest of ``static/``): they load onnxruntime-web and plotly.js
from ``static/vendor/`` (``make vendor``) and the model's two step graphs from
``static/models/`` (``sae.io.browser_model``, exported the first time a checkpoint is
shown), and compute every slider move in the page.  The server hears only a slider's
release (:func:`write_settings_back`).

Where the page cannot compute (no WebAssembly, a blocked file, the vendor files not
installed), the component says so, the session falls back to the server path, and the page
shows one line saying why.  ``?engine=server`` asks for the server path from the start (for
tests and for teachers).  No JavaScript runs under AppTest: tests set the component's state.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from explorer import lab, projector, visibility
from sae import limits
from sae.io.browser_model import ExportError, browser_model, export_onnx_in_child, layer_shapes
from sae.io.checkpoints import CheckpointError
from sae.io.fingerprints import served_model_fingerprint
from sae.model import SpikingAutoencoder

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
MODELS = STATIC / "models"  # served at /app/static/models/
CODE = STATIC / "in_page"
VENDOR_SUMS = STATIC / "vendor" / "SHA256SUMS"
ENGINE_PARAM = "engine"  # ?engine=server
_FAILED = "_in_page_failed"  # why the page could not compute, for this session
_NOT_EXPORTED = "_in_page_not_exported"  # weights fingerprint -> why their graphs could not be made
EXPLORE_KEY, LAB_KEY = "in_page_explore", "in_page_lab"  # the components' keys
# The sidebar's session keys (explorer/sidebar.py) for the settings the in-page sliders set.
SETTING_KEYS = {"thresh": "sb_thresh", "beta": "sb_beta", "steps": "sb_steps"}
RANGES = {"thresh": limits.THRESH, "beta": limits.BETA, "steps": limits.NUM_STEPS}

# The component's own code is one line: it imports the view from static/in_page/ (cached by the
# browser, versioned by content), and reports a failure to load it like any other.
_LOADER = """
export default async function (component) {
  try {
    const view = await import(new URL(component.data.module, window.location.href).href);
    return view.default(component);
  } catch (error) {
    component.setStateValue("failure", String((error && error.message) || error).slice(0, 300));
  }
}
"""


def _read(name: str) -> str:
    return (CODE / name).read_text()


def write_settings_back(values: dict) -> None:
    """The one place where settings released in the page enter the app: the sidebar's session
    keys, which the URL, the other pages and the exports follow.  ``values`` come from a
    browser: anything that is not an allowed number is dropped, out-of-range ones clamped."""
    for name, key in SETTING_KEYS.items():
        if visibility.state(name) != "shown":  # a lesson link holds it: the page's slider was not the student's to move
            continue
        rng = RANGES[name]
        try:
            value = rng.parse(str(values[name]))
        except (KeyError, TypeError, ValueError):
            continue
        st.session_state[key] = rng.clamp(value)


def _on_settings() -> None:
    event = st.session_state.get(EXPLORE_KEY)
    values = event.get("settings") if event is not None else None
    if isinstance(values, dict):
        write_settings_back(values)


def _on_code() -> None:
    """The in-page editor's code after a burst of clicks (a list of 0/1, neuron-major), checked."""
    event = st.session_state.get(LAB_KEY)
    values = event.get("code") if event is not None else None
    shape = st.session_state.get("_in_page_lab_shape")
    if not isinstance(values, list) or shape is None or len(values) != shape[0] * shape[1]:
        return
    if not all(v in (0, 1) and not isinstance(v, bool) for v in values):
        return
    lab.set_code(np.asarray(values, dtype=np.uint8).reshape(shape))


def _registers_state() -> None:
    """A component state needs a callback to exist; the failure is read in :func:`server_reason`."""


# --------------------------------------------------------------------------- which engine


@functools.cache
def _vendor_files() -> dict[str, str] | None:
    """File name -> path under static/ of each vendored file, or None when they are not installed."""
    if not VENDOR_SUMS.is_file():
        return None
    found = {}
    for line in VENDOR_SUMS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name = line.split(maxsplit=1)[1].strip()
            if not (VENDOR_SUMS.parent / name).is_file():
                return None
            found[Path(name).name] = f"vendor/{name}"
    return found


def vendored() -> bool:
    """Whether ``make vendor`` has put the pages' JavaScript and WebAssembly in place."""
    return _vendor_files() is not None


@functools.cache
def _code_version() -> str:
    """A hash of static/in_page/: the query that makes every change a new URL for the browser."""
    digest = hashlib.sha256()
    for path in sorted(CODE.glob("*")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def server_reason(model: SpikingAutoencoder) -> str | None:
    """Why this session computes ``model`` on the server (one line to show), or None: the page
    computes, and the model's graphs are ready (exported now if they were not).  A link asking
    for the server path gets no line: it asked.  Nor does the projector view: its figures are the
    server's, restyled for the projector (``explorer.charts``), and its style sheet keeps charts,
    not the page's component."""
    if st.query_params.get(ENGINE_PARAM) == "server" or projector.is_on():
        return ""
    if not vendored():
        return "The network runs on the server here: the in-page engine's files are not installed (`make vendor`)."
    for key in (EXPLORE_KEY, LAB_KEY):  # a failure either view reported keeps the session on the server
        reported = (st.session_state.get(key) or {}).get("failure")
        if reported and not st.session_state.get(_FAILED):
            st.session_state[_FAILED] = str(reported)[:300]
    failed = st.session_state.get(_FAILED)
    if failed:
        return f"The network runs on the server: it could not run in this browser ({failed})."
    files = model_files(model)
    return f"The network runs on the server: it could not be prepared for the browser ({files})." if isinstance(files, str) else None


def show_server_reason(reason: str | None) -> None:
    if reason:
        st.info(reason, icon=":material/dns:")


# --------------------------------------------------------------------------- urls and files


def static_url(path: str) -> str:
    """The URL path of ``static/<path>``, under the server's base path if it has one."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/app/static/{path}" if base else f"/app/static/{path}"


def _urls() -> dict:
    files = _vendor_files()
    wasm = files["ort-wasm-simd-threaded.wasm"]
    return {
        "ort": static_url(files["ort.wasm.min.mjs"]),
        "wasmLoader": static_url(files["ort-wasm-simd-threaded.mjs"]),
        "wasm": static_url(wasm),
        # Kept gzipped by `make vendor`: Streamlit would compress the 15 MB anew for every visitor.
        "wasmGzipped": static_url(wasm + ".gz") if (STATIC / (wasm + ".gz")).is_file() else None,
        "plotly": static_url(files["plotly-cartesian.min.js"]),
    }


@functools.lru_cache(maxsize=8)
def _shapes(config) -> dict:
    return {name: list(shape) for name, shape in layer_shapes(SpikingAutoencoder(config).eval()).items()}


def model_files(model: SpikingAutoencoder) -> dict | str:
    """The model's two graphs as URLs, with every layer's shape; exported on first use (in a child
    process: seconds of the exporter would stall every session of this server).  When the export
    fails, why, in one line (remembered for these weights in this session)."""
    fingerprint = served_model_fingerprint(model)
    failed = st.session_state.setdefault(_NOT_EXPORTED, {})
    if fingerprint in failed:
        return failed[fingerprint]
    try:
        with st.spinner("Preparing the network for your browser (once per checkpoint)…"):
            made = browser_model(model, MODELS, export=export_onnx_in_child, fingerprint=fingerprint)
    except (ExportError, OSError, CheckpointError) as error:
        failed[fingerprint] = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        return failed[fingerprint]
    return {"encoder": static_url(f"models/{made.encoder}"), "decoder": static_url(f"models/{made.decoder}"), "shapes": _shapes(model.config)}


def _module(name: str) -> str:
    return static_url(f"in_page/{name}?v={_code_version()}")


# --------------------------------------------------------------------------- Explore's view

SEEN_SCALE = 8  # pixels per pixel of the 32x32 image, without smoothing


def show_seen(image: np.ndarray) -> None:
    """What the network sees, as a picture: one st.plotly_chart on the page would make the browser
    load Streamlit's own 4.7 MB Plotly as well (the page's figures show its values on hover)."""
    pixels = (np.clip(np.asarray(image, np.float32), 0, 1) * 255).round().astype(np.uint8)
    st.image(np.kron(pixels, np.ones((SEEN_SCALE, SEEN_SCALE), np.uint8)), caption="what the network sees (32x32)", width=260)


_explore = st.components.v2.component("sae_in_page_explore", html=_read("explore.html"), css=_read("in_page.css"), js=_LOADER, isolate_styles=False)


def explore_view(settings, image, layers: list[str], layer: str) -> None:
    """Explore's live view of ``image`` ([H, W] as the network sees it) under ``settings`` (the sidebar's)."""
    data = {
        "module": _module("explore.js"),
        "urls": _urls(),
        "model": model_files(settings.model),
        "image": np.asarray(image, dtype=np.float32).ravel().tolist(),  # float32 values, exact in JSON
        "settings": {"thresh": settings.neuron.thresh, "beta": settings.neuron.beta, "steps": settings.neuron.num_steps},
        "controls": {name: visibility.state(name) for name in SETTING_KEYS},  # a lesson link may lock or hide a slider
        "ranges": {name: {"low": r.low, "high": r.high, "step": r.step} for name, r in RANGES.items()},
        "layers": layers,
        "layer": layer if layer in layers else layers[0],
    }
    _explore(key=EXPLORE_KEY, data=data, on_settings_change=_on_settings, on_failure_change=_registers_state, width="stretch")


# --------------------------------------------------------------------------- the Latent lab's editor

_lab = st.components.v2.component("sae_in_page_lab", html=_read("lab.html"), css=_read("in_page.css"), js=_LOADER, isolate_styles=False)


def lab_editor(settings, own, code: np.ndarray, locked: bool = False) -> None:
    """The editor of ``code`` ([neurons, steps] 0/1), the digit ``own`` (sae.analysis.latent.EncodedDigit)
    having its own code and reconstruction; decoded in the page at ``settings``' thresh and beta.
    ``locked`` (a lesson link locks the code): the code is shown, clicks change nothing."""
    neurons, steps = code.shape
    st.session_state["_in_page_lab_shape"] = (neurons, steps)
    data = {
        "module": _module("lab.js"),
        "urls": _urls(),
        "model": model_files(settings.model),
        "code": np.asarray(code, np.uint8).ravel().tolist(),
        "own": np.asarray(own.code, np.uint8).ravel().tolist(),
        "input": np.asarray(own.input, np.float32).ravel().tolist(),
        "own_recon": np.asarray(own.recon, np.float32).ravel().tolist(),
        "neurons": neurons,
        "steps": steps,
        "thresh": settings.neuron.thresh,
        "beta": settings.neuron.beta,
        "locked": locked,
    }
    _lab(key=LAB_KEY, data=data, on_code_change=_on_code, on_failure_change=_registers_state, width="stretch")
