"""Sweeps of the neuron settings at inference time: one model, many (thresh, num_steps, beta).

The Compare page asks "what does thresh do?" and "what does num_steps do?".  This
module answers with numbers: it runs one model over a set of digits for every
(thresh, num_steps[, beta]) setting and keeps, per setting, the test MSE, the
spike rate of every spiking layer, the reconstructions of a few digits and the
latent raster of one digit.  Everything here is plain Python, torch and numpy
(no Streamlit), and ``run_sweep`` is a pure function of its inputs, so a page can
cache it on (model fingerprint, settings, digits).

Why it is fast: the forward is causal in time.  Step t's spikes and output depend
only on steps <= t, never on how many steps follow, so one run with the largest
``num_steps`` yields every smaller ``num_steps`` as a prefix (tests hold this
against separate runs).  A 6 x 6 grid of thresh x num_steps costs 6 runs, not 36.
Digits are batched, gradients off, the model in eval mode; spikes are counted on
the fly instead of recording a full trace, and (setting, batch) pieces run on
independent single-threaded workers (see ``measure``).
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from sae.analysis.inference import single_thread
from sae.model import SPIKING_LAYERS

Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, order=True)
class Setting:
    """One way of running a model at inference: the three neuron settings."""

    thresh: float
    num_steps: int
    beta: float

    def overrides(self) -> dict:
        return {"thresh": self.thresh, "num_steps": self.num_steps, "beta": self.beta}

    @property
    def label(self) -> str:
        return f"thresh {self.thresh:g}, steps {self.num_steps}, beta {self.beta:g}"

    @property
    def short(self) -> str:
        return f"θ{self.thresh:g} T{self.num_steps}"


def model_beta(model) -> float:
    """The beta the model was built (trained) with."""
    return float(model.config.beta)


def grid(thresholds: Sequence[float], num_steps: Sequence[int], betas: Sequence[float]) -> list[Setting]:
    """Every combination, sorted and without duplicates."""
    return sorted({Setting(float(t), int(s), float(b)) for t in thresholds for s in num_steps for b in betas})


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)  # holds arrays: compare the numbers, not the objects
class SettingResult:
    """What one setting did to the digits."""

    setting: Setting
    mse: float  # mean over every pixel of every digit
    spike_rates: dict  # layer -> fraction of (neuron, step) pairs that fired
    reconstructions: np.ndarray  # [K, H, W]: the first K digits, output of the last step
    latent_raster: np.ndarray  # [T, latent_dim]: latent spikes of the raster digit

    @property
    def mean_rate(self) -> float:
        """Spike rate over all spiking layers, weighted by layer (not by neuron count)."""
        return float(np.mean([self.spike_rates[n] for n in SPIKING_LAYERS]))


@dataclass(frozen=True, eq=False)
class SweepResult:
    """All settings of one sweep, with the digits they were measured on."""

    thresholds: tuple
    num_steps: tuple
    betas: tuple
    results: tuple  # SettingResult, in grid() order
    digits: np.ndarray  # [K, H, W] the digits whose reconstructions are kept
    digit_count: int  # how many digits the MSE and spike rates average over
    raster_index: int  # which of the kept digits the latent rasters belong to
    seconds: float  # how long the sweep took

    def at(self, thresh: float, num_steps: int, beta: float | None = None) -> SettingResult:
        beta = self.betas[0] if beta is None else beta
        key = Setting(float(thresh), int(num_steps), float(beta))
        if key not in self._by_setting:
            raise KeyError(f"{key.label} is not in this sweep")
        return self._by_setting[key]

    @cached_property
    def _by_setting(self) -> dict:
        """Setting -> result: a grid figure looks up every cell."""
        return {result.setting: result for result in self.results}

    def mse_grid(self, beta: float | None = None) -> np.ndarray:
        """[len(thresholds), len(num_steps)] test MSE at one beta."""
        return np.array([[self.at(t, s, beta).mse for s in self.num_steps] for t in self.thresholds])

    def rows(self) -> list[dict]:
        """One flat dict per setting: a table for st.dataframe or a CSV."""
        return [
            {
                "thresh": r.setting.thresh,
                "num_steps": r.setting.num_steps,
                "beta": r.setting.beta,
                "mse": r.mse,
                **{f"rate_{n}": r.spike_rates[n] for n in SPIKING_LAYERS},
            }
            for r in self.results
        ]


# --------------------------------------------------------------------------- measuring


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


class _SpikeCounter:
    """A private copy of the model with forward hooks that count spikes per layer and step.

    Why not ``trace=True``: a trace keeps every layer's spikes and membrane at every
    step (about 256 kB per digit and step) and building it took about 40% of the
    sweep's time here; counting on the fly keeps only a number per layer and step.
    Why a copy: hooks on the shared model would also fire in other sessions' forwards.
    """

    def __init__(self, model):
        self.model = copy.deepcopy(model).eval()
        self.counts: dict[str, list] = {n: [] for n in SPIKING_LAYERS}
        self.sizes: dict[str, int] = {}
        self.latent: list = []
        self.raster_index: int | None = None
        for name, module in self.model.spiking_layers():
            if name in self.counts:
                module.register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, args, output):
            spikes = output[0]  # a LIF layer returns (spk, mem)
            self.counts[name].append(spikes.sum(dtype=torch.float64))
            self.sizes[name] = spikes[0].numel()
            if name == "latent" and self.raster_index is not None:
                self.latent.append(spikes[self.raster_index].float())

        return hook

    def run(self, x, raster_index: int | None, **overrides):
        """Outputs of every step [T, B, 1, H, W], spikes per step {layer: [T]}, latent raster [T, L] or None."""
        for counts in self.counts.values():
            counts.clear()
        self.latent.clear()
        self.raster_index = raster_index
        outputs = self.model(x, every_step=True, **overrides)
        steps = outputs.shape[0]
        if any(len(c) != steps for c in self.counts.values()):
            raise RuntimeError("spike counting hooks did not see every step: has the model's forward changed?")
        counts = {n: torch.stack(c).cpu() for n, c in self.counts.items()}
        raster = torch.stack(self.latent).cpu() if raster_index is not None else None
        return outputs, counts, raster


def measure(
    model,
    images: torch.Tensor,
    settings: Sequence[Setting],
    *,
    show: int = 8,
    raster_index: int = 0,
    batch_size: int = 128,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[SettingResult]:
    """Run ``model`` on ``images`` ([N, 1, H, W]) at each setting; results in the order given.

    Settings that share thresh and beta share one run of their largest num_steps
    (the causal prefix, see the module docstring).  The runs are cut into (setting,
    batch) pieces spread over ``workers`` threads of one intra-op thread each
    (default: torch's thread count on a CPU, 1 elsewhere): on a busy 2-core machine
    two OpenMP threads waiting on each other took 4x longer than two independent
    workers.  Pieces are summed in a fixed order, so the numbers do not depend on
    which finished first.  ``progress`` is only called from the calling thread.
    ``model`` itself is not touched."""
    if len(images) == 0:
        raise ValueError("no digits to measure on")
    if not settings:
        raise ValueError("no settings to measure")
    if not 1 <= show:
        raise ValueError(f"show must be at least 1, got {show}")
    if not 0 <= raster_index < min(show, len(images)):
        raise ValueError(f"raster_index {raster_index} is not among the {min(show, len(images))} kept digits")
    batch_size = max(batch_size, show)  # the kept digits all come from the first batch
    longest: dict[tuple[float, float], int] = {}
    for s in settings:
        key = (float(s.thresh), float(s.beta))
        longest[key] = max(longest.get(key, 0), int(s.num_steps))
    pieces = [(key, first) for key in longest for first in range(0, len(images), batch_size)]
    device = _model_device(model)
    if workers is None:
        workers = torch.get_num_threads() if device.type == "cpu" else 1
    workers = max(1, min(workers, len(pieces)))
    local = threading.local()

    def run_piece(piece):
        (thresh, beta), first = piece
        if not hasattr(local, "counter"):
            local.counter = _SpikeCounter(model)
        with torch.no_grad(), single_thread() if workers > 1 else contextlib.nullcontext():
            x = images[first : first + batch_size].to(device)
            outputs, counts, raster = local.counter.run(
                x, raster_index if first == 0 else None, num_steps=longest[(thresh, beta)], thresh=thresh, beta=beta
            )
            sq_error = (outputs - x.unsqueeze(0)).double().pow(2).flatten(1).sum(1).cpu()  # [T]
            kept = outputs[:, :show, 0].float().cpu() if first == 0 else None  # [T, K, H, W]
        return sq_error, counts, kept, raster, local.counter.sizes

    total_work = sum(longest[key] * len(images[first : first + batch_size]) for key, first in pieces)
    done = 0

    def report(piece):
        nonlocal done
        (thresh, beta), first = piece
        done += longest[(thresh, beta)] * len(images[first : first + batch_size])
        if progress:
            progress(
                done / total_work, f"thresh {thresh:g}, beta {beta:g}, digits {first + 1}-{min(first + batch_size, len(images))} of {len(images)}"
            )

    outcome = {}
    if workers == 1:
        for piece in pieces:
            outcome[piece] = run_piece(piece)
            report(piece)
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="sweep")
        try:
            futures = {pool.submit(run_piece, piece): piece for piece in pieces}
            for future in as_completed(futures):
                outcome[futures[future]] = future.result()
                report(futures[future])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # e.g. the page reran mid-sweep: drop the rest

    measured: dict[Setting, SettingResult] = {}
    pixels = images[0].numel() * len(images)
    for thresh, beta in longest:
        parts = [outcome[(thresh, beta), first] for first in range(0, len(images), batch_size)]  # fixed order
        sq_error = sum(p[0] for p in parts)
        counts = {n: sum(p[1][n] for p in parts) for n in SPIKING_LAYERS}
        sizes, kept, raster = parts[0][4], parts[0][2], parts[0][3]
        for s in settings:
            if (float(s.thresh), float(s.beta)) != (thresh, beta):
                continue
            t = int(s.num_steps)
            setting = Setting(thresh, t, beta)
            measured[setting] = SettingResult(
                setting=setting,
                mse=float(sq_error[t - 1]) / pixels,
                spike_rates={n: float(counts[n][:t].sum()) / (t * len(images) * sizes[n]) for n in SPIKING_LAYERS},
                reconstructions=_frozen(kept[t - 1].numpy()),
                latent_raster=_frozen(raster[:t].numpy()),
            )
    return [measured[Setting(float(s.thresh), int(s.num_steps), float(s.beta))] for s in settings]


def run_sweep(
    model,
    images: torch.Tensor,
    thresholds: Sequence[float],
    num_steps: Sequence[int],
    betas: Sequence[float] | None = None,
    *,
    show: int = 8,
    raster_index: int = 0,
    batch_size: int = 128,
    workers: int | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Every (thresh, num_steps, beta) in the grid on one model and one set of digits.

    ``betas`` defaults to the model's own.  Deterministic for a given model and
    input, so the result can be cached on (model_fingerprint, values, digits)."""
    betas = tuple(sorted({float(b) for b in betas})) if betas else (model_beta(model),)
    thresholds = tuple(sorted({float(t) for t in thresholds}))
    num_steps = tuple(sorted({int(s) for s in num_steps}))
    if not thresholds or not num_steps:
        raise ValueError("pick at least one thresh and one num_steps")
    start = time.perf_counter()
    settings = grid(thresholds, num_steps, betas)
    results = measure(model, images, settings, show=show, raster_index=raster_index, batch_size=batch_size, workers=workers, progress=progress)
    return SweepResult(
        thresholds,
        num_steps,
        betas,
        tuple(results),
        _frozen(images[:show, 0].float().cpu().numpy()),
        len(images),
        raster_index,
        time.perf_counter() - start,
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    """Results may be shared between sessions through a cache: make them read-only."""
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array
