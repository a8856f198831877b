"""The embedded default: each training run in a worker process of its own, on this machine.

A :class:`LocalRunner` is called like ``sae.training.loop.train`` and yields the same
events, but the training happens in a child process (``sae.runs.worker``) at a lower
CPU priority.  Events come back over a pipe as plain data; a stop request goes
the other way.  If the child dies under a run (killed, out of memory) the
generator raises ``WorkerLost`` with one line, and the app goes on.  If the app
dies, the child sees its control pipe close and stops.

Children come from a ``multiprocessing`` fork server that imported ``sae.runs.worker``
(torch included) and the main module once and never computed anything: starting
a run costs a fork, not seconds of imports, and a child inherits no threads and
no CUDA state.  As with any ``multiprocessing`` program, the main script must
guard its work with ``if __name__ == "__main__"`` (Streamlit's and pytest's do).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading

from sae.runs import messages
from sae.runs.worker import ProcessSettings, lower_priority
from sae.runs.worker import run as run_in_this_process
from sae.training.loop import BatchEnd, Finished

POLL_S = 0.1  # how often the app forwards a stop request while it waits for events


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "sae.runs.worker"])  # __main__ once here, not in every child
    return ctx


def _child(model_config, train_config, train_images, test_images, events, control, settings, train_fn) -> None:
    """The worker process: stop on the app's word, or when the app is gone (its pipe end closes)."""
    lower_priority(settings)
    stop = threading.Event()

    def listen():
        try:
            control.recv()
        except (EOFError, OSError):
            pass
        stop.set()

    threading.Thread(target=listen, name="sae-stop-listener", daemon=True).start()
    run_in_this_process(model_config, train_config, train_images, test_images, events.send, stop, train_fn)
    events.close()


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class LocalRunner:
    """Runs each training in a child process; call it like ``sae.training.loop.train``."""

    def __init__(self, settings: ProcessSettings | None = None, train_fn=None):
        self.settings = settings or ProcessSettings.from_env()
        self.train_fn = train_fn  # a module-level stand-in for sae.training.loop.train (tests)

    def warm(self) -> None:
        """Start the fork server now, so the first run does not wait for its imports."""
        from multiprocessing import forkserver

        _context()
        forkserver.ensure_running()

    def __call__(self, model_config, train_config, train_images, test_images, stop):
        ctx = _context()
        # Only what the run reads, as private copies: sending a tensor moves its storage to
        # shared memory in place, which must never happen to the app's shared MNIST.
        if train_config.train_subset:
            train_images = train_images[: train_config.train_subset]
        train_images, test_images = train_images.clone(), test_images[: train_config.eval_images].clone()
        events_in, events_out = ctx.Pipe(duplex=False)
        control_in, control_out = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_child,
            name="sae-train",
            daemon=True,
            args=(model_config, train_config, train_images, test_images, events_out, control_in, self.settings, self.train_fn),
        )
        process.start()
        events_out.close()
        control_in.close()
        del train_images, test_images
        return self._events(process, events_in, control_out, model_config, stop)

    @staticmethod
    def _events(process, events_in, control_out, model_config, stop):
        step, stop_sent = 0, False
        try:
            while True:
                if stop.is_set() and not stop_sent:
                    stop_sent = True
                    try:
                        control_out.send("stop")
                    except OSError:
                        pass  # the child is gone: the pipe below tells
                if events_in.poll(POLL_S):
                    try:
                        message = events_in.recv()
                    except EOFError:
                        break  # the child closed its end: it has ended
                    event = messages.decode(message, model_config)  # a "failed" message raises its one line
                    if isinstance(event, BatchEnd):
                        step = event.step
                    yield event
                    if isinstance(event, Finished):
                        return
                elif not process.is_alive() and not events_in.poll():
                    break
            process.join(5)
            raise messages.WorkerLost(messages.lost_message(_how(process.exitcode), step))
        finally:
            control_out.close()  # the child stops if it still runs (a failure, or nobody reads any more)
            events_in.close()
            process.join(5)  # it ends at once after Finished, or within a layer after the pipe closed
            if process.is_alive():
                process.terminate()
