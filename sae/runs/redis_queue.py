"""Training runs on a Redis job queue (RQ), trained by ``sae worker`` processes anywhere.

With ``SAE_REDIS_URL`` set, the app does not train at all: a :class:`RedisRunner`
(called like ``sae.training.loop.train``) enqueues each run on an RQ queue and yields
the events the worker writes back; any number of app replicas and workers, on
any machines that reach Redis, share one queue.  RQ is the queue because it is
small, well kept and needs nothing but Redis; its JSON serializer means no
pickle crosses Redis in either direction (events are JSON, the trained model is
state_dict bytes loaded with ``weights_only``).

Redis is shared ground, so nothing read from it is trusted (``sae.runs.signing``):

- Redis itself wants a password (``redis://:PASSWORD@host:6379/0``; ``rediss://``
  for TLS, its options in the URL's query, e.g. ``?ssl_ca_certs=/path/ca.pem``);
- a worker runs one function only, :func:`run_job`, and only for a run the app
  signed with ``SAE_QUEUE_KEY``, whose settings pass a strict schema and the
  class's limits (``sae.runs.spec``); anything else is marked failed, with one
  line in the worker's log, before anything of it is imported or called
  (:class:`TrainingWorker`);
- RQ's own hooks that run code or send requests named in a job's record
  (callbacks, webhooks) and its retries are never used by this project, and the
  worker's jobs ignore them (:class:`TrainingJob`);
- each event is numbered and signed by the worker; the app drops an event that
  is not the next one of its own run, signed with the key.

Keys for run ``<id>``, each with an expiry:

- ``sae:run:<id>:events``  a stream of ``sae.runs.messages`` events, in order: the worker adds, the app reads
- ``sae:run:<id>:stop``    set by the app: the worker stops within a layer and keeps the model
- ``sae:run:<id>:watched`` a lease the app renews while it reads; when it lapses (the app
  is gone) the worker stops, as a page does with a run nobody watches
- ``sae:run:<id>:claimed`` the worker that took the run: a run is trained once
- ``sae:worker:<name>``    each worker's heartbeat, renewed twice a second with the run it
  trains: the app counts workers from these, and when one lapses under a run, or
  names another run, it reports the run lost, in one line

``sae worker`` (:func:`serve`) is an RQ ``SimpleWorker``: it runs each job in
its own process instead of forking a child per job as RQ's default worker does,
which CUDA does not survive; it loads MNIST once and serves runs one after another.
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
from urllib.parse import urlsplit

from sae.errors import first_line
from sae.model import SAEConfig
from sae.runs import messages
from sae.runs.class_limits import TrainingLimits
from sae.runs.signing import QueueKeyError, canonical, queue_key, sign, verify
from sae.runs.spec import SpecError, read_spec, spec_of
from sae.runs.worker import ProcessSettings, lower_priority
from sae.runs.worker import run as run_in_this_process
from sae.training.loop import BatchEnd, Finished, TrainConfig, TrainingError

log = logging.getLogger(__name__)

REDIS_ENV = "SAE_REDIS_URL"
QUEUE = "sae-training"
JOB_FUNCTION = "sae.runs.redis_queue.run_job"
WORKER_PREFIX = "sae:worker:"
HEARTBEAT_S = 0.5  # also how soon a worker sees a stop request
ALIVE_TTL_S = 5  # a worker silent this long is lost
LEASE_TTL_S = 120  # a run nobody reads for this long stops
KEEP_S = 3600  # events, stop flags and job records are kept this long; an older job is not trained
CLOCK_SKEW_S = 300  # a job may come from a machine whose clock is this far ahead
READ_BLOCK_MS = 500
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.5, 10.0  # a worker's waits between tries to reach a lost Redis
JOB_ARGUMENTS = {"spec", "issued", "mac"}


def _keys(run_id: str) -> dict[str, str]:
    return {part: f"sae:run:{run_id}:{part}" for part in ("events", "stop", "watched", "claimed")}


def _redis(url: str):
    from redis import Redis

    # Bounded waits: an unreachable Redis is a one-line error in seconds, not a page that hangs.
    # A rediss:// URL's TLS options (ssl_ca_certs, ssl_certfile, ...) come from its query string.
    return Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5, socket_timeout=30)


def _queue(connection, name: str, job_class=None):
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=connection, serializer=JSONSerializer, **({"job_class": job_class} if job_class else {}))


def safe_url(url: str) -> str:
    """The URL without its password (or its query), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def warn_if_open(url: str) -> None:
    """One log line when the URL carries no password: anyone who reaches that Redis could use it."""
    parts = urlsplit(url)
    if parts.scheme != "unix" and not parts.password:
        log.warning("the Redis URL %s has no password: set one (docs/classroom.md), or anyone who reaches Redis can use it", safe_url(url))


