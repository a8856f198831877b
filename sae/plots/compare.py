"""Figures for the Compare page: sweeps over the neuron settings, trained models, A/B views.

Data in (the result objects of ``sae.analysis.sweep``), ``go.Figure`` out; no Streamlit.
Grids of images or rasters are tiled into ONE heatmap with blank gaps rather than
dozens of subplots: it draws fast and every tile shares one colour scale, so
tiles can be compared by eye.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sae.analysis.inference import InferenceResult
from sae.analysis.sweep import SettingResult, SweepResult
from sae.analysis.trained_for_setting import TrainedRow
from sae.analysis.two_settings import ABResult
from sae.model import SPIKING_LAYERS
from sae.plots import inside
from sae.plots.inside import tile_maps

GAP = 2  # blank pixels between tiles
IMAGE_SCALE = "gray"
RASTER_SCALE = [[0, "#ffffff"], [1, "#1f2937"]]
DIFF_SCALE = "RdBu_r"  # red: B higher, blue: A higher
A_COLOR, B_COLOR = "#1f77b4", "#d62728"
PARAM_TITLES = {"thresh": "thresh (firing threshold)", "num_steps": "num_steps (time steps)"}


# --------------------------------------------------------------------------- tiling


def tile(blocks: Sequence[Sequence[np.ndarray | None]], gap: int = GAP) -> tuple[np.ndarray, list, list]:
    """Lay 2-D arrays out in rows and columns with NaN gaps between them.

    Returns the big array and the centre coordinate of each row and column of
    tiles (for tick labels).  Columns are as wide as their widest block, rows as
    tall as their tallest; ``None`` leaves a tile blank."""
    present = [b for row in blocks for b in row if b is not None]
    blank_h = max((b.shape[0] for b in present), default=1)  # an all-blank row or column keeps its place
    blank_w = max((b.shape[1] for b in present), default=1)
    heights = [max((b.shape[0] for b in row if b is not None), default=blank_h) for row in blocks]
    n_cols = max(len(row) for row in blocks)
    widths = [max((row[c].shape[1] for row in blocks if c < len(row) and row[c] is not None), default=blank_w) for c in range(n_cols)]
    out = np.full((sum(heights) + gap * (len(heights) - 1), sum(widths) + gap * (n_cols - 1)), np.nan)
    row_centres, col_centres = [], []
    y = 0
    for r, row in enumerate(blocks):
        x = 0
        for c in range(n_cols):
            block = row[c] if c < len(row) else None
            if block is not None:
                out[y : y + block.shape[0], x : x + block.shape[1]] = block
            if r == 0:
                col_centres.append(x + (widths[c] - 1) / 2)
            x += widths[c] + gap
        row_centres.append(y + (heights[r] - 1) / 2)
        y += heights[r] + gap
    return out, row_centres, col_centres


def _tiled_heatmap(
    blocks,
    row_labels,
    col_labels,
    title,
    *,
    colorscale=IMAGE_SCALE,
    zmin=0.0,
    zmax=1.0,
    zmid=None,
    colorbar_title="pixel",
    hover="value %{z:.3f}",
    pixel=3,
    height=None,
    square=True,
) -> go.Figure:
    """``square``: images keep square pixels; rasters (few steps, many neurons) stretch to the width."""
    z, rows, cols = tile(blocks)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            zmid=zmid,
            hoverongaps=False,
            hovertemplate=hover + "<extra></extra>",
            colorbar={"title": colorbar_title, "thickness": 12},
        )
    )
    fig.update_xaxes(tickmode="array", tickvals=cols, ticktext=[str(c) for c in col_labels], showgrid=False, zeroline=False, side="top")
    fig.update_yaxes(
        tickmode="array",
        tickvals=rows,
        ticktext=[str(r) for r in row_labels],
        showgrid=False,
        zeroline=False,
        autorange="reversed",
        scaleanchor="x" if square else None,
    )
    fig.update_layout(
        title=title, height=height or max(220, min(900, pixel * z.shape[0] + 120)), margin={"l": 10, "r": 10, "t": 90, "b": 10}, plot_bgcolor="white"
    )
    return fig


# --------------------------------------------------------------------------- sweeps


def series_values(result: SweepResult, parameter: str) -> tuple:
    return result.thresholds if parameter == "thresh" else result.num_steps


def series_grid(result: SweepResult, parameter: str, digits: int = 6) -> go.Figure:
    """Rows: digits; first column the input, then one column per value of ``parameter``."""
    values = series_values(result, parameter)
    k = min(digits, len(result.digits))
    series = result.series(parameter)
    blocks = [[result.digits[i]] + [r.reconstructions[i] for r in series] for i in range(k)]
    name = "thresh" if parameter == "thresh" else "steps"
    return _tiled_heatmap(
        blocks, [f"digit {i + 1}" for i in range(k)], ["input"] + [f"{name} {v:g}" for v in values], f"Reconstructions as {parameter} changes"
    )


def setting_grid(result: SweepResult, digit: int = 0, beta: float | None = None) -> go.Figure:
    """One digit's reconstruction for every (thresh row, num_steps column) pair."""
    blocks = [[r.reconstructions[digit] for r in row] for row in result.table(beta)]
    return _tiled_heatmap(
        blocks,
        [f"thresh {t:g}" for t in result.thresholds],
        [f"steps {s}" for s in result.num_steps],
        f"Reconstruction of digit {digit + 1} for every thresh × num_steps",
    )


