"""Where results are kept between reruns: per session (bounded) or per process (shared, read-only).

- Explore's traces: per session, a few entries, keyed on the digit's content and the settings.
- Compare's sweeps and trained-model runs: one process-wide LRU keyed on the weights'
  fingerprint, the settings and the digits, so a shared link someone already ran is instant.
- Compare's A/B pair: per session, the latest pair only.
"""

from __future__ import annotations

from collections import OrderedDict

import streamlit as st

from sae.analysis import sweep, trained_for_setting
from sae.analysis.inference import InferenceResult
from sae.analysis.sweep import Setting
from sae.analysis.two_settings import ABResult, ab_compare
from sae.io.fingerprints import digit_fingerprint, model_fingerprint
from sae.runs.forward_process import default_worker
from sae.runs.shared_results import ResultCache

EXPLORE_RESULTS_KEPT = 6  # per session; a T=50 trace is ~8 MB


def run_digit(model, digit, **overrides) -> InferenceResult:
    """``sae.analysis.inference.run_digit`` in the forward process (sae/runs/forward_process.py), the same result bit for bit:
    in the server process a forward beside other sessions' reruns waits on the GIL hundreds of times."""
    return default_worker().run_digit(model, digit, **overrides)


def explore_result(settings, digit) -> InferenceResult:
    """The trace of ``digit`` under ``settings``, computed once per session and kept for a few inputs."""
    key = (
        digit_fingerprint(digit),
        settings.checkpoint_name,
        id(settings.model),
        settings.device,
        settings.thresh,
        settings.beta,
        settings.num_steps,
    )
    cache = st.session_state.setdefault("_explore_results", OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    result = run_digit(settings.model, digit, **settings.overrides())
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


def session_ab(model, digit, a: Setting, b: Setting) -> ABResult:
    """The A/B traces, kept for this session's latest pair only: choosing another layer
    or scrolling reruns the page, and two traced forwards of up to 50 steps need not."""
    key = (model_fingerprint(model), digit_fingerprint(digit), a, b)
    kept = st.session_state.get("_compare_ab")
    if kept is None or kept[0] != key:
        kept = (key, ab_compare(model, digit, a, b))
        st.session_state["_compare_ab"] = kept
    return kept[1]


def sweep_key(model_key: str, digits_key: str, thresholds, steps, betas) -> tuple:
    """The shared cache's key of one sweep (the warm-up computes the first one ahead under it)."""
    return ("sweep", model_key, digits_key, tuple(sorted(thresholds)), tuple(sorted(steps)), tuple(sorted(betas)))


def trained_key(parameter: str, digits_key: str, reference, models: dict) -> tuple:
    """The shared cache's key of one trained-with-the-setting comparison."""
    return ("trained", parameter, digits_key, model_fingerprint(reference), tuple((name, model_fingerprint(m)) for name, m in sorted(models.items())))


def cached_sweep(model, model_key: str, images, digits_key: str, shown: int, thresholds, steps, betas):
    """``sae.analysis.sweep.run_sweep`` once per (weights, digits, values) for the whole server."""
    key = sweep_key(model_key, digits_key, thresholds, steps, betas)
    label = f"Sweeping {len(thresholds) * len(steps) * len(betas)} settings over {len(images)} digits"
    return computed(key, label, lambda progress: sweep.run_sweep(model, images, thresholds, steps, betas, show=shown, progress=progress))


def cached_trained_rows(parameter: str, entries, models: dict, reference, images, digits_key: str, shown: int):
    """``sae.analysis.trained_for_setting.compare_trained`` once per (series, digits, every model's weights) for the whole server."""
    return computed(
        trained_key(parameter, digits_key, reference, models),
        f"Running {len(models)} trained models",
        lambda progress: trained_for_setting.compare_trained(entries, models, reference, images, show=shown, progress=progress),
    )
