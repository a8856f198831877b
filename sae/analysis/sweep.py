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
independent single-threaded workers (see ``measure``).  ``python -m benchmarks.sweep``
times the Compare page's default sweep.
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
from sae.model import SPIKING_LAYERS, NeuronSettings

Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------- the grid


def grid(thresholds: Sequence[float], num_steps: Sequence[int], betas: Sequence[float]) -> list[NeuronSettings]:
    """Every combination, without duplicates, sorted by thresh, then num_steps, then beta."""
    settings = {NeuronSettings(t, b, s) for t in thresholds for s in num_steps for b in betas}
    return sorted(settings, key=lambda s: (s.thresh, s.num_steps, s.beta))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)  # holds arrays: compare the numbers, not the objects
class SettingResult:
    """What one setting did to the digits."""

    setting: NeuronSettings
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

    def at(self, settings: NeuronSettings) -> SettingResult:
        if settings not in self._by_setting:
            raise KeyError(f"{settings.label} is not in this sweep")
        return self._by_setting[settings]

    @cached_property
    def _by_setting(self) -> dict:
        """NeuronSettings -> result: a grid figure looks up every cell."""
        return {result.setting: result for result in self.results}

    def table(self, beta: float | None = None) -> list[list[SettingResult]]:
        """The results at one beta (default: the first) as rows of thresh and columns of num_steps."""
        beta = self.betas[0] if beta is None else beta
        return [[self.at(NeuronSettings(t, beta, s)) for s in self.num_steps] for t in self.thresholds]

    def series(self, parameter: str, other=None, beta: float | None = None) -> list[SettingResult]:
        """The results along every value of ``parameter`` ("thresh" or "num_steps"), the other of
        the two held at ``other`` (default: its first value) and beta at ``beta`` (default: the first)."""
        beta = self.betas[0] if beta is None else beta
        if parameter == "thresh":
            steps = self.num_steps[0] if other is None else other
            return [self.at(NeuronSettings(t, beta, steps)) for t in self.thresholds]
        thresh = self.thresholds[0] if other is None else other
        return [self.at(NeuronSettings(thresh, beta, s)) for s in self.num_steps]

    def mse_grid(self, beta: float | None = None) -> np.ndarray:
        """[len(thresholds), len(num_steps)] test MSE at one beta."""
        return np.array([[r.mse for r in row] for row in self.table(beta)])

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
    step (about 256 kB per digit and step), and building it is a large share of a
    sweep's time; counting on the fly keeps only a number per layer and step.
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

    def run(self, x, raster_index: int | None, settings: NeuronSettings):
        """Outputs of every step [T, B, 1, H, W], spikes per step {layer: [T]}, latent raster [T, L] or None."""
        for counts in self.counts.values():
            counts.clear()
        self.latent.clear()
        self.raster_index = raster_index
        outputs = self.model(x, every_step=True, settings=settings)
        steps = outputs.shape[0]
        if any(len(c) != steps for c in self.counts.values()):
            raise RuntimeError("spike counting hooks did not see every step: has the model's forward changed?")
        counts = {n: torch.stack(c).cpu() for n, c in self.counts.items()}
        raster = torch.stack(self.latent).cpu() if raster_index is not None else None
        return outputs, counts, raster


@dataclass(frozen=True)
class _Counted:
    """What one piece (one run over one batch of digits) measured, per step of its run."""

    sq_error: torch.Tensor  # [T] squared error summed over the batch's pixels
    spikes: dict  # layer -> [T] spikes over the batch
    sizes: dict  # layer -> neurons per digit
    kept: torch.Tensor | None  # [T, K, H, W] reconstructions of the kept digits (first batch only)
    raster: torch.Tensor | None  # [T, latent_dim] latent spikes of the raster digit (first batch only)


class _Pieces:
    """The (run, batch) pieces of a sweep, each run on a per-thread private copy of the model.

    A *run* is one forward at the longest num_steps requested for a (thresh, beta) pair:
    every shorter num_steps is its prefix (the module docstring)."""

    def __init__(self, model, images, runs, *, show: int, raster_index: int, batch_size: int, one_thread: bool):
        self.model, self.images, self.show, self.raster_index, self.one_thread = model, images, show, raster_index, one_thread
        self.batch_size = batch_size
        self.firsts = range(0, len(images), batch_size)
        self.pieces = [(run, first) for run in runs for first in self.firsts]
        self.device = _model_device(model)
        self._local = threading.local()

    def batch(self, first: int) -> torch.Tensor:
        return self.images[first : first + self.batch_size]

    def work(self, piece) -> int:
        """Digit-steps in a piece: the unit of the progress bar."""
        run, first = piece
        return run.num_steps * len(self.batch(first))

    def measure(self, piece) -> _Counted:
        run, first = piece
        if not hasattr(self._local, "counter"):
            self._local.counter = _SpikeCounter(self.model)
        with torch.no_grad(), single_thread() if self.one_thread else contextlib.nullcontext():
            x = self.batch(first).to(self.device)
            outputs, counts, raster = self._local.counter.run(x, self.raster_index if first == 0 else None, run)
            sq_error = (outputs - x.unsqueeze(0)).double().pow(2).flatten(1).sum(1).cpu()  # [T]
            kept = outputs[:, : self.show, 0].float().cpu() if first == 0 else None  # [T, K, H, W]
        return _Counted(sq_error, counts, self._local.counter.sizes, kept, raster)