def job_timeout(cfg: TrainConfig) -> int:
    """RQ kills a job after this many seconds: the run's time limit, plus room for a
    one-off compile and the final test MSE (RQ's default, 180 s, is shorter than most runs)."""
    return int(cfg.time_budget + 900) if cfg.time_budget else 24 * 3600


def _job_mac(key: bytes, run_id: str, issued: int, spec: dict) -> str:
    return sign(key, "job", run_id, str(issued), canonical(spec))


def _event_mac(key: bytes, run_id: str, number: str, body: str) -> str:
    return sign(key, "event", run_id, number, body)


# ------------------------------------------------------------------ the app's side


class RedisRunner:
    """Sends runs to the queue and yields their events; call it like ``sae.training.loop.train``.

    The images the app passes are not sent (245 MB): a worker trains on its own copy of MNIST."""

    def __init__(self, url: str, queue: str = QUEUE, key: bytes | None = None):
        self.url = url
        self._redis = _redis(url)
        self._queue = _queue(self._redis, queue)
        self._key, self._key_problem = key, None
        if key is None:
            try:
                self._key = queue_key()
            except QueueKeyError as error:  # each run fails with this line; exploring is unaffected
                self._key_problem = str(error)
                log.error("training queue not usable: %s", error)
        warn_if_open(url)

    def counts(self) -> dict:
        """Runs training and waiting over the whole queue, and how many workers serve it."""
        try:
            names = list(self._redis.scan_iter(WORKER_PREFIX + "*"))
            workers = [json.loads(v) for v in (self._redis.mget(names) if names else []) if v]
            workers = [w for w in workers if isinstance(w, dict) and w.get("queue") == self._queue.name]
            return {"running": sum(1 for w in workers if w.get("run")), "queued": self._queue.count, "capacity": len(workers)}
        except Exception as error:  # noqa: BLE001 - shown as "unknown", never a crashed page
            log.warning("cannot read the training queue at %s: %s", safe_url(self.url), first_line(error))
            return {"running": 0, "queued": 0, "capacity": 0}

    def __call__(self, model_config: SAEConfig, train_config: TrainConfig, train_images, test_images, stop):
        from redis.exceptions import RedisError

        if self._key is None:
            raise TrainingError(f"the training queue is not set up: {self._key_problem}")
        try:
            yield from self._run(model_config, train_config, stop)
        except RedisError as error:
            raise TrainingError(f"the training queue at {safe_url(self.url)} cannot be reached: {first_line(error)}") from None

    def _enqueue(self, run_id: str, model_config: SAEConfig, train_config: TrainConfig):
        """The run on the queue, signed: no worker trains a spec that does not carry this key's mark."""
        spec, issued = spec_of(model_config, train_config), int(time.time())
        return self._queue.enqueue(
            JOB_FUNCTION,
            {"spec": spec, "issued": issued, "mac": _job_mac(self._key, run_id, issued, spec)},
            job_id=run_id,
            job_timeout=job_timeout(train_config),
            result_ttl=KEEP_S,
            failure_ttl=KEEP_S,
            description=f"sae training run {run_id}",
        )

    def _run(self, model_config, train_config, stop):
        from redis.exceptions import RedisError
        from rq.job import JobStatus

        run_id = uuid.uuid4().hex[:16]
        keys, r = _keys(run_id), self._redis
        r.set(keys["watched"], 1, ex=LEASE_TTL_S)
        job = self._enqueue(run_id, model_config, train_config)
        events = _SignedEvents(self._key, run_id)
        last_id, step, started, finished, stop_sent, renewed = "0-0", 0, None, False, False, time.monotonic()
        try:
            while True:
                if stop.is_set() and not stop_sent:
                    stop_sent = True
                    r.set(keys["stop"], 1, ex=KEEP_S)
                    if started is None and _status(job) == JobStatus.QUEUED:
                        job.cancel()
                        finished = True
                        yield Finished(reason="cancelled", model=None, steps=0, elapsed=0.0, images_seen=0)
                        return
                if time.monotonic() - renewed > LEASE_TTL_S / 4:
                    r.set(keys["watched"], 1, ex=LEASE_TTL_S)
                    renewed = time.monotonic()
                entries = r.xread({keys["events"]: last_id}, count=100, block=READ_BLOCK_MS)
                for _, items in entries or ():
                    for entry_id, data in items:
                        last_id = entry_id
                        message = events.accept(data)
                        if message is None:
                            continue
                        event = messages.decode(message, model_config)  # "failed" raises its line
                        if isinstance(event, messages.Started):
                            started = event
                        elif isinstance(event, BatchEnd):
                            step = event.step
                        yield event
                        if isinstance(event, Finished):
                            finished = True
                            return
                if entries:
                    continue
                if started is None:
                    self._check_waiting(job)
                    position = job.get_position()
                    yield messages.Waiting(None if position is None else position + 1)
                else:
                    gone = self._worker_gone(started.worker, run_id)
                    if gone and not r.xread({keys["events"]: last_id}, count=1):
                        raise messages.WorkerLost(messages.lost_message(gone, step))
        finally:
            if not finished:
                try:
                    r.set(keys["stop"], 1, ex=KEEP_S)  # nobody reads it any more: let it end
                except RedisError:
                    pass

    def _worker_gone(self, name: str, run_id: str) -> str | None:
        """Why the worker that took ``run_id`` no longer trains it (None: it still does)."""
        raw = self._redis.get(WORKER_PREFIX + name)
        if raw is None:
            return f"worker {name} sent no heartbeat for {ALIVE_TTL_S} s"
        try:
            training = json.loads(raw).get("run")
        except (ValueError, AttributeError):
            training = None
        if training != run_id:
            return f"worker {name} lost this run, as when its Redis restarts"
        return None

    @staticmethod
    def _check_waiting(job) -> None:
        """A run that ended without ever starting (RQ could not run it) fails with RQ's reason."""
        from rq.job import JobStatus

        status = _status(job)
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED):
            result = job.latest_result()
            reason = (result.exc_string or "").strip().splitlines()[-1:] if result else []
            raise TrainingError(f"the training queue ended the run before it started ({status.value}{': ' + reason[0] if reason else ''})")


