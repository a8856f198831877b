"""The figures a lesson states, measured on a model, so a lesson never tells a class what is false.

A lesson step may state what its page will show ("at thresh 2 no latent neuron fires").  A check in
the lesson file says it as a *measure* (a figure one of the pages shows), the settings to measure at,
the digits, and the bounds or the comparison it must meet; :func:`check_lesson` measures every one
on a model and returns a line for each that fails.  The shipped lessons are checked this way against
the shipped model by the tests, and a teacher checks their own with ``python -m teaching check --facts``.

Every measure reads the same library calls the pages make (``sae.analysis``), for one MNIST test digit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from sae.analysis import latent
from sae.analysis.energy import count_operations
from sae.analysis.inference import InferenceResult, run_digit
from sae.model import NeuronSettings
from teaching.links import LessonLink

KEPT_RESULTS = 256  # runs and codes a Bench keeps (one lesson's checks use a few dozen)


class FactError(ValueError):
    """A measure that cannot be taken at these settings (one line)."""


@dataclass
class Bench:
    """A model and the MNIST test set (images [N, 1, H, W], labels [N]) to measure on, with caches."""

    model: torch.nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    _runs: dict = field(default_factory=dict, repr=False)
    _means: np.ndarray | None = field(default=None, repr=False)

    def settings(self, link: LessonLink) -> NeuronSettings:
        """thresh, beta and num_steps of ``link`` (the checkpoint's own where the link sets none)."""
        config = self.model.config
        return NeuronSettings(
            thresh=float(link.values.get("thresh", config.thresh)),
            beta=float(link.values.get("beta", config.beta)),
            num_steps=int(link.values.get("steps", config.num_steps)),
        )

    def _kept(self, key: tuple, compute: Callable):
        if key not in self._runs:
            if len(self._runs) >= KEPT_RESULTS:
                self._runs.clear()  # a long-lived bench stays bounded; a lesson's checks need far fewer
            self._runs[key] = compute()
        return self._runs[key]

    def run(self, link: LessonLink, digit: int) -> InferenceResult:
        s = self.settings(link)
        return self._kept(("run", digit, s), lambda: run_digit(self.model, self.images[digit : digit + 1], s))

    def own_code(self, link: LessonLink, digit: int) -> latent.EncodedDigit:
        s = self.settings(link)
        return self._kept(("own", digit, s), lambda: latent.encode_digit(self.model, self.images[digit : digit + 1], s))

    def decode(self, link: LessonLink, codes: np.ndarray) -> np.ndarray:
        return latent.decode_codes(self.model, codes, self.settings(link)).images

    def nearest_class(self, images: np.ndarray) -> np.ndarray:
        """For each image [N, H, W], the class whose average test image is nearest (the Latent lab's 'looks like')."""
        if self._means is None:
            self._means = np.stack([self.images[self.labels == d, 0].mean(0).numpy() for d in range(10)])
        return ((np.asarray(images)[:, None] - self._means[None]) ** 2).sum(axis=(2, 3)).argmin(axis=1)


@dataclass(frozen=True)
class Edit:
    """A change to digit A's code in the Latent lab, as its buttons make it: clear all, then silence, then fire."""

    clear: bool = False
    silence: tuple[int, ...] = ()
    fire: tuple[int, ...] = ()

    def apply(self, code: np.ndarray) -> np.ndarray:
        code = np.zeros_like(code) if self.clear else code.copy()
        for neuron, firing in [(n, False) for n in self.silence] + [(n, True) for n in self.fire]:
            if not 0 <= neuron < code.shape[0]:
                raise FactError(f"neuron {neuron} does not exist: this model has {code.shape[0]} latent neurons")
            code = latent.set_neuron(code, neuron, firing)
        return code


@dataclass(frozen=True)
class Probe:
    """One measurement: a view (``link``) of one test digit on a bench, with a layer or a code edit if the measure takes one."""

    bench: Bench
    link: LessonLink
    digit: int
    layer: str | None = None
    edit: Edit = Edit()

    def run(self) -> InferenceResult:
        return self.bench.run(self.link, self.digit)

    def operations(self):
        result = self.run()
        return count_operations(self.bench.model, result.spikes)

    def own_code(self, digit: int | None = None) -> latent.EncodedDigit:
        return self.bench.own_code(self.link, self.digit if digit is None else digit)

    def edited_code(self) -> np.ndarray:
        """The code the lab shows: the link's ``lab_code`` if any, else digit A's own; then ``edit``."""
        own = self.own_code()
        code = own.code
        if "lab_code" in self.link.values:
            try:
                code = latent.code_from_text(self.link.values["lab_code"], *own.code.shape)
            except ValueError as error:
                raise FactError(f"the link's lab_code does not fit: {error}") from None
        return self.edit.apply(code)

    def edited_image(self) -> np.ndarray:
        return self.bench.decode(self.link, self.edited_code())[0]


def _blend_switch(probe: Probe) -> float:
    """The first blend stage that looks more like B than like A (the page's caption), or -1."""
    a, b = probe.own_code(), probe.own_code(int(probe.link.value("lab_b")))
    images = probe.bench.decode(probe.link, latent.blend(a.code, b.code))
    to_a, to_b = (((images - images[end]) ** 2).mean(axis=(1, 2)) for end in (0, -1))
    return float(next((s for s in range(len(images)) if to_b[s] < to_a[s]), -1))


@dataclass(frozen=True)
class Measure:
    """A figure a page shows, for one digit: ``compute(probe) -> float``."""

    name: str
    page: str  # where the figure is: "explore" (the digit is ``index``) or "lab" (digit A, ``lab_a``)
    shows: str  # where on the page, for the docs
    compute: Callable[[Probe], float]
    needs_layer: bool = False


MEASURES = {
    m.name: m
    for m in (
        Measure("mse", "explore", "Reconstruction MSE", lambda p: p.run().mse),
        Measure("mse_after_first_step", "explore", "the playback's caption: the MSE after step 1", lambda p: p.run().step_mse()[0]),
        Measure("spikes", "explore", "Spikes, all layers", lambda p: sum(p.run().spike_counts().values())),
        Measure("latent_spikes", "explore", "the latent raster's caption: spikes in all", lambda p: p.run().spike_count("latent")),
        Measure("latent_neurons_fired", "explore", "Latent neurons that fired", lambda p: (p.run().spikes["latent"].sum(axis=0) > 0).sum()),
        Measure("layer_spikes", "explore", "Spikes per layer: one layer's spikes", lambda p: p.run().spike_count(p.layer), needs_layer=True),
        Measure("synops", "explore", "What the spikes cost: Synaptic operations", lambda p: p.operations().synops),
        Measure("spiking_energy_nj", "explore", "What the spikes cost: Spiking network", lambda p: p.operations().spiking_joules * 1e9),
        Measure(
            "dense_energy_one_pass_nj", "explore", "What the spikes cost: Non-spiking, 1 pass", lambda p: p.operations().dense_joules_one_pass * 1e9
        ),
        Measure(
            "energy_share_of_one_pass",
            "explore",
            "Spiking network energy / Non-spiking, 1 pass",
            lambda p: p.operations().spiking_joules / p.operations().dense_joules_one_pass,
        ),
        Measure(
            "looks_like", "lab", "Edit the code: the digit the picture looks most like", lambda p: p.bench.nearest_class(p.edited_image()[None])[0]
        ),
        Measure(
            "edited_mse", "lab", "Edit the code: the picture's MSE against digit A", lambda p: np.mean((p.edited_image() - p.own_code().input) ** 2)
        ),
        Measure("edited_brightest", "lab", "Edit the code: the brightest pixel of the picture (0 black, 1 white)", lambda p: p.edited_image().max()),
        Measure("edited_spikes", "lab", "Edit the code: spikes in the code", lambda p: p.edited_code().sum()),
        Measure("blend_switch_stage", "lab", "Between two digits: the first stage that looks like B (-1: none)", _blend_switch),
    )
}


@dataclass(frozen=True)
class Check:
    """One stated fact: ``measure`` at the step's view changed by ``at``, on each of ``digits``
    (none: the step's own digit), is within ``[low, high]`` and/or more (less) than ``factor`` times the
    same measure at the view changed by ``more_than`` (``less_than``).  Lesson files write these
    (``teaching.lessons``); ``low``/``high`` are their ``min``/``max``."""

    measure: str
    at: dict = field(default_factory=dict)
    layer: str | None = None
    edit: Edit = Edit()
    digits: tuple[int, ...] = ()
    low: float | None = None
    high: float | None = None
    more_than: dict | None = None
    less_than: dict | None = None
    factor: float = 1.0


def digit_of(link: LessonLink, page: str) -> int:
    """The test digit a view shows: Explore's ``index`` (test image #0 until one is drawn, as the page does), lab's digit A."""
    if page == "lab":
        return int(link.value("lab_a"))
    return int(link.value("index")) if link.value("source") == "MNIST" else 0


def _describe(values: dict) -> str:
    return ", ".join(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}" for name, value in values.items())


def verify(check: Check, view: LessonLink, bench: Bench) -> list[str]:
    """The ways ``check`` fails on ``bench`` for a step showing ``view``: one line each (empty: it holds)."""
    measure = MEASURES[check.measure]
    link = view.with_values(check.at)
    where = f" at {_describe(check.at)}" if check.at else ""
    lines = []
    for digit in check.digits or (digit_of(link, measure.page),):
        name = f"{check.measure}{' of ' + check.layer if check.layer else ''} on test digit #{digit}{where}"
        try:
            value = float(measure.compute(Probe(bench, link, digit, check.layer, check.edit)))
            if check.low is not None and value < check.low or check.high is not None and value > check.high:
                low, high = ("…" if bound is None else f"{bound:g}" for bound in (check.low, check.high))
                lines.append(f"{name} is {value:.4g}, not in [{low}, {high}]")
            for other, more in ((check.more_than, True), (check.less_than, False)):
                if other is None:
                    continue
                base = float(measure.compute(Probe(bench, view.with_values(other), digit, check.layer, check.edit)))
                holds = value > check.factor * base if more else value < check.factor * base
                if not holds:
                    times = f"{check.factor:g} x " if check.factor != 1 else ""
                    lines.append(f"{name} is {value:.4g}, not {'more' if more else 'less'} than {times}{base:.4g} (at {_describe(other)})")
        except FactError as error:
            lines.append(f"{name}: {error}")
    return lines
