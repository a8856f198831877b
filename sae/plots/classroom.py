"""A class's answers as figures: a histogram of number guesses, a bar per choice, a gallery of pictures.

Plain data in (numbers, texts, 2-D arrays), ``go.Figure`` out; the live class's store and its rules
are elsewhere (``teaching``).  Titles and labels are the lesson's and the students' nicknames, which
the class store allows only as letters, digits, spaces and ``- _ . '``.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MARGIN = {"l": 50, "r": 20, "t": 60, "b": 50}
GUESS = "#0044cc"
RIGHT = "#008000"
MAX_BINS = 25
GALLERY_COLUMNS = 6


def _guesses(count: int) -> str:
    return f"{count} guess" + ("" if count == 1 else "es")


def _bins(low: float, high: float) -> tuple[float, float]:
    """(start, size) of histogram bins over [low, high]: one per whole number when that is few enough."""
    span = high - low
    whole = float(low).is_integer() and float(high).is_integer()
    size = 1.0 if whole and span + 1 <= MAX_BINS else span / MAX_BINS
    if whole and size != 1.0:
        size = float(math.ceil(size))
    return (low - 0.5 if size == 1.0 else low), size


def number_histogram(values, low: float, high: float, answer: float | None = None, unit: str = "") -> go.Figure:
    """How many guessed each value in [low, high]; a line at the right answer when there is one."""
    start, size = _bins(low, high)
    counts = np.histogram(np.clip(np.asarray(values, float), low, high), bins=np.arange(start, high + size, size))[0] if len(values) else []
    fig = go.Figure(
        go.Histogram(
            x=list(values),
            xbins={"start": start, "end": high + size / 2, "size": size},
            marker={"color": GUESS},
            hovertemplate="%{x}: %{y} guesses<extra></extra>",
        )
    )
    if answer is not None:
        fig.add_vline(x=answer, line={"color": RIGHT, "width": 4, "dash": "dash"})
        fig.add_annotation(x=answer, y=1, yref="paper", text=f"answer: {answer:g}", showarrow=False, yanchor="bottom", font={"color": RIGHT})
    top = int(max(counts)) if len(counts) else 1
    fig.update_layout(
        title={"text": _guesses(len(values))},
        xaxis={"title": {"text": unit or "guess"}, "range": [start, high + size / 2]},
        yaxis={"title": {"text": "students"}, "range": [0, top + 1], "dtick": max(1, (top + 1) // 5)},
        height=360,
        margin=MARGIN,
        template="none",
        bargap=0.1,
    )
    return fig


def choice_counts(choices, picked, answer: str | None = None) -> go.Figure:
    """How many picked each choice (every choice listed, none picked or not); the right one in green."""
    counts = [sum(1 for p in picked if p == choice) for choice in choices]
    colours = [RIGHT if choice == answer else GUESS for choice in choices]
    fig = go.Figure(go.Bar(x=counts, y=list(choices), orientation="h", marker={"color": colours}, hovertemplate="%{y}: %{x}<extra></extra>"))
    fig.update_layout(
        title={"text": _guesses(len(picked)) + (" (the right one in green)" if answer is not None else "")},
        xaxis={"title": {"text": "students"}, "dtick": max(1, (max(counts, default=0) + 1) // 5), "range": [0, max(counts, default=0) + 1]},
        yaxis={"autorange": "reversed", "automargin": True},
        height=120 + 60 * len(choices),
        margin=MARGIN,
        template="none",
    )
    return fig


def picture_gallery(pictures, titles, columns: int = GALLERY_COLUMNS) -> go.Figure:
    """Small grey pictures (2-D arrays, 0 black .. 1 white) in rows of ``columns``, each with its title."""
    count = len(pictures)
    rows = max(1, math.ceil(count / columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles) + [""] * (rows * columns - count), horizontal_spacing=0.02)
    for i, picture in enumerate(pictures):
        fig.add_trace(
            go.Heatmap(z=np.asarray(picture)[::-1], colorscale="gray", zmin=0, zmax=1, showscale=False, hoverinfo="skip"),
            row=i // columns + 1,
            col=i % columns + 1,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=60 + 170 * rows, margin={"l": 10, "r": 10, "t": 40, "b": 10}, template="none")
    return fig