def _status(job):
    """The job's status in RQ; a job that is gone (Redis restarted, its record lost) fails the run in one line."""
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    try:
        return job.get_status()
    except (InvalidJobOperation, NoSuchJobError):
        raise TrainingError("the training queue lost this run before it started, as when its Redis restarts: start it again") from None


class _SignedEvents:
    """The app's check on a run's stream: only the next event, signed with the queue's key, is taken."""

    def __init__(self, key: bytes, run_id: str):
        self.key, self.run_id, self.taken, self.dropped = key, run_id, 0, 0

    def accept(self, data: dict) -> dict | None:
        number, body, mac = (data.get(name) for name in (b"n", b"e", b"s"))
        try:
            number, body, mac = number.decode(), body.decode(), mac.decode()
        except (AttributeError, UnicodeDecodeError):
            number = None
        if number != str(self.taken) or not verify(self.key, mac, "event", self.run_id, number, body):
            self.dropped += 1
            if self.dropped == 1:  # one line per run, however many come
                log.warning("run %s: dropped an event that its worker did not sign (forged, or replayed)", self.run_id)
            return None
        self.taken += 1
        return json.loads(body)


# ------------------------------------------------------------------ the worker's side


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
    stops the current run when the app asked, or when nobody reads it any more."""

    def __init__(self, r, name: str, device: str):
        self.r, self.name, self.device = r, name, device
        self.run: tuple[str, threading.Event] | None = None
        self.reachable = True
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.beat()  # present before the first job is taken
        self._thread = threading.Thread(target=self._loop, name="sae-heartbeat", daemon=True)
        self._thread.start()

    def current(self, run: tuple[str, threading.Event] | None) -> None:
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
                keys = _keys(run[0])
                pipe.exists(keys["stop"])
                pipe.exists(keys["watched"])
            replies = pipe.execute()
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
        _PRESENCE = _Presence(_redis(_CONFIG.redis_url), _CONFIG.name or _worker_name(), str(resolve_device(_CONFIG.device)))
        _PRESENCE.start()
    return _PRESENCE


def _worker_name() -> str:
    """Unique even when a restarted container has the same host name and pid."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:4]}"


