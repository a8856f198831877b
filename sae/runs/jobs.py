"""Training runs that live outside the page script, shared fairly by many sessions.

A :class:`TrainingJob` follows one run from a background thread and keeps what
a page needs to draw (status, progress, history, the latest evaluation, the
error) behind a lock; :meth:`TrainingJob.snapshot` hands out a consistent copy.
The thread never touches the UI, so a page can poll it, go away and come back.

The training itself runs elsewhere, through a *runner*: a callable with the
signature of ``sae.training.loop.train`` that yields its events.  By default
(:func:`default_runner`) that is a worker process per run on this machine
(``sae.runs.local``), or, with ``SAE_REDIS_URL`` set, a ``sae worker`` behind
a Redis queue (``sae.runs.redis_queue``); never a thread of the server, whose GIL and
cores the pages need.  ``sae.training.loop.train`` itself is a runner too (in-thread).

One process-wide :class:`JobManager` (:func:`default_manager`) decides when a
job may run: at most ``runs_per_device`` at once on each device (env
``SAE_MAX_TRAINING_RUNS``, default 1, as training fills a CPU or GPU by itself);
the others wait in a first-come queue and learn their place.  A shared queue
(Redis) does its own admitting: its runs start at once here and report their
place in the shared line.  It also holds the class's fair shares
(``sae.runs.class_limits``): runs per session and per client address, the
longest run, and the most runs kept.  A waiting run holds its place only while
its session is connected; a job nobody has polled (and whose session is gone)
for ``orphan_after_s`` is stopped, and ended jobs are forgotten after
``keep_ended_s``.  Jobs belong to an owner (a session's token): a session only
ever sees its own.

No Streamlit here: the page passes in a liveness check for its session.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sae.devices import available_devices, resolve_device
from sae.model import SAEConfig
from sae.runs.class_limits import RunRefused, TrainingLimits
from sae.runs.messages import Measured, Started, Waiting
from sae.runs.worker import describe_failure
from sae.training.loop import BatchEnd, Evaluation, Finished, History, TrainConfig, TrainingError, train

log = logging.getLogger(__name__)

QUEUED, RUNNING, STOPPING, ENDED, FAILED = "queued", "running", "stopping", "ended", "failed"
ACTIVE = (QUEUED, RUNNING, STOPPING)
RUNS_ENV = "SAE_MAX_TRAINING_RUNS"
REDIS_ENV = "SAE_REDIS_URL"


class JobLimitError(RunRefused):
    """The job cannot be accepted now (its session or address has its share going, or the server is full)."""


def default_runner():
    """Where runs train: a Redis queue when ``SAE_REDIS_URL`` is set, else a worker process per run here."""
    url = os.environ.get(REDIS_ENV, "").strip()
    if url:
        from sae.runs.redis_queue import RedisRunner

        return RedisRunner(url)
    from sae.runs.local import LocalRunner

    return LocalRunner()


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state, safe to read without locks."""

    job_id: str
    status: str  # queued | running | stopping | ended | failed
    reason: str | None  # when ended: completed, time budget, stopped, abandoned or cancelled
    error: str | None
    queue_position: int | None  # 1: next to start
    progress: float  # 0..1 of the planned run
    elapsed: float  # seconds since training started
    eta: float | None  # seconds left, estimated
    images_per_s: float | None
    step: int
    epoch: int
    history: dict  # as sae.training.loop.History.as_dict(): batch, evals, epochs
    latest: Evaluation | None  # the last held-out evaluation (fixed digits and their reconstructions)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def has_model(self) -> bool:
        """Ended after at least one step: there is something worth saving."""
        return self.status == ENDED and self.step > 0


