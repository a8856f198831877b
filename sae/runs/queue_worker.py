"""``sae worker``: trains the runs of the Redis queue, one after another, only as the app signed them.

The worker is an RQ ``SimpleWorker`` (:func:`serve`): it runs each job in its own
process instead of forking a child per job as RQ's default worker does, which
CUDA does not survive; it loads MNIST once and serves runs one after another.
Before it runs a job it reads the job's record (JSON, nothing imported or called)
and refuses, with one log line, anything but :func:`run_job` on a run the app
signed, whose settings pass ``sae.runs.spec``; RQ's callbacks, webhooks and
retries are ignored (:func:`rq_classes`).  Each event it writes is numbered and
signed.  The protocol, the keys and the app's side: ``sae.runs.redis_queue``.

When Redis goes away (restarted, network cut) the worker keeps trying to reach it,
waiting longer each time up to ``RECONNECT_MAX_S``, and serves the queue again
when it is back; the run it was training ends, and its session reads one line.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field, replace

from sae.errors import first_line
from sae.runs import messages
from sae.runs.class_limits import TrainingLimits
from sae.runs.redis_queue import (
    ALIVE_TTL_S,
    JOB_FUNCTION,
    KEEP_S,
    QUEUE,
    REDIS_ENV,
    WORKER_PREFIX,
    connect,
    event_mac,
    rq_queue,
    run_keys,
    safe_url,
    warn_if_open,
)
from sae.runs.signing import canonical, queue_key, verify
from sae.runs.spec import SpecError, read_spec
from sae.runs.worker import ProcessSettings, lower_priority
from sae.runs.worker import run as run_in_this_process

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.5  # also how soon a worker sees a stop request
CLOCK_SKEW_S = 300  # a job may come from a machine whose clock is this far ahead
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.5, 10.0  # the waits between tries to reach a lost Redis
JOB_ARGUMENTS = {"spec", "issued", "mac"}


@dataclass(frozen=True)
class WorkerConfig:
    """``sae worker``: its defaults are the command line's."""

    redis_url: str = field(default_factory=lambda: os.environ.get(REDIS_ENV, "redis://localhost:6379/0"))
    queue: str = QUEUE
    device: str = "auto"  # this worker trains every run here, whatever the app's page offered
    nice: int = field(default_factory=lambda: ProcessSettings.from_env().nice)
    threads: int = field(default_factory=lambda: ProcessSettings.from_env().threads)
    name: str | None = None  # default: host.pid
    burst: bool = False  # quit when the queue is empty (tests, batch jobs)


_CONFIG = WorkerConfig()
_KEY = b""  # SAE_QUEUE_KEY, read once by serve()
_LIMITS = TrainingLimits()
_DATA: dict = {}


def _mnist():
    from sae.data.mnist import mnist_tensors

    if not _DATA:
        _DATA["train"], _DATA["test"] = mnist_tensors(train=True)[0], mnist_tensors(train=False)[0]
    return _DATA["train"], _DATA["test"]


