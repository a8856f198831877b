"""Figures of the Latent lab: the editable code, what the decoder makes of it, what each
neuron draws, a blend of two digits, and the map of every test image's code.

Data in, ``go.Figure`` out, built from plain dicts (as ``sae.plots.inside``).  Codes
are ``[latent_dim, T]`` 0/1 grids; steps are shown 1-based.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from sae.analysis.latent import CodeMap, NeuronAtlas
from sae.plots.inside import INK_SCALE, tile_maps

MARGIN = dict(l=10, r=10, t=50, b=10)
# Cell states of the editor: 0 silent, 1 spike, 2 spike you added, 3 spike you removed.
SILENT, SPIKE, ADDED, REMOVED = "#ffffff", "#111111", "#e66101", "#fdb863"
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                 "#17becf")  # fmt: skip
CHANGE_SCALE = "RdBu_r"  # red: the neuron adds ink, blue: it takes ink away


def editor_states(code: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Per cell: 0 silent, 1 spike as the encoder made it, 2 a spike you added, 3 one you removed."""
    code, own = np.asarray(code, np.int8), np.asarray(own, np.int8)
    return np.where(code == own, code, np.where(code > own, 2, 3)).astype(np.int8)


def code_editor(code: np.ndarray, own: np.ndarray) -> go.Figure:
    """The latent code as a clickable grid (neurons x steps).

    Streamlit returns no click events for heatmap cells, so an invisible scatter
    with one marker per cell lies over the heatmap; ``hoverdistance=-1`` makes a
    click anywhere in a cell pick that cell's marker (the nearest).  Point ``i`` of
    trace 1 is (neuron ``i // T``, step ``i % T``), also carried in customdata.
    """
    neurons, steps = code.shape
    states = editor_states(code, own)
    names = np.array(["silent", "spike", "spike you added", "spike you removed"])
    scale = [[0, SILENT], [0.25, SILENT], [0.25, SPIKE], [0.5, SPIKE], [0.5, ADDED], [0.75, ADDED], [0.75, REMOVED],
             [1, REMOVED]]  # fmt: skip
    heat = dict(
        type="heatmap",
        z=states.astype(np.float32),
        x=np.arange(1, steps + 1),
        y=np.arange(neurons),
        zmin=0,
        zmax=4,
        colorscale=scale,
        showscale=False,
        xgap=2,
        ygap=2,
        hoverinfo="skip",
    )
    neuron, step = np.divmod(np.arange(neurons * steps), steps)
    cells = dict(
        type="scatter", mode="markers", x=step + 1, y=neuron, customdata=np.column_stack([neuron, step]),
        text=names[states.reshape(-1)], marker=dict(symbol="square", size=14, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)), showlegend=False,
        hovertemplate="latent neuron %{customdata[0]}, step %{x}: %{text}<br>click to flip<extra></extra>",
    )  # fmt: skip
    edits = int((states >= 2).sum())
    title = "your code: click a cell to flip its spike" + (f" ({edits} cells edited)" if edits else "")
    layout = dict(
        title=dict(text=title), height=int(min(1000, max(320, 90 + 17 * neurons))), margin=MARGIN, template="none",
        xaxis=dict(title=dict(text="time step"), dtick=1 if steps <= 20 else None, range=[0.5, steps + 0.5],
                   fixedrange=True),
        yaxis=dict(title=dict(text="latent neuron"), range=[neurons - 0.5, -0.5], dtick=1 if neurons <= 32 else None,
                   fixedrange=True),
        hovermode="closest", hoverdistance=-1, dragmode=False, clickmode="event+select",
        annotations=[dict(text=f"<span style='color:{ADDED}'>■</span> added  <span style='color:{REMOVED}'>■</span> "
                               "removed  ■ spike", x=1, y=1.0, xref="paper", yref="paper", xanchor="right",
                          yanchor="bottom", showarrow=False, font=dict(size=11))],
    )  # fmt: skip
    return go.Figure(data=[heat, cells], layout=layout)


def decoded_comparison(image: np.ndarray, own: np.ndarray, edited: np.ndarray) -> go.Figure:
    """Input | the digit's own reconstruction | decoded from your code | its error against the input."""
    own_mse = float(np.mean((own - image) ** 2))
    error = edited - image
    limit = max(float(np.abs(error).max()), 1e-6)
    panels = [
        (image, "input", INK_SCALE, 0, 1, "input %{z:.3f}"),
        (own, f"the own code's<br>reconstruction (MSE {own_mse:.4f})", INK_SCALE, 0, 1, "own code %{z:.3f}"),
        (edited, "decoded from<br>your code", INK_SCALE, 0, 1, "your code %{z:.3f}"),
        (error, f"error: yours − input<br>(MSE {float(np.mean(error ** 2)):.4f})", CHANGE_SCALE, -limit, limit,
         "yours − input %{z:.3f}"),
    ]  # fmt: skip
    return _image_panels(panels, height=300)


