"""Training runs on a Redis job queue (RQ), trained by ``sae worker`` processes anywhere.

With ``SAE_REDIS_URL`` set, the app does not train at all: a :class:`RedisRunner`
(called like ``sae.training.loop.train``) enqueues each run on an RQ queue and yields
the events the worker writes back; any number of app replicas and workers, on
any machines that reach Redis, share one queue.  RQ is the queue because it is
small, well kept and needs nothing but Redis; its JSON serializer means no
pickle crosses Redis in either direction (events are JSON, the trained model is
state_dict bytes loaded with ``weights_only``).

Keys for run ``<id>``, each with an expiry:

- ``sae:run:<id>:events``  a stream of ``sae.runs.messages`` events, in order: the worker adds, the app reads
- ``sae:run:<id>:stop``    set by the app: the worker stops within a layer and keeps the model
- ``sae:run:<id>:watched`` a lease the app renews while it reads; when it lapses (the app
  is gone) the worker stops, as a page does with a run nobody watches
- ``sae:worker:<name>``    each worker's heartbeat, renewed twice a second with the run it
  trains: the app counts workers from these, and when one lapses under a run it
  reports the worker lost, in one line

``sae worker`` (:func:`serve`) is an RQ ``SimpleWorker``: it runs each job in
its own process instead of forking a child per job as RQ's default worker does,
which CUDA does not survive; it loads MNIST once and serves runs one after another.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from urllib.parse import urlsplit

from sae.errors import first_line
from sae.model import SAEConfig
from sae.runs import messages
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
KEEP_S = 3600  # events, stop flags and job records are kept this long
READ_BLOCK_MS = 500


def _keys(run_id: str) -> dict[str, str]:
    return {part: f"sae:run:{run_id}:{part}" for part in ("events", "stop", "watched")}


def _redis(url: str):
    from redis import Redis

    # Bounded waits: an unreachable Redis is a one-line error in seconds, not a page that hangs.
    return Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5, socket_timeout=30)


def _queue(connection, name: str):
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=connection, serializer=JSONSerializer)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def job_timeout(cfg: TrainConfig) -> int:
    """RQ kills a job after this many seconds (its default, 180 s, is shorter than most runs)."""
    return int(cfg.time_budget + 900) if cfg.time_budget else 24 * 3600


# ------------------------------------------------------------------ the app's side


class RedisRunner:
    """Sends runs to the queue and yields their events; call it like ``sae.training.loop.train``.

    The images the app passes are not sent (245 MB): a worker trains on its own copy of MNIST."""

    def __init__(self, url: str, queue: str = QUEUE):
        self.url = url
        self._redis = _redis(url)
        self._queue = _queue(self._redis, queue)

    def counts(self) -> dict:
        """Runs training and waiting over the whole queue, and how many workers serve it."""
        try:
            names = list(self._redis.scan_iter(WORKER_PREFIX + "*"))
            workers = [json.loads(v) for v in (self._redis.mget(names) if names else []) if v]
            workers = [w for w in workers if w.get("queue") == self._queue.name]
            return {"running": sum(1 for w in workers if w.get("run")), "queued": self._queue.count, "capacity": len(workers)}
        except Exception as error:  # noqa: BLE001 - shown as "unknown", never a crashed page
            log.warning("cannot read the training queue at %s: %s", safe_url(self.url), error)
            return {"running": 0, "queued": 0, "capacity": 0}

    def __call__(self, model_config: SAEConfig, train_config: TrainConfig, train_images, test_images, stop):
        from redis.exceptions import RedisError

        try:
            yield from self._run(model_config, train_config, stop)
        except RedisError as error:
            raise TrainingError(f"the training queue at {safe_url(self.url)} cannot be reached: {first_line(error)}") from None

    def _run(self, model_config, train_config, stop):
        from redis.exceptions import RedisError
        from rq.job import JobStatus

        run_id = uuid.uuid4().hex[:16]
        keys, r = _keys(run_id), self._redis
        r.set(keys["watched"], 1, ex=LEASE_TTL_S)
        job = self._queue.enqueue(
            JOB_FUNCTION,
            {"model_config": asdict(model_config), "train_config": train_config.to_dict()},
            job_id=run_id,
            job_timeout=job_timeout(train_config),
            result_ttl=KEEP_S,
            failure_ttl=KEEP_S,
            description=f"sae training run {run_id}",
        )
        last_id, step, started, finished, stop_sent, renewed = "0-0", 0, None, False, False, time.monotonic()
        try:
            while True:
                if stop.is_set() and not stop_sent:
                    stop_sent = True
                    r.set(keys["stop"], 1, ex=KEEP_S)
                    if started is None and job.get_status() == JobStatus.QUEUED:
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
                        event = messages.decode(json.loads(data[b"e"]), model_config)  # "failed" raises its line
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
                elif not r.exists(WORKER_PREFIX + started.worker) and not r.xread({keys["events"]: last_id}, count=1):
                    how = f"worker {started.worker} sent no heartbeat for {ALIVE_TTL_S} s"
                    raise messages.WorkerLost(messages.lost_message(how, step))
        finally:
            if not finished:
                try:
                    r.set(keys["stop"], 1, ex=KEEP_S)  # nobody reads it any more: let it end
                except RedisError:
                    pass

    @staticmethod
    def _check_waiting(job) -> None:
        """A run that ended without ever starting (RQ could not run it) fails with RQ's reason."""
        from rq.job import JobStatus

        status = job.get_status()
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED):
            result = job.latest_result()
            reason = (result.exc_string or "").strip().splitlines()[-1:] if result else []
            raise TrainingError(f"the training queue ended the run before it started ({status.value}{': ' + reason[0] if reason else ''})")


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
            log.warning("heartbeat to Redis failed: %s", error)

    def _loop(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            self.beat()


_PRESENCE: _Presence | None = None


def _presence(r) -> _Presence:
    global _PRESENCE
    if _PRESENCE is None:
        from sae.devices import resolve_device

        _PRESENCE = _Presence(r, _CONFIG.name or _worker_name(), str(resolve_device(_CONFIG.device)))
        _PRESENCE.start()
    return _PRESENCE


def _worker_name() -> str:
    """Unique even when a restarted container has the same host name and pid."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:4]}"


def run_job(spec: dict) -> dict:
    """The RQ job: one training run in this worker process, its events into Redis."""
    from rq import get_current_job

    job = get_current_job()
    r, keys = job.connection, _keys(job.id)
    presence, stop = _presence(r), threading.Event()
    outcome = {"type": "failed"}

    def send(message: dict) -> None:
        outcome["type"] = message["type"]
        pipe = r.pipeline()
        pipe.xadd(keys["events"], {"e": json.dumps(message)})
        pipe.expire(keys["events"], KEEP_S)
        pipe.execute()

    presence.current((job.id, stop))  # also stops at once a run that was stopped while it waited
    try:
        model_config = SAEConfig(**spec["model_config"])
        train_config = replace(TrainConfig(**spec["train_config"]), device=presence.device)
        send(messages.encode(messages.Started(presence.name, presence.device)))
        train_images, test_images = _mnist()
        log.info("run %s: training %s on %s", job.id, train_config, presence.device)
        run_in_this_process(model_config, train_config, train_images, test_images, send, stop)
    except (ValueError, TypeError, KeyError) as error:  # a spec this worker cannot read (another version?)
        send(messages.failed(f"the worker cannot run this: {error}"))
    finally:
        presence.current(None)
    log.info("run %s: %s", job.id, outcome["type"])
    return outcome


def serve(config: WorkerConfig) -> int:
    """``sae worker``: serve the queue until stopped (Ctrl+C or SIGTERM end it after the current run)."""
    from redis.exceptions import RedisError
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from sae.devices import resolve_device

    global _CONFIG
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    device = resolve_device(config.device)  # a device that is not here: one line, before any job is taken
    name = config.name or _worker_name()
    _CONFIG = replace(config, name=name)
    lower_priority(ProcessSettings(config.nice, config.threads))
    r = _redis(config.redis_url)
    try:
        r.ping()
    except RedisError as error:
        raise RuntimeError(f"cannot reach Redis at {safe_url(config.redis_url)}: {error}") from None
    _mnist()  # once, before the first run
    _presence(r)
    log.info("sae worker %s: queue %r on %s, training on %s, nice +%d", name, config.queue, safe_url(config.redis_url), device, config.nice)
    worker = SimpleWorker([_queue(r, config.queue)], connection=r, serializer=JSONSerializer, name=name)
    worker.work(burst=config.burst, logging_level="INFO")
    return 0