def mse_heatmap(result: SweepResult, beta: float | None = None) -> go.Figure:
    z = result.mse_grid(beta)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(s) for s in result.num_steps],
            y=[f"{t:g}" for t in result.thresholds],
            colorscale="Viridis",
            text=np.vectorize(lambda v: f"{v:.4f}")(z),
            texttemplate="%{text}",
            hovertemplate="thresh %{y}, num_steps %{x}<br>MSE %{z:.4f}<extra></extra>",
            colorbar={"title": "MSE"},
        )
    )
    fig.update_layout(
        title=f"Test MSE over {result.digit_count} digits (lower is better)",
        xaxis_title="num_steps",
        yaxis_title="thresh",
        height=360,
        margin={"t": 60, "b": 10},
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed")  # thresh down, as in the reconstruction grid
    return fig


def rate_heatmap(results: Sequence[SettingResult], labels: Sequence[str] | None = None, title: str = "Spike rate per layer") -> go.Figure:
    """Rows: spiking layers in signal order; columns: settings.  Cell: fraction of (neuron, step) pairs that fired."""
    labels = list(labels or [r.setting.short for r in results])
    z = np.array([[r.spike_rates[n] for r in results] for n in SPIKING_LAYERS])
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=list(SPIKING_LAYERS),
            colorscale="Viridis",
            zmin=0,
            text=np.vectorize(lambda v: f"{v:.0%}" if v >= 0.005 else f"{v:.1%}")(z),
            texttemplate="%{text}" if len(labels) <= 12 else None,  # too many columns: values on hover only
            hovertemplate="%{y} at %{x}<br>spike rate %{z:.2%}<extra></extra>",
            colorbar={"title": "rate", "tickformat": ".0%"},
        )
    )
    fig.update_xaxes(type="category", tickangle=-45 if len(labels) > 8 else 0)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(title=title, height=380, margin={"t": 60, "b": 10})
    return fig


def sweep_rate_heatmap(result: SweepResult, beta: float | None = None) -> go.Figure:
    beta = result.betas[0] if beta is None else beta
    results = [r for row in result.table(beta) for r in row]
    return rate_heatmap(results, [r.setting.short for r in results], f"Spike rate per layer for every setting (beta {beta:g})")


def latent_rasters(results: Sequence[SettingResult], labels: Sequence[str], title: str) -> go.Figure:
    """Latent rasters (neurons down, steps across) side by side in one row."""
    fig = _tiled_heatmap(
        [[r.latent_raster.T for r in results]],
        ["latent neuron"],
        labels,
        title,
        colorscale=RASTER_SCALE,
        colorbar_title="spike",
        hover="spike %{z:.0f}",
        pixel=6,
        square=False,
    )
    fig.update_traces(showscale=False)
    return fig


