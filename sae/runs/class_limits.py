"""The class's fair shares of training, as the teacher sets them: every limit in one dataclass.

A server for a class is shared by students who are not trusted to share it
kindly: one script can open many sessions.  These limits decide how much of the
training capacity one session, and one network address, may hold, and how long
one run may last.  Each is read once from the environment (``TrainingLimits.from_env``),
documented in docs/classroom.md; a value that is not a positive integer is
logged and the default used.

Why these defaults:

- one run per session: the Train page follows one run, and a second would only wait;
- 30 runs per address: a school's class usually reaches the server from one
  address (its NAT, or the proxy in front of the app), so the limit per address
  must let a whole class of 30 line up; it still keeps one address from taking a
  server's whole table of runs (``max_runs_kept``) when several classes share it.
  Lower it on a server that several schools reach; raise it for a larger class
  behind one address;
- five minutes and 250 epochs per run: the Train page's longest preset ("Longer")
  fits exactly, and with one run at a time a line of five students clears in
  under half an hour.  A run asked for without a time limit gets this one;
- 64 runs kept: runs waiting, training, or ended and not yet saved, over all sessions.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from sae.training.loop import TrainConfig

log = logging.getLogger(__name__)

ENV = {
    "runs_per_session": "SAE_RUNS_PER_SESSION",
    "runs_per_address": "SAE_RUNS_PER_ADDRESS",
    "max_run_seconds": "SAE_MAX_RUN_SECONDS",
    "max_epochs": "SAE_MAX_EPOCHS",
    "max_runs_kept": "SAE_MAX_RUNS_KEPT",
    "trusted_proxies": "SAE_TRUSTED_PROXIES",
}


class RunRefused(ValueError):
    """A run asks for more than the class allows; the message is one line that names the limit."""


class EnvLimits:
    """A dataclass of a class server's limits, each field read from its variable in ``ENV``
    (:func:`limits_from_env`), with ``trusted_proxies`` among them for :func:`client_address`."""

    ENV: ClassVar[dict[str, str]]  # field name -> environment variable, set by each subclass

    @classmethod
    def from_env(cls, environ=None):
        return limits_from_env(cls, cls.ENV, environ)

    def client_address(self, connection: str | None, forwarded_for: str = "") -> str | None:
        return client_address(connection, forwarded_for, self.trusted_proxies)


@dataclass(frozen=True)
class TrainingLimits(EnvLimits):
    ENV: ClassVar[dict[str, str]] = ENV

    runs_per_session: int = 1  # runs waiting or training at once, per browser session
    runs_per_address: int = 30  # the same, per client address (a class behind one NAT shares one)
    max_run_seconds: int = 300  # a run's time limit at most; a run without one gets this
    max_epochs: int = 250
    max_runs_kept: int = 64  # runs held by the server at once: waiting, training, or ended and not yet saved
    trusted_proxies: int = 0  # reverse proxies in front of the app whose X-Forwarded-For is believed

    def fit(self, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` as this class runs it (a run without a time limit gets the class's), or RunRefused."""
        if cfg.epochs > self.max_epochs:
            raise RunRefused(f"a run here may have at most {self.max_epochs} epochs (asked: {cfg.epochs})")
        if cfg.time_budget is None:
            return replace(cfg, time_budget=float(self.max_run_seconds))
        if cfg.time_budget > self.max_run_seconds:
            raise RunRefused(f"a run here may last at most {self.max_run_seconds} s: set a time limit of {self.max_run_seconds} s or less")
        return cfg


def limits_from_env(cls, names: dict[str, str], environ=None):
    """``cls()`` with each field read from its environment variable in ``names`` where one is set.

    A value that is not a whole number of at least 1 (0 for ``trusted_proxies``) is logged and
    the default kept: a typo in a class server's settings must not stop it."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in fields(cls):
        raw, default = environ.get(names[f.name], "").strip(), getattr(cls, f.name)
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            value = -1
        lowest = 0 if f.name == "trusted_proxies" else 1
        if value < lowest:
            log.warning("%s=%r is not a whole number of at least %d: using %d", names[f.name], raw[:40], lowest, default)
            continue
        values[f.name] = value
    return cls(**values)


def client_address(connection: str | None, forwarded_for: str, trusted_proxies: int) -> str | None:
    """The address a student's browser connects from, for the shares per address.

    The connection's own address, unless ``trusted_proxies`` reverse proxies stand in front of
    the app (``SAE_TRUSTED_PROXIES``): then the address the outermost of them saw.  Each proxy
    appends the address it saw to X-Forwarded-For, so only the last ``trusted_proxies`` entries
    are the proxies' word; anything before them the browser itself could have written."""
    if trusted_proxies:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return connection