def neuron_atlas(atlas: NeuronAtlas) -> go.Figure:
    """Per latent neuron, tiled with its number: its image alone, and the change it makes to this digit."""
    neurons = len(atlas.alone)
    change_limit = max(float(np.abs(atlas.change).max()), 1e-6)
    numbers = tile_maps(np.broadcast_to(np.arange(neurons, dtype=np.float32)[:, None, None], atlas.alone.shape))
    what = np.where(atlas.added, "added (fires at every step)", "removed (silenced)")
    effect = tile_maps(np.broadcast_to(atlas.effect[:, None, None], atlas.alone.shape).astype(np.float32))
    kind = np.full(numbers.shape, "", dtype=object)
    kind[~np.isnan(numbers)] = what[numbers[~np.isnan(numbers)].astype(int)]
    custom = np.dstack([np.nan_to_num(numbers, nan=-1), np.nan_to_num(effect)])
    data = [
        dict(type="heatmap", z=tile_maps(atlas.alone), colorscale=INK_SCALE, zmin=0, zmax=1, showscale=False,
             customdata=custom, hovertemplate="neuron %{customdata[0]} alone<br>value %{z:.3f}<extra></extra>"),
        dict(type="heatmap", z=tile_maps(atlas.change), colorscale=CHANGE_SCALE, zmin=-change_limit, zmax=change_limit,
             xaxis="x2", yaxis="y2", customdata=custom, text=kind,
             colorbar=dict(title=dict(text="change in the output", side="right")),
             hovertemplate="neuron %{customdata[0]} %{text}<br>change %{z:.3f}<br>mean squared change "
                           "%{customdata[1]:.4f}<extra></extra>"),
    ]  # fmt: skip
    layout = dict(
        height=520,
        margin=dict(MARGIN, t=40),
        template="none",
        annotations=[],
        xaxis=dict(domain=[0, 0.47], visible=False, constrain="domain"),
        yaxis=dict(autorange="reversed", scaleanchor="x", visible=False, constrain="domain"),
        xaxis2=dict(domain=[0.5, 0.94], visible=False, constrain="domain", anchor="y2"),
        yaxis2=dict(autorange="reversed", scaleanchor="x2", visible=False, anchor="x2", constrain="domain"),
    )
    layout["annotations"] += [
        _panel_title("only this neuron firing, at every step", 0.235),
        _panel_title("the change it makes to this digit (+ added, − removed)", 0.735),
    ]
    tile = atlas.alone.shape[1] + 1
    cols = numbers.shape[1] // tile + 1
    for n in range(neurons):
        r, c = divmod(n, cols)
        for axis, label in (("", str(n)), ("2", ("+" if atlas.added[n] else "−") + str(n))):
            layout["annotations"].append(
                dict(
                    text=label,
                    x=c * tile - 0.5,
                    y=r * tile - 0.5,
                    xref="x" + axis,
                    yref="y" + axis,
                    xanchor="left",
                    yanchor="top",
                    showarrow=False,
                    font=dict(size=9, color="#e0a000"),
                )
            )
    return go.Figure(data=data, layout=layout)


def blend_row(images: np.ndarray, codes: np.ndarray, titles: list[str]) -> go.Figure:
    """The decoded blend stages in a row (A first, B last), each stage's code beneath its image."""
    stages = len(images)
    gap = np.full((images.shape[1], 2), np.nan, np.float32)
    row = np.hstack([part for image in images for part in (image, gap)][:-1])
    code_gap = np.full((codes.shape[1], 1), np.nan, np.float32)
    code_row = np.hstack([part for code in codes.astype(np.float32) for part in (code, code_gap)][:-1])
    data = [
        dict(type="heatmap", z=row, colorscale=INK_SCALE, zmin=0, zmax=1, showscale=False,
             hovertemplate="value %{z:.3f}<extra></extra>"),
        dict(type="heatmap", z=code_row, colorscale=[[0, SILENT], [1, SPIKE]], zmin=0, zmax=1, showscale=False,
             xaxis="x2", yaxis="y2", hovertemplate="latent neuron %{y}<br>spike %{z:.0f}<extra></extra>"),
    ]  # fmt: skip
    width = images.shape[2] + 2
    layout = dict(
        height=420,
        margin=dict(MARGIN, t=40),
        template="none",
        annotations=[],
        xaxis=dict(domain=[0, 1], visible=False, constrain="domain"),
        yaxis=dict(domain=[0.45, 0.92], autorange="reversed", scaleanchor="x", visible=False, constrain="domain"),
        xaxis2=dict(domain=[0, 1], visible=False, anchor="y2"),
        yaxis2=dict(domain=[0, 0.38], autorange="reversed", anchor="x2", showgrid=False, title=dict(text="its code (neurons x steps)")),
    )
    for s, title in enumerate(titles[:stages]):
        layout["annotations"].append(
            dict(
                text=title, x=s * width + (images.shape[2] - 1) / 2, y=-0.5, xref="x", yref="y", yanchor="bottom", showarrow=False, font=dict(size=11)
            )
        )
    return go.Figure(data=data, layout=layout)