def measure(
    model,
    images: torch.Tensor,
    settings: Sequence[NeuronSettings],
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
    (default: torch's thread count on a CPU, 1 elsewhere): OpenMP threads of one
    forward wait on each other at every small op, independent workers do not
    (``python -m benchmarks.sweep`` times it).  Pieces are summed in a fixed order, so
    the numbers do not depend on which finished first.  ``progress`` is only called
    from the calling thread.  ``model`` itself is not touched."""
    _check_request(images, settings, show, raster_index)
    runs = _longest_runs(settings)
    batch_size = max(batch_size, show)  # the kept digits all come from the first batch
    if workers is None:
        workers = torch.get_num_threads() if _model_device(model).type == "cpu" else 1
    workers = max(1, min(workers, len(runs) * len(range(0, len(images), batch_size))))
    pieces = _Pieces(model, images, runs.values(), show=show, raster_index=raster_index, batch_size=batch_size, one_thread=workers > 1)
    outcome = _run_all(pieces, workers, progress)
    measured = {}
    for setting in dict.fromkeys(settings):
        run = runs[setting.thresh, setting.beta]
        measured[setting] = _setting_result(setting, [outcome[run, first] for first in pieces.firsts], images)  # fixed order
    return [measured[s] for s in settings]


def _check_request(images, settings, show: int, raster_index: int) -> None:
    if len(images) == 0:
        raise ValueError("no digits to measure on")
    if not settings:
        raise ValueError("no settings to measure")
    if not 1 <= show:
        raise ValueError(f"show must be at least 1, got {show}")
    if not 0 <= raster_index < min(show, len(images)):
        raise ValueError(f"raster_index {raster_index} is not among the {min(show, len(images))} kept digits")


def _longest_runs(settings: Sequence[NeuronSettings]) -> dict[tuple[float, float], NeuronSettings]:
    """Per (thresh, beta), the one run that serves every num_steps asked for with them: the longest."""
    runs: dict[tuple[float, float], NeuronSettings] = {}
    for s in settings:
        key = (s.thresh, s.beta)
        if key not in runs or runs[key].num_steps < s.num_steps:
            runs[key] = s
    return runs


def _run_all(pieces: _Pieces, workers: int, progress: Progress | None) -> dict:
    """Every piece's ``_Counted``, on ``workers`` threads; progress as pieces finish."""
    total, done = sum(pieces.work(p) for p in pieces.pieces), 0
    images = len(pieces.images)

    def report(piece):
        nonlocal done
        done += pieces.work(piece)
        if progress:
            run, first = piece
            last = min(first + pieces.batch_size, images)
            progress(done / total, f"thresh {run.thresh:g}, beta {run.beta:g}, digits {first + 1}-{last} of {images}")

    outcome = {}
    if workers == 1:
        for piece in pieces.pieces:
            outcome[piece] = pieces.measure(piece)
            report(piece)
        return outcome
    pool = ThreadPoolExecutor(workers, thread_name_prefix="sweep")
    try:
        futures = {pool.submit(pieces.measure, piece): piece for piece in pieces.pieces}
        for future in as_completed(futures):
            outcome[futures[future]] = future.result()
            report(futures[future])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # e.g. the page reran mid-sweep: drop the rest
    return outcome


def _setting_result(setting: NeuronSettings, parts: list[_Counted], images: torch.Tensor) -> SettingResult:
    """One setting's numbers: the first ``num_steps`` steps of its run, summed over the batches."""
    t = setting.num_steps
    sq_error = sum(p.sq_error for p in parts)
    spikes = {n: sum(p.spikes[n] for p in parts) for n in SPIKING_LAYERS}
    first = parts[0]
    return SettingResult(
        setting=setting,
        mse=float(sq_error[t - 1]) / (images[0].numel() * len(images)),
        spike_rates={n: float(spikes[n][:t].sum()) / (t * len(images) * first.sizes[n]) for n in SPIKING_LAYERS},
        reconstructions=_frozen(first.kept[t - 1].numpy()),
        latent_raster=_frozen(first.raster[:t].numpy()),
    )


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
    betas = tuple(sorted({float(b) for b in betas})) if betas else (float(model.config.beta),)
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