def sweep_rasters(result: SweepResult, beta: float | None = None) -> go.Figure:
    """Rows: thresh; columns: num_steps; each tile the latent raster of one digit."""
    blocks = [[r.latent_raster.T for r in row] for row in result.table(beta)]
    fig = _tiled_heatmap(
        blocks,
        [f"thresh {t:g}" for t in result.thresholds],
        [f"steps {s}" for s in result.num_steps],
        f"Latent spikes of digit {result.raster_index + 1} (neurons down, time steps across)",
        colorscale=RASTER_SCALE,
        colorbar_title="spike",
        hover="spike %{z:.0f}",
        pixel=4,
        square=False,
    )
    fig.update_traces(showscale=False)
    return fig


def series_rasters(result: SweepResult, parameter: str) -> go.Figure:
    values = series_values(result, parameter)
    name = "thresh" if parameter == "thresh" else "steps"
    return latent_rasters(
        result.series(parameter),
        [f"{name} {v:g}" for v in values],
        f"Latent spikes of digit {result.raster_index + 1} (neurons down, time steps across)",
    )


def _lines_vs(result: SweepResult, parameter: str, value, *, title: str, yaxis: dict, hover: str) -> go.Figure:
    """``value(SettingResult)`` against ``parameter``; one line per value of the other parameter (and beta)."""
    values = series_values(result, parameter)
    others = result.num_steps if parameter == "thresh" else result.thresholds
    other_name = "num_steps" if parameter == "thresh" else "thresh"
    fig = go.Figure()
    for beta in result.betas:
        for other in others:
            ys = [value(r) for r in result.series(parameter, other, beta)]
            name = f"{other_name} {other:g}" + (f", beta {beta:g}" if len(result.betas) > 1 else "")
            fig.add_scatter(
                x=list(values), y=ys, mode="lines+markers", name=name, hovertemplate=f"{parameter} %{{x}}<br>{hover}<extra>{name}</extra>"
            )
    fig.update_layout(
        title=title, xaxis_title=PARAM_TITLES[parameter], yaxis=yaxis, height=340, margin={"t": 60, "b": 10}, legend={"font": {"size": 10}}
    )
    if parameter == "num_steps":
        fig.update_xaxes(tickvals=list(values))
    return fig


def mse_vs(result: SweepResult, parameter: str) -> go.Figure:
    """Test MSE against ``parameter``; one line per value of the other parameter."""
    return _lines_vs(result, parameter, lambda r: r.mse, title=f"Test MSE vs {parameter}", yaxis={"title": {"text": "MSE"}}, hover="MSE %{y:.4f}")


def mean_rate_vs(result: SweepResult, parameter: str) -> go.Figure:
    """Spike rate averaged over the layers against ``parameter``; one line per value of the other parameter."""
    return _lines_vs(
        result,
        parameter,
        lambda r: r.mean_rate,
        title=f"Mean spike rate vs {parameter}",
        yaxis={"title": {"text": "spike rate (mean over layers)"}, "tickformat": ".0%"},
        hover="rate %{y:.2%}",
    )


def rates_vs(result: SweepResult, parameter: str, other=None, beta: float | None = None) -> go.Figure:
    """Spike rate of every layer against ``parameter``, the other parameter held at ``other``."""
    values = series_values(result, parameter)
    other = other if other is not None else (result.num_steps if parameter == "thresh" else result.thresholds)[0]
    beta = result.betas[0] if beta is None else beta
    fig = go.Figure()
    for layer in SPIKING_LAYERS:
        ys = [r.spike_rates[layer] for r in result.series(parameter, other, beta)]
        fig.add_scatter(
            x=list(values), y=ys, mode="lines+markers", name=layer, hovertemplate=f"{parameter} %{{x}}<br>rate %{{y:.2%}}<extra>{layer}</extra>"
        )
    other_name = "num_steps" if parameter == "thresh" else "thresh"
    fig.update_layout(
        title=f"Spike rate per layer vs {parameter} ({other_name} {other:g})",
        xaxis_title=PARAM_TITLES[parameter],
        yaxis_title="spike rate",
        yaxis_tickformat=".0%",
        height=340,
        margin={"t": 60, "b": 10},
        legend={"font": {"size": 10}},
    )
    if parameter == "num_steps":
        fig.update_xaxes(tickvals=list(values))
    return fig


