"""Where results are kept between reruns: per session (bounded) or per process (shared, read-only).

- Explore's traces: per session, a few entries, keyed on the digit's content, the weights'
  fingerprint and the settings.
- Compare's sweeps and trained-model runs: one process-wide LRU keyed on the weights'
  fingerprint, the settings and the digits, so a shared link someone already ran is instant.
  The first view's two computations (:func:`question_sweep`, :func:`trained_comparison`) are
  called by the page and by the warm-up alike, so the warm-up fills the very entries the
  page reads.
- Compare's A/B pair: per session, the latest pair only.

A model is always keyed by its weights' fingerprint, never by its name or ``id()``: a
re-uploaded or re-saved checkpoint keeps its name, and Python reuses a freed object's id.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import streamlit as st

from sae.analysis import sweep, trained_for_setting
from sae.analysis.inference import InferenceResult
from sae.analysis.sweep import SweepResult
from sae.analysis.two_settings import ABResult, ab_compare
from sae.io.fingerprints import digit_fingerprint, served_model_fingerprint
from sae.model import NeuronSettings
from sae.runs.forward_process import default_worker
from sae.runs.shared_results import ResultCache

EXPLORE_RESULTS_KEPT = 6  # per session; a 50-step trace of every layer is megabytes
SHOWN = 6  # Compare's digits whose reconstructions are drawn


def explore_result(settings, digit) -> InferenceResult:
    """The trace of ``digit`` under the sidebar's ``settings``, computed once per session and kept
    for a few inputs.  The forward runs in the forward process (sae/runs/forward_process.py),
    the same result bit for bit: in the server process a forward beside other sessions'
    reruns waits on the GIL hundreds of times."""
    key = (digit_fingerprint(digit), settings.model_key, settings.device, settings.neuron)
    cache = st.session_state.setdefault("_explore_results", OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    result = default_worker().run_digit(settings.model, digit, settings.neuron)
    cache[key] = result
    while len(cache) > EXPLORE_RESULTS_KEPT:
        cache.popitem(last=False)
    return result


@st.cache_resource
def shared_results() -> ResultCache:
    """Shared by all sessions: results are read-only and keyed on the weights themselves."""
    return ResultCache(max_entries=24)


def computed(key: tuple, label: str, compute):
    """``compute(progress)`` once per key for the whole server, with a progress bar while it runs."""
    cache = shared_results()
    found = cache.get(key)
    if found is not None:
        return found
    bar = st.progress(0.0, text=label)
    try:
        return cache.get_or_compute(key, lambda: compute(lambda f, m: bar.progress(min(f, 1.0), text=f"{label}: {m}")))
    finally:
        bar.empty()


def session_ab(model, model_key: str, digit, a: NeuronSettings, b: NeuronSettings) -> ABResult:
    """The A/B traces, kept for this session's latest pair only: choosing another layer
    or scrolling reruns the page, and two traced forwards of up to 50 steps need not."""
    key = (model_key, digit_fingerprint(digit), a, b)
    kept = st.session_state.get("_compare_ab")
    if kept is None or kept[0] != key:
        kept = (key, ab_compare(model, digit, a, b))
        st.session_state["_compare_ab"] = kept
    return kept[1]


def cached_sweep(model, model_key: str, images, digits_key: str, thresholds, steps, betas) -> SweepResult:
    """``sae.analysis.sweep.run_sweep`` once per (weights, digits, values) for the whole server."""
    key = ("sweep", model_key, digits_key, tuple(sorted(thresholds)), tuple(sorted(steps)), tuple(sorted(betas)))
    label = f"Sweeping {len(thresholds) * len(steps) * len(betas)} settings over {len(images)} digits"
    shown = min(SHOWN, len(images))
    return computed(key, label, lambda progress: sweep.run_sweep(model, images, thresholds, steps, betas, show=shown, progress=progress))


def question_sweep(model, model_key: str, neuron: NeuronSettings, parameter: str, values: Sequence, images, digits_key: str) -> SweepResult:
    """The sweep of a question tab ("What does thresh do?"): ``values`` of ``parameter``, the
    other two settings from ``neuron`` (the sidebar's)."""
    thresholds = list(values) if parameter == "thresh" else [neuron.thresh]
    steps = list(values) if parameter == "num_steps" else [neuron.num_steps]
    return cached_sweep(model, model_key, images, digits_key, thresholds, steps, [neuron.beta])


def trained_comparison(parameter: str, entries, models: dict, reference, images, digits_key: str):
    """``sae.analysis.trained_for_setting.compare_trained`` once per (series, digits, every model's
    weights) for the whole server: the rows of a question tab's "trained with it" part."""
    key = (
        "trained",
        parameter,
        digits_key,
        served_model_fingerprint(reference),
        tuple((name, served_model_fingerprint(m)) for name, m in sorted(models.items())),
    )
    shown = min(SHOWN, len(images))
    return computed(
        key,
        f"Running {len(models)} trained models",
        lambda progress: trained_for_setting.compare_trained(entries, models, reference, images, show=shown, progress=progress),
    )
