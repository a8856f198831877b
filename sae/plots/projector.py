"""Any figure of this package restyled for a projector: large type, thick lines, big markers, black on white.

A classroom projector washes out thin grey lines and 10-point labels, and the back row reads the
screen from ten metres.  :func:`for_projector` takes a finished figure (every builder here sets its own
small sizes, for a laptop) and scales what must be read from afar; the figure's data is untouched.
It is the one place these sizes live: the pages apply it to every chart in the projector view.
"""

from __future__ import annotations

import plotly.graph_objects as go

FONT_SIZE = 20  # axis titles, legends, hover labels: twice the builders' own, and a title still fits a third of a 1280-pixel screen
TITLE_SIZE = 20
TICK_SIZE = 18
ANNOTATION_SCALE = 1.8  # the builders' own annotation fonts (9-11 px) grow by this much
MIN_ANNOTATION_SIZE = 18
LINE_WIDTH = 5
MARKER_SCALE = 2.0
MIN_MARKER_SIZE = 12
AXIS_LINE_WIDTH = 3
INK = "#000000"
PAPER = "#ffffff"
# High-contrast colours that stay apart in a washed-out projection (and for colour-blind viewers).
COLORWAY = ("#0044cc", "#d40000", "#008000", "#000000", "#cc6600", "#7a00cc")
HEIGHT_SCALE = 1.25  # larger type needs a little more room

TEMPLATE = go.layout.Template(
    layout={
        "font": {"size": FONT_SIZE, "color": INK},
        "title": {"font": {"size": TITLE_SIZE, "color": INK}},
        "paper_bgcolor": PAPER,
        "plot_bgcolor": PAPER,
        "colorway": list(COLORWAY),
        "hoverlabel": {"font": {"size": FONT_SIZE}},
        "legend": {"font": {"size": FONT_SIZE}},
    }
)


def for_projector(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` with the projector's sizes and colours; ``fig`` itself is not changed
    (a builder's figure may be cached and drawn again in the ordinary view); a figure made by
    ``sae.plots.plain`` becomes an ordinary one here."""
    fig = go.Figure(fig)
    layout = fig.layout
    fig.update_layout(
        template=TEMPLATE,
        font={"size": FONT_SIZE, "color": INK},
        title_font={"size": TITLE_SIZE, "color": INK},
        legend_font={"size": FONT_SIZE},
        paper_bgcolor=PAPER,
        plot_bgcolor=PAPER,
    )
    if layout.height:
        fig.update_layout(height=int(layout.height * HEIGHT_SCALE))
    axis = {"tickfont": {"size": TICK_SIZE, "color": INK}, "title_font": {"size": FONT_SIZE, "color": INK}, "linewidth": AXIS_LINE_WIDTH}
    fig.update_xaxes(**axis, linecolor=INK)
    fig.update_yaxes(**axis, linecolor=INK)
    for annotation in layout.annotations or ():
        size = annotation.font.size if annotation.font and annotation.font.size else FONT_SIZE / ANNOTATION_SCALE
        annotation.font.size = max(MIN_ANNOTATION_SIZE, size * ANNOTATION_SCALE)
    for trace in fig.data:
        _thicken(trace)
    return fig


def _thicken(trace) -> None:
    """Thick lines and big markers on line and scatter traces; colour bars' labels readable."""
    if trace.type in ("scatter", "scattergl"):
        mode = trace.mode or "lines"
        if "lines" in mode:
            trace.line.width = max(LINE_WIDTH, trace.line.width or 0)
        if "markers" in mode and trace.marker.opacity != 0:  # an invisible click layer stays as it is
            size = trace.marker.size if isinstance(trace.marker.size, (int, float)) else None
            trace.marker.size = max(MIN_MARKER_SIZE, (size or 6) * MARKER_SCALE)
    if trace.type == "bar":
        trace.marker.line.width = 2
        trace.marker.line.color = INK
    if "colorbar" in trace and trace.colorbar is not None:
        trace.colorbar.tickfont.size = TICK_SIZE
