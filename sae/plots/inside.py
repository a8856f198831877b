"""Figures of what happens inside one forward: data in, ``go.Figure`` out.

Every builder takes an :class:`sae.analysis.inference.InferenceResult`.  Figures name their
axes and units and carry hover values; the ones that move through time steps
(layer membranes, the reconstruction) use Plotly frames with a play button and a
step slider, so playback runs in the browser without asking the server again.
Time steps are shown 1-based ("step 1" is the first presentation of the image).

Each figure is built in one go from plain dicts (subplots laid out by axis
domains) rather than with ``make_subplots`` and ``update_*`` calls: that is many
times faster, and the page rebuilds these figures on every settings change.
``template="none"`` keeps Plotly's 6 kB default theme out of every figure sent to
the browser; Streamlit applies its own theme there.

They are also built without plotly.py's validation (``sae.plots.plain``): on Explore
it was most of the time spent making figures, at every slider move, with a class's
moves queueing on the server's one GIL (``python -m benchmarks.load`` times the moves),
and the JSON the browser gets is the same (tests/test_plots_unvalidated.py holds it equal).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from sae.analysis.inference import InferenceResult
from sae.model import SPIKING_LAYERS
from sae.plots.plain import plain_figure as _figure

MEMBRANE_UNIT = "membrane potential (same units as thresh)"
PIXEL_X, PIXEL_Y = "column (pixel)", "row (pixel)"
INK_SCALE = "gray"
# Blue below threshold, white at it, red above: red cells are the ones that fire.
BELOW, AT, ABOVE = "#2166ac", "#f7f7f7", "#b2182b"
LAYER_TITLES = {
    "enc1": "encoder conv 1 (32 maps, 16x16)",
    "enc2": "encoder conv 2 (64 maps, 8x8)",
    "enc3": "encoder conv 3 (128 maps, 4x4)",
    "latent": "latent code",
    "linear": "decoder linear layer",
    "dec0": "decoder unflatten (128 maps, 4x4)",
    "dec1": "decoder deconv 1 (64 maps, 8x8)",
    "dec2": "decoder deconv 2 (32 maps, 16x16)",
    "output": "output layer (never fires: its membrane is the image)",
}
MARGIN = dict(l=10, r=10, t=50, b=10)


def png_download_config(filename: str) -> dict:
    """Plotly config whose modebar camera button saves a 2x PNG named ``filename``."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}


def digit_image(image: np.ndarray, title: str = "what the network sees (32x32)") -> go.Figure:
    """A grayscale digit with its pixel values on hover."""
    heat = dict(
        type="heatmap",
        z=np.asarray(image, np.float32),
        colorscale=INK_SCALE,
        zmin=0,
        zmax=1,
        showscale=False,
        hovertemplate="row %{y}, column %{x}<br>intensity %{z:.2f}<extra></extra>",
    )
    layout = dict(title=dict(text=title), height=300, margin=MARGIN, template="none", xaxis=_axis(PIXEL_X), yaxis=_image_yaxis(PIXEL_Y, "x"))
    return _figure([heat], layout)


def latent_raster(result: InferenceResult) -> go.Figure:
    """Latent spikes, neurons x time steps: the code the decoder receives."""
    spikes = result.spikes["latent"].T  # [neurons, T]
    heat = dict(
        type="heatmap", z=spikes.astype(np.float32), x=_steps(result), y=np.arange(spikes.shape[0]),
        customdata=result.mem["latent"].T, colorscale=[[0, "#ffffff"], [1, "#111111"]], zmin=0, zmax=1,
        showscale=False, xgap=1, ygap=1,
        hovertemplate="step %{x}, latent neuron %{y}<br>spike %{z:.0f}<br>membrane %{customdata:.3f}<extra></extra>",
    )  # fmt: skip
    layout = dict(
        title=dict(text="latent spike raster (black = spike)"),
        height=_rows_height(spikes.shape[0]),
        margin=MARGIN,
        template="none",
        xaxis=_step_axis(result),
        yaxis=dict(title=dict(text="latent neuron"), autorange="reversed"),
    )
    return _figure([heat], layout)


