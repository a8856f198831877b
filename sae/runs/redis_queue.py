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
- a worker runs one function only, ``JOB_FUNCTION``, and only for a run the app
  signed with ``SAE_QUEUE_KEY``, whose settings pass a strict schema and the
  class's limits (``sae.runs.spec``); anything else is marked failed, with one
  line in the worker's log, before anything of it is imported or called
  (``sae.runs.queue_worker``);
- RQ's own hooks that run code or send requests named in a job's record
  (callbacks, webhooks) and its retries are never used by this project, and the
  worker's jobs ignore them;
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

The worker's side is ``sae.runs.queue_worker`` (``sae worker``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from urllib.parse import urlsplit

from sae.errors import first_line
from sae.model import SAEConfig
from sae.runs import messages
from sae.runs.signing import QueueKeyError, canonical, queue_key, sign, verify
from sae.runs.spec import spec_of
from sae.training.loop import BatchEnd, Finished, TrainConfig, TrainingError

log = logging.getLogger(__name__)

REDIS_ENV = "SAE_REDIS_URL"
QUEUE = "sae-training"
JOB_FUNCTION = "sae.runs.queue_worker.run_job"  # the one function a worker runs
WORKER_PREFIX = "sae:worker:"
ALIVE_TTL_S = 5  # a worker silent this long is lost
LEASE_TTL_S = 120  # a run nobody reads for this long stops
KEEP_S = 3600  # events, stop flags and job records are kept this long; an older job is not trained
READ_BLOCK_MS = 500


def run_keys(run_id: str) -> dict[str, str]:
    return {part: f"sae:run:{run_id}:{part}" for part in ("events", "stop", "watched", "claimed")}


def connect(url: str):
    from redis import Redis

    # Bounded waits: an unreachable Redis is a one-line error in seconds, not a page that hangs.
    # A rediss:// URL's TLS options (ssl_ca_certs, ssl_certfile, ...) come from its query string.
    return Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5, socket_timeout=30)


def rq_queue(connection, name: str, job_class=None):
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


def job_mac(key: bytes, run_id: str, issued: int, spec: dict) -> str:
    return sign(key, "job", run_id, str(issued), canonical(spec))


def event_mac(key: bytes, run_id: str, number: str, body: str) -> str:
    return sign(key, "event", run_id, number, body)


# ------------------------------------------------------------------ the app's side


class RedisRunner:
    """Sends runs to the queue and yields their events; call it like ``sae.training.loop.train``.

    The images the app passes are not sent (245 MB): a worker trains on its own copy of MNIST."""

    def __init__(self, url: str, queue: str = QUEUE, key: bytes | None = None):
        self.url = url
        self._redis = connect(url)
        self._queue = rq_queue(self._redis, queue)
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
            {"spec": spec, "issued": issued, "mac": job_mac(self._key, run_id, issued, spec)},
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
        keys, r = run_keys(run_id), self._redis
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
                            finished = True  # the run has ended: what follows is its measurement
                        if isinstance(event, messages.Measured):
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
