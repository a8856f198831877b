"""Training as a stream of events.

``train(...)`` is a generator: it yields ``BatchEnd`` after every optimizer step,
``Evaluation`` whenever the held-out loss is measured, ``EpochEnd`` after each
epoch and finally ``Finished`` with the trained model.  It knows nothing of the
command line or Streamlit; both consume the same events (minGPT's callbacks,
as a generator).  It stops cleanly between batches when ``stop`` is set or the
time budget is spent, and always ends with a ``Finished`` holding what it learned.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from sae import limits
from sae.devices import resolve_device
from sae.engine import compile_now, fuse, training_loss, unfuse
from sae.model import SPIKING_LAYERS, NeuronSettings, SAEConfig, SpikingAutoencoder
from sae.training.calibration import calibrate


@dataclass(frozen=True)
class TrainConfig:
    """How to train.  Defaults are the tutorial's recipe (AdamW, lr 1e-4, batch 250)."""

    epochs: int = 10
    time_budget: float | None = None  # seconds of training; None: run all epochs
    lr: float = 1e-4
    weight_decay: float = 1e-3
    batch_size: int = 250
    loss: str = "last"  # "last": MSE of the last step's output; "every": mean over steps
    schedule: str = "constant"  # "cosine": warm-up then cosine decay over the run
    warmup_steps: int = 0
    train_subset: int | None = None  # use only the first N training images
    eval_images: int = 1000  # held-out test images for the live test loss
    eval_every_s: float = 10.0  # measure the held-out loss at least this often
    sample_count: int = 8  # fixed test digits whose reconstructions are reported
    seed: int = 0
    device: str = "auto"
    engine: str = "fast"  # "fast": the first conv once (sae.engine); "reference": the tutorial's loops as written
    compile: bool = False  # fuse the LIF updates with torch.compile (sae.engine.fuse): faster after a one-off compile
    calibrate: bool = False  # scale each layer to fire at a target rate before the first step (sae.training.calibration)

    def __post_init__(self):
        if self.loss not in limits.LOSSES:
            raise ValueError(f"loss must be one of {limits.LOSSES}, got {self.loss!r}")
        if self.schedule not in limits.SCHEDULES:
            raise ValueError(f"schedule must be one of {limits.SCHEDULES}, got {self.schedule!r}")
        if self.engine not in limits.ENGINES:
            raise ValueError(f"engine must be one of {limits.ENGINES}, got {self.engine!r}")
        for name in ("lr", "weight_decay", "batch_size", "epochs", "time_budget", "warmup_steps", "eval_images", "train_subset", "seed"):
            value = getattr(self, name)
            problem = None if value is None else limits.LIMITS[name].problem(value)
            if problem:
                raise ValueError(problem)

    def to_dict(self) -> dict:
        return asdict(self)


CALIBRATION_IMAGES = 32  # the first training images set the starting scales (sae.training.calibration)


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, out of memory, device lost)."""


class _StopRequested(Exception):
    """Raised inside a forward or backward pass when ``stop`` is set, to cut a batch short."""


_SEED_LOCK = threading.Lock()


def seeded_model(model_config: SAEConfig, seed: int) -> SpikingAutoencoder:
    """The initial model for ``seed``.

    torch's default generator is process-wide: two runs starting at once in two
    threads would interleave their draws and get different weights.  The lock and
    ``fork_rng`` make a run's weights depend on its seed only, and leave other
    threads' random state alone."""
    with _SEED_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpikingAutoencoder(model_config)


def _stop_hooks(model: SpikingAutoencoder, stop: threading.Event) -> list:
    """Check ``stop`` before every spiking layer, in the forward and the backward pass.

    One 250-image batch takes seconds on a busy CPU; with these checks a stop
    request ends it within a layer instead.  Returns the hook handles to remove."""

    def check(*_):
        if stop.is_set():
            raise _StopRequested

    def before_layer(_module, args):
        check()
        if torch.is_tensor(args[0]) and args[0].requires_grad:
            args[0].register_hook(check)  # returns None: the gradient is unchanged

    return [layer.register_forward_pre_hook(before_layer) for _, layer in model.spiking_layers()]


@dataclass
class BatchEnd:
    step: int
    epoch: int
    loss: float
    lr: float
    images_per_s: float
    elapsed: float
    progress: float  # 0..1 of the planned run (epochs or time budget)


@dataclass
class Evaluation:
    step: int
    epoch: float
    test_loss: float
    spike_rates: dict
    inputs: torch.Tensor  # [S, 1, H, W] fixed test digits
    reconstructions: torch.Tensor  # [S, 1, H, W]
    elapsed: float


@dataclass
class EpochEnd:
    epoch: int
    train_loss: float
    test_loss: float
    elapsed: float


