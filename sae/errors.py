"""Errors as one line a person can read."""

from __future__ import annotations

import re


def first_line(error: BaseException | str, limit: int = 120) -> str:
    """The first line of an error's message, without terminal colours, at most ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
