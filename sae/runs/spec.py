"""A training run as the queue carries it, and the strict reading a worker gives it before training.

The spec is two plain dicts, the fields of ``SAEConfig`` and ``TrainConfig``.  A
worker reads it with :func:`read_spec`: exactly the known keys, each of its
field's type (no bools for numbers, no infinities, short strings), the ranges of
``sae.limits`` through the dataclasses' own checks, what this worker's images
allow, and the class's longest run (``sae.runs.class_limits``).  Anything else is
a :class:`SpecError` with one line, and nothing is trained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields

from sae import limits
from sae.errors import first_line
from sae.model import SAEConfig
from sae.runs.class_limits import RunRefused, TrainingLimits
from sae.training.loop import TrainConfig

# TrainConfig fields that sae.limits has no range for (the Train page never changes them).
SAMPLE_COUNT = limits.Range("sample_count", 1, 64, integer=True)
EVAL_EVERY_S = limits.Range("eval_every_s", 0.1, 3600)
IMAGE_SIZE = SAEConfig().input_size  # a worker trains on MNIST at this size
MAX_TEXT = 32  # the longest string any field holds ("fast_sigmoid", "constant", ...)


class SpecError(ValueError):
    """The spec is not a run this worker trains; the message is one line."""


def spec_of(model_config: SAEConfig, train_config: TrainConfig) -> dict:
    return {"model_config": asdict(model_config), "train_config": train_config.to_dict()}


def read_spec(spec, class_limits: TrainingLimits) -> tuple[SAEConfig, TrainConfig]:
    """The configs a spec asks for, or SpecError with the first thing wrong with it."""
    if not isinstance(spec, dict) or set(spec) != {"model_config", "train_config"}:
        raise SpecError("a spec has exactly two parts, model_config and train_config")
    try:
        model_config = SAEConfig(**_values(SAEConfig, spec["model_config"], "model_config"))
        train_config = TrainConfig(**_values(TrainConfig, spec["train_config"], "train_config"))
    except (TypeError, ValueError) as error:
        raise SpecError(first_line(error)) from None
    if model_config.input_size != IMAGE_SIZE:
        raise SpecError(f"input_size must be {IMAGE_SIZE}, the size of the images a worker trains on")
    if train_config.device not in ("auto", *limits.DEVICES):
        raise SpecError(f"unknown device {train_config.device!r}")
    for rng in (SAMPLE_COUNT, EVAL_EVERY_S):
        problem = rng.problem(getattr(train_config, rng.name))
        if problem:
            raise SpecError(problem)
    if train_config.time_budget is None:
        raise SpecError("a run on the queue has a time limit (the app gives it the class's)")
    try:
        class_limits.fit(train_config)
    except RunRefused as error:
        raise SpecError(str(error)) from None
    return model_config, train_config


def _values(cls, values, part: str) -> dict:
    """``values`` when it holds exactly ``cls``'s fields, each of its field's type."""
    if not isinstance(values, dict):
        raise SpecError(f"{part} is not a dict")
    names = [f.name for f in fields(cls)]
    if set(values) != set(names):
        missing, unknown = sorted(set(names) - set(values)), sorted(map(str, set(values) - set(names)))
        raise SpecError(f"{part} has unknown keys {unknown[:3]}" if unknown else f"{part} lacks {missing[:3]}")
    for f in fields(cls):
        if not _of_type(values[f.name], str(f.type)):
            raise SpecError(f"{part}.{f.name} must be {f.type}, got {type(values[f.name]).__name__}")
    return values


def _of_type(value, annotation: str) -> bool:
    """``value`` fits an annotation such as ``int``, ``float | None`` or ``str`` (finite, short)."""
    kinds = {kind.strip() for kind in annotation.split("|")}
    if value is None:
        return "None" in kinds
    if isinstance(value, bool):
        return "bool" in kinds
    if isinstance(value, int):
        return bool(kinds & {"int", "float"})
    if isinstance(value, float):
        return "float" in kinds and math.isfinite(value)
    if isinstance(value, str):
        return "str" in kinds and len(value) <= MAX_TEXT
    return False
