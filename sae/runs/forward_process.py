"""Explore's forward in a child process, so a classroom's slider moves do not queue on one GIL.

Why a process: a traced forward of one digit is about 600 small torch calls.  Each
releases the GIL and must take it back, and in a server where 30 sessions' scripts
build figures in Python beside it, each take-back waits for another thread's switch
interval (5 ms).  Measured: one forward took 11 ms alone and 2.1-5.2 s beside one
busy Python thread in the same process; in this child, 18-40 ms.  In the child the
forward holds no lock the server needs and runs on the other core; the page's
thread waits on a socket, with the GIL released.

One child serves every session, one forward at a time (a forward is ~10 ms; a class
of 30 makes about ten a second).  Until the child has imported torch (seconds after
it starts) forwards run in-process, so nobody waits for it.  It gets each model once,
as its config and weights, keyed on the weights' fingerprint, and keeps a few.
Results are the ``InferenceResult`` ``sae.analysis.inference.run_digit`` returns, bit for bit
(the same function on the same weights, with one intra-op thread as in-process).
CPU models only: a GPU model, or any failure of the child, runs in-process as before
(logged), and ``SAE_FORWARD_PROCESS=0`` turns the child off.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import torch

from sae.analysis.inference import InferenceResult, run_digit
from sae.io.fingerprints import model_fingerprint
from sae.model import SAEConfig, SpikingAutoencoder

log = logging.getLogger(__name__)

MODELS_KEPT = 8  # in the child: the shipped model, a few trained or uploaded ones
REPLY_TIMEOUT_S = 60.0  # a forward of 50 steps is well under a second; past this the child is stuck
MAX_FAILURES = 3  # a child that dies this often is not started again: forwards stay in-process


def enabled() -> bool:
    return os.environ.get("SAE_FORWARD_PROCESS", "1") != "0"


# --------------------------------------------------------------------------- the child


def _serve(conn) -> None:
    """The child's loop: ("load", key, config, weights) and ("run", key, digit, overrides) until the pipe closes."""
    torch.set_num_threads(1)  # one 32x32 image is far too little work to split
    models: OrderedDict[str, SpikingAutoencoder] = OrderedDict()
    conn.send(("ready", os.getpid()))  # torch is imported: the server may send work now
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the server is gone
        try:
            if request[0] == "load":
                _, key, config, weights = request
                model = SpikingAutoencoder(SAEConfig(**config))
                model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
                model.eval().requires_grad_(False)
                models[key] = model
                while len(models) > MODELS_KEPT:
                    models.popitem(last=False)
                conn.send(("ok", None))
            elif request[0] == "run":
                _, key, digit, overrides = request
                if key not in models:
                    conn.send(("unknown", None))
                    continue
                models.move_to_end(key)
                conn.send(("ok", run_digit(models[key], torch.from_numpy(digit), **overrides)))
            else:
                conn.send(("error", ValueError(f"unknown request {request[0]!r}")))
        except Exception as error:  # a bad request fails that request, not the child
            conn.send(("error", error))


def _start_child():
    """``python -m sae.runs.forward_process FD``: a fresh interpreter with a socket to this process.

    Not ``multiprocessing``: its "spawn" re-imports the parent's ``__main__`` in the child, and in a
    Streamlit server ``sys.modules["__main__"]`` is whichever page script runs at that moment, so the
    child ran app.py (seen: the app's sidebar loading a model in the forward process).  Fork would
    copy the server's threads and locks."""
    mine, theirs = socket.socketpair()
    root = str(Path(__file__).resolve().parents[2])  # where the sae package is, for the child's import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sae.runs.forward_process", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, close_fds=True,
        )  # fmt: skip
    finally:
        theirs.close()
    return Connection(mine.detach()), process


# --------------------------------------------------------------------------- the server side


