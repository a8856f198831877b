"""Training events as plain data, for runs that train in another process.

A worker process (``sae.runs.worker``) runs ``sae.training.loop.train`` and sends each event
as a small JSON-able dict; the app turns it back into the same ``BatchEnd``,
``Evaluation``, ``EpochEnd`` or ``Finished`` that an in-process run yields, so
``sae.runs.jobs`` and the pages cannot tell the difference.  Tensors travel as
base64 float32, the trained model as ``torch.save`` bytes of its state_dict,
loaded back with ``weights_only=True``: nothing here unpickles code, which
matters once the bytes come through Redis.

Three events exist only across processes: ``Waiting`` (still in a shared queue,
at this place), ``Started`` (a worker took the run) and ``Measured`` (after
``Finished``: the trained model's test MSE over the whole test set, which Save
records).  ``WorkerLost`` is the one-line failure for a worker that died under a run.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, fields

import numpy as np
import torch

from sae.model import SAEConfig, SpikingAutoencoder
from sae.training.loop import BatchEnd, EpochEnd, Evaluation, Finished, TrainingError


@dataclass
class Waiting:
    """The run waits in a shared queue: ``position`` 1 is next (None: not known)."""

    position: int | None


@dataclass
class Started:
    """A worker took the run."""

    worker: str
    device: str


@dataclass
class Measured:
    """The trained model measured on the whole test set (``sae.training.loop.final_metrics``).

    It follows ``Finished``: the run's end is reported at once (a stopped run shows
    as stopped within a second), and the worker measures before it takes another run."""

    metrics: dict


class WorkerLost(TrainingError):
    """The process that trained a run died under it (killed, out of memory, machine gone)."""


def lost_message(how: str, step: int) -> str:
    """The one line a session sees when its worker died; the app itself is fine."""
    where = f"after step {step}" if step else "before its first step"
    return f"the training worker stopped unexpectedly ({how}) {where}; the app is fine: start the run again"


EVENTS = {
    "batch": BatchEnd,
    "eval": Evaluation,
    "epoch": EpochEnd,
    "finished": Finished,
    "measured": Measured,
    "waiting": Waiting,
    "started": Started,
}
_TYPE_OF = {cls: name for name, cls in EVENTS.items()}


def state_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def model_from_bytes(raw: bytes, model_config: SAEConfig) -> SpikingAutoencoder:
    """The trained model from its state_dict bytes: tensors only (``weights_only``), keys checked (``strict``)."""
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    model = SpikingAutoencoder(model_config)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _out(value):
    if isinstance(value, torch.nn.Module):
        return {"__model__": base64.b64encode(state_bytes(value)).decode("ascii")}
    if isinstance(value, torch.Tensor):
        array = value.detach().to("cpu", torch.float32).contiguous().numpy()
        return {"__f32__": base64.b64encode(array.tobytes()).decode("ascii"), "shape": list(array.shape)}
    return value


def _in(value, model_config: SAEConfig):
    if isinstance(value, dict) and "__model__" in value:
        return model_from_bytes(base64.b64decode(value["__model__"]), model_config)
    if isinstance(value, dict) and "__f32__" in value:
        array = np.frombuffer(base64.b64decode(value["__f32__"]), dtype=np.float32).reshape(value["shape"])
        return torch.from_numpy(array.copy())
    return value


def encode(event) -> dict:
    """A training event as a JSON-able dict: its fields, ``type`` saying which event."""
    if type(event) not in _TYPE_OF:
        raise TypeError(f"not a training event: {type(event).__name__}")
    return {"type": _TYPE_OF[type(event)], **{f.name: _out(getattr(event, f.name)) for f in fields(event)}}


def decode(d: dict, model_config: SAEConfig):
    """The event ``encode`` made; a ``failed`` message raises its one-line error instead."""
    if d["type"] == "failed":
        raise TrainingError(d["error"])
    cls = EVENTS.get(d["type"])
    if cls is None:
        raise ValueError(f"unknown event type {d['type']!r}")
    return cls(**{f.name: _in(d[f.name], model_config) for f in fields(cls)})


def failed(message: str) -> dict:
    """The message a worker sends instead of ``finished`` when the run failed (already one line)."""
    return {"type": "failed", "error": message}