class _Presence:
    """This worker's heartbeat, one thread per process.

    Twice a second it renews ``sae:worker:<name>`` (what it trains on, which run it
    trains), which is how the app counts workers and notices a dead one; and it
    stops the current run when the app asked, or when nobody reads it any more
    (then it is ``gone`` too: not even its final measurement is wanted)."""

    def __init__(self, r, name: str, device: str):
        self.r, self.name, self.device = r, name, device
        self.run: tuple[str, threading.Event, threading.Event] | None = None  # id, stop, gone
        self.reachable = True
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.beat()  # present before the first job is taken
        self._thread = threading.Thread(target=self._loop, name="sae-heartbeat", daemon=True)
        self._thread.start()

    def current(self, run: tuple[str, threading.Event, threading.Event] | None) -> None:
        with self._lock:
            self.run = run
        self.beat()

    def beat(self) -> None:
        from redis.exceptions import RedisError

        with self._lock:
            run = self.run
        try:
            pipe = self.r.pipeline()
            pipe.set(
                f"{WORKER_PREFIX}{self.name}", json.dumps({"device": self.device, "queue": _CONFIG.queue, "run": run and run[0]}), ex=ALIVE_TTL_S
            )
            if run is not None:
                keys = run_keys(run[0])
                pipe.exists(keys["stop"])
                pipe.exists(keys["watched"])
            replies = pipe.execute()
            if run is not None and not replies[2]:
                run[2].set()
            if run is not None and (replies[1] or not replies[2]):
                run[1].set()
        except RedisError as error:
            if self.reachable:  # one line when Redis goes, one when it is back: not one per beat
                log.warning("heartbeat: Redis unreachable (%s)", first_line(error))
            self.reachable = False
            return
        if not self.reachable:
            log.info("heartbeat: Redis reachable again")
        self.reachable = True

    def _loop(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            self.beat()


_PRESENCE: _Presence | None = None


def _presence() -> _Presence:
    global _PRESENCE
    if _PRESENCE is None:
        from sae.devices import resolve_device

        # A connection of its own: RQ lengthens its worker's socket timeout to its long blocking reads.
        _PRESENCE = _Presence(connect(_CONFIG.redis_url), _CONFIG.name or _worker_name(), str(resolve_device(_CONFIG.device)))
        _PRESENCE.start()
    return _PRESENCE


def _worker_name() -> str:
    """Unique even when a restarted container has the same host name and pid."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:4]}"


class _RunEvents:
    """A run's events into its stream, numbered and signed.  When Redis is gone the run stops:
    nobody can see it any more, and the worker should go back to waiting for Redis."""

    def __init__(self, r, run_id: str, stop: threading.Event, gone: threading.Event):
        self.r, self.run_id, self.stop, self.gone = r, run_id, stop, gone
        self.key = run_keys(run_id)["events"]
        self.sent, self.last_type, self.lost = 0, "failed", None

    def send(self, message: dict) -> None:
        from redis.exceptions import RedisError

        if self.lost is not None:
            return
        body, number = json.dumps(message), str(self.sent)
        try:
            pipe = self.r.pipeline()
            pipe.xadd(self.key, {"e": body, "n": number, "s": event_mac(_KEY, self.run_id, number, body)})
            pipe.expire(self.key, KEEP_S)
            pipe.execute()
        except RedisError as error:
            self.lost = error
            self.gone.set()
            self.stop.set()
            log.warning("run %s: Redis unreachable (%s): stopping the run", self.run_id, first_line(error))
            return
        self.sent += 1
        self.last_type = message["type"]


def run_job(job_arguments: dict) -> dict:
    """The RQ job: one training run in this worker process, its events into Redis.

    :class:`TrainingWorker` has checked the job (its signature, its spec) before calling this."""
    from rq import get_current_job

    job = get_current_job()
    presence, stop, gone = _presence(), threading.Event(), threading.Event()
    events = _RunEvents(job.connection, job.id, stop, gone)
    model_config, train_config = read_spec(job_arguments["spec"], _LIMITS)
    train_config = replace(train_config, device=presence.device)
    presence.current((job.id, stop, gone))  # also stops at once a run that was stopped while it waited
    try:
        events.send(messages.encode(messages.Started(presence.name, presence.device)))
        train_images, test_images = _mnist()
        log.info("run %s: training %s on %s", job.id, train_config, presence.device)
        run_in_this_process(model_config, train_config, train_images, test_images, events.send, stop, gone=gone)
    finally:
        presence.current(None)
    log.info("run %s: %s", job.id, "lost with Redis" if events.lost else events.last_type)
    return {"type": events.last_type}


def rq_classes():
    """RQ's job and worker classes, made safe for a shared Redis (imported late: the app needs RQ
    only in queue mode)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from rq import SimpleWorker
    from rq.exceptions import StopRequested
    from rq.job import Job

    class TrainingJob(Job):
        """RQ's Job without what a job's record in Redis could make a worker run or send: callbacks
        (functions by name, imported and called, even by RQ's clean-up of abandoned jobs),
        webhooks (requests to any URL) and retries.  This project uses none of them."""

        success_callback = failure_callback = stopped_callback = property(lambda self: None)

        def restore(self, raw_data):
            super().restore(raw_data)
            self._success_callback_name = self._failure_callback_name = self._stopped_callback_name = None
            self.webhooks, self.retries_left, self.repeats_left = [], None, None

    class QuietStop(StopRequested):
        """Ends RQ's work loop without its "unhandled exception" traceback."""

    class TrainingWorker(SimpleWorker):
        """RQ's SimpleWorker that runs the project's training job only, as the app signed it."""

        max_connection_wait_time = RECONNECT_MAX_S  # RQ's own waits for Redis while idle
        stop_asked = False
        lost: Exception | None = None

        def request_stop(self, signum, frame):
            self.stop_asked = True
            super().request_stop(signum, frame)

        def execute_job(self, job, queue):
            try:
                refusal, signed = _refusal(job, self.connection, self.name)
            except Exception as error:  # noqa: BLE001 - a record this worker cannot even read is refused too
                refusal, signed = f"its record cannot be read ({type(error).__name__})", False
            if refusal:
                log.warning("refused job %s: %s", job.id, refusal[:300])
                if signed:  # the app's own run: its session reads why
                    refused = messages.failed(f"the worker refused this run: {refusal}")
                    _RunEvents(self.connection, job.id, threading.Event(), threading.Event()).send(refused)
                self.handle_job_failure(job, queue, exc_string=f"refused by the sae worker: {refusal}")
                return
            try:
                super().execute_job(job, queue)
            except (RedisConnectionError, RedisTimeoutError) as error:
                self.lost = error
                raise QuietStop from None

    return TrainingJob, TrainingWorker


