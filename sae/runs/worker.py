"""What a worker process does for one training run, whoever sent it.

A run trains in a process of its own, never in a thread of the Streamlit
server: in a thread it shared the server's GIL and cores with every page, and
lost most of its steps beside a class of explorers
(``python -m benchmarks.load --sessions 30 --train-alone --train`` shows the cost).
The process runs at a lower CPU priority (``nice``), so the pages get the CPU
first and the run gets the rest.

Two transports use this module: ``sae.runs.local`` (the embedded default, a
fresh interpreter per run on the app's machine) and ``sae.runs.queue_worker`` (``sae worker``
processes behind a Redis queue).  Both hand :func:`run` a way to send plain-data
events (``sae.runs.messages``) and a stop flag; failures become the same one line an
in-process run gives.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from sae.devices import DeviceUnavailableError, resolve_device
from sae.errors import first_line
from sae.model import SAEConfig
from sae.runs import messages
from sae.training.loop import Finished, TrainConfig, TrainingError, final_metrics, train

log = logging.getLogger(__name__)

NICE_ENV, THREADS_ENV = "SAE_WORKER_NICE", "SAE_WORKER_THREADS"


@dataclass(frozen=True)
class ProcessSettings:
    """How a worker process shares the machine with the app."""

    nice: int = 10  # added niceness: when pages and training both want a core, the pages get it
    threads: int = 0  # torch intra-op threads; 0: one per core but one, left to the pages

    @classmethod
    def from_env(cls) -> ProcessSettings:
        """The defaults, or ``SAE_WORKER_NICE`` / ``SAE_WORKER_THREADS`` where an operator set them."""
        values = {}
        for name, env in (("nice", NICE_ENV), ("threads", THREADS_ENV)):
            raw = os.environ.get(env, "").strip()
            try:
                values[name] = int(raw) if raw else getattr(cls, name)
            except ValueError:
                log.warning("%s=%r is not an integer: using %s", env, raw, getattr(cls, name))
                values[name] = getattr(cls, name)
        return cls(**values)

    def torch_threads(self) -> int:
        """The intra-op threads a run gets: ``threads``, or one per core but one."""
        return self.threads or max(1, torch.get_num_threads() - 1)


def lower_priority(settings: ProcessSettings) -> None:
    """Apply ``settings`` to this process (once, at its start, before any torch work).

    Why a core is left free: torch splits every operation over its threads and
    waits for the slowest.  At a lower priority, a thread that shares its core
    with a page stalls every operation, so beside a busy page a run with a thread
    on every core makes far fewer steps than one with a core left free (compare
    ``SAE_WORKER_THREADS`` settings with ``python -m benchmarks.load --sessions 30 --train``)."""
    if settings.nice:
        try:
            os.nice(settings.nice)
        except OSError as error:  # not fatal: the run still trains, only less politely
            log.warning("could not lower the worker's priority: %s", error)
    torch.set_num_threads(settings.torch_threads())


def describe_failure(error: BaseException, device: str) -> str:
    """One clear sentence for a run that failed, whatever raised."""
    if isinstance(error, TrainingError | DeviceUnavailableError):
        return str(error)
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return f"out of memory on {device}: try a smaller batch size or fewer training images"
    if isinstance(error, RuntimeError) and any(word in str(error).lower() for word in ("cuda", "mps", "device")):
        return f"the device {device} failed: {first_line(error)}"
    return f"training failed: {type(error).__name__}: {first_line(str(error))}".rstrip(": ")


def run(
    model_config: SAEConfig, train_config: TrainConfig, train_images: torch.Tensor, test_images: torch.Tensor, send, stop, train_fn=None, gone=None
) -> None:
    """Train, sending every event through ``send`` as a ``sae.runs.messages`` dict; a failure is sent as one line.

    After ``Finished`` comes ``Measured``: the trained model's test MSE over all of
    ``test_images`` (what Save records), measured here, in this process at its
    priority, never in the server.  A Stop does not cut it short (the run has ended;
    Save needs the measurement); ``gone``, set when nobody will read it, does.
    ``train_fn`` stands in for ``sae.training.loop.train`` (tests); it must take the
    same arguments."""
    device = train_config.device
    try:
        device = str(resolve_device(train_config.device))
        for event in (train_fn or train)(model_config, train_config, train_images, test_images, stop=stop):
            send(messages.encode(event))
            if isinstance(event, Finished) and event.model is not None:
                send(messages.encode(messages.Measured(final_metrics(event.model, test_images, event, stop=gone))))
    except (KeyboardInterrupt, SystemExit):
        send(messages.failed("the training worker was shut down during the run; start it again"))
        raise
    except BaseException as error:  # noqa: BLE001 - every failure must reach the page as a message
        if not isinstance(error, TrainingError | DeviceUnavailableError):
            log.exception("training run failed")
        send(messages.failed(describe_failure(error, device)))
