"""The class's fair shares of the pages, as the teacher sets them: every limit in one dataclass.

A server for a class is shared by students who are not trusted to share it kindly:
one script can open a hundred sessions, ask Compare for a thousand digits at fifty
steps, or fill the disk with saved checkpoints.  These limits bound what one session,
one network address and one student may take.  Each is read once from the
environment (:func:`page_limits`), documented in docs/classroom.md; a value that is
not a whole number of at least 1 (0 for ``SAE_TRUSTED_PROXIES``) is logged and the
default kept.

Why these defaults:

- 100 sessions per server, 60 per address: a class of 30 with a tab or two each fits
  behind one school address (its NAT, or a proxy), and a script opening sessions in a
  loop meets a plain "the class is full" page long before memory runs out;
- Compare's work, in digit-steps (digits x the num_steps of each run of a sweep or of
  the trained models): 80,000 lets every view run on the most digits the page offers
  (1,000) at its default values, and the thresh question on the default 256 digits at
  the sidebar's largest num_steps (6 x 50 x 256); a request above it is refused in one
  line.  Requests of at most 20,000 (every view at the default 256 digits and
  num_steps) take a lane of their own, so a student at the defaults never waits behind
  a big request (``sae.runs.shared_results``);
- 5 checkpoints per student and 200 in all: a few runs to compare, and a bound on the
  disk (``sae.io.checkpoints.MAX_CHECKPOINT_BYTES`` each at most).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

from sae.runs.class_limits import EnvLimits

ENV = {
    "max_sessions": "SAE_MAX_SESSIONS",
    "sessions_per_address": "SAE_SESSIONS_PER_ADDRESS",
    "compare_work": "SAE_COMPARE_WORK",
    "compare_small_work": "SAE_COMPARE_SMALL_WORK",
    "checkpoints_per_student": "SAE_CHECKPOINTS_PER_STUDENT",
    "max_checkpoints": "SAE_MAX_CHECKPOINTS",
    "trusted_proxies": "SAE_TRUSTED_PROXIES",  # the training limits read the same variable (one setting for both)
}


@dataclass(frozen=True)
class PageLimits(EnvLimits):
    ENV: ClassVar[dict[str, str]] = ENV
    max_sessions: int = 100  # browser sessions connected to this server at once
    sessions_per_address: int = 60  # the same, per client address
    compare_work: int = 80_000  # digit-steps one Compare computation may take
    compare_small_work: int = 20_000  # at most this much runs in the lane of small requests
    checkpoints_per_student: int = 5  # saved checkpoints one student keeps
    max_checkpoints: int = 200  # saved by all students together
    trusted_proxies: int = 0  # reverse proxies in front of the app whose X-Forwarded-For is believed


@functools.cache
def page_limits() -> PageLimits:
    """The limits of this server, read from the environment once."""
    return PageLimits.from_env()