def latent_membrane(result: InferenceResult) -> go.Figure:
    """Latent membrane, neurons x time steps, white at the threshold (red cells fire)."""
    mem = result.mem["latent"].T
    zmin, zmax, colorscale = _threshold_scale(mem, result.settings.thresh)
    heat = dict(
        type="heatmap", z=mem, x=_steps(result), y=np.arange(mem.shape[0]), colorscale=colorscale, zmin=zmin,
        zmax=zmax, customdata=result.spikes["latent"].T, xgap=1, ygap=1,
        colorbar=_threshold_colorbar(zmin, zmax, result.settings.thresh),
        hovertemplate="step %{x}, latent neuron %{y}<br>membrane %{z:.3f}<br>spike %{customdata}<extra></extra>",
    )  # fmt: skip
    layout = dict(
        title=dict(text=f"latent membrane potential (white = thresh {result.settings.thresh:g})"),
        height=_rows_height(mem.shape[0]),
        margin=MARGIN,
        template="none",
        xaxis=_step_axis(result),
        yaxis=dict(title=dict(text="latent neuron"), autorange="reversed"),
    )
    return _figure([heat], layout)


def layer_activity(result: InferenceResult) -> go.Figure:
    """Firing rate of every spiking layer, with the spike count on each bar."""
    layers = list(SPIKING_LAYERS)
    counts = [result.spike_count(name) for name in layers]
    colors = ["#4c78a8" if name.startswith("enc") else "#f58518" if name == "latent" else "#54a24b" for name in layers]
    bar = dict(
        type="bar", x=layers, y=[100 * result.firing_rate(name) for name in layers], text=[f"{c:,}" for c in counts],
        textposition="outside", marker=dict(color=colors),
        customdata=np.column_stack([counts, [result.neurons(name) for name in layers]]),
        hovertemplate=("%{x}<br>%{customdata[0]:,} spikes from %{customdata[1]:,} neurons over "
                       f"{result.num_steps} steps<br>firing rate %{{y:.2f}}%<extra></extra>"),
    )  # fmt: skip
    layout = dict(
        title=dict(text="spikes per layer (number on the bar = spike count)"), height=380, margin=MARGIN,
        template="none", xaxis=_axis("spiking layer (encoder blue, latent orange, decoder green)"),
        yaxis=dict(title=dict(text="firing rate (% of neuron-steps that spiked)"), rangemode="tozero"),
    )  # fmt: skip
    return _figure([bar], layout)


def layer_membrane(result: InferenceResult, layer: str) -> go.Figure:
    """One layer: membrane at each step (frames, slider, play) beside its spike count per neuron.

    Feature maps are tiled into one heatmap (separated by blank lines) rather than
    one subplot per channel; a vector layer is wrapped into a near-square block.
    Hover names the channel (or, in a vector layer, the neuron).
    """
    if layer not in result.mem:
        raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(result.mem)}")
    mem = result.mem[layer]  # [T, ...]
    counts = result.spikes[layer].sum(axis=0, dtype=np.int64).astype(np.float32)
    frames_z = [tile_maps(mem[t]) for t in range(result.num_steps)]
    is_maps = mem.ndim == 4
    index = tile_index(mem.shape[1:])[..., 0 if is_maps else 3].astype(np.int16)  # channel, or neuron
    where = "channel %{customdata}" if is_maps else "neuron %{customdata}"
    if layer == "output":
        zmin, zmax, colorscale = float(mem.min()), float(mem.max()), INK_SCALE
        colorbar = dict(title=dict(text="membrane", side="right"), x=0.42)
    else:
        zmin, zmax, colorscale = _threshold_scale(mem, result.settings.thresh)
        colorbar = {**_threshold_colorbar(zmin, zmax, result.settings.thresh), "x": 0.42, "title": dict(text="membrane", side="right")}
    steps = result.num_steps
    data = [
        dict(type="heatmap", z=frames_z[-1], customdata=index, colorscale=colorscale, zmin=zmin, zmax=zmax,
             colorbar=colorbar, hovertemplate=where + "<br>membrane %{z:.3f}<extra></extra>"),
        dict(type="heatmap", z=tile_maps(counts), customdata=index, colorscale="Viridis", zmin=0, zmax=max(steps, 1),
             colorbar=dict(title=dict(text="spikes", side="right"), x=1.0), xaxis="x2", yaxis="y2",
             hovertemplate=where + "<br>%{z:.0f} spikes<extra></extra>"),
    ]  # fmt: skip
    unit = "feature maps, tiled" if is_maps else "neurons, wrapped into rows"
    layout = dict(
        title=dict(text=LAYER_TITLES.get(layer, layer)), height=480, margin=dict(MARGIN, t=80, b=90), template="none",
        xaxis=dict(_axis(unit), domain=[0, 0.4], showticklabels=False),
        yaxis=dict(_image_yaxis(None, "x"), showticklabels=False),
        xaxis2=dict(_axis(unit), domain=[0.58, 0.96], showticklabels=False, anchor="y2"),
        yaxis2=dict(_image_yaxis(None, "x2"), showticklabels=False, anchor="x2"),
        annotations=[_panel_title("membrane at the step on the slider", 0.2),
                     _panel_title(f"spikes per neuron over all {steps} steps", 0.77)],
        **_playback_controls([str(t + 1) for t in range(steps)]),
    )  # fmt: skip
    frames = [dict(name=str(t + 1), data=[dict(type="heatmap", z=z)], traces=[0]) for t, z in enumerate(frames_z)]
    return _figure(data, layout, frames)