@dataclass
class Finished:
    reason: str  # "completed", "stopped" or "time budget"
    model: SpikingAutoencoder
    steps: int
    elapsed: float
    images_seen: int
    metrics: dict | None = None  # final_metrics, where a worker process measured them before it reported the end


@dataclass
class History:
    """Everything worth plotting or saving, as plain lists."""

    batch: dict = field(default_factory=lambda: {"step": [], "loss": [], "elapsed": []})
    evals: dict = field(
        default_factory=lambda: {"step": [], "epoch": [], "test_loss": [], "elapsed": [], **{f"rate_{n}": [] for n in SPIKING_LAYERS}}
    )
    epochs: dict = field(default_factory=lambda: {"epoch": [], "train_loss": [], "test_loss": []})

    def as_dict(self) -> dict:
        return {"batch": self.batch, "evals": self.evals, "epochs": self.epochs}

    def copy(self) -> dict:
        """``as_dict()`` with every column copied (a shallow list copy: the values are plain numbers)."""
        return {part: {k: list(v) for k, v in table.items()} for part, table in self.as_dict().items()}

    def record(self, event) -> None:
        """Append what a training event reports (the loop keeps none: whoever consumes its events does)."""
        if isinstance(event, BatchEnd):
            table, row = self.batch, {"step": event.step, "loss": event.loss, "elapsed": event.elapsed}
        elif isinstance(event, Evaluation):
            table, row = (
                self.evals,
                {
                    "step": event.step,
                    "epoch": event.epoch,
                    "test_loss": event.test_loss,
                    "elapsed": event.elapsed,
                    **{f"rate_{n}": r for n, r in event.spike_rates.items()},
                },
            )
        elif isinstance(event, EpochEnd):
            table, row = self.epochs, {"epoch": event.epoch, "train_loss": event.train_loss, "test_loss": event.test_loss}
        else:
            return
        for key, value in row.items():
            table[key].append(value)


@torch.no_grad()
def evaluate(model, images, batch_size: int = 500, settings: NeuronSettings | None = None) -> tuple[float, dict]:
    """Test MSE (mean over all pixels) and spike rate per layer, in eval mode, at ``settings``
    (default: the model's own)."""
    test_mse, rates, _ = _evaluate(model, images, batch_size, None, settings)
    return test_mse, rates


def _evaluate(model, images, batch_size: int, stop: threading.Event | None, settings: NeuronSettings | None = None) -> tuple[float, dict, int]:
    """``evaluate``, plus how many images it measured: with ``stop`` set it ends after the current
    batch (always one batch at least), so a stopped run is not held up by a long measurement."""
    was_training = model.training
    model.eval()
    total, rates, count = 0.0, {n: 0.0 for n in SPIKING_LAYERS}, 0
    for start in range(0, len(images), batch_size):
        if count and stop is not None and stop.is_set():
            break
        x = images[start : start + batch_size]
        recon, trace = model(x, trace=True, settings=settings)
        total += F.mse_loss(recon, x, reduction="sum").item()
        for name, rate in trace.spike_rates().items():
            rates[name] += rate * len(x)
        count += len(x)
    model.train(was_training)
    return total / images[:count].numel(), {n: r / count for n, r in rates.items()}, count


