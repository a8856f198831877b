"""A drawing canvas for digits: draw, erase, undo, clear; mouse, pen and touch.

Built as an inline ``st.components.v2`` component (no build step).  White ink on
a black 280x280 canvas, like MNIST.  When a stroke ends (pointer up), after undo
and after clear, the JS sends the whole canvas back as a PNG data URL in the
component state ``png``; Python decodes and normalises it like any uploaded image.
Nothing is sent while the pointer moves, so a stroke costs one rerun.  No
JavaScript runs under AppTest: tests put a data URL into ``st.session_state[key]``
instead.
"""

from __future__ import annotations

import base64
import binascii

import streamlit as st

SIZE = 280
DATA_URL_PREFIX = "data:image/png;base64,"
MAX_DATA_URL_CHARS = 2_000_000  # a 280x280 PNG is ~10 kB; refuse anything absurd

_HTML = f"""
<div class="sae-canvas">
  <div class="tools" role="toolbar" aria-label="drawing tools">
    <button type="button" data-action="draw" class="active" title="Draw with white ink">Draw</button>
    <button type="button" data-action="erase" title="Erase with a wide black brush">Erase</button>
    <button type="button" data-action="undo" title="Undo the last stroke">Undo</button>
    <button type="button" data-action="clear" title="Clear the canvas">Clear</button>
  </div>
  <canvas width="{SIZE}" height="{SIZE}" aria-label="digit drawing canvas" data-testid="digit-canvas"></canvas>
  <div class="hint">Draw one digit, big, in the middle.</div>
</div>
"""

_CSS = """
.sae-canvas { display: flex; flex-direction: column; gap: 0.4rem; align-items: flex-start; font-family: var(--st-font); }
.tools { display: flex; gap: 0.3rem; flex-wrap: wrap; }
.tools button {
  font: inherit; font-size: 0.85rem; padding: 0.25rem 0.6rem; cursor: pointer;
  border: 1px solid var(--st-border-color); border-radius: var(--st-button-radius, 0.5rem);
  background: var(--st-secondary-background-color); color: var(--st-text-color);
}
.tools button.active { border-color: var(--st-primary-color); color: var(--st-primary-color); font-weight: 600; }
canvas {
  width: 280px; height: 280px; max-width: 100%; background: #000; border-radius: 0.4rem;
  touch-action: none; cursor: crosshair; border: 1px solid var(--st-border-color);
}
.hint { font-size: 0.8rem; opacity: 0.7; color: var(--st-text-color); }
"""

# The component function may be called again when Streamlit re-renders it, so all
# drawing state (ink, undo stack, tool) lives on the canvas element, not in closures.
_JS = """
export default function (component) {
  const { parentElement, setStateValue } = component;
  const canvas = parentElement.querySelector("canvas");
  const buttons = parentElement.querySelectorAll("button[data-action]");
  const ctx = canvas.getContext("2d");
  const MAX_UNDO = 30;
  if (!canvas.dataset.ready) {
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    canvas.undoStack = []; canvas.tool = "draw"; canvas.dataset.ready = "1";
  }
  const send = () => setStateValue("png", canvas.toDataURL("image/png"));
  const snapshot = () => {
    canvas.undoStack.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (canvas.undoStack.length > MAX_UNDO) canvas.undoStack.shift();
  };
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  const brush = () => {
    const erase = canvas.tool === "erase";
    ctx.strokeStyle = ctx.fillStyle = erase ? "#000" : "#fff";
    ctx.lineWidth = erase ? 40 : 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
  };
  let last = null;
  const onDown = (event) => {
    if (event.button !== undefined && event.button > 0) return;
    event.preventDefault();
    try { canvas.setPointerCapture(event.pointerId); } catch (e) { /* synthetic events have no capturable pointer */ }
    snapshot(); brush();
    last = point(event);
    ctx.beginPath(); ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI); ctx.fill();
  };
  const onMove = (event) => {
    if (!last) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    ctx.beginPath(); ctx.moveTo(last[0], last[1]);
    for (const e of (events.length ? events : [event])) { last = point(e); ctx.lineTo(last[0], last[1]); }
    ctx.stroke();
  };
  const onUp = () => { if (!last) return; last = null; send(); };
  const onClick = (event) => {
    const action = event.currentTarget.dataset.action;
    if (action === "draw" || action === "erase") {
      canvas.tool = action;
      buttons.forEach((b) => b.classList.toggle("active", b.dataset.action === action));
    } else if (action === "undo") {
      if (!canvas.undoStack.length) return;
      ctx.putImageData(canvas.undoStack.pop(), 0, 0); send();
    } else if (action === "clear") {
      snapshot(); ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); send();
    }
  };
  buttons.forEach((b) => b.classList.toggle("active", b.dataset.action === canvas.tool));
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointercancel", onUp);
  buttons.forEach((b) => b.addEventListener("click", onClick));
  return () => {
    canvas.removeEventListener("pointerdown", onDown);
    canvas.removeEventListener("pointermove", onMove);
    canvas.removeEventListener("pointerup", onUp);
    canvas.removeEventListener("pointercancel", onUp);
    buttons.forEach((b) => b.removeEventListener("click", onClick));
  };
}
"""

_digit_canvas = st.components.v2.component("sae_digit_canvas", html=_HTML, css=_CSS, js=_JS)


def _ignore():
    """The component needs a callback to register its ``png`` state; the rerun is enough."""


def digit_canvas(key: str = "explore_canvas") -> str | None:
    """Show the canvas; return the latest drawing as a PNG data URL (None before the first stroke)."""
    result = _digit_canvas(key=key, default={"png": None}, on_png_change=_ignore, width="content")
    return result.get("png")


class CanvasDataError(ValueError):
    """The canvas sent something that is not a PNG data URL."""


def png_bytes(data_url: str) -> bytes:
    """The PNG bytes inside a ``data:image/png;base64,`` URL."""
    if not isinstance(data_url, str) or not data_url.startswith(DATA_URL_PREFIX):
        raise CanvasDataError("the canvas sent something that is not a PNG image")
    if len(data_url) > MAX_DATA_URL_CHARS:
        raise CanvasDataError("the canvas image is too large")
    try:
        return base64.b64decode(data_url[len(DATA_URL_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise CanvasDataError("the canvas image could not be decoded") from error


def png_data_url(png: bytes) -> str:
    """The inverse of :func:`png_bytes`: what the canvas sends for these PNG bytes."""
    return DATA_URL_PREFIX + base64.b64encode(png).decode("ascii")
