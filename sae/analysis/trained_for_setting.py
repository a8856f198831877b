"""The shipped models trained *with* each setting, against one model switched to it after training.

The model card (checkpoints/README.md) says how each file was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from sae.analysis.sweep import Progress, SettingResult, measure
from sae.model import NeuronSettings


@dataclass(frozen=True)
class TrainedFor:
    """A shipped checkpoint trained with one setting (the model card lists how)."""

    num_steps: int
    thresh: float
    filename: str

    @property
    def setting_label(self) -> str:
        return f"trained with num_steps {self.num_steps}, thresh {self.thresh:g}"

    def settings(self, beta: float) -> NeuronSettings:
        """This entry's thresh and num_steps, at ``beta`` (the model's own: the series do not vary it)."""
        return NeuronSettings(self.thresh, beta, self.num_steps)

    def matches(self, config) -> bool:
        """Whether a checkpoint's config really is this setting (a misnamed file would mislead the chart)."""
        return int(config.num_steps) == self.num_steps and abs(float(config.thresh) - self.thresh) < 1e-9


# The shipped checkpoints of the "trained for the setting" comparison: num_steps 1, 3,
# 5, 10 at thresh 1, and thresh 0.5, 1, 2 at num_steps 5 (T5/thresh 1 is in both).
TRAINED_FOR_SETTING = (
    TrainedFor(1, 1.0, "compare_T1_thr1.pt"),
    TrainedFor(3, 1.0, "compare_T3_thr1.pt"),
    TrainedFor(5, 1.0, "compare_T5_thr1.pt"),
    TrainedFor(10, 1.0, "compare_T10_thr1.pt"),
    TrainedFor(5, 0.5, "compare_T5_thr0.5.pt"),
    TrainedFor(5, 2.0, "compare_T5_thr2.pt"),
)
# The model trained at the tutorial's settings: it stands for "change the setting after training".
REFERENCE_FILENAME = "compare_T5_thr1.pt"
SERIES = {"thresh": {"fixed": ("num_steps", 5), "values": (0.5, 1.0, 2.0)}, "num_steps": {"fixed": ("thresh", 1.0), "values": (1, 3, 5, 10)}}
TRAINED_DIR: Path | None = None  # None: the shipped checkpoints/ folder (tests point it elsewhere)


def trained_dir() -> Path:
    if TRAINED_DIR is not None:
        return Path(TRAINED_DIR)
    from sae.io.checkpoints import SHIPPED_DIR  # read at call time: tests point TRAINED_DIR elsewhere

    return Path(SHIPPED_DIR)


def trained_series(parameter: str) -> list[TrainedFor]:
    """The entries that vary ``parameter`` ("thresh" or "num_steps") with the other one fixed."""
    if parameter not in SERIES:
        raise ValueError(f"parameter must be one of {sorted(SERIES)}, got {parameter!r}")
    fixed_name, fixed_value = SERIES[parameter]["fixed"]
    entries = [e for e in TRAINED_FOR_SETTING if getattr(e, fixed_name) == fixed_value]
    return sorted(entries, key=lambda e: getattr(e, parameter))


def locate_trained(entries: Sequence[TrainedFor] = TRAINED_FOR_SETTING, directory: Path | None = None) -> list[tuple[TrainedFor, Path | None]]:
    """Each entry with its file, or None where it has not been shipped (yet)."""
    directory = Path(directory) if directory is not None else trained_dir()
    return [(e, (directory / e.filename) if (directory / e.filename).is_file() else None) for e in entries]


@dataclass(frozen=True)
class TrainedRow:
    """One setting: the model trained with it, and the reference model switched to it after training."""

    entry: TrainedFor
    trained: SettingResult | None  # None: checkpoint missing
    after_training: SettingResult | None  # None: no reference model

    def table_row(self, card: dict) -> dict:
        """One line of the comparison table; ``card`` is the checkpoint's recorded metrics."""

        def mse(result):
            return None if result is None else round(result.mse, 4)

        def latent(result):
            return None if result is None else f"{result.spike_rates['latent']:.1%}"

        return {
            "setting": self.entry.setting_label,
            "checkpoint": self.entry.filename,
            "test MSE (model card)": card.get("test_mse"),
            "MSE here, trained with it": mse(self.trained),
            "MSE here, set after training": mse(self.after_training),
            "latent rate, trained": latent(self.trained),
            "latent rate, set after": latent(self.after_training),
        }


def compare_trained(
    entries: Sequence[TrainedFor],
    models: dict,
    reference,
    images: torch.Tensor,
    *,
    show: int = 8,
    raster_index: int = 0,
    progress: Progress | None = None,
) -> list[TrainedRow]:
    """Every entry on the same digits: its own model at its own setting, and ``reference``
    (trained at num_steps 5, thresh 1) switched to that setting.

    ``models`` maps filename -> model for the entries that exist; beta is each model's own."""
    present = [(e, models[e.filename]) for e in entries if e.filename in models]
    runs = len(present) + (reference is not None)

    def share(index: int) -> Progress | None:
        """Progress of run ``index`` of ``runs``, as a fraction of the whole comparison."""
        if progress is None:
            return None
        return lambda fraction, message: progress((index + fraction) / runs, message)

    options = {"show": show, "raster_index": raster_index}
    trained = {e.filename: measure(m, images, [m.config.neuron_settings()], progress=share(i), **options)[0] for i, (e, m) in enumerate(present)}
    after = {}
    if reference is not None:
        settings = [e.settings(reference.config.beta) for e in entries]
        results = measure(reference, images, settings, progress=share(len(present)), **options)
        after = {e.filename: r for e, r in zip(entries, results)}
    return [TrainedRow(e, trained.get(e.filename), after.get(e.filename)) for e in entries]
