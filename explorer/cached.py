"""Where results are kept between reruns: in the process, shared and read-only, never in a session.

- Explore's traces, the Latent lab's codes and Compare's A/B pair: one process-wide LRU bounded
  in bytes (:func:`kept`), keyed on the digit's content, the weights' fingerprint and the
  settings.  A session keeps none of them itself: a session's state outlives its closed tab
  (Streamlit keeps it for a reconnect), so results held there grew the server by megabytes for
  every visitor until long after they left; here they are bounded for the whole class, and a
  result two students ask for is computed once.  Another session can only find a result by
  asking with the same digit, so nothing of one student's drawing reaches another.
- Compare's sweeps and trained-model runs: one process-wide LRU keyed on the weights'
  fingerprint, the settings and the digits, so a shared link someone already ran is instant.
  The first view's two computations (:func:`question_sweep`, :func:`trained_comparison`) are
  called by the page and by the warm-up alike, so the warm-up fills the very entries the
  page reads.  Each is measured in digit-steps before it runs: one above the class's bound
  is refused in one line, and small ones compute in a lane of their own
  (``explorer.page_limits``, ``sae.runs.shared_results``).
A model is always keyed by its weights' fingerprint, never by its name or ``id()``: a
re-uploaded or re-saved checkpoint keeps its name, and Python reuses a freed object's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass

import numpy as np
import streamlit as st
import torch

from explorer.page_limits import page_limits
from sae.analysis import sweep, trained_for_setting
from sae.analysis.inference import InferenceResult
from sae.analysis.sweep import SweepResult
from sae.analysis.two_settings import ABResult, ab_compare
from sae.io.fingerprints import digit_fingerprint, served_model_fingerprint
from sae.model import NeuronSettings
from sae.runs.forward_process import default_worker
from sae.runs.shared_results import ResultCache

# The pages' results kept for the whole server: a 50-step trace of every layer is about 8 MB, so this
# holds the current trace of a class of 30 at the largest num_steps, and far more at smaller ones.
KEPT_BYTES = 256 * 2**20
KEPT_ENTRIES = 2000
SHOWN = 6  # Compare's digits whose reconstructions are drawn


def nbytes(value) -> int:
    """The bytes of the arrays and tensors in a result (dataclasses, dicts, tuples, lists of them)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in fields(value))
    return 0


@st.cache_resource
def kept_results() -> ResultCache:
    """Every session's recent results (Explore, Latent lab, A/B), bounded in bytes for the server."""
    return ResultCache(max_entries=KEPT_ENTRIES, max_bytes=KEPT_BYTES, size=nbytes)


def kept(key: tuple, compute):
    """``compute()``, or the result kept for ``key`` from an earlier run (of any session)."""
    cache = kept_results()
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.put(key, found)
    return found


def explore_result(settings, digit) -> InferenceResult:
    """The trace of ``digit`` under the sidebar's ``settings`` (:func:`kept`).  The forward runs in
    the forward process (sae/runs/forward_process.py), the same result bit for bit: in the server
    process a forward beside other sessions' reruns waits on the GIL hundreds of times."""
    key = ("explore", digit_fingerprint(digit), settings.model_key, settings.device, settings.neuron)
    return kept(key, lambda: default_worker().run_digit(settings.model, digit, settings.neuron))


@st.cache_resource
def shared_results() -> ResultCache:
    """Shared by all sessions: results are read-only and keyed on the weights themselves."""
    return ResultCache(max_entries=24, small_work=page_limits().compare_small_work)


def sweep_work(digits: int, settings: Iterable[NeuronSettings]) -> int:
    """Digit-steps of measuring ``settings`` on ``digits`` digits: each (thresh, beta) runs once,
    for its largest num_steps, which serves the smaller ones too (``sae.analysis.sweep``)."""
    longest: dict = {}
    for s in settings:
        longest[s.thresh, s.beta] = max(longest.get((s.thresh, s.beta), 0), s.num_steps)
    return digits * sum(longest.values())


def refuse_over_limit(work: int, what: str) -> None:
    """One line, and the page stops there, when a computation asks for more than the class allows."""
    limit = page_limits().compare_work
    if work > limit:
        st.warning(
            f"{what} would take {work:,} digit-steps (digits x num_steps of each run); this class server "
            f"allows {limit:,} per request: choose fewer digits, fewer values or a smaller num_steps.",
            icon=":material/block:",
        )
        st.stop()


def computed(key: tuple, label: str, compute, work: int):
    """``compute(progress)`` once per key for the whole server, with a progress bar while it runs
    (or waits for its lane); refused in one line above the class's bound of ``work``."""
    cache = shared_results()
    found = cache.get(key)
    if found is not None:
        return found
    refuse_over_limit(work, label)
    lane = cache.lane(work)
    bar = st.progress(0.0, text=f"{label}: waiting for the class's earlier requests" if lane.busy or lane.waiting else label)
    try:
        return cache.get_or_compute(key, lambda: compute(lambda f, m: bar.progress(min(f, 1.0), text=f"{label}: {m}")), work)
    finally:
        bar.empty()


def session_ab(model, model_key: str, digit, a: NeuronSettings, b: NeuronSettings) -> ABResult:
    """The A/B traces (:func:`kept`): choosing another layer or scrolling reruns the page, and two
    traced forwards of up to 50 steps need not."""
    return kept(("ab", model_key, digit_fingerprint(digit), a, b), lambda: ab_compare(model, digit, a, b))


def cached_sweep(model, model_key: str, images, digits_key: str, thresholds, steps, betas) -> SweepResult:
    """``sae.analysis.sweep.run_sweep`` once per (weights, digits, values) for the whole server."""
    key = ("sweep", model_key, digits_key, tuple(sorted(thresholds)), tuple(sorted(steps)), tuple(sorted(betas)))
    label = f"Sweeping {len(thresholds) * len(steps) * len(betas)} settings over {len(images)} digits"
    shown = min(SHOWN, len(images))
    work = sweep_work(len(images), sweep.grid(thresholds, steps, betas))
    return computed(key, label, lambda progress: sweep.run_sweep(model, images, thresholds, steps, betas, show=shown, progress=progress), work)


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
    own = sum(m.config.num_steps for m in models.values()) * len(images)
    after = sweep_work(len(images), (e.settings(reference.config.beta) for e in entries)) if reference is not None else 0
    return computed(
        key,
        f"Running {len(models)} trained models",
        lambda progress: trained_for_setting.compare_trained(entries, models, reference, images, show=shown, progress=progress),
        own + after,
    )