def final_metrics(model, test_images: torch.Tensor, finished: Finished, stop: threading.Event | None = None) -> dict:
    """What a saved checkpoint records of its run (the CLI and the Train page alike):
    test MSE and spike rates on ``test_images``, and how the training went.

    With ``stop`` set during the measurement it ends early: ``test_images`` then says
    how many were measured."""
    device = next(model.parameters()).device
    test_mse, rates, measured = _evaluate(model, test_images.to(device), 500, stop)
    return {
        "test_mse": test_mse,
        "spike_rates": rates,
        "test_images": measured,
        "train_seconds": finished.elapsed,
        "steps": finished.steps,
        "images_seen": finished.images_seen,
        "stopped": finished.reason,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr


def train(
    model_config: SAEConfig,
    cfg: TrainConfig,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    stop: threading.Event | None = None,
    model: SpikingAutoencoder | None = None,
):
    """Train a spiking autoencoder, yielding events (see the module docstring).

    ``train_images``/``test_images`` are [N, 1, H, W] tensors in [0, 1]; the held-out
    loss uses the first ``cfg.eval_images`` of ``test_images``.
    """
    run = _Run(model_config, cfg, train_images, test_images, stop or threading.Event(), model)
    # A stop request cuts the current batch (or evaluation) short.  A cut batch's
    # BatchNorm statistics are rolled back: the model is the one after the last full step.
    hooks = _stop_hooks(run.model, run.stop)
    try:
        yield run.measure(0.0)
        for epoch in range(cfg.epochs):
            yield from run.epoch(epoch)
            if run.reason != "completed":
                break
    except _StopRequested:
        run.roll_back_cut_batch()
    finally:
        for hook in hooks:
            hook.remove()
        if cfg.compile:
            unfuse(run.model)
    yield run.finish()


class _Run:
    """One run of ``train``: its setup, the steps of an epoch, the held-out measurement, the end."""

    def __init__(self, model_config: SAEConfig, cfg: TrainConfig, train_images, test_images, stop: threading.Event, model):
        self.cfg, self.stop = cfg, stop
        self.device = device = resolve_device(cfg.device)
        self.model = model = (model or seeded_model(model_config, cfg.seed)).to(device).train()
        if cfg.compile:
            fuse(model)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
        if cfg.train_subset:
            train_images = train_images[: cfg.train_subset]
        self.train_images = train_images = train_images.to(device)
        if cfg.calibrate:
            calibrate(model, train_images[:CALIBRATION_IMAGES])
        self.held_out = test_images[: cfg.eval_images].to(device)
        self.samples = self.held_out[: cfg.sample_count]
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.planned_steps = cfg.epochs * max(1, math.ceil(len(train_images) / cfg.batch_size))
        if cfg.compile:  # a one-off cost of the machine, not of this run: outside the time budget
            compile_now(model, train_images[: cfg.batch_size], cfg.loss, cfg.engine)
        self.start = self.last_eval = time.perf_counter()
        self.step, self.images_seen, self.reason = 0, 0, "completed"
        self.batch_start_buffers = None  # BatchNorm's statistics before the batch under way

    def progress(self) -> float:
        by_steps = self.step / self.planned_steps
        if self.cfg.time_budget:
            return max(by_steps, (time.perf_counter() - self.start) / self.cfg.time_budget)
        return by_steps

    def measure(self, epoch: float) -> Evaluation:
        """The held-out loss and spike rates, and the fixed digits' reconstructions."""
        test_loss, rates = evaluate(self.model, self.held_out)
        with torch.no_grad():
            self.model.eval()
            recon = self.model(self.samples)
            self.model.train()
        self.last_eval = time.perf_counter()
        return Evaluation(self.step, epoch, test_loss, rates, self.samples.cpu(), recon.cpu(), self.last_eval - self.start)

    def epoch(self, epoch: int):
        """One pass over the training images in a fresh order: its batches, then (unless stopped) its evaluation."""
        cfg, images = self.cfg, self.train_images
        order = torch.randperm(len(images), generator=self.generator).to(self.device)
        epoch_loss, epoch_images = 0.0, 0
        for first in range(0, len(images), cfg.batch_size):
            if self.stop.is_set():
                self.reason = "stopped"
                break
            if cfg.time_budget and time.perf_counter() - self.start >= cfg.time_budget:
                self.reason = "time budget"
                break
            batch = order[first : first + cfg.batch_size]
            batch_end, now = self._step(images[batch], epoch)
            epoch_loss += batch_end.loss * len(batch)
            epoch_images += len(batch)
            yield batch_end
            if now - self.last_eval >= cfg.eval_every_s:
                yield self.measure(epoch + first / len(images))
        if epoch_images and self.reason != "stopped":
            evaluation = self.measure(epoch + epoch_images / len(images))
            yield evaluation
            yield EpochEnd(epoch + 1, epoch_loss / epoch_images, evaluation.test_loss, time.perf_counter() - self.start)

    def _step(self, images: torch.Tensor, epoch: int) -> tuple[BatchEnd, float]:
        """One optimizer step on ``images``: its BatchEnd, and when it ended."""
        tick = time.perf_counter()
        lr = learning_rate(self.cfg, self.step, self.progress())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.batch_start_buffers = [b.detach().clone() for b in self.model.buffers()]
        loss = training_loss(self.model, images, self.cfg.loss, self.cfg.engine)
        if not torch.isfinite(loss):
            raise TrainingError(f"the loss became {loss.item()} at step {self.step}: try a lower learning rate")
        loss.backward()
        self.optimizer.step()
        self.batch_start_buffers = None
        loss_value = loss.item()
        self.step += 1
        self.images_seen += len(images)
        now = time.perf_counter()
        return BatchEnd(self.step, epoch, loss_value, lr, len(images) / (now - tick), now - self.start, min(self.progress(), 1.0)), now

    def roll_back_cut_batch(self) -> None:
        """A stop cut a batch short: put back the BatchNorm statistics from before it."""
        self.reason = "stopped"
        if self.batch_start_buffers is not None:
            with torch.no_grad():
                for live, saved in zip(self.model.buffers(), self.batch_start_buffers):
                    live.copy_(saved)

    def finish(self) -> Finished:
        self.model.eval()
        return Finished(self.reason, self.model, self.step, time.perf_counter() - self.start, self.images_seen)