def _refusal(job, r, worker: str) -> tuple[str | None, bool]:
    """Why this worker does not run ``job`` (None: it does), and whether the app signed it.

    Only the job's record is read (JSON): nothing it names is imported or called."""
    if job.func_name != JOB_FUNCTION:
        return f"it calls {job.func_name[:80]!r}, not the training job", False
    arguments = job.args
    if job.instance is not None or job.kwargs or len(arguments) != 1 or not isinstance(arguments[0], dict) or set(arguments[0]) != JOB_ARGUMENTS:
        return "its arguments are not a training run's", False
    spec, issued, mac = arguments[0]["spec"], arguments[0]["issued"], arguments[0]["mac"]
    if type(issued) is not int or not verify(_KEY, mac, "job", job.id, str(issued), canonical(spec)):
        return "it is not signed with this queue's key (SAE_QUEUE_KEY)", False
    age = time.time() - issued
    if not -CLOCK_SKEW_S <= age <= KEEP_S:
        return f"it was issued {age:.0f} s ago", True
    try:
        read_spec(spec, _LIMITS)
    except SpecError as error:
        return f"its settings are refused: {error}", True
    if not r.set(run_keys(job.id)["claimed"], worker, nx=True, ex=KEEP_S):
        return "this run was taken by a worker already", False  # a replay: the run's stream is not ours to write
    return None, False


def _wait_for_redis(r, url: str, error: Exception) -> None:
    """Back off until Redis answers again: one log line per try, waits doubling up to RECONNECT_MAX_S."""
    from redis.exceptions import RedisError

    delay = RECONNECT_FIRST_S
    log.warning("lost Redis at %s (%s): reconnecting", safe_url(url), first_line(error))
    while True:
        time.sleep(delay * random.uniform(0.8, 1.2))  # workers restarted together do not knock together
        try:
            r.ping()
        except RedisError as again:
            delay = min(delay * 2, RECONNECT_MAX_S)
            log.warning("Redis at %s still unreachable (%s): next try in about %.0f s", safe_url(url), first_line(again), delay)
            continue
        log.info("Redis at %s is back: serving the queue again", safe_url(url))
        return


def serve(config: WorkerConfig) -> int:
    """``sae worker``: serve the queue until stopped (Ctrl+C or SIGTERM end it after the current run).

    Refuses to start, with one line, without ``SAE_QUEUE_KEY`` or a Redis it can reach; once
    serving, a lost Redis is waited for, and the worker serves again when it is back."""
    from redis.exceptions import RedisError

    from sae.devices import resolve_device

    global _CONFIG, _KEY, _LIMITS
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _KEY = queue_key()  # QueueKeyError: one line, before anything else
    _LIMITS = TrainingLimits.from_env()
    device = resolve_device(config.device)  # a device that is not here: one line, before any job is taken
    name = config.name or _worker_name()
    _CONFIG = replace(config, name=name)
    lower_priority(ProcessSettings(config.nice, config.threads))
    warn_if_open(config.redis_url)
    r = connect(config.redis_url)
    try:
        r.ping()
    except RedisError as error:
        raise RuntimeError(f"cannot reach Redis at {safe_url(config.redis_url)}: {first_line(error)}") from None
    _mnist()  # once, before the first run
    _presence()
    log.info("sae worker %s: queue %r on %s, training on %s, nice +%d", name, config.queue, safe_url(config.redis_url), device, config.nice)
    return _work(r, config, name)


def _work(r, config: WorkerConfig, name: str) -> int:
    """RQ's work loop, started again each time Redis comes back, until the worker is asked to stop."""
    from redis.exceptions import RedisError
    from rq.serializers import JSONSerializer

    job_class, worker_class = rq_classes()
    previous = None
    while True:
        worker = worker_class(
            [rq_queue(r, config.queue, job_class)],
            connection=r,
            serializer=JSONSerializer,
            job_class=job_class,
            name=name,
            log_job_description=False,  # a job's description is anyone's text: never into the log
        )
        try:
            if previous is not None:
                previous.register_death()  # its record, if Redis kept it: the same name registers again
            worker.work(burst=config.burst, logging_level="INFO")
            lost = worker.lost
        except RedisError as error:  # Redis went while RQ wrote its own records
            lost = error
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # RQ's handlers act on a loop that has ended
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if worker.stop_asked or (config.burst and lost is None):
            return 0
        try:
            _wait_for_redis(r, config.redis_url, lost or RuntimeError("RQ's work loop ended"))
        except KeyboardInterrupt:
            return 0
        previous = worker
