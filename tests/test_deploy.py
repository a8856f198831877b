"""Everywhere the project starts or documents Redis and its workers, Redis wants a password.

The commands a teacher copies (docs/classroom.md's code blocks), compose.yaml and the
systemd unit are read as text: no Redis without a password, no URL without one, the
queue key required, a worker that is started again when it exits.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLASSROOM = ROOT / "docs" / "classroom.md"
COMPOSE = ROOT / "compose.yaml"
UNIT = ROOT / "deploy" / "sae-worker@.service"


def code_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", markdown.read_text(), flags=re.S)


def test_no_redis_is_started_without_a_password():
    commands = "\n".join(code_blocks(CLASSROOM)) + COMPOSE.read_text()
    assert "protected-mode no" not in commands
    starts = [line for line in commands.splitlines() if re.search(r"\bredis-server\b", line) and not line.lstrip().startswith("#")]
    assert len(starts) == 2, "the docs start Redis elsewhere now: check it has a password, and update this test"
    for line in starts:
        assert "--requirepass" in line or "redis-server redis.conf" in line, line
    assert "printf 'requirepass %s" in "\n".join(code_blocks(CLASSROOM))  # the redis.conf the docs write
    services = (ROOT / "tests" / "services.py").read_text()  # the tests' own redis-server
    assert '"--requirepass", self.password' in services and "protected-mode" not in services


def test_every_redis_url_a_teacher_copies_carries_a_password():
    lines = [line for line in ("\n".join(code_blocks(CLASSROOM)) + COMPOSE.read_text()).splitlines() if "redis://" in line or "rediss://" in line]
    assert lines
    for line in lines:  # user:password@ or :password@ right after the scheme (a password may be a ${...} of compose's)
        assert re.search(r"rediss?://[\w.-]*:\S", line) and "@" in line.split("://", 1)[1], line


def test_compose_requires_its_secrets_and_keeps_the_worker_running():
    compose = COMPOSE.read_text()
    assert '"--requirepass", "${SAE_REDIS_PASSWORD}"' in compose
    assert "SAE_REDIS_URL: redis://:${SAE_REDIS_PASSWORD:?" in compose
    assert "SAE_QUEUE_KEY: ${SAE_QUEUE_KEY:?" in compose
    worker = compose[compose.index("  worker:") :]
    assert "<<: *app" in worker and '["python", "-m", "sae", "worker"]' in worker  # restart: unless-stopped, from the app's block


def test_the_systemd_unit_restarts_the_worker_and_keeps_its_secrets_in_a_file():
    unit = UNIT.read_text()
    assert "Restart=always" in unit and "EnvironmentFile=/etc/sae-worker.env" in unit
    assert "ExecStart=/opt/sae-explorer/.venv/bin/python -m sae worker\n" in unit  # no URL (or password) on the command line