class ForwardWorker:
    """A child process that runs :func:`sae.analysis.inference.run_digit` for every thread of this process."""

    def __init__(self):
        self._lock = threading.Lock()  # one request on the pipe at a time
        self._conn = None
        self._process = None
        self._ready = False  # the child said it has imported torch
        self._loaded: set[str] = set()  # keys the child was sent (it may have dropped old ones: it says so)
        self._keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> fingerprint
        self._failures = 0
        self._broken = False

    def start(self, wait_s: float = 60.0) -> bool:
        """Start the child and wait up to ``wait_s`` until it is ready (importing torch takes seconds).

        True when it is ready.  Forwards asked for meanwhile run in-process rather than wait:
        the first visitor of a fresh server is not held up by the child's start."""
        with self._lock:
            if not self._ensure_started():
                return False
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                try:
                    if self._ensure_started() and self._is_ready():
                        return True
                except (EOFError, OSError) as error:
                    self._failed(f"the forward process did not start ({type(error).__name__}: {error})")
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def run_digit(self, model: torch.nn.Module, digit: torch.Tensor, **overrides) -> InferenceResult:
        """``run_digit(model, digit, **overrides)``, computed in the child when it is ready, else in-process."""
        if not enabled() or self._broken or next(model.parameters()).device.type != "cpu":
            return run_digit(model, digit, **overrides)
        array = digit.detach().to("cpu", torch.float32).contiguous().numpy()
        with self._lock:
            try:
                key = self._key(model)
                if self._ensure_started() and self._is_ready():
                    for _ in range(2):
                        if key not in self._loaded:
                            self._send_model(key, model)
                        status, value = self._ask(("run", key, array, overrides))
                        if status != "unknown":
                            break
                        self._loaded.discard(key)  # the child dropped it for newer ones: send it again
                    if status == "ok":
                        return value
                    # "error": a bad request (settings, shape) fails the same way in-process, with its own traceback
            except (EOFError, OSError, TimeoutError) as error:
                self._failed(f"the forward process failed ({type(error).__name__}: {error})")
        return run_digit(model, digit, **overrides)

    def close(self) -> None:
        with self._lock:
            self._stop_child()

    # ---- inside the lock

    def _key(self, model) -> str:
        key = self._keys.get(model)
        if key is None:
            key = self._keys[model] = model_fingerprint(model)
        return key

    def _is_ready(self) -> bool:
        if not self._ready and self._conn.poll():
            status, _ = self._conn.recv()
            self._ready = status == "ready"
        return self._ready

    def _ensure_started(self) -> bool:
        if self._broken:
            return False
        if self._process is not None and self._process.poll() is None:
            return True
        if self._process is not None:
            log.warning("the forward process exited (code %s): starting another", self._process.returncode)
            self._stop_child()
        try:
            parent, process = _start_child()
        except Exception as error:
            self._failures = MAX_FAILURES
            self._failed(f"could not start the forward process ({type(error).__name__}: {error})")
            return False
        self._conn, self._process, self._ready, self._loaded = parent, process, False, set()
        return True

    def _send_model(self, key: str, model) -> None:
        config = {name: getattr(model.config, name) for name in model.config.__dataclass_fields__}
        weights = {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in model.state_dict().items()}
        status, value = self._ask(("load", key, config, weights))
        if status != "ok":
            raise OSError(f"the child could not load the model: {value}")
        self._loaded.add(key)

    def _ask(self, request):
        self._conn.send(request)
        if not self._conn.poll(REPLY_TIMEOUT_S):
            raise TimeoutError(f"no reply in {REPLY_TIMEOUT_S:.0f} s")
        return self._conn.recv()

    def _failed(self, why: str) -> None:
        """This forward runs in-process; the next one starts a new child, unless it keeps failing."""
        self._failures += 1
        self._broken = self._failures >= MAX_FAILURES
        log.warning("%s; %s", why, "forwards run in the server process from now on" if self._broken else "starting another")
        self._stop_child()

    def _stop_child(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=2)  # it ends by itself when its end of the socket closes
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=2)
        self._conn = self._process = None
        self._ready, self._loaded = False, set()


_default: ForwardWorker | None = None
_default_lock = threading.Lock()


def default_worker() -> ForwardWorker:
    """The process-wide worker (created on first use; its child starts on the first forward or ``start()``)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ForwardWorker()
        return _default


if __name__ == "__main__":  # the child: python -m sae.runs.forward_process FD
    try:
        _serve(Connection(int(sys.argv[1])))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the server stops too
        pass
    except OSError:  # the server went away first (stopped while this child still imported torch): nothing to answer
        pass
