"""The embedded default: each training run in a worker process of its own, on this machine.

A :class:`LocalRunner` is called like ``sae.training.loop.train`` and yields the same
events, but the training happens in a child process (``sae.runs.worker``) at a lower
CPU priority.  Events come back over a socket as plain data; a stop request goes
the other way.  If the child dies under a run (killed, out of memory) the
generator raises ``WorkerLost`` with one line, and the app goes on.  If the app
dies, the child sees its socket close and stops (and measures nothing more).

Each child is a fresh interpreter, ``python -m sae.runs.local FD``, as the forward
process is (``sae.runs.forward_process``): ``multiprocessing`` prepares its children
from the parent's ``__main__``, and in a Streamlit server that is whichever page
script runs at that moment, so a child started that way ran ``app.py`` (its sidebar,
a checkpoint load, a screen of warnings) before it trained.  A fresh interpreter
runs nothing of the app; it costs the imports of torch once per run.

The images travel as raw float32 bytes over the socket: no shared memory to clean
up, and the child's copy is its own.  Only this process and its child share the
socket, so its messages are pickled (``multiprocessing.connection``).
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from sae.runs import messages
from sae.runs.worker import ProcessSettings, lower_priority
from sae.runs.worker import run as run_in_this_process
from sae.training.loop import BatchEnd, Finished

POLL_S = 0.1  # how often the app forwards a stop request while it waits for events
CHILD_NAME = "sae.runs.local"  # the child's module: ``python -m sae.runs.local FD``


# --------------------------------------------------------------------------- the child


def _receive_images(conn: Connection, shape: list[int]) -> torch.Tensor:
    """A float32 tensor of ``shape`` from the raw bytes that follow on ``conn``."""
    buffer = bytearray(4 * int(torch.Size(shape).numel()))
    if buffer:
        conn.recv_bytes_into(buffer)
    else:
        conn.recv_bytes()
    return torch.frombuffer(buffer, dtype=torch.float32).reshape(shape) if buffer else torch.empty(shape)


def _child(fd: int) -> None:
    """The worker process: read the run, train it, stop on the app's word or when the app is gone."""
    conn = Connection(fd)
    model_config, train_config, settings, train_fn_name, train_shape, test_shape = conn.recv()
    lower_priority(settings)
    train_images, test_images = _receive_images(conn, train_shape), _receive_images(conn, test_shape)
    train_fn = None
    if train_fn_name:
        module, _, name = train_fn_name.partition(":")
        train_fn = getattr(importlib.import_module(module), name)
    stop, gone = threading.Event(), threading.Event()

    def listen():
        try:
            conn.recv()  # "stop"
        except (EOFError, OSError):
            gone.set()  # the app closed its end: nobody reads any more
        stop.set()
        try:
            conn.recv()
        except (EOFError, OSError):
            gone.set()

    def send(message: dict) -> None:
        try:
            conn.send(message)
        except OSError:  # the app is gone
            gone.set()
            stop.set()

    threading.Thread(target=listen, name="sae-stop-listener", daemon=True).start()
    run_in_this_process(model_config, train_config, train_images, test_images, send, stop, train_fn, gone)
    conn.close()


# --------------------------------------------------------------------------- the app's side


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _float32(images: torch.Tensor) -> torch.Tensor:
    """``images`` as contiguous float32 on the CPU (a view, not a copy, when they already are)."""
    return images.detach().to("cpu", torch.float32).contiguous()


def _start_child() -> tuple[Connection, subprocess.Popen]:
    mine, theirs = socket.socketpair()
    root = str(Path(__file__).resolve().parent.parent.parent)  # where the sae package is, for the child's import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", CHILD_NAME, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, close_fds=True,
        )  # fmt: skip
    finally:
        theirs.close()
    return Connection(mine.detach()), process


class LocalRunner:
    """Runs each training in a child process; call it like ``sae.training.loop.train``."""

    def __init__(self, settings: ProcessSettings | None = None, train_fn=None):
        self.settings = settings or ProcessSettings.from_env()
        self.train_fn = train_fn  # a module-level stand-in for sae.training.loop.train (tests)

    def __call__(self, model_config, train_config, train_images, test_images, stop):
        # Only what the run reads.  The whole test set goes along: the child measures the
        # trained model's test MSE on it (sae.runs.worker.run).
        if train_config.train_subset:
            train_images = train_images[: train_config.train_subset]
        train_images, test_images = _float32(train_images), _float32(test_images)
        train_fn = f"{self.train_fn.__module__}:{self.train_fn.__qualname__}" if self.train_fn else None
        conn, process = _start_child()
        try:
            conn.send((model_config, train_config, self.settings, train_fn, list(train_images.shape), list(test_images.shape)))
            for images in (train_images, test_images):
                conn.send_bytes(memoryview(images.numpy()).cast("B"))
        except OSError:
            conn.close()
            process.wait(5)
            raise messages.WorkerLost(messages.lost_message(_how(process.poll()), 0)) from None
        del train_images, test_images
        return self._events(process, conn, model_config, stop)

    @staticmethod
    def _events(process: subprocess.Popen, conn: Connection, model_config, stop):
        step, stop_sent = 0, False
        try:
            while True:
                if stop.is_set() and not stop_sent:
                    stop_sent = True
                    try:
                        conn.send("stop")
                    except OSError:
                        pass  # the child is gone: the socket below tells
                if conn.poll(POLL_S):
                    try:
                        message = conn.recv()
                    except (EOFError, OSError):
                        break  # the child closed its end: it has ended
                    event = messages.decode(message, model_config)  # a "failed" message raises its one line
                    if isinstance(event, BatchEnd):
                        step = event.step
                    yield event
                    if isinstance(event, messages.Measured) or (isinstance(event, Finished) and event.model is None):
                        return
                elif process.poll() is not None and not conn.poll():
                    break
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
            raise messages.WorkerLost(messages.lost_message(_how(process.poll()), step))
        finally:
            conn.close()  # the child stops if it still runs (a failure, or nobody reads any more)
            try:
                process.wait(5)  # it ends at once after Measured, or within a layer after the socket closed
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


if __name__ == "__main__":
    _child(int(sys.argv[1]))
    # Exit at once, as a forked child does: everything is sent, and an interpreter that
    # imported torch takes seconds to tear itself down, which the app's Stop would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