def reconstruction_playback(result: InferenceResult) -> go.Figure:
    """The output membrane after each step: how the image builds up, playable in the browser."""
    steps = result.recon_steps
    zmin, zmax = min(0.0, float(steps.min())), max(1.0, float(steps.max()))
    names = [str(t + 1) for t in range(result.num_steps)]
    errors = result.step_mse()
    heat = dict(
        type="heatmap",
        z=steps[-1],
        colorscale=INK_SCALE,
        zmin=zmin,
        zmax=zmax,
        colorbar=dict(title=dict(text="output membrane (≈ intensity)", side="right")),
        hovertemplate="row %{y}, column %{x}<br>value %{z:.3f}<extra></extra>",
    )
    layout = dict(
        title=dict(text=_playback_title(names[-1], len(names), errors[-1])), height=470,
        margin=dict(MARGIN, b=90), template="none", xaxis=_axis(PIXEL_X), yaxis=_image_yaxis(PIXEL_Y, "x"),
        **_playback_controls(names),
    )  # fmt: skip
    frames = [
        dict(name=name, data=[dict(type="heatmap", z=z)], traces=[0],
             layout=dict(title=dict(text=_playback_title(name, len(names), mse))))
        for name, z, mse in zip(names, steps, errors)
    ]  # fmt: skip
    return _figure([heat], layout, frames)


def digit_comparison(result: InferenceResult) -> go.Figure:
    """Input, final reconstruction and their difference, side by side on one pixel grid."""
    err = result.error
    limit = max(float(np.abs(err).max()), 1e-6)
    pixel = "row %{y}, column %{x}<br>"
    data = [
        dict(type="heatmap", z=result.input, colorscale=INK_SCALE, zmin=0, zmax=1, showscale=False,
             hovertemplate=pixel + "input %{z:.3f}<extra></extra>"),
        dict(type="heatmap", z=result.recon, colorscale=INK_SCALE, zmin=0, zmax=1, showscale=False,
             xaxis="x2", yaxis="y2", hovertemplate=pixel + "reconstruction %{z:.3f}<extra></extra>"),
        dict(type="heatmap", z=err, colorscale="RdBu_r", zmin=-limit, zmax=limit, xaxis="x3", yaxis="y3",
             colorbar=dict(title=dict(text="reconstruction − input", side="right")),
             hovertemplate=pixel + "reconstruction − input %{z:.3f}<extra></extra>"),
    ]  # fmt: skip
    titles = ("input", "final reconstruction", f"error (MSE {result.mse:.4f})")
    layout = dict(height=360, margin=MARGIN, template="none", annotations=[])
    for i, (start, title) in enumerate(zip((0.0, 0.33, 0.66), titles), start=1):
        suffix = "" if i == 1 else str(i)
        layout["xaxis" + suffix] = dict(_axis(PIXEL_X), domain=[start, start + 0.27], anchor="y" + suffix)
        layout["yaxis" + suffix] = dict(_image_yaxis(PIXEL_Y if i == 1 else None, "x" + suffix), anchor="x" + suffix)
        layout["annotations"].append(_panel_title(title, start + 0.135))
    return _figure(data, layout)


# --- tiling feature maps ------------------------------------------------------------