class _RunEvents:
    """A run's events into its stream, numbered and signed.  When Redis is gone the run stops:
    nobody can see it any more, and the worker should go back to waiting for Redis."""

    def __init__(self, r, run_id: str, stop: threading.Event):
        self.r, self.run_id, self.stop = r, run_id, stop
        self.key = _keys(run_id)["events"]
        self.sent, self.last_type, self.lost = 0, "failed", None

    def send(self, message: dict) -> None:
        from redis.exceptions import RedisError

        if self.lost is not None:
            return
        body, number = json.dumps(message), str(self.sent)
        try:
            pipe = self.r.pipeline()
            pipe.xadd(self.key, {"e": body, "n": number, "s": _event_mac(_KEY, self.run_id, number, body)})
            pipe.expire(self.key, KEEP_S)
            pipe.execute()
        except RedisError as error:
            self.lost = error
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
    presence, stop = _presence(), threading.Event()
    events = _RunEvents(job.connection, job.id, stop)
    model_config, train_config = read_spec(job_arguments["spec"], _LIMITS)
    train_config = replace(train_config, device=presence.device)
    presence.current((job.id, stop))  # also stops at once a run that was stopped while it waited
    try:
        events.send(messages.encode(messages.Started(presence.name, presence.device)))
        train_images, test_images = _mnist()
        log.info("run %s: training %s on %s", job.id, train_config, presence.device)
        run_in_this_process(model_config, train_config, train_images, test_images, events.send, stop)
    finally:
        presence.current(None)
    log.info("run %s: %s", job.id, "lost with Redis" if events.lost else events.last_type)
    return {"type": events.last_type}


class RedisLost(Exception):
    """Redis went away under a run: the worker's loop ends (quietly) and :func:`serve` reconnects."""


def _rq_classes():
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
                    _RunEvents(self.connection, job.id, threading.Event()).send(messages.failed(f"the worker refused this run: {refusal}"))
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
    if not r.set(_keys(job.id)["claimed"], worker, nx=True, ex=KEEP_S):
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
    from rq.serializers import JSONSerializer

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
    r = _redis(config.redis_url)
    try:
        r.ping()
    except RedisError as error:
        raise RuntimeError(f"cannot reach Redis at {safe_url(config.redis_url)}: {first_line(error)}") from None
    _mnist()  # once, before the first run
    _presence()
    log.info("sae worker %s: queue %r on %s, training on %s, nice +%d", name, config.queue, safe_url(config.redis_url), device, config.nice)
    job_class, worker_class = _rq_classes()
    previous = None
    while True:
        worker = worker_class(
            [_queue(r, config.queue, job_class)],
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
