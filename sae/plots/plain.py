"""Plotly figures from plain dicts, without plotly.py's validation, serialised as plotly would.

Building a ``go.Figure`` validates every property and deep-copies every array, and
``to_dict`` copies them all again: for the figures the pages redraw on every slider
move or every second of a training run, that cost more than the JSON itself.  A
:class:`PlainFigure` is the dicts it was given until something asks for more, and
what ``st.plotly_chart`` gets is the same JSON a validated figure gives
(tests/test_plots_unvalidated.py).
"""

from __future__ import annotations

import base64
import copy
import functools

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from _plotly_utils.utils import plotlyjsShortTypes, to_typed_array_spec


def plain_figure(data: list[dict], layout: dict, frames: list[dict] | None = None) -> go.Figure:
    """``go.Figure(data, layout, frames)`` without plotly.py's validation, same JSON.

    What validation would change in these dicts is resolved by plotly's own validators
    once: a named colorscale, ``template="none"``, and no template at all (plotly's
    current default template, as ``go.Figure`` would embed it)."""
    for trace in data:
        if isinstance(trace.get("colorscale"), str):
            trace["colorscale"] = [list(stop) for stop in _named_colorscale(trace["colorscale"])]
    if layout.get("template") == "none":
        layout["template"] = copy.deepcopy(_NO_TEMPLATE)
    elif "template" not in layout:
        layout["template"] = copy.deepcopy(_default_template(pio.templates.default))
    return PlainFigure(data, layout, frames)


class PlainFigure(go.Figure):
    """A ``go.Figure`` that stays the plain dicts it was given until something asks for more.

    ``st.plotly_chart`` only calls ``to_dict()`` and serialises the result, and for a
    real Figure both building it and ``to_dict``'s deep copy of every array cost more
    than the JSON itself (the playback figure, at every slider move).  So ``to_dict``
    hands over the dicts, and the real Figure is built only on first use of anything
    else (``fig.data``, ``fig.layout``, ``fig.to_json()``...)."""

    def __init__(self, data: list[dict], layout: dict, frames: list[dict] | None = None):
        plain = {"data": data, "layout": layout}
        if frames:
            plain["frames"] = frames
        object.__setattr__(self, "_plain", plain)

    def to_dict(self) -> dict:
        if "_data_objs" in self.__dict__:  # built (and perhaps changed since): plotly's own
            return super().to_dict()
        return _plotly_ready(self._plain)

    def __getattr__(self, name: str):
        # Only reached for attributes the instance lacks: plotly's internals before the first build.
        if name == "_plain" or "_data_objs" in self.__dict__:
            raise AttributeError(name)
        plain = self._plain
        go.Figure.__init__(self, data=plain["data"], layout=plain["layout"], frames=plain.get("frames"), _validate=False)
        return getattr(self, name)


# Keys whose values plotly's convert_to_base64 leaves exactly as they are.
_NOT_CONVERTED = frozenset({"geojson", "layer", "layers", "range"})


def _plotly_ready(value, convert: bool = True):
    """What plotly's ``to_dict`` + ``convert_to_base64`` make of these dicts, in one walk.

    Dicts and lists are copied (the figure's own stay as built); a numpy array that is a
    dict value becomes a plotly.js typed array.  plotly checks every value for every
    array library it knows (narwhals): under a class's load that was a fifth of an
    Explore rerun's Python (profiled with yappi), for arrays that are all numpy here."""
    if isinstance(value, dict):
        return {key: _dict_value(item, convert and key not in _NOT_CONVERTED) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plotly_ready(item, convert) for item in value]  # an array in a list stays an array, as in plotly
    return value


def _dict_value(value, convert: bool):
    if convert and isinstance(value, np.ndarray):
        code = plotlyjsShortTypes.get(str(value.dtype))
        if code is None or value.size == 0 or value.dtype.itemsize == 8 and value.dtype.kind in "iu":
            return to_typed_array_spec(value)  # the rare cases (64-bit ints are narrowed): plotly's own
        spec = {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(value)).decode("ascii")}
        if value.ndim > 1:
            spec["shape"] = str(value.shape)[1:-1]
        return spec
    return _plotly_ready(value, convert)


@functools.cache
def _named_colorscale(name: str) -> tuple:
    """A named colorscale as plotly's validator writes it out (plotly.js knows only a few names)."""
    return tuple(tuple(stop) for stop in go.Heatmap(colorscale=name).to_plotly_json()["colorscale"])


# template="none" as validation writes it out: an almost empty template, not Plotly's default theme.
_NO_TEMPLATE = go.Layout(template="none").to_plotly_json()["template"]


@functools.cache
def _default_template(name) -> dict:
    """The default template ``name`` as ``go.Figure()`` embeds it (Streamlit sets its own default)."""
    return go.Figure().to_dict()["layout"].get("template", {})