# --------------------------------------------------------------------------- trained for the setting


def trained_vs_after(rows: Sequence[TrainedRow], parameter: str) -> go.Figure:
    """MSE and mean spike rate: models trained with each setting vs the reference switched to it."""
    xs = [getattr(r.entry, parameter) for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Test MSE (lower is better)", "Mean spike rate over layers"))
    series = (
        ("trained with the setting", "trained", A_COLOR, "solid"),
        ("trained at steps 5, thresh 1; set after training", "after_training", B_COLOR, "dash"),
    )
    for name, attr, color, dash in series:
        results = [getattr(r, attr) for r in rows]
        mse = [r.mse if r is not None else None for r in results]
        rate = [r.mean_rate if r is not None else None for r in results]
        style = {"mode": "lines+markers", "name": name, "line": {"color": color, "dash": dash}, "legendgroup": attr}
        fig.add_scatter(x=xs, y=mse, row=1, col=1, hovertemplate="%{x}: MSE %{y:.4f}<extra>" + name + "</extra>", **style)
        fig.add_scatter(x=xs, y=rate, row=1, col=2, showlegend=False, hovertemplate="%{x}: rate %{y:.2%}<extra>" + name + "</extra>", **style)
    fig.update_xaxes(title_text=PARAM_TITLES[parameter], tickvals=xs)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(
        height=360,
        margin={"t": 60, "b": 10},
        legend={"orientation": "h", "y": -0.25},
        title=f"Training with a {parameter} vs switching to it after training",
    )
    return fig


def trained_reconstructions(rows: Sequence[TrainedRow], digits: np.ndarray, parameter: str, count: int = 6) -> go.Figure:
    """Per setting two rows, trained-with and switched-after; columns: the same digits."""
    k = min(count, len(digits))
    blocks = [list(digits[:k])]
    labels = ["input"]
    for row in rows:
        value = getattr(row.entry, parameter)
        for attr, tag in (("trained", "trained"), ("after_training", "set after")):
            result = getattr(row, attr)
            blocks.append([result.reconstructions[i] if result is not None else None for i in range(k)])
            labels.append(f"{parameter} {value:g}: {tag}")
    return _tiled_heatmap(blocks, labels, [f"digit {i + 1}" for i in range(k)], "Reconstructions: trained with the setting vs set after training")


# --------------------------------------------------------------------------- A/B
# Each A/B builder highlights what differs between two runs of the same digit; the
# page shows the Explore page's own figures (sae.plots.inside) for A and B beside them.


def setting_short(result: InferenceResult) -> str:
    return f"{result.settings.short} β{result.settings.beta:g}"


def _ab_titles(ab: ABResult) -> tuple[str, str]:
    return f"A: {setting_short(ab.a)}", f"B: {setting_short(ab.b)}"


def ab_images(ab: ABResult) -> go.Figure:
    """Input, A's and B's reconstructions on one scale, and B − A with the changed pixels in colour."""
    title_a, title_b = _ab_titles(ab)
    diff = ab.reconstruction_change()
    limit = max(float(np.abs(diff).max()), 1e-6)
    fig = make_subplots(
        rows=1,
        cols=4,
        horizontal_spacing=0.03,
        subplot_titles=("input", f"{title_a}<br>MSE {ab.a.mse:.4f}", f"{title_b}<br>MSE {ab.b.mse:.4f}", f"B − A (max |Δ| {limit:.3f})"),
    )
    for col, image in ((1, ab.a.input), (2, ab.a.recon), (3, ab.b.recon)):
        fig.add_heatmap(z=image, row=1, col=col, coloraxis="coloraxis", hovertemplate="row %{y}, column %{x}<br>value %{z:.3f}<extra></extra>")
    fig.add_heatmap(z=diff, row=1, col=4, coloraxis="coloraxis2", hovertemplate="row %{y}, column %{x}<br>B − A %{z:+.3f}<extra></extra>")
    fig.update_layout(
        coloraxis={"colorscale": IMAGE_SCALE, "cmin": 0, "cmax": 1, "showscale": False},
        coloraxis2={"colorscale": DIFF_SCALE, "cmid": 0, "cmin": -limit, "cmax": limit, "colorbar": {"title": "B − A", "thickness": 12}},
        title="Reconstructions on one scale; red: B paints more ink, blue: A does",
        height=320,
        margin={"t": 90, "b": 10, "l": 10, "r": 10},
    )
    _square_images(fig, 4)
    return fig


def ab_steps(ab: ABResult) -> go.Figure:
    """The reconstruction after every step: A on top, B below, steps aligned, one colour scale."""
    longest = max(ab.a.num_steps, ab.b.num_steps)
    runs = (ab.a, ab.b)
    blocks = [[run.recon_steps[t] if t < run.num_steps else None for t in range(longest)] for run in runs]
    lo = min(0.0, *(float(r.recon_steps.min()) for r in runs))
    hi = max(1.0, *(float(r.recon_steps.max()) for r in runs))
    return _tiled_heatmap(
        blocks,
        list(_ab_titles(ab)),
        [f"step {t + 1}" for t in range(longest)],
        "Reconstruction after each time step (blank: that setting has no such step)",
        zmin=lo,
        zmax=hi,
        colorbar_title="membrane",
        pixel=4,
    )


def ab_raster(ab: ABResult) -> go.Figure:
    """Latent rasters of A and B, and where they differ: blue fired only in A, red only in B, grey both."""
    a, b = ab.a.spikes["latent"].astype(float), ab.b.spikes["latent"].astype(float)  # [T, L]
    steps = max(len(a), len(b))

    def pad(s):
        return np.vstack([s, np.zeros((steps - len(s), s.shape[1]))]) if len(s) < steps else s

    pa, pb = pad(a), pad(b)
    diff = np.where((pa > 0) & (pb > 0), 3, np.where(pa > 0, 1, np.where(pb > 0, 2, 0))).astype(float)
    title_a, title_b = _ab_titles(ab)
    fig = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.05,
        shared_yaxes=True,
        subplot_titles=(title_a, title_b, f"difference: {ab.latent_flips()} (step, neuron) flips"),
    )
    for col, s in ((1, a), (2, b)):
        fig.add_heatmap(
            z=s.T,
            x=list(range(1, len(s) + 1)),
            row=1,
            col=col,
            colorscale=RASTER_SCALE,
            zmin=0,
            zmax=1,
            showscale=False,
            xgap=1,
            ygap=1,
            hovertemplate="step %{x}, neuron %{y}: spike %{z:.0f}<extra></extra>",
        )
    scale = [[0, "#ffffff"], [0.25, "#ffffff"], [0.25, A_COLOR], [0.5, A_COLOR], [0.5, B_COLOR], [0.75, B_COLOR], [0.75, "#9ca3af"], [1, "#9ca3af"]]
    words = np.array(["neither", "only A", "only B", "both"])[diff.T.astype(int)]
    fig.add_heatmap(
        z=diff.T,
        x=list(range(1, steps + 1)),
        row=1,
        col=3,
        colorscale=scale,
        zmin=0,
        zmax=3,
        showscale=False,
        xgap=1,
        ygap=1,
        customdata=words,
        hovertemplate="step %{x}, neuron %{y}: %{customdata}<extra></extra>",
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text="latent neuron", row=1, col=1)
    fig.update_xaxes(title_text="time step", dtick=1 if steps <= 20 else None)
    fig.update_layout(title="Latent spikes (grey: both fire, blue: only A, red: only B)", height=420, margin={"t": 80, "b": 10})
    return fig