class TrainingJob:
    """One training run, followed from its own thread.  Create it through :meth:`JobManager.submit`."""

    def __init__(
        self,
        owner: str,
        model_config: SAEConfig,
        train_config: TrainConfig,
        train_images: torch.Tensor,
        test_images: torch.Tensor,
        *,
        keepalive: Callable[[], bool] | None = None,
        address: str | None = None,
        orphan_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        runner=train,
    ):
        self.id = uuid.uuid4().hex[:12]
        self.owner = owner
        self.address = address  # the client's network address, for the class's share per address
        self.model_config = model_config
        self.train_config = train_config
        self.device = str(resolve_device(train_config.device))
        self.model = None  # the trained model, once ended
        self.result: Finished | None = None
        self._train_images, self._test_images = train_images, test_images
        self._runner = runner
        self._position: int | None = None  # the place in a shared queue (Redis), as the runner reports it
        self._keepalive = keepalive
        self._orphan_after_s = orphan_after_s
        self._clock = clock
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._status, self._reason, self._error = QUEUED, None, None
        self._history = History()
        self._latest: Evaluation | None = None
        self._last_batch: BatchEnd | None = None
        self._last_batch_at = 0.0
        self._rate: float | None = None
        self._started_at: float | None = None
        self.created_at = self.last_seen = clock()
        self.ended_at: float | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- control

    def stop(self) -> None:
        """Ask the run to end; it keeps what it learned.  Returns at once."""
        self._stop.set()
        with self._lock:
            if self._status == RUNNING:
                self._status = STOPPING

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended, been measured and freed its place (or ``timeout``); True when it has."""
        return self._ended.wait(timeout)

    def touch(self) -> None:
        """Someone is still watching: do not treat this job as orphaned."""
        self.last_seen = self._clock()

    def orphaned(self) -> bool:
        """Nobody polled for ``orphan_after_s`` and the owner's session (if known) is gone."""
        if self._keepalive is not None:
            try:
                if self._keepalive():
                    self.touch()
            except Exception:  # a broken check must not keep a job alive or kill it
                log.exception("keepalive check failed")
        return self._clock() - self.last_seen > self._orphan_after_s

    def connected(self) -> bool:
        """The owner's session is still connected (True when no check was given, or it broke)."""
        if self._keepalive is None:
            return True
        try:
            return bool(self._keepalive())
        except Exception:  # a broken check must not cancel a run
            log.exception("keepalive check failed")
            return True

    def holds_a_place(self) -> bool:
        """Counts against its session's and address's shares: training, or waiting while its session is connected."""
        return self.active and (self.status != QUEUED or self.connected())

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    # ---------------------------------------------------------------- the worker

    def _start(self, on_end: Callable[[TrainingJob], None]) -> None:
        with self._lock:
            self._status = STOPPING if self._stop.is_set() else RUNNING
            self._started_at = self._clock()
        self._thread = threading.Thread(target=self._run, args=(on_end,), name=f"sae-train-{self.id}", daemon=True)
        self._thread.start()

    def _cancel(self, reason: str) -> None:
        """End a job that never started."""
        self._stop.set()
        self._train_images = self._test_images = None
        self._end(ENDED, reason, None)
        self._ended.set()

    def _run(self, on_end) -> None:
        try:
            events = self._runner(self.model_config, self.train_config, self._train_images, self._test_images, stop=self._stop)
            for event in events:
                self._record(event)
                waiting_alone = self.status == QUEUED and not self.connected()  # a shared queue's place, its session gone
                if self.active and not self._stop.is_set() and (self.orphaned() or waiting_alone):
                    log.info("training job %s orphaned: stopping it", self.id)
                    with self._lock:
                        self._reason = "abandoned"
                    self._stop.set()
        except BaseException as error:  # noqa: BLE001 - every failure must reach the page as a message
            if not isinstance(error, TrainingError):
                log.exception("training job %s failed", self.id)
            self._end(FAILED, None, describe_failure(error, self.device))
        finally:
            self._train_images = self._test_images = None  # the shared tensors are not ours to keep
            self._end(FAILED, None, "training ended without a result")  # no-op when it ended properly
            on_end(self)  # frees the slot
            self._ended.set()

    def _record(self, event) -> None:
        now = self._clock()
        if isinstance(event, Waiting | Started):
            self._follow_queue(event, now)
            return
        if isinstance(event, Measured):  # after Finished: the test MSE that Save records
            with self._lock:
                if self.result is not None:
                    self.result.metrics = event.metrics
            return
        with self._lock:
            self._history.record(event)
            if isinstance(event, BatchEnd):
                self._rate = event.images_per_s if self._rate is None else 0.8 * self._rate + 0.2 * event.images_per_s
                self._last_batch, self._last_batch_at = event, now
            elif isinstance(event, Evaluation):
                self._latest = event
        if isinstance(event, Finished):
            self.model, self.result = event.model, event
            with self._lock:
                reason = self._reason or event.reason
            self._end(ENDED, reason, None)

    def _follow_queue(self, event, now: float) -> None:
        """A shared queue's news: still waiting (at this place), or taken by a worker."""
        with self._lock:
            if isinstance(event, Waiting):
                if self._status == RUNNING:
                    self._status = QUEUED
                self._position = event.position
            else:
                if self._status == QUEUED:
                    self._status = STOPPING if self._stop.is_set() else RUNNING
                self._started_at, self._position, self.device = now, None, event.device

    def _end(self, status: str, reason: str | None, error: str | None) -> None:
        with self._lock:
            if self.ended_at is not None:
                return
            self._status, self._reason, self._error = status, reason, error
            self.ended_at = self._clock()

    # ---------------------------------------------------------------- reading

    def history(self) -> dict:
        """What the run recorded so far (batch, evals, epochs): a copy, as saved with a checkpoint."""
        with self._lock:
            return self._history.copy()

    def snapshot(self, queue_position: int | None = None) -> JobSnapshot:
        now = self._clock()
        with self._lock:
            batch = self._last_batch
            running = self._status in (RUNNING, STOPPING)
            if self._started_at is None:
                elapsed = 0.0
            elif running:
                elapsed = now - self._started_at  # ticks on through the first evaluation, before any batch
            elif self.result is not None:
                elapsed = self.result.elapsed
            else:
                elapsed = batch.elapsed if batch else 0.0
            progress = batch.progress if batch else 0.0
            if self._status == ENDED and self._reason in ("completed", "time budget"):
                progress = 1.0
            eta = None
            if running and batch is not None and batch.progress > 0:
                eta = max(0.0, batch.elapsed * (1 - batch.progress) / batch.progress - (now - self._last_batch_at))
            return JobSnapshot(
                job_id=self.id,
                status=self._status,
                reason=self._reason,
                error=self._error,
                queue_position=(queue_position or self._position) if self._status == QUEUED else None,
                progress=min(max(progress, 0.0), 1.0),
                elapsed=elapsed,
                eta=eta,
                images_per_s=self._rate,
                step=batch.step if batch else 0,
                epoch=batch.epoch if batch else 0,
                history=self._history.copy(),
                latest=self._latest,
            )