def code_map(cmap: CodeMap, here: np.ndarray | None = None, edited: np.ndarray | None = None) -> go.Figure:
    """Every test image's code on the first two principal components, one colour per class.

    Each point carries its test-set index as customdata, so a click can open it.
    ``here`` marks the chosen digit, ``edited`` where your edited code lands.
    """
    data = []
    for digit in range(10):
        idx = np.flatnonzero(cmap.labels == digit)
        data.append(
            dict(
                type="scattergl",
                mode="markers",
                name=str(digit),
                x=cmap.xy[idx, 0],
                y=cmap.xy[idx, 1],
                customdata=idx,
                marker=dict(size=4, color=CLASS_COLOURS[digit], opacity=0.6),
                hovertemplate=f"test image #%{{customdata}}: a {digit}<extra></extra>",
            )
        )
    for point, name, symbol in ((here, "this digit", "star"), (edited, "your edited code", "x")):
        if point is not None:
            data.append(
                dict(
                    type="scatter",
                    mode="markers",
                    name=name,
                    x=[float(point[0])],
                    y=[float(point[1])],
                    marker=dict(symbol=symbol, size=16, color="#000000", line=dict(width=1, color="#ffffff")),
                    hovertemplate=name + "<extra></extra>",
                )
            )
    ex = cmap.explained
    layout = dict(
        title=dict(text="every test image's latent spike counts, on their first two principal components"),
        height=560, margin=MARGIN, template="none", hovermode="closest", clickmode="event+select",
        dragmode="pan", legend=dict(title=dict(text="class"), itemsizing="constant"),
        xaxis=dict(title=dict(text=f"PC 1 ({100 * ex[0]:.0f}% of the variance)"), zeroline=False),
        yaxis=dict(title=dict(text=f"PC 2 ({100 * ex[1]:.0f}% of the variance)"), zeroline=False),
    )  # fmt: skip
    return go.Figure(data=data, layout=layout)


# --- shared pieces --------------------------------------------------------------------


def _image_panels(panels, height: int, gap: int = 4) -> go.Figure:
    """Square image panels side by side: (z, title, colorscale, zmin, zmax, hover) each.

    All on one hidden pair of axes, each image shifted by ``x0``: drawing axes is most of
    Plotly's time for small heatmaps, and this figure is redrawn on every click in the lab.
    """
    width = max(np.asarray(z).shape[1] for z, *_ in panels)
    data, annotations = [], []
    for i, (z, title, scale, zmin, zmax, hover) in enumerate(panels):
        x0 = i * (width + gap)
        data.append(
            dict(
                type="heatmap",
                z=np.asarray(z, np.float32),
                x0=x0,
                colorscale=scale,
                zmin=zmin,
                zmax=zmax,
                showscale=False,
                customdata=np.broadcast_to(np.arange(np.asarray(z).shape[1]), np.asarray(z).shape),
                hovertemplate="row %{y}, column %{customdata}<br>" + hover + "<extra></extra>",
            )
        )
        annotations.append(
            dict(text=title, x=x0 + (width - 1) / 2, y=-0.5, xref="x", yref="y", yanchor="bottom", showarrow=False, font=dict(size=12))
        )
    layout = dict(
        height=height,
        margin=dict(MARGIN, t=60),
        template="none",
        annotations=annotations,
        xaxis=dict(visible=False, range=[-0.5, len(panels) * (width + gap) - gap - 0.5], constrain="domain"),
        yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain"),
    )
    return go.Figure(data=data, layout=layout)


def _panel_title(text: str, x: float) -> dict:
    return dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12))
