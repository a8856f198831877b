"""Every allowed range and choice, in one place.

The model's own checks, the sidebar and Train sliders, the URL parser, the
Compare inputs and the command line all read these, so a range is changed by
editing one line here.  Defaults live in the dataclasses that use them
(``SAEConfig``, ``TrainConfig``); this module only says what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """A closed interval ``[low, high]`` of numbers (or integers), with a UI step."""

    name: str
    low: float
    high: float
    step: float | int = 1
    integer: bool = False

    def problem(self, value) -> str | None:
        """None when ``value`` is allowed, else a one-line reason."""
        kind = "an integer" if self.integer else "a number"
        wrong_type = isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float))
        if wrong_type or not math.isfinite(value) or not self.low <= value <= self.high:
            return f"{self.name} must be {kind} in {self.describe()}, got {value!r}"
        return None

    def describe(self) -> str:
        return f"{self.low:g}–{self.high:g}" if not self.integer else f"{self.low:,}–{self.high:,}"

    def clamp(self, value):
        """The nearest allowed value (for correcting a shared link)."""
        value = min(max(value, self.low), self.high)
        return int(round(value)) if self.integer else float(value)

    def parse(self, text: str):
        """``text`` as this range's type; ValueError when it is no number at all."""
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        if self.integer:
            if value != int(value):
                raise ValueError(f"{text!r} is not an integer")
            return int(value)
        return value


# Neuron settings: what the model accepts at inference and in training.
THRESH = Range("thresh", 0.05, 5.0, 0.05)
BETA = Range("beta", 0.0, 1.0, 0.05)
NUM_STEPS = Range("num_steps", 1, 50, 1, integer=True)
# Architecture.
LATENT_DIM = Range("latent_dim", 1, 4096, 1, integer=True)
LATENT_DIM_CHOICES = (4, 8, 16, 32, 64, 128)  # the Train page's slider
SURROGATES = ("atan", "fast_sigmoid")
# Training.
LR = Range("lr", 1e-6, 1.0, 1e-5)
LR_CHOICES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 6e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
WEIGHT_DECAY = Range("weight_decay", 0.0, 1.0, 1e-4)
WEIGHT_DECAY_CHOICES = (0.0, 1e-4, 1e-3, 1e-2, 0.1)
BATCH_SIZE = Range("batch_size", 1, 4096, 1, integer=True)
EPOCHS = Range("epochs", 1, 1000, 1, integer=True)
TIME_BUDGET = Range("time_budget", 1, 86_400, 10, integer=False)
WARMUP_STEPS = Range("warmup_steps", 0, 100_000, 1, integer=True)
EVAL_IMAGES = Range("eval_images", 10, 10_000, 100, integer=True)
TRAIN_IMAGES = 60_000
TEST_IMAGES = 10_000
TRAIN_SUBSET = Range("train_subset", 10, TRAIN_IMAGES, 1000, integer=True)
SEED = Range("seed", 0, 2**31 - 1, 1, integer=True)
LOSSES = ("last", "every")
SCHEDULES = ("constant", "cosine")
ENGINES = ("fast", "reference")  # sae.engine: the first conv once (default), or the tutorial's loops as written
DEVICES = ("cpu", "cuda", "mps")
# Digits.
TEST_INDEX = Range("index", 0, TEST_IMAGES - 1, 1, integer=True)

LIMITS = {
    r.name: r
    for r in (THRESH, BETA, NUM_STEPS, LATENT_DIM, LR, WEIGHT_DECAY, BATCH_SIZE, EPOCHS, TIME_BUDGET, WARMUP_STEPS, EVAL_IMAGES, TRAIN_SUBSET, SEED)
}
# The values the Compare page offers to sweep (each inside its range above).
THRESH_CHOICES = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
NUM_STEPS_CHOICES = (1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50)
BETA_CHOICES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
SWEEP_DIGITS = Range("digits", 1, 1000, 1, integer=True)
