"""Real services for the tests: redis-server, ``sae worker`` processes and nginx, each on a free port.

Every test starts its own (``--save ''``: nothing on disk; a temporary nginx
prefix), so tests never share state and CI starts nothing in advance.  Redis
wants a password, as everywhere the project starts it, and the workers and apps
share the queue key ``QUEUE_KEY``.  A
missing binary skips the test loudly, and fails it under ``CI=true``
(``make test`` installs Debian's ``redis-server`` and ``nginx`` when run as root).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser.conftest import ROOT, free_port

REDIS_BINARY = "redis-server"
QUEUE_KEY = secrets.token_hex(32)  # SAE_QUEUE_KEY of every app and worker in this test session
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")


def require(binary: str, package: str) -> str:
    """The binary's path; without it: fail under CI=true, else skip with a loud reason."""
    path = shutil.which(binary) or (binary if Path(binary).is_absolute() and Path(binary).exists() else None)
    if path is None:
        message = f"{binary} not found (Debian package '{package}'; `make test` installs it when run as root)"
        if os.environ.get("CI") == "true":
            pytest.fail("these tests need real services under CI=true: " + message)
        sys.stderr.write(f"\n*** SKIPPING: {message} ***\n")
        pytest.skip(message)
    return path


def wait_for(condition, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class RedisService:
    """A private redis-server with a password (and, with ``tls``, TLS only), which a test may restart."""

    def __init__(self, tmp_path: Path, tls: bool = False):
        self.binary = require(REDIS_BINARY, "redis-server")
        self.tmp_path, self.tls = tmp_path, tls
        self.port, self.password = free_port(), secrets.token_hex(16)
        self.process: subprocess.Popen | None = None
        self._log = None
        self.ca = self._certificate() if tls else None

    @property
    def url(self) -> str:
        if self.tls:  # the worker and the app check the server's certificate against this CA
            return f"rediss://:{self.password}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca}"
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def _certificate(self) -> Path:
        """A self-signed certificate for 127.0.0.1, which is also its own CA."""
        openssl = require("openssl", "openssl")
        cert, key = self.tmp_path / "redis-cert.pem", self.tmp_path / "redis-key.pem"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        return cert

    def _arguments(self) -> list[str]:
        listen = ["--port", str(self.port)]
        if self.tls:
            cert, key = str(self.ca), str(self.tmp_path / "redis-key.pem")
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert, "--tls-key-file", key]
            listen += ["--tls-ca-cert-file", cert, "--tls-auth-clients", "no"]
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self.tmp_path)]
        return [self.binary, *listen, *common, "--requirepass", self.password]

    def start(self) -> None:
        import redis

        self._log = open(self.tmp_path / f"redis-{self.port}.log", "a")
        self.process = subprocess.Popen(self._arguments(), stdout=self._log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.returncode}")
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        try:
            wait_for(up, 20, "redis-server")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self._log is not None:
            self._log.close()

    def restart(self) -> None:
        """Stopped and started again on the same port, empty (nothing is saved), as a restarted Redis is."""
        self.stop()
        self.start()


@contextlib.contextmanager
def redis_server(tmp_path: Path, tls: bool = False):
    """A private redis-server that wants a password; yields its :class:`RedisService` (``.url`` has the password)."""
    service = RedisService(tmp_path, tls)
    service.start()
    try:
        yield service
    finally:
        service.stop()


class Worker:
    """A running ``sae worker`` process."""

    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process, self.log_path = process, log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def sae_worker(redis_url: str, log_path: Path, *extra: str, env: dict | None = None):
    """``python -m sae worker`` on ``redis_url`` (given in its environment, as the docs advise), on the
    CPU, one thread, with the tests' queue key; yields a :class:`Worker` once it listens."""
    import redis

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SAE_REDIS_URL": redis_url, "SAE_QUEUE_KEY": QUEUE_KEY, **(env or {})}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sae", "worker", "--device", "cpu", "--threads", "1", *extra],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = redis.Redis.from_url(redis_url)

    def listening():
        if process.poll() is not None:
            raise AssertionError(f"sae worker exited with {process.returncode}:\n{log_path.read_text()}")
        return any(True for _ in client.scan_iter("sae:worker:*"))

    try:
        wait_for(listening, 120, "the sae worker to listen")
        yield Worker(process, log_path)
    finally:
        client.close()
        stop_process(process)


NGINX_CONF = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
    log_format affinity '$sae_affinity $upstream_addr $status "$request"';
    access_log {prefix}/access.log affinity;
}}
"""


@contextlib.contextmanager
def nginx(tmp_path: Path, backends: list[str]):
    """Debian's nginx with the project's sticky config (deploy/nginx.conf) in front of ``backends``; yields its URL."""
    binary = next((b for b in (shutil.which(c) or (c if Path(c).exists() else None) for c in NGINX_CANDIDATES) if b), None)
    if binary is None:
        require("nginx", "nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "\n".join(f"    server {backend};" for backend in backends)
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    site = site.replace("    server app1:8501;\n    server app2:8501;", servers)
    assert servers in site and f"127.0.0.1:{port}" in site, "deploy/nginx.conf changed shape: update tests/services.py"
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, site=site))
    log = open(prefix / "stdout.log", "w")
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        if process.poll() is not None:
            raise AssertionError(f"nginx exited with {process.returncode}: {(prefix / 'error.log').read_text()}")
        import urllib.request

        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(up, 30, "nginx")
        yield url, prefix / "access.log"
    finally:
        stop_process(process)
        log.close()
