"""The class's figures and the projector's restyling: what they draw, and that the data is untouched."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from sae.plots import classroom, projector
from sae.plots.inside import digit_image
from sae.plots.plain import PlainFigure


def test_the_histogram_holds_every_guess_and_marks_the_answer():
    fig = classroom.number_histogram([3, 3, 5, 18], 1, 50, answer=18, unit="steps")
    assert list(fig.data[0].x) == [3, 3, 5, 18] and fig.layout.title.text == "4 guesses"
    assert fig.layout.xaxis.title.text == "steps" and fig.layout.shapes[0].x0 == 18
    assert classroom.number_histogram([0], 0, 32).layout.title.text == "1 guess"


def test_every_choice_has_a_bar_and_the_right_one_is_green():
    fig = classroom.choice_counts(["halve", "grow", "double"], ["grow", "grow", "halve"], answer="grow")
    assert list(fig.data[0].y) == ["halve", "grow", "double"] and list(fig.data[0].x) == [1, 2, 0]
    assert fig.data[0].marker.color[1] == classroom.RIGHT and fig.data[0].marker.color[0] == classroom.GUESS


def test_the_gallery_has_one_picture_per_answer_in_rows():
    pictures = [np.full((4, 4), i / 10) for i in range(8)]
    fig = classroom.picture_gallery(pictures, [f"#{i}" for i in range(8)], columns=6)
    assert len(fig.data) == 8 and [a.text for a in fig.layout.annotations][:8] == [f"#{i}" for i in range(8)]


def lines_fig() -> go.Figure:
    """Thin lines, small markers and a 9-pixel note, as the builders make them for a laptop."""
    scatter = go.Scatter(x=[1, 2, 3], y=[1, 4, 9], mode="lines+markers", line={"width": 1}, marker={"size": 4})
    return go.Figure(scatter, layout={"annotations": [{"text": "note", "font": {"size": 9}}], "height": 300})


@pytest.mark.parametrize("make", [lambda: classroom.number_histogram([1, 2, 2], 0, 10, 2), lines_fig, lambda: digit_image(np.eye(32))])
def test_the_projector_style_makes_text_and_lines_larger_and_leaves_the_data(make):
    fig = make()
    before = json.dumps(fig.to_dict()["data"], sort_keys=True, default=str)
    styled = projector.for_projector(fig)
    assert json.dumps(fig.to_dict()["data"], sort_keys=True, default=str) == before  # the original is untouched
    assert isinstance(styled, go.Figure) and not isinstance(styled, PlainFigure)
    assert styled.layout.font.size == projector.FONT_SIZE and styled.layout.paper_bgcolor == projector.PAPER
    for trace_before, trace in zip(fig.data, styled.data):
        if trace.type == "heatmap":
            assert np.array_equal(np.asarray(trace_before.z, float), np.asarray(trace.z, float))
        if trace.type == "scatter":
            assert trace.line.width >= projector.LINE_WIDTH and trace.marker.size >= projector.MIN_MARKER_SIZE
    for annotation in styled.layout.annotations or ():
        assert annotation.font.size >= projector.MIN_ANNOTATION_SIZE
