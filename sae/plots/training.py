"""Live training charts: a history (``sae.training.loop.History.as_dict()``) in, ``go.Figure`` out.

The Train page redraws these about once a second, so every figure sets a fixed
``uirevision`` (zoom and hidden traces survive a redraw) and stays small: the
reconstruction grid is one uint8 heatmap, a few kilobytes per update.  They are
built from plain dicts (``sae.plots.plain``): plotly's validated builders held the
server's one GIL for much of every redraw, beside a class.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from sae.model import SPIKING_LAYERS
from sae.plots.plain import plain_figure

MA_WINDOW = 20  # batches in the moving average
MAX_POINTS = 1500  # per line: a long run's batch loss is thinned to this many points for drawing
BATCH_COLOR, AVERAGE_COLOR, TEST_COLOR, TRAIN_COLOR = "#9ecae1", "#08519c", "#d62728", "#2ca02c"
GAP = 2  # white pixels between tiles of the reconstruction grid
_LAYOUT = dict(margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))


def moving_average(values, window: int = MA_WINDOW) -> np.ndarray:
    """Trailing mean over the last ``window`` values (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    ends = np.arange(1, values.size + 1)
    return (sums[ends] - sums[ends - counts]) / counts


def _thin(x, y, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th point (and the last) as compact arrays: numpy arrays travel to the
    browser as binary and skip Plotly's per-element validation."""
    x, y = np.asarray(x, dtype=np.int32), np.asarray(y, dtype=np.float32)
    if x.size > max_points:
        keep = np.unique(np.append(np.arange(0, x.size, -(-x.size // max_points)), x.size - 1))
        x, y = x[keep], y[keep]
    return x, y


def _waiting(text: str) -> dict:
    """The grey note an empty chart shows, as a layout annotation."""
    return dict(font=dict(color="gray"), showarrow=False, text=text, x=0.5, xref="paper", y=0.5, yref="paper")


def _axis(title: str, **more) -> dict:
    return dict(title=dict(text=title), **more)


def _hline(value: float, label: str) -> tuple[dict, dict]:
    """A labelled horizontal line, as plotly's ``add_hline(..., annotation_position="top right")`` makes it."""
    line = dict(line=dict(color="gray", dash="dash", width=1), type="line", x0=0, x1=1, xref="x domain", y0=value, y1=value, yref="y")
    note = dict(font=dict(color="gray"), showarrow=False, text=label, x=1, xanchor="right", xref="x domain", y=value, yanchor="bottom", yref="y")
    return line, note


def loss_figure(history: dict, references: dict[str, float] | None = None, window: int = MA_WINDOW) -> go.Figure:
    """Batch loss, its moving average and the held-out test loss, against the optimizer step.

    ``references`` draws labelled horizontal lines (e.g. the tutorial's final loss)."""
    batch, evals = history["batch"], history["evals"]
    steps, batch_loss = _thin(batch["step"], batch["loss"])
    _, average = _thin(batch["step"], moving_average(batch["loss"], window))
    data = [
        dict(
            type="scatter", x=steps, y=batch_loss, name="batch loss", mode="lines", line=dict(color=BATCH_COLOR, width=1),
            hovertemplate="step %{x}<br>batch loss %{y:.4f}<extra></extra>",
        ),
        dict(
            type="scatter", x=steps, y=average, name=f"average of {window} batches", mode="lines", line=dict(color=AVERAGE_COLOR, width=2.5),
            hovertemplate="step %{x}<br>moving average %{y:.4f}<extra></extra>",
        ),
        dict(
            type="scatter", x=np.asarray(evals["step"], np.int32), y=np.asarray(evals["test_loss"], np.float32), name="held-out test loss",
            mode="lines+markers", line=dict(color=TEST_COLOR, width=2, dash="dot"), marker=dict(size=8),
            hovertemplate="step %{x}<br>test loss %{y:.4f}<extra></extra>",
        ),
    ]  # fmt: skip
    lines = [_hline(value, label) for label, value in (references or {}).items()]
    notes = [note for _, note in lines] + ([] if batch["step"] else [_waiting("waiting for the first batch…")])
    layout = dict(
        title=dict(text="Reconstruction loss"), height=360, uirevision="loss", **_LAYOUT,
        xaxis=_axis("optimizer step (batch)", rangemode="tozero"), yaxis=_axis("MSE per pixel (log scale)", type="log"),
    )  # fmt: skip
    if lines:
        layout["shapes"] = [line for line, _ in lines]
    if notes:
        layout["annotations"] = notes
    return plain_figure(data, layout)


def epoch_figure(history: dict) -> go.Figure:
    """Mean training loss and held-out test loss after each epoch."""
    epochs = history["epochs"]
    data = [
        dict(
            type="scatter", x=epochs["epoch"], y=epochs[key], name=name, mode="lines+markers", line=dict(color=color), marker=dict(size=9),
            hovertemplate="epoch %{x}<br>%{y:.4f}<extra>" + key.replace("_", " ") + "</extra>",
        )
        for key, name, color in (
            ("train_loss", "train loss (mean over the epoch)", TRAIN_COLOR),
            ("test_loss", "held-out test loss (end of epoch)", TEST_COLOR),
        )
    ]  # fmt: skip
    layout = dict(
        title=dict(text="Loss per epoch"), height=300, uirevision="epochs", **_LAYOUT,
        xaxis=_axis("epoch", tickmode="linear", dtick=1, rangemode="tozero"), yaxis=_axis("MSE per pixel"),
    )  # fmt: skip
    if not epochs["epoch"]:
        layout["annotations"] = [_waiting("filled in at the end of each epoch")]
    return plain_figure(data, layout)


def spike_rate_figure(history: dict) -> go.Figure:
    """Fraction of neuron-steps that fired in each spiking layer, at each held-out evaluation."""
    evals = history["evals"]
    data = []
    for layer in SPIKING_LAYERS:
        values = evals.get(f"rate_{layer}", [])
        data.append(
            dict(
                type="scatter", x=np.asarray(evals["step"][: len(values)], np.int32), y=np.asarray(values, np.float32), name=layer,
                mode="lines+markers", hovertemplate="step %{x}<br>" + layer + " fired %{y:.1%}<extra></extra>",
            )
        )  # fmt: skip
    layout = dict(
        title=dict(text="Spike rate per layer (held-out digits)"), height=360, uirevision="rates", **_LAYOUT,
        xaxis=_axis("optimizer step (batch)", rangemode="tozero"),
        yaxis=_axis("spike rate (fraction of neuron-steps)", tickformat=".1~%", rangemode="tozero"),
    )  # fmt: skip
    if not evals["step"]:
        layout["annotations"] = [_waiting("waiting for the first evaluation…")]
    return plain_figure(data, layout)


def reconstruction_grid(inputs, reconstructions, caption: str = "") -> go.Figure:
    """Fixed test digits (top row) above their reconstructions (bottom row), as one heatmap.

    ``inputs``/``reconstructions``: [S, 1, H, W] or [S, H, W] arrays or tensors in [0, 1]
    (reconstructions are clipped).  Pixels are sent as 0..255 bytes with white gaps."""
    rows = [_as_images(inputs), _as_images(reconstructions)]
    count, height, width = rows[0].shape
    grid = np.full((2 * height + GAP, count * (width + GAP) - GAP), 255, np.uint8)
    for r, images in enumerate(rows):
        for c in range(count):
            top, left = r * (height + GAP), c * (width + GAP)
            grid[top : top + height, left : left + width] = np.round(np.clip(images[c], 0, 1) * 254).astype(np.uint8)
    heat = dict(type="heatmap", z=grid, colorscale="gray", zmin=0, zmax=254, showscale=False, hovertemplate="intensity %{z}/254<extra></extra>")
    layout = dict(
        title=dict(text=caption or "Fixed test digits and their reconstructions"), height=260, margin=_LAYOUT["margin"], uirevision="recon",
        xaxis=dict(visible=False, constrain="domain"),
        yaxis=dict(
            autorange="reversed", scaleanchor="x", constrain="domain", tickmode="array",
            tickvals=[(height - 1) / 2, height + GAP + (height - 1) / 2], ticktext=["test digit", "reconstruction"],
        ),
    )  # fmt: skip
    return plain_figure([heat], layout)


def _as_images(values) -> np.ndarray:
    array = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    array = array.astype(np.float32)
    if array.ndim == 4:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"expected [S, 1, H, W] or [S, H, W], got shape {array.shape}")
    return array