def _runs(count: int) -> str:
    return "a run" if count == 1 else f"{count} runs"


def _runs_per_device_from_env() -> int:
    raw = os.environ.get(RUNS_ENV, "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        log.warning("%s=%r is not a positive integer: using 1", RUNS_ENV, raw)
        return 1
    return value


class JobManager:
    """Admits, queues and bounds training jobs for the whole process.  Thread-safe."""

    def __init__(
        self,
        runs_per_device: int | None = None,
        *,
        runner=None,
        limits: TrainingLimits | None = None,
        orphan_after_s: float = 60.0,
        keep_ended_s: float = 1800.0,
        max_jobs: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.runner = runner or default_runner()
        self.shared_queue = hasattr(self.runner, "counts")  # the runner's queue admits runs, not this manager
        self.runs_per_device = runs_per_device or _runs_per_device_from_env()
        self.limits = limits or TrainingLimits.from_env()
        self.orphan_after_s = orphan_after_s
        self.keep_ended_s = keep_ended_s
        self.max_jobs = max_jobs or self.limits.max_runs_kept
        self._clock = clock
        self._lock = threading.RLock()
        self._jobs: dict[str, TrainingJob] = {}
        self._queue: deque[TrainingJob] = deque()
        self._running: dict[str, TrainingJob] = {}

    @property
    def capacity(self) -> int:
        """Runs at once: over all devices here, or the workers serving a shared queue."""
        if self.shared_queue:
            return self.runner.counts()["capacity"]
        return self.runs_per_device * len(available_devices())

    def submit(
        self,
        owner: str,
        model_config: SAEConfig,
        train_config: TrainConfig,
        train_images: torch.Tensor,
        test_images: torch.Tensor,
        *,
        keepalive: Callable[[], bool] | None = None,
        address: str | None = None,
    ) -> TrainingJob:
        """Queue a run for ``owner`` (whose browser connects from ``address``); it starts as soon
        as its device has a free slot.  A run without a time limit gets the class's.

        Raises RunRefused (JobLimitError when the refusal is for now only) with one line naming
        the limit: a run longer than the class allows, the session's or the address's share
        already going, the server's table of runs full; DeviceUnavailableError for a device
        not here."""
        train_config = self.limits.fit(train_config)
        job = TrainingJob(
            owner,
            model_config,
            train_config,
            train_images,
            test_images,
            keepalive=keepalive,
            address=address,
            orphan_after_s=self.orphan_after_s,
            clock=self._clock,
            runner=self.runner,
        )
        with self._lock:
            self._sweep()
            self._check_shares(owner, address)
            for ended in [j for j in self._jobs.values() if j.owner == owner and not j.active]:
                del self._jobs[ended.id]  # a session keeps only its latest run here
            if len(self._jobs) >= self.max_jobs:
                self._forget_oldest_ended()
            if len(self._jobs) >= self.max_jobs:
                raise JobLimitError(f"the server already holds {len(self._jobs)} training runs, its limit: try again in a few minutes")
            self._jobs[job.id] = job
            self._queue.append(job)
            self._start_ready()
        return job

    def _check_shares(self, owner: str, address: str | None) -> None:
        """JobLimitError when the session, or the address, already has its share of runs going."""
        holding = [j for j in self._jobs.values() if j.holds_a_place()]
        limits = self.limits
        mine = sum(1 for j in holding if j.owner == owner)
        if mine >= limits.runs_per_session:
            raise JobLimitError(
                f"you already have {_runs(mine)} going, the most one session may have ({limits.runs_per_session}): stop one before starting another"
            )
        from_address = sum(1 for j in holding if j.address == address)
        if from_address >= limits.runs_per_address:
            raise JobLimitError(
                f"your network address already has {_runs(from_address)} waiting or training, the most one address may have "
                f"({limits.runs_per_address}): try again when one has ended"
            )

    def poll(self, owner: str, job: TrainingJob) -> JobSnapshot:
        """The owner looks at its job: keeps it alive and returns a snapshot with its place in the queue."""
        if job.owner != owner:
            raise PermissionError("this run belongs to another session")
        job.touch()
        with self._lock:
            self._sweep()
            position = self.queue_position(job)
        return job.snapshot(position)

    def queue_position(self, job: TrainingJob) -> int | None:
        """1 for the next job to start on its device; None when not queued."""
        with self._lock:
            ahead = 0
            for waiting in self._queue:
                if waiting is job:
                    return ahead + 1
                if waiting.device == job.device:
                    ahead += 1
        return None

    def counts(self) -> dict:
        """Runs training, waiting, and at most at once (over the whole shared queue, if any); runs kept here."""
        if self.shared_queue:
            with self._lock:
                kept = len(self._jobs)
            return {**self.runner.counts(), "kept": kept}
        with self._lock:
            return {"running": len(self._running), "queued": len(self._queue), "kept": len(self._jobs), "capacity": self.capacity}

    # ---------------------------------------------------------------- internals (hold the lock)

    def _busy(self, device: str) -> int:
        return sum(1 for job in self._running.values() if job.device == device)

    def _start_ready(self) -> None:
        """Start queued jobs in arrival order wherever their device has a free slot."""
        for job in list(self._queue):
            if job.stop_requested or job.orphaned() or not job.connected():  # a waiting run holds its place only while connected
                self._queue.remove(job)
                job._cancel("cancelled" if job.stop_requested else "abandoned")
            elif self.shared_queue or self._busy(job.device) < self.runs_per_device:
                self._queue.remove(job)
                self._running[job.id] = job
                job._start(self._on_end)

    def _on_end(self, job: TrainingJob) -> None:
        with self._lock:
            self._running.pop(job.id, None)
            self._start_ready()

    def _sweep(self) -> None:
        """Cancel queued orphans, start what can start, forget long-ended jobs."""
        self._start_ready()
        now = self._clock()
        for job_id, job in list(self._jobs.items()):
            if not job.active and job.ended_at is not None and now - job.ended_at > self.keep_ended_s:
                del self._jobs[job_id]

    def _forget_oldest_ended(self) -> None:
        ended = sorted((j for j in self._jobs.values() if not j.active), key=lambda j: j.ended_at or 0.0)
        if ended:
            del self._jobs[ended[0].id]


_DEFAULT: JobManager | None = None
_DEFAULT_LOCK = threading.Lock()


def default_manager() -> JobManager:
    """The process-wide manager every session shares (created on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = JobManager()
        return _DEFAULT