def _grid(count: int) -> tuple[int, int]:
    """Rows and columns for ``count`` tiles: a power-of-two number of rows, about twice as wide as tall."""
    rows = 2 ** (int(math.log2(count)) // 2) if count > 1 else 1
    return rows, math.ceil(count / rows)


def tile_maps(values: np.ndarray) -> np.ndarray:
    """Lay a layer's values out as one 2-D image.

    ``[C, H, W]`` feature maps become a grid of tiles separated by one NaN line (drawn
    blank); a vector ``[N]`` becomes a near-square block padded with NaN.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        rows, cols = _grid(values.size)
        flat = np.full(rows * cols, np.nan, np.float32)
        flat[: values.size] = values
        return flat.reshape(rows, cols)
    if values.ndim != 3:
        raise ValueError(f"expected [C, H, W] or [N], got shape {values.shape}")
    channels, height, width = values.shape
    rows, cols = _grid(channels)
    out = np.full((rows * (height + 1) - 1, cols * (width + 1) - 1), np.nan, np.float32)
    for c in range(channels):
        r, k = divmod(c, cols)
        out[r * (height + 1) : r * (height + 1) + height, k * (width + 1) : k * (width + 1) + width] = values[c]
    return out


def tile_index(shape: tuple[int, ...]) -> np.ndarray:
    """For each cell of ``tile_maps(x)`` with ``x.shape == shape``: (channel, row, column, neuron), -1 in gaps."""
    count = int(np.prod(shape))
    neuron = tile_maps(np.arange(count, dtype=np.float32).reshape(shape))
    gap = np.isnan(neuron)
    neuron = np.where(gap, -1, neuron).astype(np.int64)
    if len(shape) == 3:
        channel, row, col = np.unravel_index(np.clip(neuron, 0, None), shape)
    else:
        channel, row, col = np.zeros_like(neuron), np.zeros_like(neuron), neuron
    index = np.stack([channel, row, col, neuron], axis=-1)
    index[gap] = -1
    return index


# --- shared pieces ------------------------------------------------------------------


def _steps(result: InferenceResult) -> np.ndarray:
    return np.arange(1, result.num_steps + 1)


def _axis(title: str | None) -> dict:
    return dict(title=dict(text=title), constrain="domain") if title else dict(constrain="domain")


def _image_yaxis(title: str | None, anchor_x: str) -> dict:
    """Square pixels, row 0 at the top, as an image is read."""
    return dict(_axis(title), autorange="reversed", scaleanchor=anchor_x)


def _step_axis(result: InferenceResult) -> dict:
    return dict(title=dict(text="time step"), dtick=1 if result.num_steps <= 20 else None)


def _panel_title(text: str, x: float) -> dict:
    return dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False)


def _playback_title(name: str, total: int, mse: float) -> str:
    return f"reconstruction after step {name} of {total} (MSE {mse:.4f})"


def _threshold_scale(values: np.ndarray, thresh: float) -> tuple[float, float, list]:
    """A blue-white-red colorscale whose white sits exactly at ``thresh``."""
    zmin = min(float(np.nanmin(values)), 0.0)
    zmax = max(float(np.nanmax(values)), thresh * 1.05)
    if zmin >= thresh:
        zmin = thresh - 1.0
    mid = (thresh - zmin) / (zmax - zmin)
    return zmin, zmax, [[0.0, BELOW], [mid, AT], [1.0, ABOVE]]


def _threshold_colorbar(zmin: float, zmax: float, thresh: float) -> dict:
    ticks = sorted({round(zmin, 2), 0.0, float(thresh), round(zmax, 2)})
    text = [f"θ = {v:g} (thresh)" if v == thresh else f"{v:g}" for v in ticks]
    return dict(title=dict(text=MEMBRANE_UNIT, side="right"), tickmode="array", tickvals=ticks, ticktext=text)


def _rows_height(rows: int) -> int:
    return int(min(900, max(300, 90 + 14 * rows)))


def _playback_controls(names: list[str]) -> dict:
    """Play/pause buttons and a step slider driving the figure's frames in the browser."""
    still = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    play = {"mode": "immediate", "fromcurrent": False, "frame": {"duration": 600, "redraw": True}, "transition": {"duration": 0}}
    return dict(
        updatemenus=[dict(
            type="buttons", direction="left", showactive=False, x=0.0, y=-0.06, xanchor="left", yanchor="top",
            buttons=[dict(label="▶ play", method="animate", args=[None, play]),
                     dict(label="❚❚ pause", method="animate", args=[[None], still])],
        )],
        sliders=[dict(
            active=len(names) - 1, x=0.2, len=0.8, y=-0.02, yanchor="top", currentvalue=dict(prefix="time step "),
            steps=[dict(label=name, method="animate", args=[[name], still]) for name in names],
        )],
    )  # fmt: skip