def ab_rates(ab: ABResult) -> go.Figure:
    """Firing rate per layer, A and B side by side, with B − A written over each pair."""
    fig = go.Figure()
    title_a, title_b = _ab_titles(ab)
    rates = {"a": ab.a.firing_rates(), "b": ab.b.firing_rates()}
    for key, name, color in (("a", title_a, A_COLOR), ("b", title_b, B_COLOR)):
        fig.add_bar(
            x=list(SPIKING_LAYERS),
            y=[rates[key][n] for n in SPIKING_LAYERS],
            name=name,
            marker_color=color,
            hovertemplate="%{x}: %{y:.2%}<extra>" + name + "</extra>",
        )
    changes = ab.rate_changes()
    for layer in SPIKING_LAYERS:
        top = max(rates["a"][layer], rates["b"][layer])
        fig.add_annotation(
            x=layer,
            y=top,
            text=f"{changes[layer] * 100:+.1f}",
            showarrow=False,
            yshift=10,
            font={"size": 10, "color": B_COLOR if changes[layer] > 0 else A_COLOR},
        )
    fig.update_layout(
        barmode="group",
        title="Firing rate per layer (numbers: B − A in percentage points)",
        yaxis_title="firing rate",
        yaxis_tickformat=".0%",
        height=360,
        margin={"t": 60, "b": 10},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def ab_layer_counts(ab: ABResult, layer: str) -> go.Figure:
    """Spike count per neuron of one layer for A and B (feature maps tiled), and B − A."""
    a, b = (tile_maps(r.spikes[layer].sum(axis=0, dtype=np.int64)) for r in (ab.a, ab.b))
    diff = b - a
    limit = max(float(np.nanmax(np.abs(diff))), 1.0)
    top = float(max(ab.a.num_steps, ab.b.num_steps))
    title_a, title_b = _ab_titles(ab)
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.04, subplot_titles=(title_a, title_b, "B − A"))
    for col, z in ((1, a), (2, b)):
        fig.add_heatmap(z=z, row=1, col=col, coloraxis="coloraxis", hoverongaps=False, hovertemplate="%{z:.0f} spikes<extra></extra>")
    fig.add_heatmap(z=diff, row=1, col=3, coloraxis="coloraxis2", hoverongaps=False, hovertemplate="B − A %{z:+.0f} spikes<extra></extra>")
    fig.update_layout(
        coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": top, "colorbar": {"title": "spikes", "x": 1.0, "thickness": 10}},
        coloraxis2={"colorscale": DIFF_SCALE, "cmid": 0, "cmin": -limit, "cmax": limit, "colorbar": {"title": "B − A", "x": 1.08, "thickness": 10}},
        title=f"Spikes per neuron in {layer}, summed over the steps (red: more in B, blue: more in A)",
        height=360,
        margin={"t": 80, "b": 10, "l": 10, "r": 60},
    )
    _square_images(fig, 3)
    return fig


def align_ranges(figures: Sequence[go.Figure], axis: str = "y") -> None:
    """Give the same axis range to figures shown side by side (e.g. A's and B's bar charts)."""
    top = 0.0
    for fig in figures:
        for trace in fig.data:
            values = getattr(trace, axis, None)
            if values is not None and len(values):
                top = max(top, float(np.nanmax(np.asarray(values, dtype=float))))
    for fig in figures:
        fig.update_layout({f"{axis}axis": {"range": [0, top * 1.15 if top else 1]}})


def _square_images(fig: go.Figure, columns: int) -> None:
    for i in range(1, columns + 1):
        suffix = "" if i == 1 else str(i)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{suffix}", showticklabels=False, row=1, col=i)
        fig.update_xaxes(showticklabels=False, row=1, col=i)


def explore_pairs(ab: ABResult, layer: str) -> list[tuple[str, go.Figure, go.Figure]]:
    """Every Explore figure for A and for B, as (name, figure A, figure B); activity charts share one range."""
    activity = [inside.layer_activity(ab.a), inside.layer_activity(ab.b)]
    align_ranges(activity)
    return [
        ("comparison", inside.digit_comparison(ab.a), inside.digit_comparison(ab.b)),
        ("playback", inside.reconstruction_playback(ab.a), inside.reconstruction_playback(ab.b)),
        ("raster", inside.latent_raster(ab.a), inside.latent_raster(ab.b)),
        ("membrane", inside.latent_membrane(ab.a), inside.latent_membrane(ab.b)),
        ("layer", inside.layer_membrane(ab.a, layer), inside.layer_membrane(ab.b, layer)),
        ("activity", *activity),
    ]
